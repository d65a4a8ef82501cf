"""What the Diffusion lab does, with no UI: step, play and scrub one user's reverse chain, sample a whole
chain in one call, export it, run two chains in lockstep, show the forward process, and read the
guidance trade-off from the card. Every method validates its raw arguments (core.validate) and returns
plain data (a Chain and the step on screen, tensors in model range [-1, 1], file paths, dicts).

The bundled checkpoint (assets/diffusion/fashion_unet) is loaded once, lazily, through core.cache and
shared by all users; each user's chain is a `pipeline.Chain` the tab keeps in gr.State. Text-to-image
with Stable Diffusion is `Service.sd` (sd_service.py), which falls back to this model when it cannot run.
"""
from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch

from playground.core import cache, checkpoint, data, hub, images, paths, timing, validate
from playground.core.batch import Batcher
from playground.core.errors import InputError, Unavailable
from playground.core.settings import Settings
from playground.diffusion import pipeline
from playground.diffusion.pipeline import Chain
from playground.diffusion.schedulers import SCHEDULES, NoiseSchedule
from playground.diffusion.sd_service import SDService
from playground.diffusion.unet import UNetConfig

CHECKPOINT = paths.assets("diffusion", "fashion_unet")
CLASSES = data.FASHION_CLASSES
SAMPLERS = ("DDIM", "DDPM")
COMPARE_MODES = ("two guidance scales", "DDPM against DDIM")
MAX_SCALE = 10.0
TICKS_PER_CHAIN = 50        # Play takes max(1, steps // TICKS_PER_CHAIN) steps a tick
COMPARE_UPDATES = 25        # the lockstep comparison streams about this many updates
FORWARD_DRAWS = 8           # draws of q(x_t | x_0) shown beside x_0
GIF_FRAMES = 60             # an exported GIF keeps at most this many steps (always the last)
EXPORT_SCALE = 8            # exported pixels per model pixel
PROBE_STEPS, PROBE_SCALE = 50, 3.0


@dataclass
class Shown:
    """A chain and the step on screen (0 = the start noise x_T, k = after k steps)."""

    chain: Chain
    k: int


@dataclass
class Facts:
    """What the card says, with the model's defaults where there is no card (then `card` is empty)."""

    card: dict
    T: int                     # training steps of the noise schedule
    schedule: str              # the schedule the model was trained on
    image_size: int
    p_uncond: float | None     # probability of the null class in training
    classes: list[str] = field(default_factory=lambda: list(CLASSES))

    @property
    def sweep(self) -> dict | None:
        return self.card.get("metrics", {}).get("guidance_sweep")

    @property
    def ddim_vs_ddpm(self) -> dict | None:
        return self.card.get("metrics", {}).get("ddim_vs_ddpm")


@dataclass
class Lockstep:
    """Two chains after the same number of steps (lists hold A then B; images (C,H,W) in [-1, 1])."""

    names: list[str]
    x: list[torch.Tensor]
    x0: list[torch.Tensor]
    step: int
    steps: int
    t: int
    seed: int
    seconds: float


@dataclass
class Examples:
    """One example image per class for the forward process, and what is missing when they are synthetic."""

    images: dict[str, torch.Tensor]   # name -> (1,H,W) in [0, 1]
    source: str                       # "fashion" or "synthetic"
    missing: str = ""                 # the data set's own message (what to install), when it is not here

    @property
    def names(self) -> list[str]:
        return list(self.images)


@dataclass
class Forward:
    """x_0 and draws of q(x_t | x_0): row (1 + draws, C, H, W) in [-1, 1]."""

    row: torch.Tensor
    t: int
    schedule: str
    T: int
    abar: float
    pixel_std: float           # the std of x_t across the draws, averaged over pixels


@dataclass
class Tradeoff:
    sweep: dict | None         # the card's guidance sweep
    scale: float               # the user's s


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.sd = SDService(settings, fallback=self)     # text-to-image: Stable Diffusion (sd_service.py)

    # --- the model and its card ------------------------------------------------------------------

    def model(self):
        """(model, card, schedule), loaded once and shared; Unavailable when the checkpoint is missing."""
        def load():
            model, card = checkpoint.load(CHECKPOINT)
            model.requires_grad_(False)
            return model, card, NoiseSchedule(card["schedule"], card["num_train_timesteps"])
        try:
            return cache.once(("diffusion", str(CHECKPOINT)), load)
        except checkpoint.CheckpointError as e:
            raise Unavailable(f"The diffusion model could not be loaded ({e}). Train it with "
                              "`python -m demos.train_diffusion` (its card gives the recipe).") from None

    def facts(self) -> Facts:
        try:
            card = cache.once(("diffusion-card", str(CHECKPOINT)), lambda: checkpoint.read_card(CHECKPOINT))
        except checkpoint.CheckpointError:
            card = {}
        if not card:
            return Facts({}, NoiseSchedule().T, NoiseSchedule().name, UNetConfig().image_size, None)
        return Facts(card, card["num_train_timesteps"], card["schedule"], card["config"]["image_size"],
                     card.get("p_uncond"))

    def model_source(self) -> hub.ModelSource:
        return hub.choose(None, str(CHECKPOINT.relative_to(paths.ROOT)) + ".safetensors")

    # --- the chain, step by step -----------------------------------------------------------------

    def chain_settings(self, label, scale, sampler, steps, eta, seed) -> tuple[int, float, str, int, float, int]:
        """(class index, s, sampler, steps, eta, seed), validated and clamped."""
        label = validate.choice("Class", label, CLASSES)
        scale = validate.number("Guidance scale s", scale, 0.0, MAX_SCALE)
        sampler = validate.choice("Sampler", sampler, SAMPLERS)
        steps = validate.integer("Steps", steps, 1, self.facts().T)
        eta = validate.number("eta", eta, 0.0, 1.0)
        return CLASSES.index(label), float(scale), sampler, steps, float(eta), validate.seed(seed)

    def _fresh(self, label, scale, sampler, steps, eta, seed) -> Chain:
        model, _, _ = self.model()
        return Chain(label=label, scale=scale, sampler=sampler, steps=steps, seed=seed, eta=eta).start(model)

    @staticmethod
    def _same_run(chain, sampler, steps, eta, seed) -> bool:
        return (isinstance(chain, Chain) and chain.x_T is not None and chain.sampler == sampler
                and chain.steps == steps and chain.seed == seed and (sampler == "DDPM" or abs(chain.eta - eta) < 1e-9))

    def _advance(self, chain, settings, n_steps: int) -> Chain:
        """Take n_steps more steps; class and s apply from the next step on (change them mid-chain to see
        what happens); a new sampler, step count, eta or seed starts a new chain from its own noise."""
        label, scale, sampler, steps, eta, seed = settings
        model, _, schedule = self.model()
        if not self._same_run(chain, sampler, steps, eta, seed):
            chain = self._fresh(*settings)
        for _ in range(n_steps):
            if chain.done:
                break
            chain.label, chain.scale = label, scale
            self._stepper()(chain)                # one network pass with the other students' chains
        return chain

    def _stepper(self) -> Batcher:
        """Steps of concurrent users' chains, merged into one network pass (pipeline.step_chains)."""
        def make():
            model, _, schedule = self.model()
            return Batcher(lambda chains: pipeline.step_chains(model, schedule, chains), name="diffusion steps")
        return cache.once(("diffusion", "stepper", str(CHECKPOINT)), make)

    def _sampler(self, sampler: str, steps: int, eta: float) -> Batcher:
        """One-call samples of concurrent users with the same schedule, as one batch (pipeline.sample_rows)."""
        def make():
            model, _, schedule = self.model()
            return Batcher(lambda reqs: list(pipeline.sample_rows(
                model, schedule, [r[0] for r in reqs], [r[1] for r in reqs], [r[2] for r in reqs],
                sampler=sampler, steps=steps, eta=eta)), name=f"diffusion samples {sampler} {steps} {eta:g}")
        return cache.once(("diffusion", "sampler", str(CHECKPOINT), sampler, steps, float(eta)), make)

    def new_chain(self, label, scale, sampler, steps, eta, seed) -> Shown:
        return Shown(self._fresh(*self.chain_settings(label, scale, sampler, steps, eta, seed)), 0)

    def step(self, chain, label, scale, sampler, steps, eta, seed) -> Shown:
        """One step forward."""
        chain = self._advance(chain, self.chain_settings(label, scale, sampler, steps, eta, seed), 1)
        return Shown(chain, len(chain.frames))

    def play(self, chain, label, scale, sampler, steps, eta, seed) -> Shown:
        """Start playing; a finished chain (or one with other settings) starts again from fresh noise."""
        settings = self.chain_settings(label, scale, sampler, steps, eta, seed)
        if not self._same_run(chain, *settings[2:]) or chain.done:
            chain = self._fresh(*settings)
        return Shown(chain, len(chain.frames))

    def tick(self, chain, label, scale, sampler, steps, eta, seed) -> Shown:
        """One timer tick while playing: a few steps, so that any chain plays in about TICKS_PER_CHAIN ticks."""
        settings = self.chain_settings(label, scale, sampler, steps, eta, seed)
        chain = self._advance(chain, settings, max(1, settings[3] // TICKS_PER_CHAIN))
        return Shown(chain, len(chain.frames))

    def scrub(self, chain, k) -> Shown:
        """Show a step already taken (0 = the start noise); a later step than those taken shows the last."""
        k = validate.integer("Step shown", k, 0, self.facts().T)
        if not isinstance(chain, Chain) or chain.x_T is None:
            raise InputError("No chain yet: press New chain, Step or Play first, then scrub through its steps.")
        return Shown(chain, min(k, len(chain.frames)))

    def sample(self, label, scale, sampler, steps, eta, seed) -> torch.Tensor:
        """The final image (C,H,W) of a whole chain in one call: the same image as stepping a chain with
        these settings to its end (pipeline's one noise rule)."""
        label, scale, sampler, steps, eta, seed = self.chain_settings(label, scale, sampler, steps, eta, seed)
        return self._sampler(sampler, steps, eta)((label, scale, seed))

    # --- export ----------------------------------------------------------------------------------

    @staticmethod
    def _taken(chain) -> Chain:
        if not isinstance(chain, Chain) or not chain.frames:
            raise InputError("Nothing to export yet: take some steps first (Step or Play).")
        return chain

    def export_gif(self, chain) -> str:
        """An animated GIF of the trajectory: x_t' beside the predicted x_0 at each step."""
        chain = self._taken(chain)
        n = len(chain.frames)
        idx = sorted({round(i * (n - 1) / (GIF_FRAMES - 1)) for i in range(GIF_FRAMES)}) if n > GIF_FRAMES else range(n)
        pairs = [torch.stack([chain.x_T, torch.zeros_like(chain.x_T)])]
        pairs += [torch.stack([chain.frames[i].x_prev, chain.frames[i].x0]) for i in idx]
        frames = [images.to_pil(images.grid(p.clamp(-1, 1), nrow=2, lo=-1, hi=1), scale=EXPORT_SCALE) for p in pairs]
        return images.save_gif(frames + [frames[-1]] * 8, ms_per_frame=100)

    def export_png(self, chain) -> str:
        chain = self._taken(chain)
        path = tempfile.NamedTemporaryFile(prefix="diffusion-", suffix=".png", delete=False).name
        images.to_pil(chain.frames[-1].x_prev.clamp(-1, 1), scale=EXPORT_SCALE, lo=-1, hi=1).save(path)
        return path

    # --- two chains in lockstep ------------------------------------------------------------------

    def compare(self, mode, label, s_a, s_b, sampler, steps, seed) -> Iterator[Lockstep]:
        """Two chains from the same noise, stepped together: two scales with one sampler, or DDPM against
        DDIM at scale A. Yields both every few steps."""
        mode = validate.choice("Compare", mode, COMPARE_MODES)
        label = CLASSES.index(validate.choice("Class", label, CLASSES))
        s_a = validate.number("Scale A", s_a, 0.0, MAX_SCALE)
        s_b = validate.number("Scale B", s_b, 0.0, MAX_SCALE)
        sampler = validate.choice("Sampler", sampler, SAMPLERS)
        steps = validate.integer("Steps", steps, 1, self.facts().T)
        seed = validate.seed(seed)
        model, _, schedule = self.model()
        specs = [(sampler, s_a), (sampler, s_b)] if mode == COMPARE_MODES[0] else [("DDPM", s_a), ("DDIM", s_a)]
        chains = [Chain(label=label, scale=s, sampler=k, steps=steps, seed=seed).start(model) for k, s in specs]
        every = max(1, steps // COMPARE_UPDATES)
        t0 = time.perf_counter()
        for i in range(steps):
            for c in chains:
                c.step(model, schedule)
            if (i + 1) % every == 0 or i + 1 == steps:
                yield Lockstep([f"{k}, s = {s:g}" for k, s in specs], [c.frames[-1].x_prev for c in chains],
                               [c.frames[-1].x0 for c in chains], i + 1, steps, chains[0].frames[-1].t, seed,
                               time.perf_counter() - t0)

    # --- the forward process ---------------------------------------------------------------------

    def forward_examples(self) -> Examples:
        """The first test image of each Fashion-MNIST class; synthetic shapes when the data set is missing."""
        def load():
            try:
                ds, missing = data.load("fashion", "test", cache=self.settings.cache_dir), ""
            except data.DatasetMissing as e:
                ds, missing = data.synthetic(200), str(e)
            found = {name: (ds.labels == k).nonzero() for k, name in enumerate(ds.classes)}
            return Examples({name: ds.images[int(i[0])].float()[None] / 255.0 for name, i in found.items() if len(i)},
                            ds.name, missing)
        return cache.once(("diffusion-examples", str(self.settings.cache_dir)), load)

    def forward(self, example, upload, t, schedule, seed) -> Forward:
        """x_0 (an example or the user's image) and FORWARD_DRAWS draws of q(x_t | x_0)."""
        f = self.facts()
        t = validate.integer("t", t, 0, f.T - 1)
        schedule = validate.choice("Schedule", schedule, SCHEDULES)
        seed = validate.seed(seed)
        img = validate.image(upload, mode="L", required=False, name="Your image")
        if img is not None:
            x0 = images.from_pil(img, f.image_size)                                        # (1,H,W) in [0, 1]
        else:
            ex = self.forward_examples()
            x0 = ex.images[validate.choice("Image", example, ex.names)]
        x0 = x0 * 2 - 1
        sched = NoiseSchedule(schedule, f.T)
        noise = torch.randn((FORWARD_DRAWS, *x0.shape), generator=torch.Generator().manual_seed(seed))
        xt = sched.q_sample(x0.expand(FORWARD_DRAWS, -1, -1, -1), torch.full((FORWARD_DRAWS,), t), noise)
        return Forward(torch.cat([x0[None], xt]), t, schedule, f.T, float(sched.abar(t)), float(xt.std(0).mean()))

    # --- the guidance trade-off ------------------------------------------------------------------

    def tradeoff(self, scale) -> Tradeoff:
        return Tradeoff(self.facts().sweep, validate.number("Guidance scale s", scale, 0.0, MAX_SCALE))

    # --- Home's speed column, the load script ----------------------------------------------------

    def speed_probe(self) -> dict:
        """Seconds for one sample: DDIM with guidance (cond + uncond as one batch of 2)."""
        model, _, schedule = self.model()
        y = torch.tensor([0])
        seconds = timing.median_seconds(lambda: pipeline.sample(model, schedule, y, PROBE_SCALE, sampler="DDIM",
                                                                steps=PROBE_STEPS, seed=0))
        return {"family": "Diffusion", "what": f"DDIM {PROBE_STEPS} steps, guided, 2 U-Net passes per step",
                "seconds": seconds}

    def load_calls(self) -> list:
        example = self.forward_examples().names[-1]
        return [("diffusion_sample", ["Sneaker", 3.0, "DDIM", 50, 0.0, 0]),
                ("diffusion_forward", [example, None, 300, "cosine", 0])]
