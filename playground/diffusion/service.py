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
SHARED_SAMPLES = 256        # whole-chain samples kept for students who ask for the same one (3 kB each)
GIF_MS, GIF_HOLD = 100, 8   # an exported GIF: ms per frame, and extra frames that hold the last one
PROBE_STEPS, PROBE_SCALE = 50, 3.0


# The tour's answers (tour_check) are named by these thresholds; images compared in [0, 1].
MAX_TOUR_SAMPLES = 64
MOSTLY = 0.5                # "most samples are the class asked for": the judge agrees for at least this share
SAME_PIXELS = 1e-6          # "the same image, pixel for pixel": the largest difference is below this
SLIGHT = 0.05               # "slightly different": a mean difference below this
NOISE_LIKE = 0.5            # x0_hat "looks like noise": its edge strength is at least this share of x_T's
CLOSE = 0.02                # x0_hat "already the final image": a mean difference below this
LATE = 0.9                  # the "late" step the x0_hat check also measures, as a share of the steps
SIGNAL_MOST, SIGNAL_TRACE = 0.5, 0.05   # sqrt(abar_t) from which "most of x_0" / "a faint trace" is left
SAME_SPREAD = 0.05          # "about as varied": the spreads differ by less than this share
CLOSER = 1.25               # a sampler "changes the picture less" when its change is this many times smaller


def to01(x: torch.Tensor) -> torch.Tensor:
    """Model-range images [-1, 1] -> [0, 1] (what the judge and the comparisons read)."""
    return (x.float().clamp(-1, 1) + 1) / 2


def _difference(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    """(largest, mean) absolute difference of two model-range images, in [0, 1] pixel units."""
    d = (to01(a) - to01(b)).abs()
    return float(d.max()), float(d.mean())


def _edges(x: torch.Tensor) -> float:
    """Edge strength: the mean absolute difference of neighbouring pixels, in [0, 1] units."""
    t = to01(x)
    return float((t[..., 1:, :] - t[..., :-1, :]).abs().mean() + (t[..., 1:] - t[..., :-1]).abs().mean())


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
    gif: str | None = None     # at the last step: an animated GIF of both chains (A x_t', A x0_hat, B x_t', B x0_hat)


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
            model.to(memory_format=torch.channels_last)   # oneDNN convolutions: a 50-step chain 323 ms, not 409
            model.serve()                                 # forward as a frozen TorchScript graph (unet.py)
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
        """One-call samples of concurrent users with the same schedule, as one batch (pipeline.sample_rows).
        A sample is a function of (class, scale, seed): students who ask for the same one (a lesson link)
        share one chain, and the last SHARED_SAMPLES are kept."""
        def make():
            model, _, schedule = self.model()
            return Batcher(lambda reqs: list(pipeline.sample_rows(
                model, schedule, [r[0] for r in reqs], [r[1] for r in reqs], [r[2] for r in reqs],
                sampler=sampler, steps=steps, eta=eta)), name=f"diffusion samples {sampler} {steps} {eta:g}",
                share=SHARED_SAMPLES)
        return cache.once(("diffusion", "sampler", str(CHECKPOINT), sampler, steps, float(eta)), make)

    def new_chain(self, label, scale, sampler, steps, eta, seed) -> Shown:
        return Shown(self._fresh(*self.chain_settings(label, scale, sampler, steps, eta, seed)), 0)

    def step(self, chain, label, scale, sampler, steps, eta, seed) -> Shown:
        """One step forward; after a finished chain (as the tab shows on opening), the first step of a new one."""
        settings = self.chain_settings(label, scale, sampler, steps, eta, seed)
        if isinstance(chain, Chain) and chain.done:
            chain = None
        chain = self._advance(chain, settings, 1)
        return Shown(chain, len(chain.frames))

    def open_chain(self, label, scale, sampler, steps, eta, seed, k) -> Shown:
        """What a lesson link (and the tab's first opening) shows: a fresh chain with these settings taken
        k steps (at most its steps), shown at its last step."""
        settings = self.chain_settings(label, scale, sampler, steps, eta, seed)
        k = validate.integer("Step shown", k, 0, self.facts().T)
        chain = self._advance(None, settings, min(k, settings[3]))
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
        rows = [[chain.x_T, torch.zeros_like(chain.x_T)]] + [[chain.frames[i].x_prev, chain.frames[i].x0] for i in idx]
        return self._gif(rows)

    def export_png(self, chain) -> str:
        chain = self._taken(chain)
        path = tempfile.NamedTemporaryFile(prefix="diffusion-", suffix=".png", delete=False).name
        images.to_pil(chain.frames[-1].x_prev.clamp(-1, 1), scale=EXPORT_SCALE, lo=-1, hi=1).save(path)
        return path

    # --- two chains in lockstep ------------------------------------------------------------------

    def compare_final(self, mode, label, s_a, s_b, sampler, steps, seed) -> Lockstep:
        """The lockstep comparison run to its end (what a lesson link on this view shows)."""
        last = None
        for last in self.compare(mode, label, s_a, s_b, sampler, steps, seed):
            pass
        return last

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
        blank = torch.zeros_like(chains[0].x_T)
        frames = [[chains[0].x_T, blank, chains[1].x_T, blank]]          # the GIF: x_T, then every update
        t0 = time.perf_counter()
        for i in range(steps):
            for c in chains:
                c.step(model, schedule)
            if (i + 1) % every == 0 or i + 1 == steps:
                frames.append([x for c in chains for x in (c.frames[-1].x_prev, c.frames[-1].x0)])
                yield Lockstep([f"{k}, s = {s:g}" for k, s in specs], [c.frames[-1].x_prev for c in chains],
                               [c.frames[-1].x0 for c in chains], i + 1, steps, chains[0].frames[-1].t, seed,
                               time.perf_counter() - t0, self._gif(frames) if i + 1 == steps else None)

    @staticmethod
    def _gif(frames: list[list[torch.Tensor]]) -> str:
        """Rows of model-range images (C,H,W) side by side, one GIF frame each; the last held a while."""
        pics = [images.to_pil(images.grid(torch.stack(row).clamp(-1, 1), nrow=len(row), lo=-1, hi=1),
                              scale=EXPORT_SCALE) for row in frames]
        return images.save_gif(pics + [pics[-1]] * GIF_HOLD, ms_per_frame=GIF_MS)

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

    # --- the guided tour (assets/tours/diffusion.json): each answer measured on the live model -----

    def _judge(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The domain classifier's class and probability for model-range images (N,C,H,W)."""
        from playground.judge import metrics

        with torch.inference_mode():
            p = metrics.classifier("fashion")(to01(x)).softmax(-1)                      # (N, classes)
        conf, cls = p.max(-1)
        return cls, conf

    def _samples(self, y, s: float, sampler: str = "DDIM", steps: int = 50, eta: float = 0.0, seed: int = 0,
                 x_T: torch.Tensor | None = None) -> torch.Tensor:
        model, _, schedule = self.model()
        return pipeline.sample(model, schedule, torch.as_tensor(y), s, sampler=sampler, steps=steps, eta=eta,
                               seed=seed, x_T=x_T)

    def tour_check(self, check: str, args: dict, values: dict):
        """A tour step's answer (core.lesson.Reveal), computed on the live model from the lab's control
        values at reveal time; `args` hold the step's choices and sample sizes."""
        from playground.core.lesson import Reveal

        choices, f = list(args.get("choices", [])), self.facts()
        n = validate.integer("Samples", args.get("n", 10), 2, MAX_TOUR_SAMPLES)
        if check == "class_accuracy":                # n samples, classes balanced, at two scales: does y matter?
            steps = validate.integer("Steps", args.get("steps", 25), 1, f.T)
            scales = [validate.number("Guidance scale s", s, 0.0, MAX_SCALE) for s in args.get("scales", (0.0, 3.0))]
            y = torch.arange(n) % len(f.classes)
            acc = [float((self._judge(self._samples(y, s, steps=steps))[0] == y).double().mean()) for s in scales]
            card = f.sweep or {}
            at = {s: a for s, a in zip(card.get("scales", []), card.get("accuracy", []))}
            ref = "; the card, on " + str(card.get("n_per_scale")) + " per scale: " + ", ".join(
                f"{at[s]:.0%} at s = {s:g}" for s in scales if s in at) if any(s in at for s in scales) else ""
            return Reveal(choices[0] if acc[0] >= MOSTLY else choices[1],
                          f"{n} samples (DDIM, {steps} steps, every class in turn), judged by the Fashion-MNIST "
                          "classifier: " + ", ".join(f"**{a:.0%}** are the class asked for at s = {s:g}"
                                                      for s, a in zip(scales, acc))
                          + f". Chance is {1 / len(f.classes):.0%}{ref}.")
        label, scale, sampler, steps, eta, seed = self.chain_settings(
            values.get("class"), values.get("s"), values.get("sampler"), values.get("steps"), values.get("eta"),
            values.get("seed"))
        model, _, schedule = self.model()
        if check == "same_start":                    # the same x_T twice: with the seed's step noise, and with other
            y, x_T = [label], pipeline.start_noise(1, model, seed)
            other = seed + 1 if seed < validate.MAX_SEED else seed - 1

            def runs(kind, e):
                a = self._samples(y, scale, kind, steps, e, seed)
                return [a, self._samples(y, scale, kind, steps, e, seed), self._samples(y, scale, kind, steps, e, other, x_T)]
            mine = runs(sampler, eta)
            twice, z = _difference(mine[0], mine[1]), _difference(mine[0], mine[2])
            answer = choices[0] if z[0] < SAME_PIXELS else choices[1] if z[1] < SLIGHT else choices[2]
            name = f"{sampler}" + (f" with eta = {eta:g}" if sampler == "DDIM" else "")
            kind, e = ("DDPM", 0.0) if sampler == "DDIM" and eta == 0 else ("DDIM", 0.0)
            c = runs(kind, e)
            cz = _difference(c[0], c[2])
            return Reveal(answer, f"{name}, {steps} steps, class *{f.classes[label]}*, s = {scale:g}. The same seed "
                                  f"twice: largest pixel difference {twice[0]:.3g}. The same start noise $x_T$ (seed "
                                  f"{seed}) with the step noise $z$ of seed {other}: largest difference **{z[0]:.3g}**, "
                                  f"mean {z[1]:.3f} (pixels in [0, 1]). For contrast, {kind}"
                                  f"{' with eta = 0' if kind == 'DDIM' else ''} from the same $x_T$ and the other $z$: "
                                  f"largest {cz[0]:.3g}, mean {cz[1]:.3f}.")
        if check == "x0_early":                      # the chain to its end; x0_hat at step k against the final image
            k = min(max(1, validate.integer("Step shown", values.get("k", 1), 0, f.T)), steps)
            late = min(steps, max(k + 1, round(steps * LATE)))
            chain = self._advance(None, (label, scale, sampler, steps, eta, seed), steps)
            final = chain.frames[-1].x_prev
            fr, fl = chain.frames[k - 1], chain.frames[late - 1]
            cls, conf = self._judge(torch.stack([fr.x0, fl.x0]))
            e_x0, e_xt, e_noise, e_fin = _edges(fr.x0), _edges(fr.x_t), _edges(chain.x_T), _edges(final)
            d, dl = _difference(fr.x0, final)[1], _difference(fl.x0, final)[1]
            answer = choices[0] if e_x0 >= NOISE_LIKE * e_noise else choices[2] if d < CLOSE else choices[1]
            return Reveal(answer, f"Step {k} of {steps} ($t = {fr.t}$). Edge strength: the start noise $x_T$ "
                                  f"{e_noise:.3f}, $x_t$ {e_xt:.3f}, $\\hat x_0$ **{e_x0:.3f}**, the final image "
                                  f"{e_fin:.3f}. The judge reads $\\hat x_0$ as "
                                  f"*{f.classes[int(cls[0])]}* ({float(conf[0]):.0%}; asked: *{f.classes[label]}*). "
                                  f"Mean distance of $\\hat x_0$ to the final image: **{d:.3f}** at step {k}, {dl:.3f} "
                                  f"at step {late} ($t = {fl.t}$), where the judge reads *{f.classes[int(cls[1])]}* "
                                  f"({float(conf[1]):.0%}). Pixels in [0, 1]; edge strength: the mean difference of "
                                  "neighbouring pixels.")
        if check == "signal_left":                   # sqrt(abar_t) of the schedule, and fitted on draws of q(x_t | x_0)
            ex = self.forward_examples()
            fw = self.forward(values.get("image", ex.names[-1]), None, values.get("t"), values.get("schedule"),
                              values.get("noise_seed", 0))
            x0, xt = fw.row[0], fw.row[1:]
            slope = float((xt * x0).sum() / (x0 * x0).sum() / len(xt))                 # least squares x_t ~ a x_0
            left = fw.abar ** 0.5
            answer = choices[0] if left >= SIGNAL_MOST else choices[1] if left >= SIGNAL_TRACE else choices[2]
            return Reveal(answer, f"$t = {fw.t}$ of $T = {fw.T}$, {fw.schedule} schedule: "
                                  f"$\\sqrt{{\\bar\\alpha_t}} = {left:.4f}$ of $x_0$ is left, under noise of std "
                                  f"$\\sqrt{{1-\\bar\\alpha_t}} = {(1 - fw.abar) ** 0.5:.4f}$. Fitted on the "
                                  f"{len(xt)} draws shown ($x_t \\approx a\\,x_0$ by least squares): $a = {slope:.3f}$.")
        if check == "class_diversity":               # n samples of one class at two scales: their spread in features
            from playground.judge import metrics

            steps_c = validate.integer("Steps", args.get("steps", 25), 1, f.T)
            scales = [validate.number("Guidance scale s", s, 0.0, MAX_SCALE) for s in args.get("scales", (1.0, 5.0))]
            y = torch.full((n,), label)
            xs = [self._samples(y, s, steps=steps_c) for s in scales]
            div = [metrics.diversity(metrics.features(to01(x))) for x in xs]
            acc = [float((self._judge(x)[0] == y).double().mean()) for x in xs]
            ratio = div[1] / div[0]
            answer = choices[0] if ratio > 1 + SAME_SPREAD else choices[2] if ratio < 1 - SAME_SPREAD else choices[1]
            return Reveal(answer, f"{n} samples of *{f.classes[label]}* (DDIM, {steps_c} steps, the same start noise "
                                  "at each s). Spread (mean distance between two samples in the judge's features): "
                                  + ", ".join(f"{d:.2f} at s = {s:g}" for s, d in zip(scales, div))
                                  + f", **{ratio:.0%}** of the first; class accuracy "
                                  + ", ".join(f"{a:.0%} at s = {s:g}" for s, a in zip(scales, acc)) + ".")
        if check == "fewer_steps":                   # n samples at `many` and at the lockstep's steps, per sampler
            few = validate.integer("Steps", values.get("cmp_steps"), 1, f.T)
            many = validate.integer("Steps", args.get("many", 50), 1, f.T)
            s_a = validate.number("Scale A", values.get("sa"), 0.0, MAX_SCALE)
            y = torch.arange(n) % len(f.classes)
            change = {k: _difference(self._samples(y, s_a, k, many), self._samples(y, s_a, k, few))[1] for k in SAMPLERS}
            ratio = change["DDPM"] / max(change["DDIM"], 1e-12)
            answer = choices[0] if ratio >= CLOSER else choices[1] if ratio <= 1 / CLOSER else choices[2]
            cmp = f.ddim_vs_ddpm
            ref = (f" The card, on {cmp['n']} samples at s = {cmp['scale']:g}: FD {cmp['fd_ddim']:.2f} for DDIM in "
                   f"{cmp['ddim_steps']} steps ({cmp['seconds_ddim']:.0f} s) against {cmp['fd_ddpm']:.2f} for DDPM in "
                   f"all {cmp['ddpm_steps']} ({cmp['seconds_ddpm']:.0f} s).") if cmp else ""
            return Reveal(answer, f"{n} samples (every class in turn, s = {s_a:g}), each from the same $x_T$ in {many} "
                                  f"steps and in {few}: the mean pixel change is **{change['DDIM']:.3f}** with DDIM "
                                  f"and **{change['DDPM']:.3f}** with DDPM (pixels in [0, 1]).{ref}")
        raise InputError(f"Tour: this lab has no check called {str(check)[:40]!r}.")

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
