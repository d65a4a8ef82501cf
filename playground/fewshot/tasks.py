"""The sinusoid task family of Finn, Abbeel and Levine 2017, "Model-Agnostic Meta-Learning for Fast
Adaptation of Deep Networks" (section 5.1), pure torch and seeded.

A task is one sine wave y = A sin(x - phi), with the amplitude A ~ U[AMPLITUDE] and the phase
phi ~ U[PHASE]; its points have x ~ U[X_RANGE]. A K-shot task gives K support points to adapt on;
how well the adapted model fits the task is measured on held-out points of the same wave (here the
evenly spaced `GRID`, i.e. the mean squared error over the whole interval).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

AMPLITUDE = (0.1, 5.0)      # A ~ U[0.1, 5.0]
PHASE = (0.0, math.pi)      # phi ~ U[0, pi]
X_RANGE = (-5.0, 5.0)       # x ~ U[-5, 5]
GRID_POINTS = 101           # query points, evenly spaced over X_RANGE (steps of 0.1)


def grid(n: int = GRID_POINTS) -> torch.Tensor:
    """(n,) evenly spaced x over X_RANGE, the query points and the x axis of every plot."""
    return torch.linspace(*X_RANGE, n)


def sine(amplitude: torch.Tensor, phase: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """y = A sin(x - phi): amplitude, phase (T,) and x (T, N, 1) or (N,) -> y like x ((T, N, 1) or (T, N))."""
    if x.dim() == 1:
        return amplitude[:, None] * torch.sin(x[None, :] - phase[:, None])              # (T, N)
    return amplitude[:, None, None] * torch.sin(x - phase[:, None, None])                # (T, N, 1)


def uniform(shape: tuple[int, ...], lo_hi: tuple[float, float], generator: torch.Generator) -> torch.Tensor:
    lo, hi = lo_hi
    return lo + (hi - lo) * torch.rand(shape, generator=generator)


@dataclass
class TaskBatch:
    """T tasks, each with K support and Q query points drawn from its own wave."""
    amplitude: torch.Tensor   # (T,)
    phase: torch.Tensor       # (T,)
    x: torch.Tensor           # (T, K, 1) support inputs
    y: torch.Tensor           # (T, K, 1)
    qx: torch.Tensor          # (T, Q, 1) query inputs
    qy: torch.Tensor          # (T, Q, 1)


def sample(tasks: int, support: int, query: int, generator: torch.Generator) -> TaskBatch:
    """A meta-batch: `tasks` waves from the family, `support` + `query` random points on each."""
    amp = uniform((tasks,), AMPLITUDE, generator)
    phase = uniform((tasks,), PHASE, generator)
    x = uniform((tasks, support + query, 1), X_RANGE, generator)
    y = sine(amp, phase, x)
    return TaskBatch(amp, phase, x[:, :support], y[:, :support], x[:, support:], y[:, support:])


def heldout(tasks: int, support: int, seed: int) -> TaskBatch:
    """A fixed set of evaluation tasks: `support` random points each (the first K of them make the
    K-shot task, so the 5-shot points are part of the 10-shot points) and the evenly spaced grid as
    query. The same seed gives the same tasks on every machine (torch's CPU generator)."""
    b = sample(tasks, support, 0, torch.Generator().manual_seed(seed))
    gx = grid().view(1, -1, 1).expand(tasks, -1, -1)                                  # (T, G, 1)
    return TaskBatch(b.amplitude, b.phase, b.x, b.y, gx, sine(b.amplitude, b.phase, gx))
