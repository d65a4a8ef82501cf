"""What the GAN tab computes, without any UI: the bundled generators (loaded lazily, once, shared),
seeds -> z, style-mixing grids, per-layer mixes, and the 2-D picture of z and w.

A seed always means the same z: z = randn(z_dim) from a generator seeded with it, so a seed typed in
the tab, passed to the API or used in demos/eval_gan.py gives the same image.
"""
from __future__ import annotations

import threading
from pathlib import Path

import torch

from playground.core import checkpoint
from playground.gan.stylegan import COARSE, FINE, MIDDLE, StyleGenerator, mix, truncate

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets" / "gan"
MODEL = "stylegan_fashion"          # ours (the EMA weights)
PEER = "dcgan_fashion"              # the DCGAN peer
LAYER_RES = (4, 8, 8, 16, 16, 32, 32)
LAYER_NAMES = tuple(f"{i}: {r}x{r}" for i, r in enumerate(LAYER_RES))
PRESETS = {"coarse": COARSE, "middle": MIDDLE, "fine": FINE}

_lock = threading.Lock()
_models: dict[str, tuple[torch.nn.Module, dict]] = {}


def load(name: str = MODEL, folder: Path | None = None) -> tuple[torch.nn.Module, dict]:
    """A bundled generator and its card, loaded on first use and shared by every session."""
    key = str((folder or ASSETS) / name)
    with _lock:
        if key not in _models:
            model, card = checkpoint.load(key)
            _models[key] = (model.eval().requires_grad_(False), card)
        return _models[key]


def card(name: str) -> dict | None:
    """A card without loading its weights (None when the checkpoint is not there)."""
    try:
        return checkpoint.read_card(ASSETS / name)
    except checkpoint.CheckpointError:
        return None


def z_of(seeds, z_dim: int) -> torch.Tensor:
    """One z per seed: (N, z_dim), z = randn from torch.Generator().manual_seed(seed)."""
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def to01(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> [0, 1] for display."""
    return ((x + 1) / 2).clamp(0, 1)


def noise_mode(on: bool) -> str:
    return "fixed" if on else "off"


@torch.inference_mode()
def mixing_grid(G: StyleGenerator, src_seeds, style_seeds, layers, psi: float = 1.0, noise_on: bool = True,
                noise_seed: int = 0) -> dict[str, torch.Tensor]:
    """Sources (S images), styles (T images) and their mixes (T, S): mix (i, j) takes the layers in
    `layers` from style seed i and all other layers from source seed j. One generator call for all."""
    S, T = len(src_seeds), len(style_seeds)
    w = G.map(z_of([*src_seeds, *style_seeds], G.config.z_dim), psi)      # (S + T, w_dim)
    w_src, w_sty = w[:S], w[S:]
    a = torch.zeros(G.num_ws)
    a[list(layers)] = 1.0
    ws_src = w_src[:, None].expand(-1, G.num_ws, -1)                      # (S, L, w_dim)
    ws_sty = w_sty[:, None].expand(-1, G.num_ws, -1)                      # (T, L, w_dim)
    ws_mix = mix(w_src.repeat(T, 1), w_sty.repeat_interleave(S, 0), a)    # (T * S, L, w_dim)
    w_avg = G.w_avg[None, None].expand(1, G.num_ws, -1)                   # (1, L, w_dim)
    out = to01(G.synthesize(torch.cat([ws_src, ws_sty, ws_mix, w_avg]), noise_mode(noise_on), noise_seed))
    return {"sources": out[:S], "styles": out[S:S + T], "mixes": out[S + T:-1].reshape(T, S, *out.shape[1:]),
            "w_avg": out[-1]}


def compose(sources: torch.Tensor, styles: torch.Tensor, mixes: torch.Tensor, pad: int = 2,
            gap: int = 4) -> torch.Tensor:
    """The classic StyleGAN figure: sources along the top, styles down the left, mixes in between,
    with a wider gap after the header row and column. -> (1, H, W) in [0, 1]."""
    T, S, c, h, w = mixes.shape
    H = pad + (h + pad) * (T + 1) + gap
    W = pad + (w + pad) * (S + 1) + gap
    canvas = torch.full((c, H, W), 1.0)
    def put(img, r, k):
        y = pad + r * (h + pad) + (gap if r else 0)
        x = pad + k * (w + pad) + (gap if k else 0)
        canvas[:, y:y + h, x:x + w] = img
    for j in range(S):
        put(sources[j], 0, j + 1)
    for i in range(T):
        put(styles[i], i + 1, 0)
        for j in range(S):
            put(mixes[i, j], i + 1, j + 1)
    return canvas


@torch.inference_mode()
def single_mix(G: StyleGenerator, seed_a: int, seed_b: int, weights, psi: float = 1.0, noise_on: bool = True,
               noise_seed: int = 0) -> dict[str, torch.Tensor]:
    """Image A, image B and the per-layer blend ws[:, i] = (1 - a_i) w_A + a_i w_B."""
    w = G.map(z_of([seed_a, seed_b], G.config.z_dim), psi)                # (2, w_dim)
    ws = torch.cat([w[:1, None].expand(1, G.num_ws, -1), w[1:, None].expand(1, G.num_ws, -1),
                    mix(w[:1], w[1:], weights)])                          # (3, L, w_dim)
    out = to01(G.synthesize(ws, noise_mode(noise_on), noise_seed))
    return {"a": out[0], "b": out[1], "mix": out[2]}


@torch.inference_mode()
def sample(G: StyleGenerator, n: int, seed: int = 0, psi: float = 1.0, noise_on: bool = True,
           noise_seed: int = 0) -> torch.Tensor:
    """n images in [0, 1] from seeds seed .. seed + n - 1."""
    return to01(G(z_of(range(seed, seed + n), G.config.z_dim), psi, noise_mode(noise_on), noise_seed))


@torch.inference_mode()
def mapping_projection(G: StyleGenerator, n: int = 400, psi: float = 0.7, seed: int = 0) -> dict:
    """z and w of n seeds, each projected to 2-D by its own PCA; the truncated w' = w_avg + psi (w - w_avg)
    and w_avg in the same basis as w. Returns numpy-free lists for plotting."""
    z = z_of(range(seed, seed + n), G.config.z_dim)                        # (n, z_dim)
    w = G.map(z)                                                           # (n, w_dim)
    wt = truncate(w, G.w_avg, psi)

    def pca(x):
        mu = x.mean(0)
        _, s, v = torch.linalg.svd(x - mu, full_matrices=False)
        var = s ** 2
        return mu, v[:2].T, (var[:2] / var.sum()).tolist()               # basis (D, 2)

    mz, bz, ez = pca(z)
    mw, bw, ew = pca(w)
    return {"z": ((z - mz) @ bz).tolist(), "w": ((w - mw) @ bw).tolist(), "w_trunc": ((wt - mw) @ bw).tolist(),
            "w_avg": ((G.w_avg - mw) @ bw).tolist(), "explained_z": ez, "explained_w": ew, "psi": psi,
            "spread_w": float((w - G.w_avg).norm(dim=1).mean()), "spread_w_trunc": float((wt - G.w_avg).norm(dim=1).mean())}
