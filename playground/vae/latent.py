"""Walking the latent space: straight and spherical interpolation, and the manifold grid.

Spherical interpolation (Shoemake 1985; used for latent walks by White, "Sampling Generative
Networks", 2016): with Omega the angle between a and b,

    slerp(a, b; t) = sin((1 - t) Omega) / sin(Omega) * a + sin(t Omega) / sin(Omega) * b

which keeps the path's norm near the shell where N(0, I) puts its mass, while the straight line
lerp(a, b; t) = (1 - t) a + t b cuts through the low-norm middle.

The manifold grid (Kingma & Welling 2014, fig. 4): a 2-D latent decoded on a grid of the prior's
quantiles z = Phi^{-1}(u), u evenly spaced in (0, 1), so each cell covers equal prior mass.
"""
from __future__ import annotations

import torch


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a, b (D,), t (N,) -> (N, D): (1 - t) a + t b."""
    t = t[:, None]
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """a, b (D,), t (N,) -> (N, D) along the great circle (falls back to lerp when a, b are parallel)."""
    na, nb = a.norm(), b.norm()
    if na < eps or nb < eps:
        return lerp(a, b, t)
    cos = torch.clamp((a @ b) / (na * nb), -1.0, 1.0)
    omega = torch.arccos(cos)
    so = torch.sin(omega)
    if so < eps:
        return lerp(a, b, t)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def quantile_grid(n: int, lo: float = 0.03, hi: float = 0.97) -> torch.Tensor:
    """An n x n grid of 2-D codes at the prior's quantiles -> (n*n, 2), rows top to bottom = z2 high to low."""
    u = torch.linspace(lo, hi, n, dtype=torch.float64)
    q = torch.distributions.Normal(0.0, 1.0).icdf(u).float()        # (n,)
    z1 = q[None, :].expand(n, n)                                       # columns: z1 left to right
    z2 = q.flip(0)[:, None].expand(n, n)                               # rows: z2 top to bottom
    return torch.stack([z1, z2], dim=-1).reshape(n * n, 2)
