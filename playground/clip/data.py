"""Image-caption pairs that can be had offline, for training and evaluating the small CLIP.

- emoji: the Noto colour emoji with their Unicode names, plus templated paraphrases, and richer captions
  derived from Unicode's own data: the CLDR short name and keywords ("hot beverage": coffee, drink, hot,
  steaming, tea; Debian `unicode-cldr-core`) and the emoji group and subgroup ("food-drink", "drink";
  Debian `unicode-data`);
- fashion: Fashion-MNIST with templated captions built from synonyms of the class names;
- shapes: procedurally drawn coloured shapes with compositional captions
  (size, colour, shape, position), e.g. "a small blue star in the top left".

- photos: the gallery's photos captioned by their titles.

Held-out pairs for the card: every tenth emoji (by a seeded permutation), the Fashion-MNIST test
split, fresh shape drawings, and shapes whose (colour, shape) pair never appears in training. A
validation split (other emoji, the last Fashion-MNIST training images) is kept out of training too: it
is what recipes are compared on, so that the held-out figures never choose a model.
Images are uint8 (N, S, S, 3) RGB arrays. No gradio here.
"""
from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "orange": (245, 140, 20), "yellow": (240, 220, 30), "green": (40, 160, 60),
           "blue": (40, 80, 220), "purple": (130, 50, 170), "pink": (240, 120, 180), "black": (20, 20, 20)}
SHAPES = ("circle", "square", "triangle", "star", "cross", "diamond")
SIZES = ("small", "big")
POSITIONS = {"top left": (0.28, 0.28), "top right": (0.72, 0.28), "bottom left": (0.28, 0.72),
             "bottom right": (0.72, 0.72), "middle": (0.5, 0.5)}
# (colour, shape) pairs never drawn in training: compositional generalisation is measured on them.
UNSEEN_PAIRS = (("blue", "star"), ("yellow", "triangle"), ("green", "diamond"),
                ("pink", "circle"), ("purple", "square"), ("orange", "cross"))
SHAPE_TEMPLATES = ("a {size} {colour} {shape} in the {pos}", "a {colour} {shape}, {size}, in the {pos}",
                   "{size} {colour} {shape} at the {pos}", "a drawing of a {size} {colour} {shape} in the {pos}",
                   "there is a {size} {colour} {shape} in the {pos}")

FASHION_NAMES = {  # Fashion-MNIST class -> words people use for it; the first is the zero-shot label
    "T-shirt/top": ("t-shirt", "top", "tee"), "Trouser": ("trousers", "pants", "jeans"),
    "Pullover": ("pullover", "sweater", "jumper"), "Dress": ("dress", "gown"), "Coat": ("coat", "jacket"),
    "Sandal": ("sandal", "flip flop"), "Shirt": ("shirt", "blouse"), "Sneaker": ("sneaker", "trainer", "running shoe"),
    "Bag": ("bag", "handbag", "purse"), "Ankle boot": ("ankle boot", "boot"),
}
FASHION_LABELS = [v[0] for v in FASHION_NAMES.values()]
FASHION_TEMPLATES = ("a photo of a {}.", "a {}", "a grey photo of a {}.", "a picture of a {}",
                     "a small image of a {}.", "product photo of a {}", "{}")
EMOJI_TEMPLATES = ("{}", "{} emoji", "an emoji of {}", "a {} icon", "a picture of {}", "the {} emoji")


def _star(cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    pts = []
    for i in range(10):
        a = -np.pi / 2 + i * np.pi / 5
        rr = r if i % 2 == 0 else r * 0.45
        pts.append((cx + rr * np.cos(a), cy + rr * np.sin(a)))
    return pts


def draw_shape(colour: str, shape: str, size: str, pos: str, rng: np.random.Generator, px: int = 48) -> np.ndarray:
    """One drawing (px, px, 3) uint8 on a light, slightly tinted background, drawn at 4x and downsampled."""
    s = 4 * px
    bg = tuple(int(v) for v in rng.integers(205, 256, 3))
    img = Image.new("RGB", (s, s), bg)
    d = ImageDraw.Draw(img)
    fx, fy = POSITIONS[pos]
    cx, cy = (fx + rng.uniform(-0.06, 0.06)) * s, (fy + rng.uniform(-0.06, 0.06)) * s
    r = s * (rng.uniform(0.08, 0.11) if size == "small" else rng.uniform(0.17, 0.21))
    c = tuple(int(np.clip(v + rng.integers(-20, 21), 0, 255)) for v in COLOURS[colour])
    if shape == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=c)
    elif shape == "square":
        d.rectangle([cx - r * 0.85, cy - r * 0.85, cx + r * 0.85, cy + r * 0.85], fill=c)
    elif shape == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r * 0.8), (cx + r, cy + r * 0.8)], fill=c)
    elif shape == "star":
        d.polygon(_star(cx, cy, r * 1.1), fill=c)
    elif shape == "cross":
        w = r * 0.35
        d.rectangle([cx - r, cy - w, cx + r, cy + w], fill=c)
        d.rectangle([cx - w, cy - r, cx + w, cy + r], fill=c)
    elif shape == "diamond":
        d.polygon([(cx, cy - r * 1.1), (cx + r * 0.8, cy), (cx, cy + r * 1.1), (cx - r * 0.8, cy)], fill=c)
    return np.asarray(img.resize((px, px), Image.LANCZOS))


def shapes(n: int, seed: int, *, unseen: bool = False, px: int = 48, template: str | None = None):
    """n drawings and captions. unseen=False: only (colour, shape) pairs outside UNSEEN_PAIRS;
    unseen=True: only those pairs. Returns (images (n, px, px, 3) uint8, captions, canonical captions)."""
    rng = np.random.default_rng(seed)
    pairs = [(c, s) for c in COLOURS for s in SHAPES if ((c, s) in UNSEEN_PAIRS) == unseen]
    imgs = np.zeros((n, px, px, 3), np.uint8)
    caps, canon = [], []
    for i in range(n):
        colour, shape = pairs[rng.integers(len(pairs))]
        size, pos = SIZES[rng.integers(2)], list(POSITIONS)[rng.integers(len(POSITIONS))]
        imgs[i] = draw_shape(colour, shape, size, pos, rng, px)
        t = template or SHAPE_TEMPLATES[rng.integers(len(SHAPE_TEMPLATES))]
        caps.append(t.format(size=size, colour=colour, shape=shape, pos=pos))
        canon.append(SHAPE_TEMPLATES[0].format(size=size, colour=colour, shape=shape, pos=pos))
    return imgs, caps, canon


def emoji_rgb(px: int, *, cache: Path, background: int = 255) -> tuple[np.ndarray, list[str]]:
    """All emoji composited on a plain background: (N, px, px, 3) uint8 and their lower-case names.
    `cache` is the folder where core.data keeps the rendered emoji (a service passes its settings')."""
    from playground.core import data

    ds = data.emoji(px, cache=cache)
    rgba = ds.images.numpy().astype(np.float32) / 255.0
    a = rgba[..., 3:4]
    rgb = rgba[..., :3] * a + (background / 255.0) * (1 - a)
    return (rgb * 255 + 0.5).astype(np.uint8), list(ds.classes)


def emoji_split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held_out): every tenth emoji of a seeded permutation is held out."""
    perm = np.random.default_rng(seed).permutation(n)
    held = np.sort(perm[::10])
    return np.setdiff1d(np.arange(n), held), held


def fashion_caption(label: int, rng: np.random.Generator) -> str:
    names = list(FASHION_NAMES.values())[label]
    return FASHION_TEMPLATES[rng.integers(len(FASHION_TEMPLATES))].format(names[rng.integers(len(names))])


def emoji_caption(name: str, rng: np.random.Generator) -> str:
    return EMOJI_TEMPLATES[rng.integers(len(EMOJI_TEMPLATES))].format(name)


def emoji_splits(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices (train, validation, held_out): held_out as in `emoji_split`; validation is every
    twentieth emoji of the same permutation, offset by five (none of them held out)."""
    perm = np.random.default_rng(seed).permutation(n)
    held, val = np.sort(perm[::10]), np.sort(perm[5::20])
    return np.setdiff1d(np.arange(n), np.concatenate([held, val])), val, held


CLDR_ANNOTATIONS = Path("/usr/share/unicode/cldr/common/annotations/en.xml")   # Debian unicode-cldr-core
EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")                   # Debian unicode-data
COMMON_KEYWORD = 12     # a keyword of more emoji than this ("face") is no caption on its own


def emoji_annotations(names: list[str]) -> list[dict]:
    """For each emoji (by lower-case Unicode name): {"short": CLDR short name, "keywords": [...],
    "group": ..., "subgroup": ...} (empty where Unicode's data has none)."""
    import xml.etree.ElementTree as ET

    from playground.core.data import DatasetMissing

    for f, pkg in ((CLDR_ANNOTATIONS, "unicode-cldr-core"), (EMOJI_TEST, "unicode-data")):
        if not f.exists():
            raise DatasetMissing(f"{f} not found: install it with `apt-get install {pkg}`.")
    short, words = {}, {}
    for a in ET.parse(CLDR_ANNOTATIONS).getroot().iter("annotation"):
        cp = a.get("cp", "").replace("\ufe0f", "")
        if a.get("type") == "tts":
            short[cp] = a.text.strip()
        else:
            words[cp] = [w.strip() for w in a.text.split("|") if w.strip()]
    groups, group, sub = {}, "", ""
    for line in EMOJI_TEST.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            sub = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            cps = line.split(";")[0].split()
            ch = "".join(chr(int(c, 16)) for c in cps if c != "FE0F")
            groups.setdefault(ch, (group, sub))
    by_name = {}
    for cp in set(short) | set(words) | set(groups):
        if len(cp) == 1 and unicodedata.name(cp, ""):
            by_name[unicodedata.name(cp).lower()] = cp
    out = []
    for name in names:
        ch = by_name.get(name, "")
        g, s = groups.get(ch, ("", ""))
        out.append({"short": short.get(ch, ""), "keywords": words.get(ch, []), "group": g, "subgroup": s})
    return out


def emoji_captions(name: str, ann: dict, common: set[str]) -> list[str]:
    """Every caption an emoji is trained with: its Unicode name and CLDR short name under the emoji
    templates, its keywords (alone unless shared by many emoji, in twos, all together, and with the
    name), and its name with its subgroup ("dog face, an animal-mammal emoji")."""
    names = list(dict.fromkeys(n for n in (name, ann["short"].lower()) if n))
    caps = [t.format(n) for n in names for t in EMOJI_TEMPLATES]
    kws = [k.lower() for k in ann["keywords"] if k.lower() not in names]
    caps += [k for k in kws if k not in common]
    caps += [f"{a} {b}" if len(a + b) < 12 else f"{a}, {b}" for a, b in zip(kws, kws[1:])]
    if kws:
        caps += [", ".join(kws), f"{names[-1]}: {', '.join(kws)}"]
        caps += [f"an emoji of {k}" for k in kws[:3] if k not in common]
    if ann["subgroup"]:
        sub = ann["subgroup"].replace("-", " ")
        caps += [f"{names[0]}, {sub} emoji", f"{names[-1]} ({ann['group'].lower()})"]
    return list(dict.fromkeys(caps))


def common_keywords(anns: list[dict]) -> set[str]:
    counts: dict[str, int] = {}
    for a in anns:
        for k in {k.lower() for k in a["keywords"]}:
            counts[k] = counts.get(k, 0) + 1
    return {k for k, c in counts.items() if c > COMMON_KEYWORD}


def photo_caption(title: str) -> str:
    """A gallery photo's title as its caption: the source in brackets, digits and file-name tags dropped."""
    t = re.sub(r"\s*\(.*\)$", "", title)
    t = re.sub(r"\bcls\b|\d+", " ", t)
    return re.sub(r"\s+", " ", t).strip()


PHOTO_TEMPLATES = ("{}", "a photo of {}", "a picture of {}", "{}, a photograph")
