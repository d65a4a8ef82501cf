"""Train the class-conditional U-Net of the Diffusion lab (eps-prediction, classifier-free guidance).

    python -m demos.train_diffusion --steps 3000                     # the bundled model (see its card)
    python -m demos.train_diffusion --steps 200 --out /tmp/try       # a quick look
    python -m demos.train_diffusion --init assets/diffusion/fashion_unet --steps 800 --seed 1
                                                                     # continue from a checkpoint (a 2nd stage)

Loss (DDPM's simple loss, with the label dropped to the null class with probability p_uncond):
    L = E_{x_0, y, t, eps} || eps - eps_theta( sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps, t, y~ ) ||^2
    y~ = null class with probability p_uncond, else y

AdamW at a constant learning rate after a linear warm-up; an exponential moving average (EMA) of
the weights is what gets saved. Deterministic given the seed and --steps (--max-minutes only stops
early; the card records the steps actually run, so rerunning with that --steps reproduces it).
The card's metrics are the eps-MSE on held-out test images (fixed t and noise); the guidance
sweep (accuracy, diversity, FD) is added by `python -m demos.eval_diffusion`.
"""
from __future__ import annotations

import argparse
import copy
import shlex
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from playground.core import checkpoint, data, paths
from playground.diffusion.schedulers import SCHEDULES, NoiseSchedule
from playground.diffusion.unet import UNet, UNetConfig

DEFAULT_OUT = paths.assets("diffusion", "fashion_unet")


def to_model_range(x01: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range the chain works in."""
    return x01 * 2 - 1


@torch.no_grad()
def heldout_loss(model: UNet, sched: NoiseSchedule, x: torch.Tensor, y: torch.Tensor, seed: int = 1234) -> float:
    """eps-MSE on held-out images at fixed random t and noise (the same every time)."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, sched.T, (len(x),), generator=g)
    noise = torch.randn(x.shape, generator=g)
    model.eval()
    out = []
    for i in range(0, len(x), 250):
        xt = sched.q_sample(x[i : i + 250], t[i : i + 250], noise[i : i + 250])
        out.append(F.mse_loss(model(xt, t[i : i + 250], y[i : i + 250]), noise[i : i + 250], reduction="sum"))
    model.train()
    return float(sum(out) / noise.numel())


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--domain", choices=["fashion", "digits"], default="fashion")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps")
    p.add_argument("--max-minutes", type=float, default=0, help="stop early after this wall time (0: never)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1.5e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay (warmed up as min(ema, (1+n)/(10+n)))")
    p.add_argument("--p-uncond", type=float, default=0.15, help="label dropout for classifier-free guidance")
    p.add_argument("--schedule", choices=SCHEDULES, default="cosine")
    p.add_argument("--T", type=int, default=1000, help="training timesteps")
    p.add_argument("--channels", default="24,48,64", help="U-Net widths at 28, 14, 7")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--init", type=Path, default=None,
                   help="continue from this checkpoint (its EMA weights start both the model and the EMA; "
                        "fresh optimiser); its config and schedule are kept and its stages recorded")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)

    train, test = data.load(a.domain, "train"), data.load(a.domain, "test")
    x_train, y_train = to_model_range(train.float01()), train.labels                # (N,1,28,28) in [-1,1]
    k = torch.randperm(len(test), generator=torch.Generator().manual_seed(99))[:500]
    x_test, y_test = to_model_range(test.float01()[k]), test.labels[k]

    stages: list[dict] = []
    if a.init:
        model, prev = checkpoint.load(a.init)
        model.train()
        cfg = model.config
        a.schedule, a.T = prev["schedule"], prev["num_train_timesteps"]
        a.channels = ",".join(map(str, cfg.channels))
        stages = prev.get("stages") or [{"recipe": prev["recipe"], "steps": prev["steps"],
                                         "wall_seconds": prev["wall_seconds"]}]
    else:
        cfg = UNetConfig(channels=tuple(int(c) for c in a.channels.split(",")), n_classes=len(train.classes))
        model = UNet(cfg)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    sched = NoiseSchedule(a.schedule, a.T)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=0.0)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"U-Net {cfg.channels}: {n_params:,} parameters; {len(x_train):,} {a.domain} images; "
          f"{a.schedule} schedule, T={a.T}", flush=True)

    def save(step: int, wall: float, losses: list[float]) -> dict:
        metrics = {"heldout_eps_mse": round(heldout_loss(ema, sched, x_test, y_test), 5),
                   "train_eps_mse_last100": round(sum(losses[-100:]) / max(1, len(losses[-100:])), 5)}
        flags = ((["--init", str(a.init)] if a.init else [])
                 + ["--steps", step, "--batch", a.batch, "--lr", a.lr, "--warmup", a.warmup, "--ema", a.ema,
                    "--p-uncond", a.p_uncond, "--schedule", a.schedule, "--T", a.T, "--channels", a.channels,
                    "--seed", a.seed, "--domain", a.domain])
        recipe = shlex.join(["python", "-m", "demos.train_diffusion", *map(str, flags)])
        all_stages = stages + [{"recipe": recipe, "steps": step, "wall_seconds": round(wall, 1)}]
        extra = {
            "recipe": " && ".join(st["recipe"] for st in all_stages),
            "stages": all_stages,
            "schedule": a.schedule, "num_train_timesteps": a.T, "p_uncond": a.p_uncond, "batch": a.batch,
            "lr": a.lr, "warmup": a.warmup, "ema": a.ema, "optimizer": "AdamW (weight_decay 0)",
            "weights": "EMA of the training weights", "images_range": "[-1, 1] (x * 2 - 1)",
            "classes": train.classes, "threads": a.threads,
            "wall_seconds": round(sum(st["wall_seconds"] for st in all_stages), 1),
            "heldout": "500 random Fashion-MNIST test images, fixed t and noise (seed 1234)",
            "guidance": "eps = eps_u + s (eps_c - eps_u); s = 1 conditional, s = 0 unconditional",
        }
        return checkpoint.save(a.out, ema, data=f"{a.domain} train ({len(x_train)} images)",
                               steps=sum(st["steps"] for st in all_stages),
                               seed=a.seed, metrics=metrics, extra=extra)

    losses: list[float] = []
    t0 = time.perf_counter()
    step = 0
    perm = torch.randperm(len(x_train), generator=g)
    pos = 0
    while step < a.steps:
        if pos + a.batch > len(perm):
            perm, pos = torch.randperm(len(x_train), generator=g), 0
        idx = perm[pos : pos + a.batch]
        pos += a.batch
        x0, y = x_train[idx], y_train[idx].clone()                                   # (B,1,28,28), (B,)
        y[torch.rand(len(y), generator=g) < a.p_uncond] = cfg.n_classes              # label dropout -> null
        t = torch.randint(0, a.T, (len(y),), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        loss = F.mse_loss(model(sched.q_sample(x0, t, noise), t, y), noise)          # || eps - eps_theta ||^2
        for group in opt.param_groups:
            group["lr"] = a.lr * min(1.0, (step + 1) / a.warmup)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        d = min(a.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
        losses.append(float(loss.detach()))
        wall = time.perf_counter() - t0
        if step % 50 == 0:
            print(f"step {step}  loss {sum(losses[-50:]) / 50:.4f}  {step / wall:.2f} steps/s  {wall / 60:.1f} min",
                  flush=True)
        out_of_time = a.max_minutes and wall > a.max_minutes * 60
        if step % a.save_every == 0 or step == a.steps or out_of_time:
            card = save(step, wall, losses)
            print(f"saved {a.out} at step {step}: {card['metrics']}", flush=True)
        if out_of_time:
            print(f"stopping at step {step}: --max-minutes {a.max_minutes} reached", flush=True)
            break
    return card


if __name__ == "__main__":
    main()
