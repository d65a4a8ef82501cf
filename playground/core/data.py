"""Data sets for the training recipes, in one place. All of them can be had offline.

| name      | what                                   | source on a machine with no hub                 |
|-----------|----------------------------------------|-------------------------------------------------|
| fashion   | Fashion-MNIST, 60k train / 10k test    | Debian `dataset-fashion-mnist` (IDX .gz files); |
|           | 28x28 grey, 10 classes                 | torchvision's downloader when online            |
| digits    | 5,000 handwritten digits, 20x20 in     | Debian `opencv-doc`, examples/data/digits.png   |
|           | 28x28 (MNIST-style padding); 4.5k/500  | (500 per class, in order 0-9)                   |
| emoji     | Noto colour emoji + Unicode names      | Debian `fonts-noto-color-emoji`                 |
| synthetic | tiny procedurally drawn shapes, 10     | made here, for tests                            |
|           | classes, 28x28 grey                    |                                                 |

`load(name, split)` returns a `Dataset` whose images are uint8 tensors (N, H, W) for grey or
(N, H, W, 4) RGBA for emoji, with int64 labels (N,) and the class names.
"""
from __future__ import annotations

import gzip
import os
import struct
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from playground.core.errors import Unavailable

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
SYNTHETIC_CLASSES = ["hbar", "vbar", "square", "disc", "ring", "cross", "diag", "antidiag", "triangle", "dots"]

FASHION_DIRS = [os.environ.get("FASHION_MNIST_DIR", ""), "/usr/share/datasets/fashion-mnist"]
DIGITS_PNG = [os.environ.get("OPENCV_DIGITS_PNG", ""), "/usr/share/doc/opencv-doc/examples/data/digits.png"]
EMOJI_FONT = [os.environ.get("NOTO_EMOJI_FONT", ""), "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf"]


class DatasetMissing(Unavailable, FileNotFoundError):
    """A data set is not on this machine; the message says which package to install."""


def _cache(cache: Path | None) -> Path:
    """The cache folder: the one given (a service passes its Settings'), else the settings' default."""
    if cache is not None:
        return Path(cache)
    from playground.core import settings

    return settings.from_env().cache_dir


@dataclass
class Dataset:
    images: torch.Tensor   # uint8 (N, H, W) grey or (N, H, W, 4) RGBA
    labels: torch.Tensor   # int64 (N,)
    classes: list[str]     # class names (for emoji: one name per image)
    name: str

    def __len__(self) -> int:
        return len(self.labels)

    def float01(self) -> torch.Tensor:
        """Images as float in [0, 1], channels first: (N, 1, H, W) or (N, 4, H, W)."""
        x = self.images.float() / 255.0
        return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)


def _first(paths: list[str]) -> Path | None:
    for p in paths:
        if p and Path(p).exists():
            return Path(p)
    return None


# --- Fashion-MNIST ---------------------------------------------------------------------------

def _read_idx(path: Path) -> np.ndarray:
    """IDX format: big-endian magic (0, 0, dtype 0x08 = uint8, ndim), then ndim uint32 sizes, then data."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path} is not a uint8 IDX file")
    shape = struct.unpack(">" + "I" * ndim, raw[4 : 4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape).copy()


def _fashion_dir(cache: Path | None) -> Path:
    d = _first(FASHION_DIRS)
    if d and (d / "train-images-idx3-ubyte.gz").exists():
        return d
    # Online fallback: torchvision's downloader into the cache (the same IDX files).
    target = _cache(cache) / "fashion-mnist"
    raw = target / "FashionMNIST" / "raw"
    if (raw / "train-images-idx3-ubyte.gz").exists():
        return raw
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        try:
            from torchvision.datasets import FashionMNIST

            for train in (True, False):
                FashionMNIST(str(target), train=train, download=True)
            if (raw / "train-images-idx3-ubyte.gz").exists():
                return raw
        except Exception:  # noqa: BLE001 - any download failure means: tell the user what to install
            pass
    raise DatasetMissing(
        "Fashion-MNIST not found. Install it with `apt-get install dataset-fashion-mnist` "
        "(files in /usr/share/datasets/fashion-mnist) or set FASHION_MNIST_DIR to a folder of its IDX .gz files."
    )


def fashion(split: str = "train", cache: Path | None = None) -> Dataset:
    d = _fashion_dir(cache)
    prefix = "train" if split == "train" else "t10k"
    x = _read_idx(d / f"{prefix}-images-idx3-ubyte.gz")
    y = _read_idx(d / f"{prefix}-labels-idx1-ubyte.gz")
    return Dataset(torch.from_numpy(x), torch.from_numpy(y.astype(np.int64)), FASHION_CLASSES, "fashion")


# --- opencv digits ---------------------------------------------------------------------------

def digits(split: str = "train") -> Dataset:
    """digits.png holds 50 rows x 100 columns of 20x20 cells; rows 5k..5k+4 are digit k.
    Each is centred in 28x28 as MNIST does. A fixed split: per class, 50 test and 450 train."""
    p = _first(DIGITS_PNG)
    if p is None:
        raise DatasetMissing("digits.png not found. Install it with `apt-get install opencv-doc` "
                             "or set OPENCV_DIGITS_PNG to the file.")
    from PIL import Image

    img = np.asarray(Image.open(p).convert("L"))                      # (1000, 2000)
    cells = img.reshape(50, 20, 100, 20).transpose(0, 2, 1, 3).reshape(5000, 20, 20)
    labels = np.repeat(np.arange(10), 500)
    out = np.zeros((5000, 28, 28), np.uint8)
    out[:, 4:24, 4:24] = cells
    rng = np.random.default_rng(0)
    test = np.zeros(5000, bool)
    for k in range(10):
        test[k * 500 + rng.choice(500, 50, replace=False)] = True
    keep = test if split == "test" else ~test
    return Dataset(torch.from_numpy(out[keep]), torch.from_numpy(labels[keep]), DIGIT_CLASSES, "digits")


# --- Noto colour emoji -----------------------------------------------------------------------

def emoji_codepoints(font_path: Path | None = None) -> list[int]:
    """Single code points the font draws that carry a Unicode name and stand alone as pictures
    (no modifiers, joiners, variation selectors, tags or regional-indicator letters)."""
    from fontTools.ttLib import TTFont

    font_path = font_path or _first(EMOJI_FONT)
    if font_path is None:
        raise DatasetMissing("Noto Color Emoji not found. Install it with `apt-get install fonts-noto-color-emoji`.")
    cmap = TTFont(str(font_path), lazy=True).getBestCmap()
    keep = []
    for cp in sorted(cmap):
        ch = chr(cp)
        if cp < 0xA0 or not unicodedata.name(ch, ""):
            continue
        if unicodedata.category(ch) in ("Mn", "Me", "Cf", "Sk", "Zs") or 0x1F1E6 <= cp <= 0x1F1FF:
            continue
        keep.append(cp)
    return keep


def emoji(size: int = 64, cache: Path | None = None) -> Dataset:
    """Every emoji as an RGBA image (N, size, size, 4), label = index, classes = lower-case Unicode names.
    The font is a bitmap font at 109 px only; rendering all of them takes a few seconds, so the
    result is cached as .npy (no pickle) in the cache folder."""
    from PIL import Image, ImageDraw, ImageFont

    font_path = _first(EMOJI_FONT)
    cps = emoji_codepoints(font_path)
    names = [unicodedata.name(chr(c)).lower() for c in cps]
    cache = _cache(cache)
    f = cache / f"emoji-{size}-{len(cps)}.npy"
    if f.exists():
        arr = np.load(f, allow_pickle=False)
    else:
        font = ImageFont.truetype(str(font_path), 109)
        arr = np.zeros((len(cps), size, size, 4), np.uint8)
        for i, cp in enumerate(cps):
            canvas = Image.new("RGBA", (160, 160), (0, 0, 0, 0))
            ImageDraw.Draw(canvas).text((10, 10), chr(cp), font=font, embedded_color=True)
            box = canvas.getbbox()
            if box is None:
                continue
            glyph = canvas.crop(box)
            side = max(glyph.size)
            square = Image.new("RGBA", (side, side), (0, 0, 0, 0))
            square.paste(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
            arr[i] = np.asarray(square.resize((size, size), Image.LANCZOS))
        cache.mkdir(parents=True, exist_ok=True)
        np.save(f, arr, allow_pickle=False)
    return Dataset(torch.from_numpy(arr), torch.arange(len(cps)), names, "emoji")


# --- synthetic shapes (for tests) ------------------------------------------------------------

def synthetic(n: int = 200, seed: int = 0, size: int = 28) -> Dataset:
    """n images of 10 procedurally drawn shape classes with random position and scale."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    imgs = np.zeros((n, size, size), np.float32)
    labels = rng.integers(0, 10, n)
    for i, k in enumerate(labels):
        cx, cy = rng.uniform(size * 0.35, size * 0.65, 2)
        r = rng.uniform(size * 0.18, size * 0.3)
        dx, dy = xx - cx, yy - cy
        shape = {
            0: (abs(dy) < r * 0.25) & (abs(dx) < r),
            1: (abs(dx) < r * 0.25) & (abs(dy) < r),
            2: (abs(dx) < r) & (abs(dy) < r),
            3: dx**2 + dy**2 < r**2,
            4: abs(np.sqrt(dx**2 + dy**2) - r) < 1.5,
            5: ((abs(dx) < r * 0.2) | (abs(dy) < r * 0.2)) & (abs(dx) < r) & (abs(dy) < r),
            6: (abs(dx - dy) < 2) & (abs(dx) < r),
            7: (abs(dx + dy) < 2) & (abs(dx) < r),
            8: (dy < r) & (dy > -r) & (abs(dx) < (dy + r) / 2),
            9: ((np.round(xx) % 6 == 0) & (np.round(yy) % 6 == 0)) & (dx**2 + dy**2 < r**2 * 1.5),
        }[int(k)]
        imgs[i] = shape
    x = torch.from_numpy((np.clip(imgs, 0, 1) * 255).astype(np.uint8))
    return Dataset(x, torch.from_numpy(labels.astype(np.int64)), SYNTHETIC_CLASSES, "synthetic")


def load(name: str, split: str = "train", cache: Path | None = None, **kw) -> Dataset:
    """One entry point: load('fashion' | 'digits' | 'emoji' | 'synthetic', split, cache). `cache` is
    the Settings' cache folder (services pass theirs; None means the settings' default)."""
    if name == "fashion":
        return fashion(split, cache=cache)
    if name == "digits":
        return digits(split)
    if name == "emoji":
        return emoji(cache=cache, **kw)
    if name == "synthetic":
        return synthetic(seed=0 if split == "train" else 1, **kw)
    raise ValueError(f"unknown data set {name!r}")


def report(cache: Path | None = None, fetch: bool = False) -> list[tuple[str, str]]:
    """(data set, where it is or what to install) for each data set the labs read. With `fetch`,
    Fashion-MNIST is downloaded into the cache by torchvision when it is not installed and the
    network allows (the other two come only from their Debian packages)."""
    rows = []
    env = os.environ.get("HF_HUB_OFFLINE")
    try:
        if not fetch:
            os.environ["HF_HUB_OFFLINE"] = "1"   # only look, never download
        rows.append(("fashion", str(_fashion_dir(cache))))
    except DatasetMissing as e:
        rows.append(("fashion", f"missing: {e}"))
    finally:
        if env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env
    p = _first(DIGITS_PNG)
    rows.append(("digits", str(p) if p else "missing: `apt-get install opencv-doc` (or set OPENCV_DIGITS_PNG)"))
    p = _first(EMOJI_FONT)
    rows.append(("emoji", str(p) if p else "missing: `apt-get install fonts-noto-color-emoji` (or set NOTO_EMOJI_FONT)"))
    return rows


if __name__ == "__main__":   # python -m playground.core.data [--fetch]
    import sys

    for name, where in report(fetch="--fetch" in sys.argv[1:]):
        print(f"{name:8s} {where}")
