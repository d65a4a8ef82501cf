"""The CLIP lab's image gallery and its embedding index. No gradio here.

Bundled images: the Noto colour emoji (with their names), scikit-image's sample photos (in the
wheel) and the opencv-doc example photos (when the Debian package is installed). Each image has a
content hash (sha256 of its RGB pixels and size); the embeddings of a model are cached on disk as
one safetensors file per model, keyed by those hashes, so each image is encoded once per model.
Uploads are not cached on disk: they live in the user's session only.
"""
from __future__ import annotations

import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")
SKIMAGE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "coins", "horse", "hubble_deep_field",
                  "immunohistochemistry", "logo", "moon", "motorcycle_left", "page", "retina", "rocket", "text",
                  "brick", "grass", "gravel", "clock", "colorwheel")
OPENCV_PHOTOS = ("apple.jpg", "baboon.jpg", "butterfly.jpg", "fruits.jpg", "HappyFish.jpg", "orange.jpg",
                 "smarties.png", "squirrel_cls.jpg", "starry_night.jpg", "building.jpg", "chicky_512.png",
                 "Blender_Suzanne1.jpg", "home.jpg", "stuff.jpg", "sudoku.png", "box.png", "aero1.jpg",
                 "board.jpg", "pic1.png", "graf1.png", "left01.jpg", "opencv-logo.png")
THUMB = 160      # px, the longest side of a stored thumbnail
EMOJI_PX = 96    # emoji are rendered at this size


@dataclass(frozen=True)
class Item:
    title: str          # what the gallery shows under the image
    source: str         # emoji | scikit-image | opencv-doc | upload
    key: str            # content hash (hex), the cache key


def pixel_hash(img: Image.Image) -> str:
    img = img.convert("RGB")
    h = hashlib.sha256(f"{img.width}x{img.height}".encode())
    h.update(img.tobytes())
    return h.hexdigest()[:32]


def thumbnail(img: Image.Image, side: int = THUMB) -> Image.Image:
    img = img.convert("RGB")
    if max(img.size) > side:
        img = img.copy()
        img.thumbnail((side, side), Image.LANCZOS)
    return img


def _skimage_photos() -> list[tuple[str, Image.Image]]:
    out = []
    try:
        import skimage.data as sd
    except ImportError:
        return out
    for name in SKIMAGE_PHOTOS:
        try:
            arr = getattr(sd, name)()
        except Exception:  # noqa: BLE001 - a photo that needs a download is simply left out
            continue
        arr = np.asarray(arr)
        if arr.dtype != np.uint8:
            arr = (np.clip(arr.astype(np.float64) / max(arr.max(), 1e-9), 0, 1) * 255).astype(np.uint8)
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[..., :3]
        out.append((name.replace("_", " "), Image.fromarray(arr).convert("RGB")))
    return out


def _opencv_photos() -> list[tuple[str, Image.Image]]:
    out = []
    for fname in OPENCV_PHOTOS:
        p = OPENCV_DATA / fname
        if p.is_file():
            try:
                img = Image.open(p).convert("RGB")
            except Exception:  # noqa: BLE001
                continue
            out.append((re.sub(r"[_\-]+", " ", Path(fname).stem).lower(), img))
    return out


class Gallery:
    """The bundled images: thumbnails for display, full images (PIL) for encoding, and titles.
    `cache` is the folder where the rendered emoji are kept (needed when `emoji`)."""

    def __init__(self, emoji: bool = True, photos: bool = True, emoji_limit: int | None = None,
                 cache: Path | None = None):
        self.items: list[Item] = []
        self.images: list[Image.Image] = []
        if photos:
            for src, pairs in (("scikit-image", _skimage_photos()), ("opencv-doc", _opencv_photos())):
                for title, img in pairs:
                    self._add(f"{title} ({src})", src, thumbnail(img, 320))
        if emoji:
            from playground.clip.data import emoji_rgb

            if cache is None:
                raise ValueError("Gallery(emoji=True) needs the cache folder for the rendered emoji")
            arr, names = emoji_rgb(EMOJI_PX, cache=cache)
            for i, name in enumerate(names[:emoji_limit]):
                self._add(name, "emoji", Image.fromarray(arr[i]))

    def _add(self, title: str, source: str, img: Image.Image) -> None:
        self.items.append(Item(title, source, pixel_hash(img)))
        self.images.append(img)

    def __len__(self) -> int:
        return len(self.items)

    def thumb(self, i: int) -> Image.Image:
        return thumbnail(self.images[i])


class EmbeddingCache:
    """{content hash: unit vector} for one model, stored as `<folder>/<model key>.safetensors`."""

    def __init__(self, folder: Path, model_key: str):
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", model_key)[:120]
        self.path = Path(folder) / f"{safe}.safetensors"
        self.lock = threading.Lock()
        self.vectors: dict[str, np.ndarray] = {}
        if self.path.exists():
            from safetensors.numpy import load_file

            try:
                self.vectors = dict(load_file(str(self.path)))
            except Exception:  # noqa: BLE001 - a broken cache is rebuilt, never trusted
                self.vectors = {}

    def get(self, key: str) -> np.ndarray | None:
        return self.vectors.get(key)

    def put_many(self, pairs: dict[str, np.ndarray]) -> None:
        from safetensors.numpy import save_file

        with self.lock:
            self.vectors.update({k: np.ascontiguousarray(v, np.float32) for k, v in pairs.items()})
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            save_file(self.vectors, str(tmp))
            tmp.replace(self.path)


def index(gallery: Gallery, encode: Callable[[list[Image.Image]], np.ndarray], cache: EmbeddingCache,
          progress: Callable[[float, str], None] | None = None, batch: int = 64) -> np.ndarray:
    """Embeddings (N, D) of every gallery image: from the cache where present, else encoded in
    batches (reporting progress) and written to the cache."""
    missing = [i for i, it in enumerate(gallery.items) if cache.get(it.key) is None]
    for start in range(0, len(missing), batch):
        part = missing[start:start + batch]
        if progress:
            progress(start / max(len(missing), 1), f"encoding images {start + 1}-{start + len(part)} of {len(missing)}")
        emb = encode([gallery.images[i] for i in part])
        cache.put_many({gallery.items[i].key: e for i, e in zip(part, emb)})
    if progress:
        progress(1.0, "index ready")
    return np.stack([cache.get(it.key) for it in gallery.items]).astype(np.float32)
