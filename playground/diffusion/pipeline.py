"""The reverse chain with classifier-free guidance, as a loop a UI can drive one step at a time.

    eps_u = eps_theta(x_t, t, null),  eps_c = eps_theta(x_t, t, y)      (one batch of 2B)
    eps   = eps_u + s (eps_c - eps_u)                                   (Ho & Salimans 2022)
    x_t'  = sampler.step(eps, t, x_t, z)                                (DDPM or DDIM, schedulers.py)

One noise rule serves every path: the start noise x_T of seed `seed` is drawn from a generator seeded
with `seed`; the z of step k (DDPM, or DDIM with eta > 0) from a generator seeded with
`step_seed(seed, k)`, for the whole batch at once. So `sample` (a batch in one call) and `Chain` (one
image, stepped, paused, played) give the same images for the same seed, and a batch's images do not
depend on how it is split for the network.

`Chain` holds one user's chain (noise, every x_t taken so far, and what the network said at each
step), so that a tab can keep it in gr.State, step it, and scrub back through it.

A class of students runs many chains at once. `sample_rows` and `step_chains` take several users'
requests (each its own class, guidance scale, seed, and for chains its own step) through ONE network
pass per step, each row guided by its own s and noised by its own seed's rule, so that a row's
result is what it would be alone (up to floating-point rounding of the batched convolutions); the
service's micro-batcher (core/batch.py) feeds them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from playground.diffusion.schedulers import NoiseSchedule, guide, make_sampler
from playground.diffusion.unet import UNet


def step_seed(seed: int, k: int) -> int:
    """The seed of step k's noise: a SeedSequence hash of (seed, k), so that no two (seed, step) pairs
    share noise, and no step's noise is another seed's start noise."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1, np.uint64)[0])


def start_noise(n: int, model: UNet, seed: int) -> torch.Tensor:
    """x_T for n images: (n,C,H,W) standard normal from a generator seeded with `seed`."""
    c, hw = model.config.in_channels, model.config.image_size
    return torch.randn((n, c, hw, hw), generator=torch.Generator().manual_seed(int(seed)))


def step_noise(like: torch.Tensor, seed: int, k: int) -> torch.Tensor:
    """z of step k for a whole batch, shaped like `like` (B,C,H,W)."""
    return torch.randn(like.shape, generator=torch.Generator().manual_seed(step_seed(seed, k)), dtype=like.dtype)


@torch.inference_mode()
def guided_eps(model: UNet, x: torch.Tensor, t: int, y: torch.Tensor, s: float, both: bool = False):
    """(eps, eps_u, eps_c) at step t for images x (B,C,H,W) of classes y (B,).
    s = 1 needs only the conditional pass, s = 0 only the unconditional one; `both` computes the other
    one too, in a pass of its own, so eps is computed the same way with or without it. Otherwise
    cond and uncond run as one batch of 2B."""
    b = len(x)
    tt = torch.full((b,), int(t), dtype=torch.long)
    null = torch.full_like(y, model.null_class)
    if s == 1.0:
        e = model(x, tt, y)
        return e, (model(x, tt, null) if both else None), e
    if s == 0.0:
        e = model(x, tt, null)
        return e, e, (model(x, tt, y) if both else None)
    out = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([null, y]))   # (2B,C,H,W)
    eps_u, eps_c = out[:b], out[b:]
    return guide(eps_u, eps_c, s), eps_u, eps_c


@torch.inference_mode()
def eps_rows(model: UNet, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, scales) -> tuple[torch.Tensor, ...]:
    """(eps, eps_u, eps_c) for rows of different requests: x (B,C,H,W) at steps t (B,) of classes y (B,),
    in one pass of 2B (unconditional and conditional), each row guided by its own scale:
    eps_i = eps_u,i + s_i (eps_c,i - eps_u,i)."""
    b = len(x)
    out = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([torch.full_like(y, model.null_class), y]))
    eps_u, eps_c = out[:b], out[b:]                                               # (B,C,H,W) each
    eps = torch.stack([guide(eps_u[i], eps_c[i], float(s)) for i, s in enumerate(scales)])
    return eps, eps_u, eps_c


@torch.inference_mode()
def sample_rows(model: UNet, schedule: NoiseSchedule, ys: list[int], scales: list[float], seeds: list[int], *,
                sampler: str = "DDIM", steps: int = 50, eta: float = 0.0) -> torch.Tensor:
    """Final images (B,C,H,W) of B independent requests sharing one sampler schedule: row i is request
    i's image (its class, scale and seed), as a Chain with those settings would end."""
    x = torch.cat([start_noise(1, model, s) for s in seeds])                      # (B,C,H,W)
    y = torch.tensor(ys, dtype=torch.long)
    sm = make_sampler(sampler, schedule, steps, eta)
    for k, t in enumerate(sm.timesteps.tolist()):
        eps, _, _ = eps_rows(model, x, torch.full((len(x),), int(t), dtype=torch.long), y, scales)
        noise = None                                                              # DDIM at eta = 0 draws none
        if sm.needs_noise(t):
            noise = torch.cat([step_noise(x[i:i + 1], seed, k) for i, seed in enumerate(seeds)])
        x = sm.step(eps, t, x, noise=noise).prev_sample
    return x


@torch.inference_mode()
def sample(model: UNet, schedule: NoiseSchedule, y: torch.Tensor, s: float, *, sampler: str = "DDIM",
           steps: int = 50, eta: float = 0.0, seed: int = 0, x_T: torch.Tensor | None = None,
           batch: int = 500, progress=None) -> torch.Tensor:
    """Images (N,C,H,W) in [-1, 1] for classes y (N,): the network runs on `batch` images at a time, the
    sampler steps all N together. x_T defaults to `start_noise(N, model, seed)`; step noise follows the
    module's rule, so the result is deterministic given the seed and equals a Chain's for N = 1."""
    x = start_noise(len(y), model, seed) if x_T is None else x_T
    sm = make_sampler(sampler, schedule, steps, eta)
    for k, t in enumerate(sm.timesteps.tolist()):
        eps = torch.cat([guided_eps(model, x[i : i + batch], t, y[i : i + batch], s)[0]
                         for i in range(0, len(y), batch)])                           # (N,C,H,W)
        x = sm.step(eps, t, x, noise=step_noise(x, seed, k) if sm.needs_noise(t) else None).prev_sample
        if progress:
            progress((k + 1) / len(sm.timesteps))
    return x


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
    abar: float = 1.0         # abar_t at t
    t_next: int = -1          # the step of the output x_prev (negative: the output is x_0)


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

    @property
    def done(self) -> bool:
        return len(self.frames) >= self.steps

    def current(self) -> torch.Tensor:
        return self.frames[-1].x_prev if self.frames else self.x_T

    def start(self, model: UNet) -> "Chain":
        self.x_T = start_noise(1, model, self.seed)[0]
        self.frames = []
        return self

    def step(self, model: UNet, schedule: NoiseSchedule) -> Frame | None:
        """Take the next step (None when finished). Step k's noise depends only on (seed, k), so a chain
        is the same however it is played, paused or stepped, and the same as `sample_rows` for its seed."""
        return step_chains(model, schedule, [self])[0]


@torch.inference_mode()
def step_chains(model: UNet, schedule: NoiseSchedule, chains: list[Chain]) -> list[Frame | None]:
    """The next step of several chains (different users, steps, classes, scales) in one network pass:
    each row at its own t; then each chain's sampler step with its own noise. None for a finished chain."""
    live: list[Chain] = []
    for c in chains:                        # each chain once, even if a user's request came twice
        if c.x_T is None:
            c.start(model)
        if not c.done and all(c is not o for o in live):
            live.append(c)
    frames: dict[int, Frame] = {}
    if live:
        sms = [make_sampler(c.sampler, schedule, c.steps, c.eta) for c in live]
        ts = [int(sm.timesteps[len(c.frames)]) for c, sm in zip(live, sms)]
        x = torch.stack([c.current() for c in live])                          # (B,C,H,W)
        eps, eps_u, eps_c = eps_rows(model, x, torch.tensor(ts, dtype=torch.long),
                                     torch.tensor([c.label for c in live], dtype=torch.long), [c.scale for c in live])
        for i, (c, sm, t) in enumerate(zip(live, sms, ts)):
            xi = x[i:i + 1]
            z = step_noise(xi, c.seed, len(c.frames)) if sm.needs_noise(t) else None
            out = sm.step(eps[i:i + 1], t, xi, noise=z)
            f = Frame(t, x[i], out.pred_original_sample[0], eps[i], eps_u[i], eps_c[i], out.prev_sample[0],
                      c.label, c.scale, sm.abar(t), sm.prev_timestep(t))
            c.frames.append(f)
            frames[id(c)] = f
    return [frames.get(id(c)) for c in chains]
