"""Image helpers shared by the labs: tensors <-> PIL, grids, upscaling for a projector, GIFs."""
from __future__ import annotations

import tempfile
import threading
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageChops


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
    """(N, C, H, W) in [lo, hi] -> one image (C, H', W') in [0, 1]: torchvision's make_grid, `nrow`
    images a row, `pad` pixels of `pad_value` (a display value in [0, 1]) around each."""
    from torchvision.utils import make_grid

    x01 = (x.detach().float().cpu() - lo) / (hi - lo)
    g = make_grid(x01, nrow=nrow, padding=pad, pad_value=pad_value)   # grey input comes back as 3 channels
    return g[:1] if x.shape[1] == 1 else g


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
    """Write an animated GIF (looping) and return its path (a fresh temp file unless given). Without PIL's
    palette optimisation (a pass in Python over each frame's palette): the frames decode the same, a
    grey GIF is written 3 times faster (the VAE's interpolation: 11.6 ms -> 3.2 ms) and is no larger."""
    if path is None:
        path = tempfile.NamedTemporaryFile(prefix="playground-", suffix=".gif", delete=False).name
    made: dict[int, Image.Image] = {}          # a frame repeated (a ping-pong, a held end) is converted once
    for f in frames:
        if id(f) not in made:
            made[id(f)] = _gif_frame(f)
    frames = [made[id(f)] for f in frames]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=ms_per_frame, loop=0, optimize=False)
    return str(path)


def _gif_frame(f: Image.Image) -> Image.Image:
    """A grey frame (R = G = B everywhere: the Fashion-MNIST labs) as its L band: a GIF holds its 256 levels
    exactly, and PIL skips the palette search it runs on an RGB frame (four times the time of the write)."""
    if f.mode == "L":
        return f
    f = f.convert("RGB")
    r, g, b = f.split()
    if ImageChops.difference(r, g).getbbox() is None and ImageChops.difference(g, b).getbbox() is None:
        return r
    return f


_PNG_DIR = Path(tempfile.gettempdir()) / "playground-png"


def png_file(img: Image.Image) -> str:
    """The image as a PNG file, written once per distinct picture (named by a hash of its pixels) and
    reused: a gallery that shows the same thumbnails to a whole class encodes each one once, not on every
    search (Gradio encodes a PIL image it is given on every call: 2 ms each, a dozen per search)."""
    import hashlib

    key = hashlib.sha1(f"{img.mode}{img.size}".encode() + img.tobytes()).hexdigest()
    path = _PNG_DIR / f"{key}.png"
    if not path.exists():
        _PNG_DIR.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        img.save(tmp, format="PNG")
        tmp.replace(path)                       # atomic: a reader never sees half a file
    return str(path)
