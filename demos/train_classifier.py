"""Train the domain classifier that judges the GAN and diffusion labs, and record its floor.

    python -m demos.train_classifier --domain fashion          # ~5 min on 2 CPU cores
    python -m demos.train_classifier --domain digits --epochs 30

Writes assets/judge/<domain>_classifier.{safetensors,json} and <domain>_train_stats.safetensors
(mean and covariance of the real train features, for Fréchet distance). The card records test
accuracy and the real-data FD floor: FD(real test set, real train set).
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from playground.core import checkpoint, data
from playground.judge import metrics
from playground.judge.classifier import ClassifierConfig, DomainClassifier


def shift(x: torch.Tensor, max_px: int, g: torch.Generator) -> torch.Tensor:
    """Random translation by up to max_px pixels (zero fill), the only augmentation."""
    if max_px == 0:
        return x
    dx, dy = torch.randint(-max_px, max_px + 1, (2,), generator=g).tolist()
    x = torch.roll(x, (dy, dx), dims=(2, 3))
    if dy > 0:
        x[:, :, :dy] = 0
    elif dy < 0:
        x[:, :, dy:] = 0
    if dx > 0:
        x[:, :, :, :dx] = 0
    elif dx < 0:
        x[:, :, :, dx:] = 0
    return x


@torch.inference_mode()
def accuracy(model, x, y) -> float:
    model.eval()
    pred = torch.cat([model(x[i : i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((pred == y).double().mean())


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domain", choices=metrics.DOMAINS, default="fashion")
    p.add_argument("--epochs", type=int, default=None, help="default: 6 (fashion), 30 (digits)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    epochs = a.epochs or (6 if a.domain == "fashion" else 30)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)

    train, test = data.load(a.domain, "train"), data.load(a.domain, "test")
    xtr, ytr = train.float01(), train.labels
    xte, yte = test.float01(), test.labels
    model = DomainClassifier(ClassifierConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=1e-4)
    steps_per_epoch = (len(xtr) + a.batch - 1) // a.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, a.lr, total_steps=epochs * steps_per_epoch)
    t0, step = time.time(), 0
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(xtr), generator=g)
        for i in range(0, len(xtr), a.batch):
            idx = perm[i : i + a.batch]
            xb = shift(xtr[idx].clone(), 2 if a.domain == "digits" else 1, g)
            loss = F.cross_entropy(model(xb), ytr[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
        print(f"epoch {ep + 1}/{epochs}  loss {loss.item():.3f}  test acc {accuracy(model, xte, yte):.4f}  "
              f"{time.time() - t0:.0f}s", flush=True)
    model.eval()
    test_acc = accuracy(model, xte, yte)
    with torch.inference_mode():
        ftr = torch.cat([model.features(xtr[i : i + 2000]) for i in range(0, len(xtr), 2000)]).double()
        fte = torch.cat([model.features(xte[i : i + 2000]) for i in range(0, len(xte), 2000)]).double()
    fd_floor = metrics.fd(fte, ftr)
    # The floor's own noise: FD of two random disjoint halves of the test set.
    perm = torch.randperm(len(fte), generator=torch.Generator().manual_seed(a.seed))
    half = len(fte) // 2
    fd_halves = metrics.fd(fte[perm[:half]], fte[perm[half:]])
    card_metrics = {
        "test_accuracy": round(test_acc, 4),
        "fd_real_test_vs_train": round(fd_floor, 6),
        "fd_test_half_vs_half": round(fd_halves, 6),
        "diversity_real_test": round(metrics.diversity(fte), 4),
        "n_test": len(xte),
        "wall_seconds": round(time.time() - t0, 1),
    }
    name = metrics.path(a.domain)
    card = checkpoint.save(
        name, model,
        data=f"{a.domain}: train split ({len(xtr)} images) for training; test split ({len(xte)}) for metrics",
        steps=step, seed=a.seed, metrics=card_metrics,
        extra={"recipe": f"python -m demos.train_classifier --domain {a.domain} --epochs {epochs} --seed {a.seed}",
               "optimizer": f"AdamW lr {a.lr} one-cycle, batch {a.batch}, label smoothing 0.05, random shifts",
               "classes": train.classes},
    )
    metrics.save_train_stats(a.domain, ftr)
    print(card_metrics)
    return card


if __name__ == "__main__":
    main()
