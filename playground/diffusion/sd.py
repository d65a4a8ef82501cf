"""Stable Diffusion (Rombach et al. 2022), one step at a time, over diffusers' components: the same
classifier-free guidance as the bundled U-Net, in the latent space of an autoencoder, conditioned on text.

    c   = CLIP_text(prompt),  c0 = CLIP_text(negative prompt, "" by default)      once per prompt, (1, L, D)
    x_T ~ N(0, I) * init_noise_sigma                                               latents (1, 4, H/f, W/f)
    per step t (the scheduler's timesteps):
        x_in          = scale_model_input(x_t, t)                                   (identity for DDIM/DDPM/PNDM)
        [e_u, e_c]    = U-Net([x_in, x_in], t, [c0, c])                            one batch of 2
        e             = e_u + s (e_c - e_u)                                        (schedulers.guide; s = 1: e_c)
        x_t'          = scheduler.step(e, t, x_t)                                  DDIM, DDPM or the model's own
        x0_hat        = (x_in - sqrt(1 - abar_t) e) / sqrt(abar_t)                  what the step predicts as the end
    image = VAE_decode(x_0 / scaling_factor)                                       the full decoder, at the end
    previews: TAESD_decode(x / its scaling factor)                                 a tiny decoder, for every step

This is the loop of diffusers' StableDiffusionPipeline, written so that a UI can stop after any step:
`Run` holds everything the next step needs (latents, text embeddings, the scheduler with its
timesteps and multistep memory, the random generator's state), and `advance` moves a Run to a device,
takes some steps and brings it back to the CPU. The start noise and any step noise come from one CPU
generator seeded with the seed, drawn in the pipeline's order, so that a chain taken in any chunks equals
the pipeline's output for the same prompt, seed, steps and guidance (tests/test_sd_model.py).

L is the tokenizer's model_max_length: longer prompts are cut there (as the pipeline does). For a
v-prediction model `eps_x0` turns the output into e and x0_hat.

At s = 1 (and s = 0) the guided e is one of the two passes; they then run as two batches of one, as the
pipeline runs its single pass, so that e is computed exactly as there; the other pass is for the eye.
s = 0 is the unconditional prediction e_u, as in the bundled model (the pipeline itself treats any s <= 1
as s = 1, so it is compared with ours at s = 1 and above).
"""
from __future__ import annotations

import inspect
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from playground.diffusion.schedulers import guide

HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")     # owner/name, as the hub spells repositories
OWN = "the model's own"                                   # the sampler the model folder ships with
SAMPLERS = ("DDIM", "DDPM", OWN)


class LoadError(ValueError):
    """The model could not be loaded; the message says why (missing folder, not Stable Diffusion, no weights)."""


@dataclass
class SD:
    """The parts of one Stable Diffusion model, on one device."""

    ref: str                 # the folder or hub id it came from
    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoder: torch.nn.Module
    tokenizer: object
    scheduler: object        # the scheduler it ships with: a template, never stepped
    taesd: torch.nn.Module | None = None    # the tiny preview decoder, when there is one

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def vae_scale_factor(self) -> int:
        """f: image pixels per latent pixel (the pipeline's rule: 2 ** (VAE blocks - 1))."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def native_size(self) -> int:
        """The image side the model was trained at: the U-Net's sample size times f."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor

    @property
    def size_multiple(self) -> int:
        """Image sides must be multiples of this: f times the U-Net's downsampling."""
        return self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)

    @property
    def max_tokens(self) -> int:
        return int(self.tokenizer.model_max_length)

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "SD":
        """Move every part in place (and cast it, when `dtype` is given)."""
        for m in (self.unet, self.vae, self.text_encoder, self.taesd):
            if m is not None:
                m.to(device, dtype) if dtype is not None else m.to(device)
        return self


def load_sd(ref: str, *, taesd: str | None = None, dtype: torch.dtype = torch.float32, cache_dir=None,
            offline: bool = False) -> SD:
    """A Stable Diffusion 1.x/2.x model from a local folder (diffusers' layout, as `save_pretrained`
    writes it) or a hub id: the same call for both. Weights only from safetensors (never a pickle). The
    preview decoder is the folder's `taesd/` subfolder when it has one, else `taesd` (a folder or hub id),
    else none (previews then use the full VAE)."""
    from diffusers import AutoencoderTiny, StableDiffusionPipeline

    folder = Path(ref)
    local = folder.is_dir()
    if not local and not HUB_ID.match(ref):
        raise LoadError(f"{ref!r} is neither a model folder nor a hub id (owner/name)")
    if local and not (folder / "model_index.json").is_file():
        raise LoadError(f"{ref} has no model_index.json: save the model there with save_pretrained")
    kw = dict(use_safetensors=True, cache_dir=cache_dir, local_files_only=local or offline)
    try:
        pipe = StableDiffusionPipeline.from_pretrained(ref, dtype=dtype, safety_checker=None,
                                                       requires_safety_checker=False, **kw)
    except (OSError, ValueError, EnvironmentError) as e:
        raise LoadError(f"{ref} could not be loaded as Stable Diffusion with safetensors weights: "
                        f"{str(e).splitlines()[0][:300]}") from None
    tiny = None
    sources = ([str(folder / "taesd")] if local and (folder / "taesd" / "config.json").is_file() else []) + (
        [taesd] if taesd else [])
    for src in sources:
        try:
            tiny = AutoencoderTiny.from_pretrained(src, dtype=dtype, use_safetensors=True, cache_dir=cache_dir,
                                                   local_files_only=Path(src).is_dir() or offline)
            break
        except (OSError, ValueError):
            continue
    parts = [pipe.unet, pipe.vae, pipe.text_encoder] + ([tiny] if tiny is not None else [])
    for m in parts:
        m.eval().requires_grad_(False)
    return SD(ref, pipe.unet, pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.scheduler, tiny)


def make_scheduler(m: SD, kind: str):
    """A fresh scheduler of `kind` on the model's own schedule (betas, steps offset, spacing, prediction)."""
    from diffusers import DDIMScheduler, DDPMScheduler

    cls = {"DDIM": DDIMScheduler, "DDPM": DDPMScheduler, OWN: type(m.scheduler)}.get(kind)
    if cls is None:
        raise ValueError(f"sampler must be one of {SAMPLERS}, not {kind!r}")
    return cls.from_config(m.scheduler.config)


def sampler_name(m: SD, kind: str) -> str:
    return type(m.scheduler).__name__ if kind == OWN else kind


@torch.inference_mode()
def encode(m: SD, text: str) -> torch.Tensor:
    """The text encoder's last hidden states for `text` padded / cut to max_tokens: (1, max_tokens, D)."""
    tok = m.tokenizer(text, padding="max_length", max_length=m.max_tokens, truncation=True, return_tensors="pt")
    mask = tok.attention_mask.to(m.device) if getattr(m.text_encoder.config, "use_attention_mask", False) else None
    return m.text_encoder(tok.input_ids.to(m.device), attention_mask=mask)[0]


def token_count(m: SD, text: str) -> int:
    """Tokens of `text` with its start and end tokens; more than max_tokens are cut by `encode`."""
    return len(m.tokenizer(text).input_ids)


@dataclass
class Run:
    """What the next step needs. Between calls every tensor is on the CPU (gr.State, ZeroGPU)."""

    prompt: str
    negative: str
    scheduler: object                 # timesteps set; a multistep scheduler keeps its memory here
    latents: torch.Tensor             # x_t before the next step, (1, 4, h, w)
    gen_state: torch.Tensor           # the CPU generator's state after the noise drawn so far
    cond: torch.Tensor | None = None  # text embeddings of `prompt` / `negative` (1, L, D); None: not encoded yet
    uncond: torch.Tensor | None = None
    encoded: tuple[str, str] = ("", "")   # the texts cond and uncond encode
    k: int = 0                        # steps taken

    @property
    def total(self) -> int:
        """U-Net evaluations in the chain (the number of timesteps; a multistep sampler may add one)."""
        return len(self.scheduler.timesteps)

    @property
    def done(self) -> bool:
        return self.k >= self.total


@dataclass
class Frame:
    """One step as the learner sees it (CPU tensors, (4, h, w)); decoded pictures are kept in `previews`."""

    t: int
    abar: float              # abar_t of the model's schedule at t
    x_in: torch.Tensor       # x_t as the U-Net saw it
    out_u: torch.Tensor      # the network's output for the negative / empty prompt (e or v)
    out_c: torch.Tensor      # for the prompt
    scale: float             # s used at this step
    prompt: str
    negative: str
    previews: dict = field(default_factory=dict)


def start(m: SD, prompt: str, negative: str, kind: str, steps: int, seed: int, height: int, width: int) -> Run:
    """x_T for `seed` (the pipeline's draw: one CPU generator, then * init_noise_sigma) and the timesteps."""
    sched = make_scheduler(m, kind)
    sched.set_timesteps(steps)
    g = torch.Generator().manual_seed(int(seed))
    f = m.vae_scale_factor
    x = torch.randn((1, m.unet.config.in_channels, height // f, width // f), generator=g, dtype=m.dtype)
    return Run(prompt, negative, sched, x * sched.init_noise_sigma, g.get_state())


def _move(obj, device):
    """Every tensor of a Run or scheduler (and in its lists) onto `device`: scheduler memory included."""
    for name, v in vars(obj).items():
        if isinstance(v, torch.Tensor) and name != "gen_state":
            setattr(obj, name, v.to(device))
        elif isinstance(v, list) and any(isinstance(x, torch.Tensor) for x in v):
            setattr(obj, name, [x.to(device) if isinstance(x, torch.Tensor) else x for x in v])
    return obj


def _accepts(fn, name: str) -> bool:
    return name in inspect.signature(fn).parameters


@torch.inference_mode()
def step(m: SD, run: Run, scale: float) -> Frame:
    """Take one step of `run` in place at guidance scale s; the frame of what the network said."""
    if run.cond is None or run.encoded != (run.prompt, run.negative):     # a new prompt applies from here on
        run.cond, run.uncond = encode(m, run.prompt), encode(m, run.negative)
        run.encoded = (run.prompt, run.negative)
    sched, x = run.scheduler, run.latents
    t = sched.timesteps[run.k]
    x_in = sched.scale_model_input(x, t)                                            # (1, 4, h, w)
    z, cond, uncond = x_in.to(m.dtype), run.cond.to(m.dtype), run.uncond.to(m.dtype)
    if scale in (0.0, 1.0):   # e is one pass, run alone as the pipeline runs it; the other pass for the eye
        out_c = m.unet(z, t, encoder_hidden_states=cond, return_dict=False)[0].to(x.dtype)
        out_u = m.unet(z, t, encoder_hidden_states=uncond, return_dict=False)[0].to(x.dtype)
    else:
        both = m.unet(torch.cat([z, z]), t, encoder_hidden_states=torch.cat([uncond, cond]),
                      return_dict=False)[0].to(x.dtype)                               # (2, 4, h, w)
        out_u, out_c = both.chunk(2)
    out = guide(out_u, out_c, scale)
    kw = {}
    g = torch.Generator().set_state(run.gen_state)
    if _accepts(sched.step, "generator"):
        kw["generator"] = g
    if _accepts(sched.step, "eta"):
        kw["eta"] = 0.0
    run.latents = sched.step(out, t, x, **kw, return_dict=False)[0]
    run.gen_state = g.get_state()
    run.k += 1
    ti = int(t)
    return Frame(ti, float(sched.alphas_cumprod[ti]), x_in[0], out_u[0], out_c[0], float(scale), run.prompt,
                 run.negative)


def eps_x0(out: torch.Tensor, x_in: torch.Tensor, abar: float, prediction_type: str = "epsilon"):
    """(e, x0_hat) from a network output, for both parameterisations:
        epsilon:       e = out,                                x0 = (x_in - sqrt(1 - abar) e) / sqrt(abar)
        v_prediction:  e = sqrt(1 - abar) x_in + sqrt(abar) v, x0 = sqrt(abar) x_in - sqrt(1 - abar) v"""
    a, b = abar ** 0.5, (1 - abar) ** 0.5
    if prediction_type == "v_prediction":
        return b * x_in + a * out, a * x_in - b * out
    return out, (x_in - b * out) / a


@torch.inference_mode()
def decode(m: SD, latents: torch.Tensor, full: bool = False) -> torch.Tensor:
    """Latents (4, h, w) or (B, 4, h, w) -> uint8 images (B, 3, H, W) on the CPU: the full VAE when `full`
    (or when there is no TAESD), else TAESD. Both decode x / scaling_factor (+ shift) into [-1, 1]."""
    vae = m.vae if full or m.taesd is None else m.taesd
    z = latents[None] if latents.dim() == 3 else latents
    z = z.to(m.device, m.dtype) / vae.config.scaling_factor + (getattr(vae.config, "shift_factor", None) or 0.0)
    img = vae.decode(z, return_dict=False)[0]                                        # (B, 3, H, W) in [-1, 1]
    return ((img.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


def advance(m: SD, runs: list[Run], n: int, scales: list[float], previews: bool = True) -> tuple[list, list, float]:
    """Up to n steps of each run on the model's device; every tensor back on the CPU afterwards. Returns
    (frames per run, final image per run or None, seconds per U-Net step measured here). With `previews`,
    the last frame of each run gets its decoded x_t and x0_hat; a finished run gets its full-VAE image."""
    dev = m.device
    frames, finals = [], []
    t0, evals = time.perf_counter(), 0
    for run, s in zip(runs, scales):
        _move(run, dev)
        _move(run.scheduler, dev)
        taken = []
        while len(taken) < n and not run.done:
            taken.append(step(m, run, s))
            evals += 1
        if previews and taken:
            last = taken[-1]
            x0 = eps_x0(guide(last.out_u, last.out_c, s), last.x_in, last.abar, m.scheduler.config.prediction_type)[1]
            pics = decode(m, torch.stack([last.x_in, x0]))
            last.previews.update(x_t=pics[0], x0=pics[1])
        finals.append(decode(m, run.latents, full=True)[0] if run.done else None)
        _move(run, "cpu")
        _move(run.scheduler, "cpu")
        frames.append([Frame(f.t, f.abar, f.x_in.cpu(), f.out_u.cpu(), f.out_c.cpu(), f.scale, f.prompt, f.negative,
                             f.previews) for f in taken])
    if dev.type == "cuda":
        torch.cuda.synchronize()
    return frames, finals, (time.perf_counter() - t0) / max(evals, 1)
