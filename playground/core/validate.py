"""Input validation for every public endpoint: one policy, used by every service.

Every event handler is reachable through the Gradio API with arbitrary JSON, so nothing here trusts
the UI's own limits (slider ranges, upload filters). Each check returns a clean value or raises
`InputError`, whose message names the field and says what to send; `core.ui.handler` shows it as a
gr.Error and the app keeps serving.

The policy
- **Numbers** (sliders, seeds, counts, latents): the value must be a finite number (a bool, None,
  text that is not a number, NaN and inf are refused). A finite number outside the control's range
  is **clamped** into it, as the slider itself would do; integers are rounded. A seed is an integer
  clamped into [0, 2^31 - 1] (so -1 becomes 0).
- **Lists of numbers**: a list of exactly the expected length; each element as above.
- **Choices** (dropdowns, radios, check boxes): must be one of the listed options; anything else is
  refused with the list.
- **Flags**: true or false, nothing else.
- **Text**: must be text; NUL and other control characters (except newline and tab) are removed;
  longer than the field's cap is refused (the message gives the cap); blank is refused unless the
  field allows it.
- **Images**: a file, bytes, PIL image or array, refused when it is not an image, too many bytes or
  pixels, or truncated; turned upright by its EXIF orientation and converted to the mode asked for.
"""
from __future__ import annotations

import io
import math
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from playground.core.errors import InputError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024   # 10 MB per image
MAX_PIXELS = 16_000_000               # 16 megapixels (a 4000x4000 photo); larger is refused
MAX_SIDE = 8192
ALLOWED_FORMATS = {"PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"}
MAX_TEXT = 4000                       # characters in a prompt or a label list
MAX_SEED = 2**31 - 1
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")   # control characters but tab (09) and newline (0a)

# Decompression bombs: PIL raises DecompressionBombError above 2x this, warns above it.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def _fmt(v: float) -> str:
    return f"{v:g}"


def number(name: str, value: Any, lo: float, hi: float, *, integer: bool = False) -> float | int:
    """A finite number, clamped into [lo, hi]. NaN, inf and non-numbers are refused."""
    want = f"{'a whole number' if integer else 'a number'} from {_fmt(lo)} to {_fmt(hi)}"
    if isinstance(value, bool) or value is None:
        raise InputError(f"{name} must be {want}.")
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be {want}, not {str(value)[:40]!r}.") from None
    if not math.isfinite(v):
        raise InputError(f"{name} must be {want} (got {v}).")
    v = min(max(v, lo), hi)
    return int(round(v)) if integer else v


def numbers(name: str, values: Any, lo: float, hi: float, *, count: int | None = None) -> list[float]:
    """A list of finite numbers, each clamped; `count` fixes the length."""
    if not isinstance(values, (list, tuple)):
        raise InputError(f"{name} must be a list of numbers from {_fmt(lo)} to {_fmt(hi)}.")
    if count is not None and len(values) != count:
        raise InputError(f"{name} must have exactly {count} numbers, not {len(values)}.")
    return [number(f"{name} [{i + 1}]", v, lo, hi) for i, v in enumerate(values)]


def integer(name: str, value: Any, lo: int, hi: int) -> int:
    return int(number(name, value, lo, hi, integer=True))


def seed(value: Any, name: str = "Seed") -> int:
    """A seed: a whole number clamped into [0, 2^31 - 1]."""
    return integer(name, value, 0, MAX_SEED)


def flag(name: str, value: Any) -> bool:
    """True or false (a check box)."""
    if not isinstance(value, bool):
        raise InputError(f"{name} must be true or false, not {str(value)[:40]!r}.")
    return value


def choice(name: str, value: Any, options: list | tuple) -> Any:
    """One of `options`, exactly."""
    try:
        ok = value in options
    except TypeError:  # an unhashable value against a set or dict of options
        ok = False
    if not ok:
        shown = ", ".join(map(str, list(options)[:30])) + (", ..." if len(options) > 30 else "")
        raise InputError(f"{name} must be one of: {shown} (got {str(value)[:40]!r}).")
    return value


def choices(name: str, values: Any, options: list | tuple) -> list:
    """A list (or None, meaning none) of distinct options, in the order of `options`."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, (list, tuple)):
        raise InputError(f"{name} must be a list of options from: {', '.join(map(str, options))}.")
    chosen = {choice(name, v, options) for v in values}
    return [o for o in options if o in chosen]


def text(name: str, value: Any, *, max_chars: int = MAX_TEXT, allow_empty: bool = False) -> str:
    """Text with control characters removed; refused when longer than `max_chars` or blank."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise InputError(f"{name} must be text.")
    value = _CONTROL.sub("", value)
    if len(value) > max_chars:
        raise InputError(f"{name} is {len(value):,} characters; shorten it to at most {max_chars:,}.")
    if not allow_empty and not value.strip():
        raise InputError(f"{name} is empty; type something first.")
    return value


def _open_checked(raw: bytes, name: str) -> Image.Image:
    if len(raw) > MAX_UPLOAD_BYTES:
        raise InputError(f"{name}: that file is {len(raw) / 1e6:.1f} MB; upload an image under {MAX_UPLOAD_BYTES // 1_000_000} MB.")
    try:
        img = Image.open(io.BytesIO(raw))
    except UnidentifiedImageError:
        raise InputError(f"{name}: that file is not an image; upload a PNG, JPEG, GIF, BMP, WEBP or TIFF.") from None
    except Image.DecompressionBombError:
        raise InputError(f"{name}: that image is too large; use one under {MAX_PIXELS / 1e6:.0f} megapixels.") from None
    if img.format not in ALLOWED_FORMATS:
        raise InputError(f"{name}: {img.format} images are not supported; upload a PNG, JPEG, GIF, BMP, WEBP or TIFF.")
    w, h = img.size
    if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
        raise InputError(f"{name}: that image is {w}x{h} ({w * h / 1e6:.0f} megapixels); use one under "
                       f"{MAX_PIXELS / 1e6:.0f} megapixels and {MAX_SIDE} px a side.")
    if w < 1 or h < 1:
        raise InputError(f"{name}: that image is empty.")
    try:
        img.load()
    except Exception:  # noqa: BLE001 - truncated or corrupt data of any kind
        raise InputError(f"{name}: that image could not be decoded (truncated or corrupt); try another file.") from None
    return img


def image(value: Any, *, mode: str = "RGB", required: bool = True, name: str = "Image") -> Image.Image | None:
    """An uploaded image, from a path, bytes, a PIL image or a numpy array, checked (format,
    bytes, pixels), turned upright by its EXIF orientation and converted to `mode`."""
    if value is None or (isinstance(value, (str, dict)) and not value):
        if required:
            raise InputError(f"{name}: upload or choose an image first.")
        return None
    for _ in range(2):  # an ImageEditor value {"composite": FileData, ...}, then a FileData {"path": ...}
        if isinstance(value, dict):
            value = value.get("composite") if "composite" in value else value.get("path")
    if value is None or isinstance(value, dict) or (isinstance(value, str) and not value):
        raise InputError(f"{name}: upload or choose an image first.")
    if isinstance(value, (str, os.PathLike)):
        p = Path(value)
        if not p.is_file():
            raise InputError(f"{name}: the uploaded file was not found; upload it again.")
        size = p.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise InputError(f"{name}: that file is {size / 1e6:.1f} MB; upload an image under {MAX_UPLOAD_BYTES // 1_000_000} MB.")
        img = _open_checked(p.read_bytes(), name)
    elif isinstance(value, (bytes, bytearray)):
        img = _open_checked(bytes(value), name)
    elif isinstance(value, Image.Image):
        w, h = value.size
        if w * h > MAX_PIXELS:
            raise InputError(f"{name}: that image is {w}x{h}; use one under {MAX_PIXELS / 1e6:.0f} megapixels.")
        img = value
    elif isinstance(value, np.ndarray):
        if value.ndim not in (2, 3) or value.size == 0 or value.shape[0] * value.shape[1] > MAX_PIXELS:
            raise InputError(f"{name}: expected an H x W (x C) image under {MAX_PIXELS / 1e6:.0f} megapixels.")
        if value.ndim == 3 and value.shape[2] not in (1, 3, 4):
            raise InputError(f"{name}: expected 1, 3 or 4 channels, not {value.shape[2]}.")
        arr = value if value.dtype == np.uint8 else np.clip(np.nan_to_num(value), 0, 255).astype(np.uint8)
        img = Image.fromarray(arr.squeeze(2) if arr.ndim == 3 and arr.shape[2] == 1 else arr)
    else:
        raise InputError(f"{name}: expected an image.")
    img = ImageOps.exif_transpose(img)
    if mode == "L" and img.mode in ("RGBA", "LA", "P"):
        # Transparent areas become white paper, not black, before turning grey.
        rgba = img.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(bg, rgba)
    return img.convert(mode)
