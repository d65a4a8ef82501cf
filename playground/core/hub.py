"""Is the model hub reachable, and which model does a tab use (bundled or hub), and why.

Offline, huggingface_hub retries for ~46 s before giving up. We decide once, at start-up,
with one TCP connect of at most `timeout` seconds; when the hub is unreachable we set
HF_HUB_OFFLINE=1 so that nothing later waits for it. Call `decide()` before the first import
of transformers / open_clip / huggingface_hub (they read the variable on import).
"""
from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlparse

_state: dict = {}


def _endpoint() -> tuple[str, int]:
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    return url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)


def probe(timeout: float = 1.5) -> tuple[bool, str]:
    """One TCP connect to the hub endpoint. Returns (reachable, reason)."""
    host, port = _endpoint()
    t0 = time.perf_counter()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as e:
        return False, f"{host}:{port} unreachable ({type(e).__name__}: {e}) after {time.perf_counter() - t0:.2f} s"
    return True, f"{host}:{port} answered in {time.perf_counter() - t0:.2f} s"


def decide(mode: str = "auto", timeout: float = 1.5) -> bool:
    """Settle online/offline for this process. mode: auto | yes (offline) | no (online). Returns online."""
    if mode == "yes":
        online, why = False, "offline mode was asked for (--offline / PLAYGROUND_OFFLINE / HF_HUB_OFFLINE)"
    elif mode == "no":
        online, why = True, "online mode was asked for"
    else:
        online, why = probe(timeout)
    if not online:
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    _state.update(online=online, why=why)
    return online


def online() -> bool:
    if "online" not in _state:
        decide("yes" if os.environ.get("HF_HUB_OFFLINE") == "1" else "auto")
    return _state["online"]


def why() -> str:
    online()
    return _state["why"]


@dataclass(frozen=True)
class ModelSource:
    """What a tab runs on: `kind` is 'hub', 'bundled' or 'local'; `ref` a hub id or a path."""

    kind: str
    ref: str
    reason: str

    def markdown(self) -> str:
        label = {"hub": "hub model", "bundled": "bundled model", "local": "local model"}[self.kind]
        return f"**Model:** {label} `{self.ref}` — {self.reason}"


def choose(hub_id: str | None, bundled: str, *, local: str | None = None) -> ModelSource:
    """Pick the model for a tab: a user's local path first, then the hub model when reachable,
    else the bundled checkpoint that ships with the app."""
    if local:
        return ModelSource("local", local, "a local path was configured")
    if hub_id and online():
        return ModelSource("hub", hub_id, f"the hub is reachable ({why()})")
    if hub_id:
        return ModelSource("bundled", bundled, f"the hub is not reachable, so the offline default is used ({why()})")
    return ModelSource("bundled", bundled, "trained by this project's recipe; runs offline")
