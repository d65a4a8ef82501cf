"""What the GAN tab does, with no UI: the style-mixing grid, one mix layer by layer, the truncation sweep
(the same seeds from psi = 0 to 1, for a GIF), the picture of the mapping network, the two cards (ours and
the DCGAN peer) with their curves and snapshot grids, the guided tour's checks (`tour_check`: each
answer measured on the live generator with the judge classifier at reveal time), and beside them the
conditional DCGAN (`conditional`: a class and a seed in, that class's samples out, each with the judge's
label and confidence).

Every method validates its raw arguments through `core.validate` (seeds are clamped into [0, 2^31 - 1],
psi into its slider's range; text that is not a whole number, unknown layers and non-flags are refused)
and returns plain data. The bundled generator loads once, on first use, through `core.cache.once` and is
shared by every session. Which checkpoints these are, and everything measured about them, is in their
cards (assets/gan/*.json).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from PIL import Image

from playground.core import cache, checkpoint, hub, images, paths, timing, validate
from playground.core.batch import Batcher
from playground.core.data import FASHION_CLASSES
from playground.core.errors import InputError, Unavailable
from playground.core.lesson import Reveal
from playground.core.settings import Settings
from playground.gan import cdcgan
from playground.gan import stylegan as sg
from playground.gan.dcgan import DCGANConfig
from playground.gan.train import to_judge

MODEL = "stylegan_fashion"          # ours (the G_ema weights)
PEER = "dcgan_fashion"              # the DCGAN peer
CONDITIONAL = "cdcgan_fashion"      # the conditional DCGAN (its G_ema weights)
COND_SEEDS = 8                      # samples of the picked class: seeds seed .. seed + COND_SEEDS - 1
COND_SCALE = 4                      # on-screen pixels per generated pixel in the conditional strip
MAX_SEEDS = 6                       # seeds per row or column of the grid
MAX_SEED_CHARS = 200
PSI_RANGE = (0.0, 1.5)              # the truncation slider
MAPPING_SEEDS = 400                 # seeds in the picture of z and w
GRID_SCALE, WAVG_SCALE, AB_SCALE, MIX_SCALE = 4, 6, 4, 10   # on-screen pixels per generated pixel
CUSTOM = "custom"                   # the preset shown when the ticked layers match no group
DEFAULTS = {"src": "1, 2, 3, 4, 5", "style": "10, 11, 12, 13, 14", "psi": 0.8, "noise": True, "noise_seed": 0,
            "preset": "coarse", "seed_a": 1, "seed_b": 10, "cclass": "Trouser", "cseed": 0}
SWEEP = (0.0, 1.0, 11)              # the truncation sweep: psi from, psi to, frames
SWEEP_MS = 300                      # GIF: milliseconds per frame
# The guided tour (tour_check): sample sizes, and the thresholds that turn a measurement into a choice.
TOUR_N = 256                        # samples per psi in a check (small N: a reveal takes about a second)
TOUR_PAIRS = 128                    # (source, style) seed pairs drawn for the style-mixing checks
TOUR_SEED = 2024                    # the first seed of a check's samples (args may give another)
TOUR_NOISE_SEED = 0                 # checks use fixed noise maps from this seed, as demos/eval_gan.py does
SAME = 0.05                         # diversity within +-5% of its value at psi = 1 is "about as varied"
HALF = 0.5                          # fine-layer mixes: a pixel change under half of swapping the image is "a part"
STRETCH = 2.0                       # w is "stretched" when its 2 top PCs explain >= this many times z's share
CHECKS = ("class_layers", "fine_layers", "truncation_diversity", "truncation_fd", "wavg_sharpness", "mapping_shape",
          "class_spread", "conditional_classes")                   # the checks tour_check knows
EVEN = 0.9                          # classes "all present, about evenly": entropy >= this share of log2(classes)
RECIPE = "python -m demos.train_gan --model stylegan (or --model dcgan), then python -m demos.eval_gan"
COND_RECIPE = "python -m demos.train_gan --model cdcgan, then python -m demos.eval_gan --model cdcgan"


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
class Sweep:
    """The same source seeds at each psi from SWEEP[0] to SWEEP[1]: one frame per psi."""
    frames: torch.Tensor       # (F, S, 1, H, W) in [0, 1]
    psis: list[float]
    seeds: list[int]
    noise_on: bool
    noise_seed: int


@dataclass
class SingleMix:
    a: Image.Image
    b: Image.Image
    mix: Image.Image           # A with B's styles at the chosen per-layer weights
    seeds: tuple[int, int]     # A and B, clamped


@dataclass
class Conditional:
    """Samples of one class from the conditional DCGAN, each with what the judge classifier reads in it."""
    strip: Image.Image         # the samples side by side, seed by seed
    label: str                 # the class asked for
    seeds: list[int]
    judged: list[str]          # the judge's class for each sample
    confidence: list[float]    # the judge's softmax probability of that class
    ms: float                  # generator + judge time, measured


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

    @staticmethod
    def _frozen(name: str, recipe: str):
        """A bundled generator (eval mode, no gradients), loaded on first use and shared by every session."""
        path = paths.assets("gan", name)

        def load():
            try:
                model, _ = checkpoint.load(path)
            except checkpoint.CheckpointError as e:
                raise Unavailable(f"{e}. Remake it with: {recipe}.") from None
            return model.eval().requires_grad_(False)

        return cache.once(("gan", str(path)), load)

    def generator(self) -> sg.StyleGenerator:
        """Our bundled generator (the G_ema weights)."""
        return self._frozen(MODEL, RECIPE)

    def conditional_generator(self):
        """The conditional DCGAN's G (its weight average), batch norm in eval mode."""
        return self._frozen(CONDITIONAL, COND_RECIPE)

    def conditional_settings(self, label, seed) -> tuple[str, list[int]]:
        """The class (one of the ten) and the strip's seeds: the first clamped so that all COND_SEEDS are valid."""
        first = min(validate.seed(seed, "Seed"), validate.MAX_SEED - COND_SEEDS + 1)
        return validate.choice("Class", label, FASHION_CLASSES), list(range(first, first + COND_SEEDS))

    @torch.inference_mode()
    def conditional(self, label, seed) -> Conditional:
        """COND_SEEDS samples of class `label` (one of the ten Fashion-MNIST classes) from seeds seed, seed + 1,
        ...; z per seed as the style-mixing model's (sg.z_of). The judge labels each and says how sure it is."""
        from playground.judge import metrics

        label, seeds = self.conditional_settings(label, seed)
        G, judge = self.conditional_generator(), metrics.classifier("fashion")
        t0 = time.perf_counter()
        y = torch.full((COND_SEEDS,), FASHION_CLASSES.index(label))
        x = G(sg.z_of(seeds, G.config.z_dim), y)                               # (S, 1, 32, 32) in [-1, 1]
        p = judge(to_judge(x)).softmax(1)
        conf, pred = p.max(1)
        strip = images.to_pil(images.grid(sg.to01(x), nrow=COND_SEEDS), scale=COND_SCALE)
        return Conditional(strip, label, seeds, [FASHION_CLASSES[int(c)] for c in pred], conf.tolist(),
                           (time.perf_counter() - t0) * 1000)

    def class_accuracy(self, labels: list[str], n: int, seed: int) -> list[float]:
        """For each class name: the share of n conditional samples of it (z from one generator seeded `seed`,
        cdcgan.samples) that the judge labels as that class."""
        idx = [FASHION_CLASSES.index(c) for c in labels]
        y = torch.tensor(idx).repeat_interleave(n)
        pred = self._classes(sg.to01(cdcgan.samples(self.conditional_generator(), y, seed)))
        return [float((pred[y == c] == c).double().mean()) for c in idx]

    def _synthesize(self, ws: torch.Tensor, mode: str, seed: int) -> torch.Tensor:
        """G.synthesize, with concurrent students' calls merged into one synthesis pass (sg.synthesize_rows)."""
        G = self.generator()
        batcher = cache.once(("gan", "synthesis", id(G)),
                             lambda: Batcher(lambda parts: sg.synthesize_rows(G, parts), name="gan synthesis"))
        return batcher((ws, mode, seed))

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
    def grid_settings(self, src_text, style_text, layers, psi) -> tuple[list[int], list[int], list[int], float]:
        """Sources, styles, layer indices and psi as the grid reads them (no model run: for its description)."""
        return (self.seeds("Source seeds", src_text), self.seeds("Style seeds", style_text), self.layer_indices(layers),
                self.psi(psi))

    def pair(self, seed_a, seed_b) -> tuple[int, int]:
        """Seeds A and B of the single mix, clamped."""
        return validate.seed(seed_a, "Seed A"), validate.seed(seed_b, "Seed B")

    def mix_grid(self, src_text, style_text, layers, psi, noise_on, noise_seed) -> MixGrid:
        """The style-mixing grid: rows of style seeds x columns of source seeds; the ticked layers come from
        the style seed. The top-left cell is blank."""
        src, sty, idx, psi = self.grid_settings(src_text, style_text, layers, psi)
        noise_on, noise_seed = validate.flag("Noise", noise_on), validate.seed(noise_seed, "Noise seed")
        G = self.generator()
        t0 = time.perf_counter()
        out = sg.mixing_grid(G, src, sty, idx, psi, noise_on, noise_seed, synthesize=self._synthesize)
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
        a, b = self.pair(seed_a, seed_b)
        weights = validate.numbers("Layer weights", weights, 0.0, 1.0, count=self.config().num_ws)
        psi, noise_on = self.psi(psi), validate.flag("Noise", noise_on)
        out = sg.single_mix(self.generator(), a, b, weights, psi, noise_on, validate.seed(noise_seed, "Noise seed"),
                            synthesize=self._synthesize)
        return SingleMix(images.to_pil(out["a"], scale=AB_SCALE), images.to_pil(out["b"], scale=AB_SCALE),
                         images.to_pil(out["mix"], scale=MIX_SCALE), (a, b))

    def truncation_sweep(self, src_text, noise_on, noise_seed) -> Sweep:
        """The source seeds from psi = SWEEP[0] (every seed gives w_avg's image) to SWEEP[1] (no truncation)."""
        src = self.seeds("Source seeds", src_text)
        noise_on, noise_seed = validate.flag("Noise", noise_on), validate.seed(noise_seed, "Noise seed")
        psis = torch.linspace(*SWEEP).tolist()
        return Sweep(sg.truncation_sweep(self.generator(), src, psis, noise_on, noise_seed), psis, src, noise_on,
                     noise_seed)

    def link_layers(self, preset, layers) -> tuple[list[str], str]:
        """A lesson link's layers and preset made consistent: a preset named with the default layers ticks the
        preset's layers; otherwise the ticked layers decide and the preset is the one they match."""
        presets, names = self.presets(), self.layer_names()
        ticked = sorted(validate.choices("Layers", layers, names), key=names.index)
        preset = validate.choice("Preset", preset, [*presets, CUSTOM])
        if preset != CUSTOM and ticked == presets[DEFAULTS["preset"]]:
            ticked = presets[preset]
        return ticked, self.layers_preset(ticked)

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
                "d_maps": {"ours": d_maps(ours), "peer": d_maps(peer)}, "mapping_seeds": MAPPING_SEEDS,
                "conditional": self.card(CONDITIONAL), "cond_seeds": COND_SEEDS}

    # --- the guided tour: each answer measured on the live generator at reveal time ----------------
    @staticmethod
    def _classes(x01: torch.Tensor) -> torch.Tensor:
        """The judge classifier's class for generated images (N, 1, 32, 32) in [0, 1] (cropped to 28x28)."""
        from playground.judge import metrics

        return metrics.predict(to_judge(x01 * 2 - 1), "fashion")

    @torch.inference_mode()
    def _samples(self, n: int, seed: int, psi: float) -> torch.Tensor:
        """n images in [0, 1] from seeds seed .. seed + n - 1 at this psi, fixed noise (TOUR_NOISE_SEED)."""
        return sg.sample(self.generator(), n, seed, psi, True, TOUR_NOISE_SEED)

    @torch.inference_mode()
    def layer_swaps(self, pairs: int, seed: int, psi: float = 1.0) -> dict:
        """For `pairs` random (source, style) seed pairs, each layer group taken from the style seed: over the
        pairs whose images the judge puts in different classes, the share of mixes classified as the style's
        class and as the source's; and over all pairs, the mean pixel change from the source, as a share of the
        change that swapping the whole image makes. The rates are demos/eval_gan.py's `style_mixing`."""
        G = self.generator()
        w = G.map(sg.z_of(range(seed, seed + 2 * pairs), G.config.z_dim), psi)      # (2 pairs, w_dim)
        w_src, w_sty = w[:pairs], w[pairs:]

        def draw(ws):
            return sg.to01(G.synthesize(ws, "fixed", TOUR_NOISE_SEED))

        x_src, x_sty = draw(w_src), draw(w_sty)
        c_src, c_sty = self._classes(x_src), self._classes(x_sty)
        diff = c_src != c_sty
        swap = float((x_sty - x_src).abs().mean())
        out = {"pairs": pairs, "differ": int(diff.sum()), "psi": psi, "groups": {}}
        for name, idx in G.config.groups.items():
            a = torch.zeros(G.num_ws)
            a[list(idx)] = 1.0
            x_mix = draw(sg.mix(w_src, w_sty, a))
            c_mix = self._classes(x_mix)
            out["groups"][name] = {
                "layers": list(idx),
                "follows_style": float((c_mix[diff] == c_sty[diff]).double().mean()) if diff.any() else 0.0,
                "keeps_source": float((c_mix[diff] == c_src[diff]).double().mean()) if diff.any() else 0.0,
                "change": float((x_mix - x_src).abs().mean()) / max(swap, 1e-12)}
        return out

    def truncation_stats(self, n: int, seed: int, psi: float) -> dict:
        """FD against the real training statistics, feature diversity (1 = real data's) and class entropy of
        n samples at psi = 1 and at `psi` (the same seeds): {1.0: {...}, psi: {...}}."""
        from playground.judge import metrics

        out = {}
        for p in dict.fromkeys((1.0, psi)):
            x = to_judge(self._samples(n, seed, p) * 2 - 1)
            f, pred = metrics.features(x, "fashion"), metrics.predict(x, "fashion")
            out[p] = {"fd": metrics.frechet_distance(*metrics.gaussian(f), *metrics.train_stats("fashion")),
                      "diversity": metrics.diversity(f) / metrics.card("fashion")["metrics"]["diversity_real_test"],
                      "entropy": metrics.class_entropy_bits(pred, len(FASHION_CLASSES)),
                      "histogram": torch.bincount(pred, minlength=len(FASHION_CLASSES)).tolist()}
        return out

    @staticmethod
    def edges(x: torch.Tensor) -> float:
        """Edge strength of an image (…, H, W): the mean absolute difference of neighbouring pixels."""
        return float((x[..., 1:, :] - x[..., :-1, :]).abs().mean() + (x[..., 1:] - x[..., :-1]).abs().mean())

    def grid_follow(self, values: dict) -> tuple[int, int] | None:
        """On the grid the link's controls show: (mixes that take their style seed's class, mixes whose
        source and style the judge tells apart), or None when the controls hold no valid grid."""
        try:
            src, sty = self.seeds("Source seeds", values.get("src")), self.seeds("Style seeds", values.get("style"))
            idx, psi = self.layer_indices(values.get("layers")), self.psi(values.get("psi"))
            noise_on, nseed = validate.flag("Noise", values.get("noise")), validate.seed(values.get("noise_seed"))
        except InputError:
            return None
        out = sg.mixing_grid(self.generator(), src, sty, idx, psi, noise_on, nseed)
        c_src, c_sty = self._classes(out["sources"]), self._classes(out["styles"])
        c_mix = self._classes(out["mixes"].flatten(0, 1)).reshape(len(sty), len(src))
        differ = c_sty[:, None] != c_src[None, :]
        return int((c_mix == c_sty[:, None])[differ].sum()), int(differ.sum())

    def tour_check(self, check: str, args: dict, values: dict):
        """A tour step's answer (one of args["choices"], in the step's order), computed on the live generator."""
        if check not in CHECKS:
            raise InputError(f"Tour: this lab has no check called {str(check)[:40]!r}; it has {', '.join(CHECKS)}.")
        choices = list(args.get("choices") or [])
        if len(choices) < 2:
            raise InputError("Tour: the step's args must repeat its choices.")
        n = validate.integer("Samples", args.get("n", TOUR_N), 16, 4096)
        seed, psi = validate.seed(args.get("seed", TOUR_SEED)), self.psi(args.get("psi", 1.0))
        card = self.card(MODEL).get("metrics", {})
        classes = FASHION_CLASSES
        if check in ("class_layers", "fine_layers"):
            pairs = validate.integer("Pairs", args.get("pairs", TOUR_PAIRS), 16, 4096)
            r = self.layer_swaps(pairs, seed, psi)
            g = r["groups"]
            head = (f"{pairs} random pairs of seeds at psi = {psi:g}; the judge puts the source and the style "
                    f"image in different classes for {r['differ']} of them. ")
            if check == "class_layers":
                if len(choices) != len(g):
                    raise InputError(f"Tour: class_layers needs one choice per layer group ({', '.join(g)}).")
                best = max(g, key=lambda k: g[k]["follows_style"])
                rates = "; ".join(f"{k} (layers {', '.join(map(str, v['layers']))}) from the style seed: "
                                  f"{v['follows_style']:.0%} take the style's class, {v['keeps_source']:.0%} keep "
                                  f"the source's" for k, v in g.items())
                on_grid = self.grid_follow(values)
                grid = (f" In the grid on screen, {on_grid[0]} of the {on_grid[1]} mixes whose source and style the "
                        "judge tells apart take the style seed's class." if on_grid and on_grid[1] else "")
                mix = card.get("style_mixing", {})
                ref = (f" The card, over {mix['n_mixes']} pairs: coarse {mix['coarse_follows_style']:.0%}, middle "
                       f"{mix['middle_follows_style']:.0%}, fine {mix['fine_follows_style']:.0%}."
                       if "middle_follows_style" in mix else "")
                return Reveal(choices[list(g).index(best)], head + rates + "." + grid + ref)
            fine = g["fine"]
            answer = choices[0] if fine["change"] >= HALF else choices[1]
            return Reveal(answer, head + f"Taking the fine layers ({', '.join(map(str, fine['layers']))}) from the "
                                         f"style seed changes the pixels by {fine['change']:.0%} of what swapping "
                                         "the whole image for the style seed's changes, and "
                                         f"{fine['keeps_source']:.0%} of the mixes keep the source's class.")
        if check in ("truncation_diversity", "truncation_fd"):
            st = self.truncation_stats(n, seed, psi)
            one, lo = st[1.0], st[psi]
            if check == "truncation_diversity":
                ratio = lo["diversity"] / max(one["diversity"], 1e-12)
                answer = choices[0] if ratio < 1 - SAME else choices[2] if ratio > 1 + SAME else choices[1]
                return Reveal(answer, f"{n} samples, the same seeds at psi = 1 and psi = {psi:g}: feature diversity "
                                      f"(1 = as varied as real images) {one['diversity']:.2f} and "
                                      f"{lo['diversity']:.2f} ({ratio:.0%} of it); class entropy "
                                      f"{one['entropy']:.2f} and {lo['entropy']:.2f} bits.")
            answer = choices[0] if lo["fd"] < one["fd"] else choices[1]
            t = card.get("truncated_psi_0.8", {})
            ref = (f" The card, at N = {card['n']}: {card['fd']:.2f} at psi = 1, {t['fd']:.2f} at psi = 0.8."
                   if "fd" in t and "n" in card else "")
            return Reveal(answer, f"FD against the real training images ({n} samples each; FD is biased upwards at "
                                  f"small N, the same for both): {one['fd']:.2f} at psi = 1, {lo['fd']:.2f} at "
                                  f"psi = {psi:g}." + ref)
        if check == "wavg_sharpness":
            G = self.generator()
            with torch.inference_mode():
                w_img = sg.to01(G.synthesize(G.w_avg[None], "fixed", TOUR_NOISE_SEED))
            x = self._samples(n, seed, 1.0)
            e_w, e_mean = self.edges(w_img), self.edges(x.mean(0))
            e_each = sorted(self.edges(xi) for xi in x)
            median = e_each[len(e_each) // 2]
            answer = choices[0] if abs(e_w - median) < abs(e_w - e_mean) else choices[1]
            return Reveal(answer, f"Edge strength (mean absolute difference of neighbouring pixels): the w_avg "
                                  f"image {e_w:.3f}; one sample, median of {n}: {median:.3f}; the pixel average of "
                                  f"the same {n} samples: {e_mean:.3f}. The judge reads the w_avg image as "
                                  f"*{classes[int(self._classes(w_img)[0])]}*.")
        if check == "mapping_shape":
            p = sg.mapping_projection(self.generator(), MAPPING_SEEDS, psi)
            ez, ew = sum(p["explained_z"]), sum(p["explained_w"])
            answer = choices[1] if ew >= STRETCH * ez else choices[0]
            return Reveal(answer, f"The same {MAPPING_SEEDS} seeds: the two main directions (PC1 + PC2) hold "
                                  f"{ez:.1%} of the spread of z and {ew:.1%} of the spread of w = f(z) "
                                  f"({ew / ez:.1f} times as much; a round cloud in {self.config().z_dim} "
                                  f"dimensions spreads evenly over all of them).")
        if check == "class_spread":
            st = self.truncation_stats(n, seed, 1.0)[1.0]
            top = math.log2(len(classes))
            answer = choices[0] if st["entropy"] >= EVEN * top else choices[1]
            h = st["histogram"]
            most = sorted(range(len(h)), key=lambda i: -h[i])
            peer = self.card(PEER).get("metrics", {}).get("class_entropy_bits")
            return Reveal(answer, f"{n} samples at psi = 1, classified by the judge: class entropy {st['entropy']:.2f} "
                                  f"of {top:.2f} bits (all {len(classes)} classes equally); most common "
                                  f"{classes[most[0]]} {h[most[0]] / n:.0%}, least {classes[most[-1]]} "
                                  f"{h[most[-1]] / n:.0%}; feature diversity {st['diversity']:.2f} (1 = real data)."
                                  + (f" The DCGAN peer's card: {peer:.2f} bits." if peer is not None else ""))
        if check == "conditional_classes":
            pair = [validate.choice("Tour class", c, classes) for c in args.get("classes") or ()]
            if len(pair) != 2 or len(choices) != 3:
                raise InputError("Tour: conditional_classes needs two classes and three choices (less, as, more often).")
            (pa, pb), (a, b) = self.class_accuracy(pair, n, seed), pair
            se = math.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)           # of the difference of two shares
            answer = choices[1] if abs(pa - pb) <= 2 * se else choices[0] if pa < pb else choices[2]
            m = self.card(CONDITIONAL).get("metrics", {})
            ref = ""
            if m.get("per_class_accuracy") and m.get("judge_real_test_per_class_accuracy"):
                acc, real = m["per_class_accuracy"], m["judge_real_test_per_class_accuracy"]
                ia, ib = classes.index(a), classes.index(b)
                ref = (f" The card, {m['n_per_class']} samples a class: {acc[ia]:.0%} and {acc[ib]:.0%}; the judge on "
                       f"real test images: {a} {real[ia]:.0%}, {b} {real[ib]:.0%}.")
            return Reveal(answer, f"{n} samples of each class from seed {seed}: the judge reads {pa:.0%} of the {a} "
                                  f"samples as {a} and {pb:.0%} of the {b} samples as {b} (a difference within twice "
                                  f"its standard error, {2 * se:.0%}, counts as about as often)." + ref)
        raise AssertionError(f"{check} is in CHECKS but has no branch")    # pragma: no cover

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
                ("gan_single", [d["seed_a"], d["seed_b"], *weights, d["psi"], d["noise"], d["noise_seed"]]),
                ("gan_sweep", [d["src"], d["noise"], d["noise_seed"]]),
                ("gan_conditional", [d["cclass"], d["cseed"]])]
