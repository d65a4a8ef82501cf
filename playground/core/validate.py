"""Input validation for every public endpoint. Each check either returns a clean value or raises
gr.Error with a message that tells the user what to change; the app keeps serving either way.

Every event handler is reachable through the Gradio API with arbitrary JSON, so nothing here
trusts the UI's own limits (slider ranges, upload filters).
"""
from __future__ import annotations

import io
import math
import os
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024   # 10 MB per image
MAX_PIXELS = 16_000_000               # 16 megapixels (a 4000x4000 photo); larger is refused
MAX_SIDE = 8192
ALLOWED_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"}
MAX_TEXT = 4000                       # characters in a prompt or a label list
MAX_SEED = 2**31 - 1

# Decompression bombs: PIL raises DecompressionBombError above 2x this, warns above it.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def number(name: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> float | int:
    """A finite number, clamped into [lo, hi]. NaN, inf and non-numbers are refused."""
    if isinstance(value, bool) or value is None:
        raise gr.Error(f"{name} must be a number between {lo} and {hi}.")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number between {lo} and {hi}, not {str(value)[:40]!r}.") from None
    if not math.isfinite(v):
        raise gr.Error(f"{name} must be a finite number between {lo} and {hi} (got {v}).")
    v = min(max(v, lo), hi)
    return int(round(v)) if integer else v


def numbers(name: str, values: Any, lo: float, hi: float, *, count: int | None = None) -> list[float]:
    """A list of finite numbers, each clamped; `count` fixes the length."""
    if not isinstance(values, (list, tuple)):
        raise gr.Error(f"{name} must be a list of numbers.")
    if count is not None and len(values) != count:
        raise gr.Error(f"{name} must have exactly {count} numbers, not {len(values)}.")
    return [number(f"{name}[{i}]", v, lo, hi) for i, v in enumerate(values)]


def integer(name: str, value: Any, lo: int, hi: int) -> int:
    return int(number(name, value, lo, hi, integer=True))


def seed(value: Any) -> int:
    """A seed in [0, 2^31 - 1]; -1 or an empty box is not allowed (say which seed to use)."""
    return integer("Seed", value, 0, MAX_SEED)


def choice(name: str, value: Any, options: list[str] | tuple[str, ...]) -> str:
    if value not in options:
        raise gr.Error(f"{name} must be one of: {', '.join(map(str, options))}.")
    return value


def text(name: str, value: Any, *, max_chars: int = MAX_TEXT, allow_empty: bool = False) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise gr.Error(f"{name} must be text.")
    value = value.replace("\x00", "")
    if len(value) > max_chars:
        raise gr.Error(f"{name} is {len(value):,} characters; shorten it to at most {max_chars:,}.")
    if not allow_empty and not value.strip():
        raise gr.Error(f"{name} is empty; type something first.")
    return value


def _open_checked(raw: bytes) -> Image.Image:
    if len(raw) > MAX_UPLOAD_BYTES:
        raise gr.Error(f"That file is {len(raw) / 1e6:.1f} MB; upload an image under {MAX_UPLOAD_BYTES // 1_000_000} MB.")
    try:
        img = Image.open(io.BytesIO(raw))
    except UnidentifiedImageError:
        raise gr.Error("That file is not an image; upload a PNG, JPEG, GIF, BMP, WEBP or TIFF.") from None
    except Image.DecompressionBombError:
        raise gr.Error(f"That image is too large; use one under {MAX_PIXELS / 1e6:.0f} megapixels.") from None
    if img.format not in ALLOWED_FORMATS:
        raise gr.Error(f"{img.format} images are not supported; upload a PNG, JPEG, GIF, BMP, WEBP or TIFF.")
    w, h = img.size
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise gr.Error(f"That image is {w}x{h} ({w * h / 1e6:.0f} megapixels); use one under "
                       f"{MAX_PIXELS / 1e6:.0f} megapixels and {MAX_SIDE} px a side.")
    if w < 1 or h < 1:
        raise gr.Error("That image is empty.")
    try:
        img.load()
    except Exception:  # noqa: BLE001 - truncated or corrupt data of any kind
        raise gr.Error("That image could not be decoded (truncated or corrupt); try another file.") from None
    return img


def image(value: Any, *, mode: str = "RGB", required: bool = True, name: str = "Image") -> Image.Image | None:
    """An uploaded image, from a path, bytes, a PIL image or a numpy array, checked (format,
    bytes, pixels), turned upright by its EXIF orientation and converted to `mode`."""
    if value is None or (isinstance(value, (str, dict)) and not value):
        if required:
            raise gr.Error(f"{name}: upload or choose an image first.")
        return None
    if isinstance(value, dict):  # a FileData dict from the API, or an ImageEditor value
        value = value.get("composite") if "composite" in value else value.get("path")
        if value is None:
            raise gr.Error(f"{name}: upload or choose an image first.")
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        if not p.is_file():
            raise gr.Error(f"{name}: the uploaded file was not found; upload it again.")
        size = p.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise gr.Error(f"That file is {size / 1e6:.1f} MB; upload an image under {MAX_UPLOAD_BYTES // 1_000_000} MB.")
        img = _open_checked(p.read_bytes())
    elif isinstance(value, (bytes, bytearray)):
        img = _open_checked(bytes(value))
    elif isinstance(value, Image.Image):
        w, h = value.size
        if w * h > MAX_PIXELS:
            raise gr.Error(f"That image is {w}x{h}; use one under {MAX_PIXELS / 1e6:.0f} megapixels.")
        img = value
    elif isinstance(value, np.ndarray):
        if value.ndim not in (2, 3) or value.size == 0 or value.shape[0] * value.shape[1] > MAX_PIXELS:
            raise gr.Error(f"{name}: expected an H x W (x C) image under {MAX_PIXELS / 1e6:.0f} megapixels.")
        if value.ndim == 3 and value.shape[2] not in (1, 3, 4):
            raise gr.Error(f"{name}: expected 1, 3 or 4 channels, not {value.shape[2]}.")
        arr = value if value.dtype == np.uint8 else np.clip(np.nan_to_num(value), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr.squeeze(2) if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    else:
        raise gr.Error(f"{name}: expected an image.")
    img = ImageOps.exif_transpose(img)
    if mode == "L" and img.mode in ("RGBA", "LA", "P"):
        # Transparent areas become white paper, not black, before turning grey.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    return img.convert(mode)
