"""The reverse chain with classifier-free guidance, as a loop a UI can drive one step at a time.

    eps_u = eps_theta(x_t, t, null),  eps_c = eps_theta(x_t, t, y)      (one batch of 2B)
    eps   = eps_u + s (eps_c - eps_u)                                   (Ho & Salimans 2022)
    x_t'  = sampler.step(eps, t, x_t)                                   (DDPM or DDIM, schedulers.py)

`Chain` holds one user's chain (noise, every x_t taken so far, and what the network said at each
step), so that a tab can keep it in gr.State, step it, and scrub back through it. The bundled model
is loaded once, lazily, behind a lock (`bundled()`).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import torch

from playground.core import checkpoint
from playground.diffusion.schedulers import NoiseSchedule, guide, make_sampler
from playground.diffusion.unet import UNet

BUNDLED = Path(__file__).resolve().parents[2] / "assets" / "diffusion" / "fashion_unet"
_lock = threading.Lock()
_cache: dict[str, tuple[UNet, dict, NoiseSchedule]] = {}


def bundled(path: str | Path = BUNDLED) -> tuple[UNet, dict, NoiseSchedule]:
    """(model, card, schedule) of a checkpoint, loaded once per process and shared (thread-safe)."""
    key = str(path)
    with _lock:
        if key not in _cache:
            model, card = checkpoint.load(path)
            model.requires_grad_(False)
            _cache[key] = (model, card, NoiseSchedule(card.get("schedule", "cosine"), card.get("num_train_timesteps", 1000)))
        return _cache[key]


@torch.inference_mode()
def guided_eps(model: UNet, x: torch.Tensor, t: int, y: torch.Tensor, s: float, both: bool = False):
    """(eps, eps_u, eps_c) at step t for images x (B,C,H,W) of classes y (B,).
    s = 1 needs only the conditional pass, s = 0 only the unconditional one; `both` computes the two
    anyway (the tab shows them). Otherwise cond and uncond run as one batch of 2B."""
    b = len(x)
    tt = torch.full((b,), int(t), dtype=torch.long)
    null = torch.full_like(y, model.null_class)
    if not both and s == 1.0:
        e = model(x, tt, y)
        return e, None, e
    if not both and s == 0.0:
        e = model(x, tt, null)
        return e, e, None
    out = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([null, y]))   # (2B,C,H,W)
    eps_u, eps_c = out[:b], out[b:]
    return guide(eps_u, eps_c, s), eps_u, eps_c


@torch.inference_mode()
def sample(model: UNet, schedule: NoiseSchedule, y: torch.Tensor, s: float, *, sampler: str = "DDIM",
           steps: int = 50, eta: float = 0.0, seed: int = 0, x_T: torch.Tensor | None = None,
           batch: int = 500, progress=None) -> torch.Tensor:
    """Images (N,C,H,W) in [-1, 1] for classes y (N,), generated in batches. Deterministic given seed."""
    c, hw = model.config.in_channels, model.config.image_size
    g = torch.Generator().manual_seed(seed)
    if x_T is None:
        x_T = torch.randn((len(y), c, hw, hw), generator=g)
    out = []
    for i in range(0, len(y), batch):
        sm = make_sampler(sampler, schedule, steps, eta)
        x = x_T[i : i + batch]
        for k, t in enumerate(sm.timesteps.tolist()):
            eps, _, _ = guided_eps(model, x, t, y[i : i + batch], s)
            x = sm.step(eps, t, x, generator=g).prev_sample
            if progress:
                progress((i + (k + 1) / len(sm.timesteps) * len(x)) / len(y))
        out.append(x)
    return torch.cat(out)


@dataclass
class Frame:
    """What the chain looked like after one step (all (C,H,W) in model range [-1, 1])."""

    t: int                    # the step the network was evaluated at
    x_t: torch.Tensor         # the input of this step
    x0: torch.Tensor          # predicted x_0
    eps: torch.Tensor         # guided eps
    eps_u: torch.Tensor       # unconditional eps
    eps_c: torch.Tensor       # conditional eps
    x_prev: torch.Tensor      # the output (x at the next, smaller t)
    label: int = 0            # the class asked for at this step
    scale: float = 1.0        # the guidance scale used at this step


@dataclass
class Chain:
    """One user's reverse chain: settings, the start noise and the frames taken so far."""

    label: int
    scale: float
    sampler: str
    steps: int
    seed: int
    eta: float = 0.0
    x_T: torch.Tensor | None = None                      # (C,H,W)
    frames: list[Frame] = field(default_factory=list)

    def timesteps(self, schedule: NoiseSchedule) -> list[int]:
        return make_sampler(self.sampler, schedule, self.steps, self.eta).timesteps.tolist()

    @property
    def done(self) -> bool:
        return len(self.frames) >= self.steps

    def current(self) -> torch.Tensor:
        return self.frames[-1].x_prev if self.frames else self.x_T

    def start(self, model: UNet) -> "Chain":
        g = torch.Generator().manual_seed(self.seed)
        c, hw = model.config.in_channels, model.config.image_size
        self.x_T = torch.randn((c, hw, hw), generator=g)
        self.frames = []
        return self

    @torch.inference_mode()
    def step(self, model: UNet, schedule: NoiseSchedule) -> Frame | None:
        """Take the next step (None when finished). The noise of step k is drawn from seed + 1 + k, so a
        chain is reproducible however it is played, paused or stepped."""
        if self.x_T is None:
            self.start(model)
        if self.done:
            return None
        k = len(self.frames)
        sm = make_sampler(self.sampler, schedule, self.steps, self.eta)
        t = int(sm.timesteps[k])
        x = self.current()[None]                                              # (1,C,H,W)
        eps, eps_u, eps_c = guided_eps(model, x, t, torch.tensor([self.label]), self.scale, both=True)
        g = torch.Generator().manual_seed(self.seed + 1 + k)
        out = sm.step(eps, t, x, generator=g)
        f = Frame(t, x[0], out.pred_original_sample[0], eps[0], eps_u[0], eps_c[0], out.prev_sample[0], self.label, self.scale)
        self.frames.append(f)
        return f
