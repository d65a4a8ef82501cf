"""Image helpers shared by the labs: tensors <-> PIL, grids, upscaling for a projector, GIFs."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(x: torch.Tensor, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """(C, H, W) or (H, W) float in [lo, hi] -> (H, W[, C]) uint8."""
    x = ((x.detach().float().cpu() - lo) / (hi - lo)).clamp(0, 1)
    arr = (x.numpy() * 255 + 0.5).astype(np.uint8)
    if arr.ndim == 3:
        arr = arr[0] if arr.shape[0] == 1 else arr.transpose(1, 2, 0)
    return arr


def to_pil(x: torch.Tensor, scale: int = 1, lo: float = 0.0, hi: float = 1.0) -> Image.Image:
    """A tensor image as PIL, enlarged `scale` times with nearest neighbour (crisp pixels on a projector)."""
    img = Image.fromarray(to_uint8(x, lo, hi))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    return img


def grid(x: torch.Tensor, nrow: int, pad: int = 2, lo: float = 0.0, hi: float = 1.0, pad_value: float = 1.0) -> torch.Tensor:
    """(N, C, H, W) -> (C, rows*(H+pad)+pad, nrow*(W+pad)+pad), padded with `pad_value` (in [lo, hi] units)."""
    n, c, h, w = x.shape
    rows = (n + nrow - 1) // nrow
    out = torch.full((c, rows * (h + pad) + pad, nrow * (w + pad) + pad), float(pad_value))
    for i in range(n):
        r, k = divmod(i, nrow)
        out[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + k * (w + pad) : pad + k * (w + pad) + w] = (
            (x[i].detach().float().cpu() - lo) / (hi - lo)
        )
    return out


def from_pil(img: Image.Image, size: int, mode: str = "L", invert: bool = False) -> torch.Tensor:
    """PIL -> (C, size, size) float in [0, 1], resized to fit and centred."""
    img = img.convert(mode)
    img.thumbnail((size, size), Image.LANCZOS)
    canvas = Image.new(mode, (size, size), 0 if not invert else 255)
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2))
    arr = np.asarray(canvas, dtype=np.float32) / 255.0
    if invert:
        arr = 1.0 - arr
    t = torch.from_numpy(arr)
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1)


def save_gif(frames: list[Image.Image], ms_per_frame: int = 120, path: str | Path | None = None) -> str:
    """Write an animated GIF (looping) and return its path (a fresh temp file unless given)."""
    if path is None:
        path = tempfile.NamedTemporaryFile(prefix="playground-", suffix=".gif", delete=False).name
    frames = [f.convert("RGB") for f in frames]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0)
    return str(path)
