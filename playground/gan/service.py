"""What the GAN tab does, with no UI: the style-mixing grid, one mix layer by layer, the picture of the
mapping network, and the two cards (ours and the DCGAN peer) with their curves and snapshot grids.

Every method validates its raw arguments through `core.validate` (seeds are clamped into [0, 2^31 - 1],
psi into its slider's range; text that is not a whole number, unknown layers and non-flags are refused)
and returns plain data. The bundled generator loads once, on first use, through `core.cache.once` and is
shared by every session. Which checkpoints these are, and everything measured about them, is in their
cards (assets/gan/*.json).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from PIL import Image

from playground.core import cache, checkpoint, hub, images, paths, timing, validate
from playground.core.data import FASHION_CLASSES
from playground.core.errors import InputError, Unavailable
from playground.core.settings import Settings
from playground.gan import stylegan as sg
from playground.gan.dcgan import DCGANConfig

MODEL = "stylegan_fashion"          # ours (the G_ema weights)
PEER = "dcgan_fashion"              # the DCGAN peer
MAX_SEEDS = 6                       # seeds per row or column of the grid
MAX_SEED_CHARS = 200
PSI_RANGE = (0.0, 1.5)              # the truncation slider
MAPPING_SEEDS = 400                 # seeds in the picture of z and w
GRID_SCALE, WAVG_SCALE, AB_SCALE, MIX_SCALE = 4, 6, 4, 10   # on-screen pixels per generated pixel
CUSTOM = "custom"                   # the preset shown when the ticked layers match no group
DEFAULTS = {"src": "1, 2, 3, 4, 5", "style": "10, 11, 12, 13, 14", "psi": 0.8, "noise": True, "noise_seed": 0,
            "preset": "coarse", "seed_a": 1, "seed_b": 10}
RECIPE = "python -m demos.train_gan --model stylegan (or --model dcgan), then python -m demos.eval_gan"


@dataclass
class MixGrid:
    """The style-mixing figure and what made it."""
    grid: Image.Image          # sources along the top, styles down the left, the mixes in between
    w_avg: Image.Image         # the image of w_avg (psi = 0)
    sources: list[int]         # the seeds, clamped
    styles: list[int]
    layers: list[int]          # indices of the layers taken from the style seed
    psi: float
    noise_on: bool
    noise_seed: int
    ms: float                  # generator + figure time, measured


@dataclass
class SingleMix:
    a: Image.Image
    b: Image.Image
    mix: Image.Image           # A with B's styles at the chosen per-layer weights


def d_maps(card: dict) -> tuple[int, ...] | None:
    """The feature maps of the DCGAN-shaped D a card's G played against (None when it played another)."""
    base = (card.get("discriminator_config") or {}).get("base")
    return DCGANConfig(base=base).maps if card.get("discriminator") == "DCDiscriminator" and base else None


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings

    # --- the checkpoints -------------------------------------------------------------------------
    def card(self, name: str) -> dict:
        """A card without its weights ({} when the checkpoint is not there: the tab shows n/a)."""
        path = paths.assets("gan", name)
        try:
            return cache.once(("gan", "card", str(path)), lambda: checkpoint.read_card(path))
        except checkpoint.CheckpointError:
            return {}

    def config(self) -> sg.StyleGANConfig:
        """Our generator's config, from its card (the class defaults when the card is missing)."""
        card = self.card(MODEL)
        if not card:
            return sg.StyleGANConfig()
        return cache.once(("gan", "config", str(paths.assets("gan", MODEL))), lambda: checkpoint.build(card).config)

    def generator(self) -> sg.StyleGenerator:
        """Our bundled generator, loaded on first use and shared by every session."""
        path = paths.assets("gan", MODEL)

        def load():
            try:
                model, _ = checkpoint.load(path)
            except checkpoint.CheckpointError as e:
                raise Unavailable(f"{e}. Remake it with: {RECIPE}.") from None
            return model.eval().requires_grad_(False)

        return cache.once(("gan", str(path)), load)

    def source_markdown(self) -> str:
        return hub.choose(None, str(paths.assets("gan", f"{MODEL}.safetensors").relative_to(paths.ROOT))).markdown()

    def layer_names(self) -> list[str]:
        """'index: HxW' per style input, from the config."""
        return [f"{i}: {s}x{s}" for i, s in enumerate(self.config().layer_sizes)]

    def presets(self) -> dict[str, list[str]]:
        """Each layer group (coarse, middle, fine) as the layer names it ticks."""
        names = self.layer_names()
        return {g: [names[i] for i in idx] for g, idx in self.config().groups.items()}

    # --- input checks ----------------------------------------------------------------------------
    def seeds(self, name: str, text) -> list[int]:
        """Seeds typed as text ('1, 2 3;4'): each a whole number, clamped into [0, 2^31 - 1]."""
        parts = [p for p in validate.text(name, text, max_chars=MAX_SEED_CHARS).replace(";", ",").replace(" ", ",")
                 .split(",") if p.strip()]
        if not parts:
            raise InputError(f"{name}: type one to {MAX_SEEDS} seeds separated by commas, e.g. 1, 2, 3.")
        if len(parts) > MAX_SEEDS:
            raise InputError(f"{name}: at most {MAX_SEEDS} seeds, you gave {len(parts)}.")
        out = []
        for p in parts:
            try:
                v = int(p)
            except ValueError:
                raise InputError(f"{name}: {p.strip()[:20]!r} is not a whole number; use seeds like 1, 2, 3.") from None
            out.append(validate.seed(v, name))
        return out

    def layer_indices(self, layers) -> list[int]:
        names = self.layer_names()
        return [names.index(n) for n in validate.choices("Layers", layers, names)]

    @staticmethod
    def psi(value) -> float:
        return float(validate.number("Truncation psi", value, *PSI_RANGE))

    # --- actions ---------------------------------------------------------------------------------
    def mix_grid(self, src_text, style_text, layers, psi, noise_on, noise_seed) -> MixGrid:
        """The style-mixing grid: rows of style seeds x columns of source seeds; the ticked layers come from
        the style seed. The top-left cell is blank."""
        src, sty = self.seeds("Source seeds", src_text), self.seeds("Style seeds", style_text)
        idx, psi = self.layer_indices(layers), self.psi(psi)
        noise_on, noise_seed = validate.flag("Noise", noise_on), validate.seed(noise_seed, "Noise seed")
        G = self.generator()
        t0 = time.perf_counter()
        out = sg.mixing_grid(G, src, sty, idx, psi, noise_on, noise_seed)
        blank = out["sources"][:1].new_ones(1, *out["sources"].shape[1:])
        rows = [blank, out["sources"]] + [t for i in range(len(sty)) for t in (out["styles"][i:i + 1], out["mixes"][i])]
        grid = images.to_pil(images.grid(torch.cat(rows), nrow=len(src) + 1), scale=GRID_SCALE)
        ms = (time.perf_counter() - t0) * 1000
        return MixGrid(grid, images.to_pil(out["w_avg"], scale=WAVG_SCALE), src, sty, idx, psi, noise_on, noise_seed, ms)

    def preset_layers(self, preset) -> list[str] | None:
        """A preset's layer names (None for 'custom': leave the ticks as they are)."""
        presets = self.presets()
        preset = validate.choice("Preset", preset, [*presets, CUSTOM])
        return None if preset == CUSTOM else presets[preset]

    def layers_preset(self, layers) -> str:
        """The preset the ticked layers match, else 'custom'."""
        ticked = validate.choices("Layers", layers, self.layer_names())
        return next((g for g, names in self.presets().items() if names == ticked), CUSTOM)

    def single_mix(self, seed_a, seed_b, weights, psi, noise_on, noise_seed) -> SingleMix:
        """A, B and A with B's style at a weight per layer (0 keeps A's, 1 takes B's)."""
        a, b = validate.seed(seed_a, "Seed A"), validate.seed(seed_b, "Seed B")
        weights = validate.numbers("Layer weights", weights, 0.0, 1.0, count=self.config().num_ws)
        psi, noise_on = self.psi(psi), validate.flag("Noise", noise_on)
        out = sg.single_mix(self.generator(), a, b, weights, psi, noise_on, validate.seed(noise_seed, "Noise seed"))
        return SingleMix(images.to_pil(out["a"], scale=AB_SCALE), images.to_pil(out["b"], scale=AB_SCALE),
                         images.to_pil(out["mix"], scale=MIX_SCALE))

    def mapping(self, psi) -> dict:
        """z and w of MAPPING_SEEDS seeds in 2-D (PCA), w_avg, and where truncation moves each w."""
        return sg.mapping_projection(self.generator(), MAPPING_SEEDS, self.psi(psi))

    def snapshots(self, name: str) -> list[dict]:
        """The snapshot grids a card lists: {"image", "step", "seconds"} each."""
        shots = self.card(name).get("snapshots", [])
        return [{"image": Image.open(paths.assets("gan", s["png"])).convert("L"), "step": s["step"],
                 "seconds": s["seconds"]} for s in shots if paths.assets("gan", s["png"]).exists()]

    def facts(self) -> dict:
        """What the tab's text states, read from the config and the cards."""
        cfg, ours, peer = self.config(), self.card(MODEL), self.card(PEER)
        return {"resolution": cfg.resolution, "num_ws": cfg.num_ws, "layer_sizes": cfg.layer_sizes,
                "groups": cfg.groups, "classes": FASHION_CLASSES, "ours": ours, "peer": peer,
                "d_maps": {"ours": d_maps(ours), "peer": d_maps(peer)}, "mapping_seeds": MAPPING_SEEDS}

    # --- Home and the load scripts ---------------------------------------------------------------
    def speed_probe(self) -> dict:
        """Seconds for one sample (z -> w -> image), the median through core.timing."""
        G = self.generator()
        res = G.config.resolution
        return {"family": "GAN", "what": f"one {res}x{res} image, 1 generator pass",
                "seconds": timing.median_seconds(lambda: sg.sample(G, 1, 0))}

    def load_calls(self) -> list:
        d, presets = DEFAULTS, self.presets()
        ticked = presets[d["preset"]]
        weights = [1.0 if n in ticked else 0.0 for n in self.layer_names()]
        return [("gan_mix", [d["src"], d["style"], ticked, d["psi"], d["noise"], d["noise_seed"]]),
                ("gan_single", [d["seed_a"], d["seed_b"], *weights, d["psi"], d["noise"], d["noise_seed"]])]
