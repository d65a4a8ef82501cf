"""How good are generated images? Measured in the domain classifier's feature space.

- Fréchet distance (FD, as in FID but with our classifier's 128-d features instead of Inception's):
      FD = ||mu_a - mu_b||^2 + Tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2})
  between Gaussians fitted to the two feature sets. Its floor is the FD of the real test set
  against the real train set (recorded in the classifier's card for all 10,000 test images;
  `real_floor(domain, n)` for n of them, since FD grows as n shrinks): a generator cannot be
  expected to beat real held-out data.
- Class accuracy: the fraction of images the classifier assigns to the class they were asked for.
- Diversity: the mean pairwise distance of the features, divided by the same for real test data
  (1.0 = as varied as real data; mode collapse drives it towards 0). And the entropy of the
  predicted class histogram (log2 10 = 3.32 bits when all classes are equally present).

The real train statistics (mu, S) ship beside each classifier, so FD needs no data set at run time.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from playground.core import cache, checkpoint, paths

DOMAINS = ("fashion", "digits")


def path(domain: str) -> Path:
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}")
    return paths.assets("judge", f"{domain}_classifier")


def _loaded(domain: str) -> tuple[torch.nn.Module, dict]:
    p = path(domain)
    return cache.once(("judge", str(p)), lambda: checkpoint.load(p))


def classifier(domain: str = "fashion") -> torch.nn.Module:
    """The bundled classifier for a domain, loaded once (core.cache)."""
    return _loaded(domain)[0]


def card(domain: str = "fashion") -> dict:
    return _loaded(domain)[1]


@torch.inference_mode()
def features(images: torch.Tensor, domain: str = "fashion", batch: int = 1000) -> torch.Tensor:
    """images (N,1,28,28) float in [0,1] -> (N,128) float64 features."""
    model = classifier(domain)
    out = [model.features(images[i : i + batch].float().clamp(0, 1)) for i in range(0, len(images), batch)]
    return torch.cat(out).double()


@torch.inference_mode()
def predict(images: torch.Tensor, domain: str = "fashion", batch: int = 1000) -> torch.Tensor:
    """images (N,1,28,28) in [0,1] -> (N,) predicted class."""
    model = classifier(domain)
    return torch.cat([model(images[i : i + batch].float().clamp(0, 1)).argmax(1)
                      for i in range(0, len(images), batch)])


def gaussian(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and unbiased covariance (D, D) of (N, D) features."""
    f = feats.double()
    mu = f.mean(0)
    c = f - mu
    return mu, c.T @ c / (len(f) - 1)


def _sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition."""
    w, v = torch.linalg.eigh((a + a.T) / 2)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(mu1, s1, mu2, s2) -> float:
    """FD between N(mu1, s1) and N(mu2, s2). Tr((S1 S2)^{1/2}) = Tr((S1^{1/2} S2 S1^{1/2})^{1/2}),
    whose argument is symmetric PSD, so eigh is stable."""
    r1 = _sqrtm_psd(s1.double())
    cross = _sqrtm_psd(r1 @ s2.double() @ r1)
    d = ((mu1.double() - mu2.double()) ** 2).sum() + torch.trace(s1.double()) + torch.trace(s2.double()) - 2 * torch.trace(cross)
    return float(d.clamp(min=0))


def fd(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    return frechet_distance(*gaussian(feats_a), *gaussian(feats_b))


def diversity(feats: torch.Tensor, max_n: int = 2000) -> float:
    """Mean pairwise Euclidean distance between feature vectors (first max_n of them)."""
    f = feats[:max_n].double()
    d = torch.cdist(f, f)
    n = len(f)
    return float(d.sum() / (n * (n - 1))) if n > 1 else 0.0


def class_entropy_bits(pred: torch.Tensor, n_classes: int = 10) -> float:
    p = torch.bincount(pred, minlength=n_classes).double()
    p = p / p.sum()
    return float(-(p[p > 0] * p[p > 0].log2()).sum())


def stats_path(domain: str) -> Path:
    return paths.assets("judge", f"{domain}_train_stats.safetensors")


def save_train_stats(domain: str, feats: torch.Tensor) -> None:
    mu, cov = gaussian(feats)
    save_file({"mu": mu.float(), "cov": cov.float()}, str(stats_path(domain)))


def train_stats(domain: str = "fashion") -> tuple[torch.Tensor, torch.Tensor]:
    t = load_file(str(stats_path(domain)))
    return t["mu"].double(), t["cov"].double()


def real_floor(domain: str = "fashion", n: int = 10000) -> float:
    """FD of n real test images (a fixed random subset) against the train statistics.
    FD is biased upwards for small n, so a generator's FD is compared with this floor at the same n."""
    def measure() -> float:
        from playground.core import data

        x = data.load(domain, "test").float01()
        idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))[: min(n, len(x))]
        return frechet_distance(*gaussian(features(x[idx], domain)), *train_stats(domain))

    return cache.once(("judge", "real-floor", domain, n), measure)


def evaluate(images: torch.Tensor, domain: str = "fashion", labels: torch.Tensor | None = None) -> dict:
    """Everything at once for (N,1,28,28) images in [0,1] (N >= 1000 for a stable FD).
    labels: the classes the images were asked to be (for conditional models).
    fd_floor_real_test is the FD of as many real test images (needs the data set installed)."""
    f = features(images, domain)
    pred = predict(images, domain)
    m = card(domain)["metrics"]
    out = {
        "n": len(images),
        "fd": frechet_distance(*gaussian(f), *train_stats(domain)),
        "fd_floor_real_test": real_floor(domain, len(images)),
        "diversity": diversity(f) / m["diversity_real_test"],
        "class_histogram": torch.bincount(pred, minlength=10).tolist(),
        "class_entropy_bits": class_entropy_bits(pred),
    }
    if labels is not None:
        out["accuracy"] = float((pred == labels.to(pred.device)).double().mean())
    return out


def chance_entropy(n_classes: int = 10) -> float:
    return math.log2(n_classes)
