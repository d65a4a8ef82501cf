"""Text-to-image in the Diffusion lab, with no UI: a Stable Diffusion chain stepped, played, scrubbed and
compared per user, with the same actions as the bundled model (service.py), and a live guidance scale.
Every method validates its raw arguments (core.validate) and returns plain data.

Which model (decided when the app starts, shown in the tab; nothing a user types names a file or model):
  1. PLAYGROUND_SD_MODEL, when it is a model folder (diffusers' layout, as save_pretrained writes it;
     `python -m playground.diffusion.sd_tiny DIR` writes a tiny untrained one): loaded offline;
  2. else the hub id in PLAYGROUND_SD_MODEL, or HUB_ID, when the hub is reachable (core.hub);
  3. else none: the tab says why and how to enable it, and every action runs the bundled
     class-conditional model instead, saying so (the class is read from the prompt when it names one).
Previews: the folder's taesd/ subfolder, else PLAYGROUND_TAESD (a folder or hub id), else TAESD_HUB_ID
when online, else the full VAE.

Where it runs: the configured device (cuda on a GPU machine, in half precision). On a ZeroGPU Space the
weights stay on the CPU of the app's process and every chunk of steps runs inside one
`device.gpu(duration=GPU_CALL_SECONDS)` call, which gets the chain's state (the latents, the text
embeddings, the scheduler with its memory, the generator's state) as CPU tensors and gives it back so;
previews of other steps are decoded on the CPU. When no GPU can be had (`device.gpu_failure`: quota spent,
none free) the action runs the bundled model instead, with a notice. On a CPU-only machine the model
runs on the CPU at a smaller size by default, with progress.
"""
from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from playground.core import cache, device, hub, validate
from playground.core.errors import InputError
from playground.core.settings import Settings
from playground.diffusion import sd
from playground.diffusion.pipeline import Chain
from playground.diffusion.schedulers import guide

HUB_ID = "segmind/tiny-sd"               # distilled from SD 1.5 and keeps classifier-free guidance
TAESD_HUB_ID = "madebyollin/taesd"
ENV_MODEL, ENV_TAESD = "PLAYGROUND_SD_MODEL", "PLAYGROUND_TAESD"
SAMPLERS = sd.SAMPLERS
SIZES = {"full": 1.0, "3/4": 0.75, "1/2": 0.5}     # of the model's own image side
EPS_VIEWS = ("latent channels", "decoded (TAESD)")
COMPARE_MODES = ("two guidance scales", "two prompts")
MAX_PROMPT_CHARS = 500     # the text encoder reads only its first max_tokens tokens anyway
MAX_SCALE = 20.0
MAX_STEPS = 100
MAX_SHOWN = 2 * MAX_STEPS  # the step-shown index a request may name (a multistep sampler may add steps)
TICKS_PER_CHAIN = 50       # Play: about this many ticks per chain (as the bundled model's)
ZEROGPU_TICKS = 5          # on ZeroGPU fewer, larger ticks: every tick is one GPU call
COMPARE_UPDATES = 25
DEFAULT_CLASS = "Sneaker"  # the bundled model's class when the prompt names none

# ZeroGPU call sizing. GPU_SECONDS_PER_STEP is one guided step (U-Net on a batch of 2, scheduler) at the
# model's own size in half precision. NOT YET MEASURED on real weights (no GPU machine was at hand): an
# estimate for a distilled SD 1.5 U-Net on a ZeroGPU slice. Measure and record it here with
#     python -m demos.bench_sd --ref segmind/tiny-sd --device cuda
# Meanwhile every GPU call measures its own steps, and a slower measurement shrinks the next chunks (so a
# call never outgrows its duration). GPU_CALL_OVERHEAD covers moving the weights onto a fresh worker's GPU,
# text encoding and decoding.
GPU_SECONDS_PER_STEP = 0.1
GPU_CALL_OVERHEAD = 8.0
GPU_CALL_SECONDS = 20      # the duration asked of spaces.GPU for each call


class Fallback(Exception):
    """Stable Diffusion cannot run for this call; the message says why (shown with the bundled model)."""


@dataclass
class Info:
    """What the tab says before anything runs: which model, where, or why there is none."""

    source: hub.ModelSource
    available: bool
    where: str                # "cuda", "cpu", "ZeroGPU"
    default_size: str
    chunk_steps: int | None   # steps per GPU call on ZeroGPU


@dataclass
class Args:
    prompt: str
    negative: str
    scale: float
    sampler: str
    steps: int
    seed: int
    size: str
    eps_view: str


@dataclass
class SDChain:
    """One user's Stable Diffusion chain (kept in gr.State; every tensor on the CPU)."""

    ref: str
    sampler: str
    sampler_name: str
    steps: int
    seed: int
    size: str
    height: int
    width: int
    run: sd.Run
    x_T: torch.Tensor                                  # (4, h, w)
    frames: list[sd.Frame] = field(default_factory=list)
    final: torch.Tensor | None = None                  # uint8 (3, H, W), the full VAE's image at the end
    start_previews: dict = field(default_factory=dict)
    seconds_per_step: float | None = None              # measured on the last call
    where: str = ""
    prediction_type: str = "epsilon"

    @property
    def total(self) -> int:
        return self.run.total

    @property
    def done(self) -> bool:
        return self.run.done


@dataclass
class SDShown:
    """A chain (Stable Diffusion, or the bundled model's when it stood in) and the step on screen.
    `pictures` maps x_t, x0, eps_u, eps_c, eps, final to uint8 images (3, H, W) or latents (4, h, w)."""

    chain: SDChain | Chain | None      # None: no chain yet
    k: int
    scale: float | None = None       # the s the pictures show when it is not the step's own
    pictures: dict = field(default_factory=dict)
    notice: str = ""


@dataclass
class SDLockstep:
    """Two chains from the same noise after the same steps; pictures: [A x_t, A x0, B x_t, B x0] (uint8
    images, or model-range tensors of the bundled model when it stood in)."""

    names: list[str]
    pictures: list
    step: int
    total: int
    seed: int
    seconds: float
    notice: str = ""


def _bundled():
    """service.py, the bundled model's service (it imports this module: imported when needed, not on top)."""
    from playground.diffusion import service

    return service


def _on_gpu(spec: tuple, runs: list, n: int, scales: list, previews: bool):
    """One ZeroGPU call (spaces runs it in a forked worker; arguments and results travel pickled): the
    model of `spec` onto the GPU in half precision, n steps of each run, everything back on the CPU."""
    dev = device.resolve("cuda")
    m = cache.once(("sd", *spec[:2], "cpu"), lambda: sd.load_sd(spec[0], taesd=spec[1], cache_dir=spec[2],
                                                                 offline=spec[3]))
    m.to(dev, torch.float16 if dev.type == "cuda" else None)
    frames, finals, sps = sd.advance(m, runs, n, scales, previews)
    return runs, frames, finals, sps


class SDService:
    def __init__(self, settings: Settings, fallback):
        self.settings, self.fallback = settings, fallback      # fallback: the bundled model's Service
        self.zero = device.zerogpu()
        self.device = torch.device("cpu") if self.zero else device.get()
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.source, self.taesd = self._choose()
        self._gpu = device.gpu(duration=GPU_CALL_SECONDS)(_on_gpu) if self.zero else None
        self.measured = 0.0        # the slowest seconds per step (at the model's own size) a GPU call reported

    # --- which model -----------------------------------------------------------------------------

    def _choose(self) -> tuple[hub.ModelSource, str | None]:
        ref = os.environ.get(ENV_MODEL, "").strip()
        bundled = self.fallback.model_source().ref
        if ref and not Path(ref).is_dir() and not sd.HUB_ID.match(ref):
            return hub.ModelSource("bundled", bundled, f"{ENV_MODEL} is set but is neither a model folder nor a "
                                   "hub id (owner/name)"), None
        local = ref if ref and Path(ref).is_dir() else None
        source = hub.choose(ref or HUB_ID, bundled, local=local)
        taesd = os.environ.get(ENV_TAESD, "").strip() or (TAESD_HUB_ID if hub.online() else None)
        return source, taesd

    def info(self) -> Info:
        ok = self.source.kind != "bundled"
        where = "ZeroGPU" if self.zero else self.device.type
        return Info(self.source, ok, where, "full" if self.zero or self.device.type == "cuda" else "1/2",
                    self.chunk_steps(1.0) if self.zero else None)

    def _spec(self) -> tuple:
        return (self.source.ref, self.taesd, str(self.settings.cache_dir), not hub.online())

    def model(self) -> sd.SD:
        """The model, loaded once (on the CPU on ZeroGPU, else on the device); Fallback when there is none."""
        if self.source.kind == "bundled":
            raise Fallback(f"Stable Diffusion is not available here: {self.source.reason}.")
        ref, taesd, cache_dir, offline = self._spec()
        try:
            return cache.once(("sd", ref, taesd, str(self.device)), lambda: sd.load_sd(
                ref, taesd=taesd, dtype=self.dtype, cache_dir=cache_dir, offline=offline).to(self.device))
        except sd.LoadError as e:
            raise Fallback(f"Stable Diffusion could not be loaded: {e}.") from None

    def chunk_steps(self, area: float) -> int:
        """Steps per ZeroGPU call at `area` (image area over the model's own): what fits the asked duration
        at the recorded seconds per step, or at the slowest measured so far when that is slower."""
        per_step = max(GPU_SECONDS_PER_STEP, self.measured) * area
        return max(1, int((GPU_CALL_SECONDS - GPU_CALL_OVERHEAD) / per_step))

    # --- arguments -------------------------------------------------------------------------------

    def args(self, prompt, negative, scale, sampler, steps, seed, size, eps_view) -> Args:
        return Args(validate.text("Prompt", prompt, max_chars=MAX_PROMPT_CHARS),
                    validate.text("Negative prompt", negative, max_chars=MAX_PROMPT_CHARS, allow_empty=True),
                    float(validate.number("Guidance scale s", scale, 0.0, MAX_SCALE)),
                    validate.choice("Sampler", sampler, SAMPLERS), validate.integer("Steps", steps, 1, MAX_STEPS),
                    validate.seed(seed), validate.choice("Size", size, list(SIZES)),
                    validate.choice("Noise shown as", eps_view, EPS_VIEWS))

    def side(self, m: sd.SD, size: str) -> int:
        q = m.size_multiple
        return max(q, int(m.native_size * SIZES[size]) // q * q)

    # --- running chunks of steps -----------------------------------------------------------------

    def _run(self, runs: list, n: int, scales: list, previews: bool = True):
        """n steps of each run: in one GPU call on ZeroGPU, else here. (frames, finals, seconds per step)."""
        if not self.zero:
            return sd.advance(self.model(), runs, n, scales, previews)
        self.model()                          # loaded in this process first: a GPU worker is a fork of it
        try:
            back, frames, finals, sps = self._gpu(self._spec(), runs, n, scales, previews)
        except Exception as e:  # noqa: BLE001 - only a GPU failure falls back; anything else is a bug
            if device.gpu_failure(e):
                raise Fallback(f"No GPU for this call ({str(e).splitlines()[0][:200]}).") from None
            raise
        for run, new in zip(runs, back):      # the worker's copies (pickled) replace ours
            vars(run).update(vars(new))
        m = self.model()
        area = runs[0].latents.shape[-1] * runs[0].latents.shape[-2] / (m.native_size // m.vae_scale_factor) ** 2
        self.measured = max(self.measured, sps / area)
        return frames, finals, sps

    def _fresh(self, a: Args) -> SDChain:
        m = self.model()
        side = self.side(m, a.size)
        run = sd.start(m, a.prompt, a.negative, a.sampler, a.steps, a.seed, side, side)
        return SDChain(m.ref, a.sampler, sd.sampler_name(m, a.sampler), a.steps, a.seed, a.size, side, side, run,
                       run.latents[0].clone(), where="ZeroGPU" if self.zero else m.device.type,
                       prediction_type=m.scheduler.config.prediction_type)

    def _same_run(self, chain, a: Args) -> bool:
        return (isinstance(chain, SDChain) and chain.ref == self.source.ref and
                (chain.sampler, chain.steps, chain.seed, chain.size) == (a.sampler, a.steps, a.seed, a.size))

    def _advance(self, chain, a: Args, n: int) -> SDChain:
        """n more steps; prompt, negative prompt and s apply from the next step on; another sampler, step
        count, seed or size starts a new chain from its own noise."""
        if not self._same_run(chain, a):
            chain = self._fresh(a)
        if chain.done:
            return chain
        chain.run.prompt, chain.run.negative = a.prompt, a.negative
        frames, finals, sps = self._run([chain.run], n, [a.scale])
        chain.frames += frames[0]
        chain.final = finals[0] if finals[0] is not None else chain.final
        chain.seconds_per_step = sps
        return chain

    def _ticks(self, total: int, size: str) -> int:
        if self.zero:
            return min(self.chunk_steps(SIZES[size] ** 2), max(1, math.ceil(total / ZEROGPU_TICKS)))
        return max(1, total // TICKS_PER_CHAIN)

    # --- what a step shows -----------------------------------------------------------------------

    def _show(self, chain: SDChain, k: int, scale: float | None, eps_view: str, notice: str = "") -> SDShown:
        """The pictures of step k (0 = x_T) at s = `scale` (None: the step's own s), decoded where missing."""
        m = self.model()
        if k == 0:
            if "x_t" not in chain.start_previews:
                chain.start_previews["x_t"] = sd.decode(m, chain.x_T)[0]
            return SDShown(chain, 0, None, {"x_t": chain.start_previews["x_t"]}, notice)
        f = chain.frames[k - 1]
        s = f.scale if scale is None else scale
        own = s == f.scale
        pt = chain.prediction_type
        outs = {"eps_u": f.out_u, "eps_c": f.out_c, "eps": guide(f.out_u, f.out_c, s)}
        lat = {name: sd.eps_x0(o, f.x_in, f.abar, pt)[0] for name, o in outs.items()}      # noise estimates
        lat["x0"] = sd.eps_x0(outs["eps"], f.x_in, f.abar, pt)[1]
        lat["x_t"] = f.x_in
        wanted = ["x_t", "x0"] + (["eps_u", "eps_c", "eps"] if eps_view == EPS_VIEWS[1] else [])
        memo = f.previews if own else {"x_t": f.previews.get("x_t")}
        missing = [w for w in wanted if memo.get(w) is None]
        if missing:
            for w, img in zip(missing, sd.decode(m, torch.stack([lat[w] for w in missing]))):
                memo[w] = img
        pics = {w: memo[w] if w in wanted else lat[w] for w in ("x_t", "x0", "eps_u", "eps_c", "eps")}
        pics["final"] = chain.final if k == len(chain.frames) and chain.done else None
        return SDShown(chain, k, None if own else s, pics, notice)

    def _notice(self, chain: SDChain) -> str:
        m = self.model()
        n = sd.token_count(m, chain.run.prompt)
        if n <= m.max_tokens:
            return ""
        return (f"Your prompt is {n} tokens long; the text encoder reads only the first {m.max_tokens} "
                "(start and end tokens included), so the rest had no effect.")

    # --- the bundled model, when Stable Diffusion cannot run -------------------------------------

    def class_for(self, prompt: str) -> str:
        """The bundled class that the prompt names (longest name first, so 'T-shirt' beats 'shirt'), else
        DEFAULT_CLASS."""
        text = prompt.lower()
        names = self.fallback.facts().classes
        parts = sorted(((p.strip(), name) for name in names for p in name.lower().split("/")), key=lambda x: -len(x[0]))
        for part, name in parts:
            if re.search(rf"\b{re.escape(part)}", text) or re.search(rf"\b{re.escape(part.split()[-1])}", text):
                return name
        return DEFAULT_CLASS

    def _bundled_args(self, a: Args) -> tuple:
        """(class, s, sampler, steps, eta, seed) for the bundled model: s and steps clamped into its ranges."""
        b = _bundled()
        return (self.class_for(a.prompt), min(a.scale, b.MAX_SCALE), a.sampler if a.sampler in b.SAMPLERS else "DDIM",
                min(a.steps, self.fallback.facts().T), 0.0, a.seed)

    def _instead(self, why: str, prompt: str) -> str:
        name = self.class_for(prompt)
        named = "read from your prompt" if name != DEFAULT_CLASS or DEFAULT_CLASS.lower() in prompt.lower() else \
            "your prompt names none of its classes"
        return f"{why} Showing the bundled class-conditional model instead, class *{name}* ({named})."

    def _bundled(self, chain, a: Args, n: int, why: str) -> SDShown:
        """n steps of the bundled model's chain (a new one unless the state already holds one)."""
        args = self._bundled_args(a)
        shown = self.fallback.new_chain(*args) if n == 0 else None
        for _ in range(n):
            shown = self.fallback.step(chain if isinstance(chain, Chain) else None, *args)
            chain = shown.chain
        return SDShown(shown.chain, shown.k, notice=self._instead(why, a.prompt))

    # --- the user's actions ----------------------------------------------------------------------

    def _go(self, chain, a: Args, n: int, restart: bool = False, n_bundled: int | None = None, progress=None):
        """n steps of the user's chain (a new one for other settings; with `restart`, also when it is finished),
        showing the last; the bundled model's chain (n_bundled steps) when Stable Diffusion cannot run."""
        try:
            if progress:
                progress(0.0, f"Stable Diffusion on {'ZeroGPU' if self.zero else self.device.type} (the first "
                              "call loads it)")
            if restart and (not self._same_run(chain, a) or chain.done):
                chain = self._fresh(a)
            chain = self._advance(chain, a, n) if n else chain
            return self._show(chain, len(chain.frames), None, a.eps_view, self._notice(chain))
        except Fallback as e:
            return self._bundled(chain if n else None, a, n if n_bundled is None else n_bundled, str(e))

    def new_chain(self, prompt, negative, scale, sampler, steps, seed, size, eps_view, progress=None) -> SDShown:
        return self._go(None, self.args(prompt, negative, scale, sampler, steps, seed, size, eps_view), 0, True,
                        progress=progress)

    def open(self, prompt, negative, scale, sampler, steps, seed, size, eps_view, k, progress=None) -> SDShown:
        """What a lesson link shows: a new chain with these settings taken k steps (at most its steps)."""
        a = self.args(prompt, negative, scale, sampler, steps, seed, size, eps_view)
        k = min(validate.integer("Step shown", k, 0, MAX_SHOWN), a.steps)
        return self._go(None, a, k, True, progress=progress)

    def step(self, chain, prompt, negative, scale, sampler, steps, seed, size, eps_view, progress=None) -> SDShown:
        """One step forward (on a CPU this may take a while: progress says so)."""
        return self._go(chain, self.args(prompt, negative, scale, sampler, steps, seed, size, eps_view), 1,
                        progress=progress)

    def play(self, chain, prompt, negative, scale, sampler, steps, seed, size, eps_view) -> SDShown:
        """Start playing; a finished chain (or one with other settings) starts again from fresh noise."""
        return self._go(chain, self.args(prompt, negative, scale, sampler, steps, seed, size, eps_view), 0, True)

    def tick(self, chain, prompt, negative, scale, sampler, steps, seed, size, eps_view) -> SDShown:
        """One timer tick while playing: a few steps (one GPU call on ZeroGPU)."""
        a = self.args(prompt, negative, scale, sampler, steps, seed, size, eps_view)
        total = chain.total if self._same_run(chain, a) else a.steps
        bundled = max(1, min(a.steps, self.fallback.facts().T) // _bundled().TICKS_PER_CHAIN)
        return self._go(chain, a, self._ticks(total, a.size), n_bundled=bundled)

    def scrub(self, chain, k, eps_view) -> SDShown:
        """A step already taken, as it was run (0 = the start noise)."""
        k = validate.integer("Step shown", k, 0, MAX_SHOWN)
        eps_view = validate.choice("Noise shown as", eps_view, EPS_VIEWS)
        if isinstance(chain, Chain):
            return SDShown(self.fallback.scrub(chain, k).chain, min(k, len(chain.frames)))
        if not isinstance(chain, SDChain):
            raise InputError("No chain yet: press New chain, Step or Play first, then scrub through its steps.")
        return self._show(chain, min(k, len(chain.frames)), None, eps_view)

    def guidance(self, chain, k, scale, eps_view) -> SDShown:
        """The live guidance slider: step k's guided noise and x0_hat recomputed at s from the two network
        outputs kept for that step (no network call); later steps use s when the chain goes on."""
        scale = float(validate.number("Guidance scale s", scale, 0.0, MAX_SCALE))
        if chain is None:                     # moved before any step: nothing to re-mix yet, and no error
            return SDShown(None, 0)
        shown = self.scrub(chain, k, eps_view)
        if not isinstance(shown.chain, SDChain) or shown.k == 0:
            return shown
        return self._show(shown.chain, shown.k, scale, eps_view)

    def sample(self, prompt, negative, scale, sampler, steps, seed, size, progress=None):
        """The final image (uint8 (3, H, W)) of a whole chain in one go, in chunks, with progress; the same
        image as stepping a chain with these settings to its end. The bundled model's image (model range)
        and the notice when Stable Diffusion cannot run: (image, notice)."""
        a = self.args(prompt, negative, scale, sampler, steps, seed, size, EPS_VIEWS[0])
        try:
            chain = self._fresh(a)
            n = self.chunk_steps(SIZES[a.size] ** 2) if self.zero else 1
            while not chain.done:
                frames, finals, _ = self._run([chain.run], n, [a.scale], previews=False)
                if progress:
                    progress(chain.run.k / chain.total, f"step {chain.run.k} / {chain.total}")
            return finals[0], self._notice(chain)
        except Fallback as e:
            return self.fallback.sample(*self._bundled_args(a)), self._instead(str(e), a.prompt)

    def compare(self, mode, prompt_a, prompt_b, negative, s_a, s_b, sampler, steps, seed, size) -> Iterator[SDLockstep]:
        """Two chains from the same noise, stepped together: two guidance scales on prompt A, or prompts A and
        B at scale A. Yields both every few steps (every GPU call on ZeroGPU)."""
        mode = validate.choice("Compare", mode, COMPARE_MODES)
        prompt_b = validate.text("Prompt B", prompt_b, max_chars=MAX_PROMPT_CHARS, allow_empty=mode == COMPARE_MODES[0])
        s_b = float(validate.number("Scale B", s_b, 0.0, MAX_SCALE))
        a = self.args(prompt_a, negative, s_a, sampler, steps, seed, size, EPS_VIEWS[0])
        specs = [(a.prompt, a.scale), (a.prompt, s_b)] if mode == COMPARE_MODES[0] else [(a.prompt, a.scale),
                                                                                         (prompt_b, a.scale)]
        names = [f"“{p[:40]}”, s = {s:g}" for p, s in specs]
        try:
            m = self.model()
            side = self.side(m, a.size)
            runs = [sd.start(m, p, a.negative, a.sampler, a.steps, a.seed, side, side) for p, _ in specs]
            total = runs[0].total
            every = min(self.chunk_steps(SIZES[a.size] ** 2 * 2), math.ceil(total / ZEROGPU_TICKS)) if self.zero \
                else max(1, total // COMPARE_UPDATES)
            t0 = time.perf_counter()
            while not runs[0].done:
                frames, finals, _ = self._run(runs, every, [s for _, s in specs])
                pics = []
                for fr, fin in zip(frames, finals):       # each side: z_t (at the end the final image) and z0_hat
                    pics += [fin if fin is not None else fr[-1].previews["x_t"], fr[-1].previews["x0"]]
                yield SDLockstep(names, pics, runs[0].k, total, a.seed, time.perf_counter() - t0)
        except Fallback as e:
            yield from self._bundled_compare(specs, a, str(e))

    def _bundled_compare(self, specs, a: Args, why: str) -> Iterator[SDLockstep]:
        model, _, schedule = self.fallback.model()
        args, top = self._bundled_args(a), _bundled().MAX_SCALE
        chains = [Chain(label=self.fallback.facts().classes.index(self.class_for(p)), scale=min(s, top),
                        sampler=args[2], steps=args[3], seed=a.seed).start(model) for p, s in specs]
        names = [f"class *{self.class_for(p)}*, s = {c.scale:g}" for (p, _), c in zip(specs, chains)]
        every, t0 = max(1, args[3] // COMPARE_UPDATES), time.perf_counter()
        for i in range(args[3]):
            for c in chains:
                c.step(model, schedule)
            if (i + 1) % every == 0 or i + 1 == args[3]:
                yield SDLockstep(names, [x for c in chains for x in (c.frames[-1].x_prev, c.frames[-1].x0)], i + 1,
                                 args[3], a.seed, time.perf_counter() - t0,
                                 f"{why} Showing the bundled class-conditional model instead.")
