"""Noise schedules and samplers, apart from the network (the diffusers design): a schedule fixes
beta_1..beta_T; a sampler has `set_timesteps(n)` and `step(eps, t, x_t) -> StepOutput(prev, x0)`
so that a UI can drive the reverse chain one step at a time.

Papers: DDPM (Ho, Jain & Abbeel 2020), the cosine schedule (Nichol & Dhariwal 2021, "Improved
DDPM"), DDIM (Song, Meng & Ermon 2021), classifier-free guidance (Ho & Salimans 2022).

Notation (t is an integer index 0..T-1 into the training schedule):
    alpha_t = 1 - beta_t,   abar_t = prod_{s<=t} alpha_s
    forward closed form:    q(x_t | x_0) = N( sqrt(abar_t) x_0, (1 - abar_t) I )
    predicted x_0:          x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)
    guidance:               eps = eps_u + s (eps_c - eps_u)      (s = 1: conditional, s = 0: unconditional)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

SCHEDULES = ("linear", "cosine")


def make_betas(schedule: str = "cosine", T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
               cosine_s: float = 0.008, max_beta: float = 0.999) -> torch.Tensor:
    """beta_t for t = 0..T-1, float64.
    linear (DDPM):   beta_t evenly spaced from beta_start to beta_end.
    cosine (iDDPM):  abar(u) = cos^2( (u + s) / (1 + s) * pi / 2 ),  beta_t = min(1 - abar((t+1)/T) / abar(t/T), max_beta)
    (the same as diffusers' "linear" and "squaredcos_cap_v2")."""
    if schedule == "linear":
        return torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    if schedule == "cosine":
        def abar(u: float) -> float:
            return math.cos((u + cosine_s) / (1 + cosine_s) * math.pi / 2) ** 2
        return torch.tensor([min(1 - abar((t + 1) / T) / abar(t / T), max_beta) for t in range(T)], dtype=torch.float64)
    raise ValueError(f"schedule must be one of {SCHEDULES}, not {schedule!r}")


class NoiseSchedule:
    """The forward process q(x_t | x_0) of one beta schedule."""

    def __init__(self, schedule: str = "cosine", T: int = 1000):
        self.name, self.T = schedule, T
        self.betas = make_betas(schedule, T)                             # (T,) float64
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)          # abar_t, (T,)

    def abar(self, t: torch.Tensor | int) -> torch.Tensor:
        """abar at integer steps; t = -1 means 'before the first step' (abar = 1)."""
        t = torch.as_tensor(t)
        one = torch.ones((), dtype=torch.float64)
        return torch.where(t >= 0, self.alphas_cumprod[t.clamp(min=0)], one)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps.   x0, noise (B,C,H,W), t (B,) -> (B,C,H,W)"""
        a = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype)[:, None, None, None]  # (B,1,1,1)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, x_t: torch.Tensor, eps: torch.Tensor, t: int) -> torch.Tensor:
        """x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)"""
        a = float(self.alphas_cumprod[t])
        return (x_t - math.sqrt(1 - a) * eps) / math.sqrt(a)


def guide(eps_u: torch.Tensor, eps_c: torch.Tensor, s: float) -> torch.Tensor:
    """Classifier-free guidance: eps = eps_u + s (eps_c - eps_u). s = 1 -> eps_c exactly; s = 0 -> eps_u."""
    if s == 1.0:
        return eps_c
    if s == 0.0:
        return eps_u
    return eps_u + s * (eps_c - eps_u)


@dataclass
class StepOutput:
    prev_sample: torch.Tensor            # x_{t_prev}  (B,C,H,W)
    pred_original_sample: torch.Tensor   # x0_hat      (B,C,H,W), clipped when clip_sample


class _Sampler:
    """Shared by DDPM and DDIM: the schedule, the timestep grid ("leading" spacing as diffusers does:
    t_i = i * (T // n), run from the largest down to 0) and the x_0 prediction."""

    name = "base"

    def __init__(self, schedule: NoiseSchedule, clip_sample: bool = True):
        self.schedule, self.T, self.clip_sample = schedule, schedule.T, clip_sample
        self._abar_list = schedule.alphas_cumprod.tolist()              # python floats: no tensor ops per step
        self.set_timesteps(schedule.T)

    def set_timesteps(self, n: int) -> None:
        if not 1 <= n <= self.T:
            raise ValueError(f"number of steps must be in 1..{self.T}, not {n}")
        self.num_inference_steps = n
        self.step_ratio = self.T // n
        self.timesteps = torch.arange(n, dtype=torch.long).flip(0) * self.step_ratio   # (n,) descending

    def prev_timestep(self, t: int) -> int:
        return int(t) - self.step_ratio

    def abar(self, t: int) -> float:
        """abar_t as a float; t < 0 (past the last step) gives 1."""
        return self._abar_list[t] if t >= 0 else 1.0

    def _x0(self, x_t, eps, a_t):
        x0 = (x_t - (1 - a_t) ** 0.5 * eps) / a_t ** 0.5
        return x0.clamp(-1, 1) if self.clip_sample else x0

    def needs_noise(self, t: int) -> bool:
        """Whether step t draws z (callers then make the step's noise; otherwise they skip it)."""
        return True

    @staticmethod
    def _noise(x: torch.Tensor, generator: torch.Generator | None, noise: torch.Tensor | None) -> torch.Tensor:
        if noise is not None:
            return noise
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


class DDPMSampler(_Sampler):
    """Ancestral sampling from the posterior q(x_{t'} | x_t, x0_hat), t' the previous grid step (DDPM eq. 6-7):
        mean = sqrt(abar_t') b_t / (1 - abar_t) x0_hat + sqrt(a_t) (1 - abar_t') / (1 - abar_t) x_t
        var  = (1 - abar_t') / (1 - abar_t) b_t                  ("fixed small" variance, sigma^2 = beta~)
        x_t' = mean + sqrt(var) z,   z ~ N(0, I)  (no noise at the last step)
    with a_t = abar_t / abar_t' and b_t = 1 - a_t (equal to alpha_t, beta_t on the full chain)."""

    name = "DDPM"

    def needs_noise(self, t: int) -> bool:
        return int(t) > 0

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor, generator: torch.Generator | None = None,
             noise: torch.Tensor | None = None) -> StepOutput:
        t = int(t)
        prev = self.prev_timestep(t)
        a_t, a_prev = self.abar(t), self.abar(prev)
        alpha = a_t / a_prev
        beta = 1 - alpha
        x0 = self._x0(x_t, eps, a_t)
        mean = (a_prev ** 0.5 * beta / (1 - a_t)) * x0 + (alpha ** 0.5 * (1 - a_prev) / (1 - a_t)) * x_t
        if self.needs_noise(t):                                          # not at the last step
            var = max((1 - a_prev) / (1 - a_t) * beta, 1e-20)
            mean = mean + var ** 0.5 * self._noise(x_t, generator, noise)
        return StepOutput(mean, x0)


class DDIMSampler(_Sampler):
    """DDIM (Song et al. 2021, eq. 12 and 16), t' the previous grid step:
        x_t' = sqrt(abar_t') x0_hat + sqrt(1 - abar_t' - sigma_t^2) eps' + sigma_t z
        sigma_t = eta sqrt( (1 - abar_t') / (1 - abar_t) ) sqrt( 1 - abar_t / abar_t' )
    eta = 0: deterministic (an ODE solver; invertible); eta = 1: DDPM's variance.

    When x0_hat is clipped to [-1, 1], eps' = (x_t - sqrt(abar_t) x0_hat) / sqrt(1 - abar_t) is the
    noise consistent with the clipped x0_hat (diffusers' `use_clipped_model_output=True`). Keeping the
    raw eps instead (diffusers' default) mixes a clipped image with an unclipped noise direction;
    under strong guidance, where eps is large, that breaks samples apart and class accuracy falls far
    below what the bundled model's card records for eps' (its guidance sweep)."""

    name = "DDIM"

    def needs_noise(self, t: int) -> bool:
        return self.eta > 0

    def __init__(self, schedule: NoiseSchedule, clip_sample: bool = True, eta: float = 0.0,
                 use_clipped_model_output: bool = True):
        super().__init__(schedule, clip_sample)
        self.eta = float(eta)
        self.use_clipped_model_output = use_clipped_model_output

    def sigma(self, t: int, prev: int) -> float:
        a_t, a_prev = self.abar(t), self.abar(prev)
        return self.eta * math.sqrt((1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev))

    def step(self, eps: torch.Tensor, t: int, x_t: torch.Tensor, generator: torch.Generator | None = None,
             noise: torch.Tensor | None = None) -> StepOutput:
        t = int(t)
        prev = self.prev_timestep(t)
        a_t, a_prev = self.abar(t), self.abar(prev)
        x0 = self._x0(x_t, eps, a_t)
        if self.clip_sample and self.use_clipped_model_output:
            eps = (x_t - a_t ** 0.5 * x0) / (1 - a_t) ** 0.5
        sig = self.sigma(t, prev)
        x_prev = a_prev ** 0.5 * x0 + max(1 - a_prev - sig ** 2, 0.0) ** 0.5 * eps
        if self.needs_noise(t):                                          # eta > 0
            x_prev = x_prev + sig * self._noise(x_t, generator, noise)
        return StepOutput(x_prev, x0)

    def invert_step(self, eps: torch.Tensor, t_from: int, x: torch.Tensor, t_to: int) -> torch.Tensor:
        """Run the eta = 0 ODE forwards (x_t -> x_t_next, t_to > t_from; t_from = -1 means x_0):
            x_to = sqrt(abar_to) x0_hat + sqrt(1 - abar_to) eps,  eps evaluated at the current point."""
        a_from, a_to = self.abar(t_from), self.abar(t_to)
        x0 = (x - (1 - a_from) ** 0.5 * eps) / a_from ** 0.5
        return a_to ** 0.5 * x0 + (1 - a_to) ** 0.5 * eps


def make_sampler(kind: str, schedule: NoiseSchedule, steps: int, eta: float = 0.0, clip_sample: bool = True) -> _Sampler:
    """'DDPM' or 'DDIM', with its timesteps set."""
    if kind == "DDPM":
        s = DDPMSampler(schedule, clip_sample)
    elif kind == "DDIM":
        s = DDIMSampler(schedule, clip_sample, eta)
    else:
        raise ValueError(f"sampler must be DDPM or DDIM, not {kind!r}")
    s.set_timesteps(steps)
    return s
