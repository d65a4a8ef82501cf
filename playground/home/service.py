"""What the Home tab does, with no UI: each lab's own speed probe (through the labs' services, never
their tabs), the echo that is the floor of every round trip, and this machine's facts."""
from __future__ import annotations

from collections.abc import Callable

from playground import labs
from playground.core import device, hub, validate
from playground.core.settings import Settings

FAMILIES = {"GAN": "gan", "VAE": "vae", "Diffusion": "diffusion"}   # comparison row -> the lab that measures it
ECHO_CHARS = 200


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings

    def measure_speeds(self, progress: Callable[[float, str | None], None] | None = None) -> dict[str, dict]:
        """Run each family's lab speed probe on this machine (its model loads on first use).
        -> {family: {"what", "seconds"} or {"error"}}: one lab failing never hides the others."""
        out = {}
        for i, (fam, key) in enumerate(FAMILIES.items()):
            if progress:
                progress(i / len(FAMILIES), f"sampling from the {fam} model")
            try:
                out[fam] = labs.service(labs.by_key(key), self.settings).speed_probe()
            except Exception as e:  # noqa: BLE001 - reported in the table, the others still measured
                out[fam] = {"error": f"{type(e).__name__}: {str(e)[:120]}"}
        return out

    def echo(self, text) -> str:
        """The round-trip floor: the cheapest possible call (capped on the server)."""
        return validate.text("Text", text, max_chars=10 * ECHO_CHARS, allow_empty=True)[:ECHO_CHARS]

    def machine_facts(self) -> dict:
        from importlib.metadata import version

        import torch

        return {"device": device.describe(), "online": hub.online(), "hub_why": hub.why(),
                "torch": torch.__version__, "gradio": version("gradio"), "zerogpu": device.has_spaces()}

    def load_calls(self) -> list:
        return [("echo", ["ping"])]
