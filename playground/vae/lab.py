"""The VAE lab's model side, with no UI: which checkpoints exist, loading them lazily (once, shared,
under a lock), turning any picture into the 28x28 input the models were trained on, and the
encode / decode / sample / interpolate operations the tab calls.

These models run on the CPU everywhere, even where a GPU is present: one decoder pass takes a
couple of milliseconds, less than a host-to-GPU round trip, and the live slider endpoint can then
skip the queue (no GPU to share, nothing to wait for; on ZeroGPU nothing needs spaces.GPU).
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from playground.core import checkpoint
from playground.vae.losses import kl_per_dim, recon_nll, reparameterise

# The bundled checkpoints; PLAYGROUND_VAE_ASSETS points the lab at another folder of them.
ASSETS = Path(os.environ.get("PLAYGROUND_VAE_ASSETS") or Path(__file__).resolve().parents[2] / "assets" / "vae")

# Display name -> data set key. Each data set has a main model (beta = 1), a beta > 1 model and a
# 2-D model for the latent map; names are those demos/train_vae.py writes.
DATASETS = {"Fashion-MNIST": "fashion", "Digits (opencv, 5,000)": "digits"}
BETA_HIGH = 4.0
Z_LIMIT = 4.0          # sliders and the API accept latents in [-Z_LIMIT, Z_LIMIT]


def model_name(key: str, role: str) -> str:
    return {"main": f"{key}_b1", "beta": f"{key}_b{BETA_HIGH:g}", "map": f"{key}_b1_2d",
            "peer": f"{key}_b1_peer_mlp"}[role]


# A fixed list of test images per data set (three of each class, classes in order), so the
# pickers need no data at start-up. Indices into data.load(key, "test").
PICKS = {
    "fashion": [19, 2, 1, 13, 6, 8, 4, 9, 18, 0, 27, 3, 16, 29, 10, 11, 7, 12, 30, 23,
                35, 5, 20, 32, 14, 21, 26, 22, 31, 28],
    "digits": [0, 50, 100, 150, 200, 250, 300, 350, 400, 450, 1, 51, 101, 151, 201, 251, 301, 351,
               401, 451, 2, 52, 102, 152, 202, 252, 302, 352, 402, 452],
}
CLASSES = {
    "fashion": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                "Bag", "Ankle boot"],
    "digits": [str(i) for i in range(10)],
}


def pick_labels(key: str) -> list[str]:
    """Dropdown labels: 'test #19: T-shirt/top' (the class of PICKS[i] is i % 10 by construction)."""
    return [f"test #{idx}: {CLASSES[key][i % 10]}" for i, idx in enumerate(PICKS[key])]


def pick_index(key: str, label: str) -> int:
    return PICKS[key][pick_labels(key).index(label)]


@dataclass
class Loaded:
    model: torch.nn.Module
    card: dict
    order: list[int]       # latent dimensions, most KL first (held-out KL per dimension)

    @property
    def dim(self) -> int:
        return self.model.config.latent_dim


_lock = threading.Lock()
_models: dict[str, Loaded] = {}
_data: dict[str, object] = {}
_maps: dict[str, tuple[np.ndarray, np.ndarray]] = {}


def available(name: str) -> bool:
    return (ASSETS / f"{name}.safetensors").exists() and (ASSETS / f"{name}.json").exists()


def get(name: str) -> Loaded:
    """The checkpoint `name` from assets/vae, loaded on first use and shared by every session."""
    if name in _models:
        return _models[name]
    with _lock:
        if name not in _models:
            model, card = checkpoint.load(ASSETS / name, device="cpu")
            kl = card["metrics"].get("kl_per_dim_nats") or [0.0] * model.config.latent_dim
            order = sorted(range(len(kl)), key=lambda j: -kl[j])
            _models[name] = Loaded(model, card, order)
    return _models[name]


def test_set(key: str):
    if key not in _data:
        with _lock:
            if key not in _data:
                from playground.core import data

                _data[key] = data.load(key, "test")
    return _data[key]


def test_image(key: str, index: int) -> torch.Tensor:
    """(1, 1, 28, 28) in [0, 1]."""
    return test_set(key).float01()[index : index + 1]


def prepare(img: Image.Image, key: str) -> torch.Tensor:
    """Any picture -> (1, 1, 28, 28) in [0, 1], light object on a dark ground like the training data:
    grey; inverted when its border is light (a drawing on white, a photo on a table); cropped to the
    object; fitted into 20 px (digits, as MNIST) or 26 px (fashion) and centred."""
    a = np.asarray(img.convert("L"), dtype=np.float32) / 255.0                  # (H, W)
    border = np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])
    if border.mean() > 0.5:
        a = 1.0 - a
    a = a - np.median(border if border.mean() <= 0.5 else 1.0 - border)
    a = np.clip(a, 0.0, 1.0)
    ys, xs = np.nonzero(a > 0.1)
    if len(ys) == 0:
        raise ValueError("the picture is blank: draw or upload something with a visible shape")
    a = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    a = a / max(float(a.max()), 1e-6)
    box = 20 if key == "digits" else 26
    h, w = a.shape
    s = box / max(h, w)
    small = Image.fromarray((a * 255).astype(np.uint8)).resize(
        (max(1, round(w * s)), max(1, round(h * s))), Image.LANCZOS)
    canvas = Image.new("L", (28, 28), 0)
    canvas.paste(small, ((28 - small.width) // 2, (28 - small.height) // 2))
    return torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 255.0)[None, None]


@torch.inference_mode()
def decode(name: str, z: torch.Tensor) -> torch.Tensor:
    """z (N, D) -> images (N, 1, 28, 28) in [0, 1] (the Bernoulli means)."""
    m = get(name).model
    return m.decode(z.to(torch.float32))


@torch.inference_mode()
def encode(name: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, 1, 28, 28) -> mu, logvar (N, D)."""
    return get(name).model.encode(x)


@torch.inference_mode()
def image_terms(name: str, x: torch.Tensor, samples: int = 16, seed: int = 0) -> dict:
    """This image's loss terms in nats: E_q[-log p(x|z)] (with `samples` draws), KL, their sum."""
    m = get(name).model
    mu, logvar = m.encode(x)
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((samples, mu.shape[1]), generator=g)                    # (S, D)
    z = reparameterise(mu.expand(samples, -1), logvar.expand(samples, -1), eps)
    rec = recon_nll(m.decode_logits(z), x.expand(samples, -1, -1, -1)).mean()
    kl = kl_per_dim(mu, logvar)[0]                                              # (D,)
    return {"recon": float(rec), "kl": float(kl.sum()), "neg_elbo": float(rec + kl.sum()),
            "kl_per_dim": kl.tolist()}


def samples(mu: torch.Tensor, logvar: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """n reparameterised draws z = mu + sigma * eps for one image: mu, logvar (D,) -> (n, D)."""
    g = torch.Generator().manual_seed(seed)
    eps = torch.randn((n, mu.shape[0]), generator=g)
    return reparameterise(mu.expand(n, -1), logvar.expand(n, -1), eps)


def prior(n: int, dim: int, seed: int) -> torch.Tensor:
    return torch.randn((n, dim), generator=torch.Generator().manual_seed(seed))


def map_points(key: str) -> tuple[np.ndarray, np.ndarray]:
    """Test-set means of the 2-D model: (N, 2) and their labels (N,)."""
    if key not in _maps:
        f = ASSETS / f"{model_name(key, 'map')}_map.safetensors"     # written by the recipe
        if f.exists():
            from safetensors.torch import load_file

            t = load_file(str(f))
            _maps[key] = (t["mu"].float().numpy(), t["labels"].long().numpy())
        else:
            ds = test_set(key)
            mu, _ = encode(model_name(key, "map"), ds.float01())
            _maps[key] = (mu.numpy(), ds.labels.numpy())
    return _maps[key]


@lru_cache(maxsize=8)
def card_summary(name: str) -> dict:
    return checkpoint.read_card(ASSETS / name)
