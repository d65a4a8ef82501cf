"""Train the GAN lab's models on Fashion-MNIST (padded to 32x32, scaled to [-1, 1]).

    python -m demos.train_gan --model stylegan --minutes 25     # our StyleGAN-like generator
    python -m demos.train_gan --model dcgan --minutes 25        # the DCGAN peer, same budget
    python -m demos.train_gan --model cdcgan --minutes 22       # the conditional DCGAN (class in, class out)
    python -m demos.train_gan --model stylegan --steps 1200     # exactly reproduce a run by its step count

A wall-clock budget (--minutes) stops at whatever step it reached; the card records that step count,
and --steps N with the same seed and one thread replays the same run deterministically.
Writes assets/gan/<model>_fashion.safetensors + .json (the card: config, data, steps, seed, wall time,
training curves), and sample grids of fixed z at a few points in training (PNG; for cdcgan one
column per class). Run `python -m demos.eval_gan` afterwards for the held-out metrics (FD, class
histogram, style mixing; `--model cdcgan` for the conditional model's per-class judge accuracy).
The conditional model's checkpoint is its weight average (G_ema), as ours is.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import torch

from playground.core import checkpoint, data, images, paths
from playground.gan.cdcgan import CDCGANConfig
from playground.gan.stylegan import OUTPUTS, UPSAMPLING, StyleGANConfig
from playground.gan.train import DISCRIMINATORS, STYLEGAN2_D, TrainConfig, Trainer, pad_fashion

ASSETS = paths.assets("gan")
SNAP_FRACTIONS = (0.03, 0.15, 0.4, 1.0)   # where in the budget the sample grids are taken


def save_grid(x: torch.Tensor, path: Path, nrow: int = 8) -> None:
    g = images.grid(x, nrow=nrow, pad=1, lo=-1, hi=1)
    images.to_pil(g, scale=2).save(path, optimize=True)


def recipe(a: argparse.Namespace, steps: int) -> str:
    """The command that replays this run step for step (one thread, same seed)."""
    cmd = f"python -m demos.train_gan --model {a.model} --steps {steps} --seed {a.seed} --batch {a.batch} --threads 1"
    if a.model == "stylegan":                                         # the flags only ours reads
        cmd += f" --discriminator {a.discriminator} --up {a.up} --output {a.output} --mixing {a.mixing}"
        cmd += f" --lr {a.lr} --d-base {a.d_base}" if a.discriminator == "dcgan" else ""   # resnet: STYLEGAN2_D's
        cmd += f" --channels {a.channels}" if a.channels else ""
        cmd += f" --d-channels {a.d_channels}" if a.d_channels else ""
    if a.model == "cdcgan":
        cmd += f" --base {a.base}"
    return cmd + (f" --device {a.device}" if a.device != "cpu" else "")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=("stylegan", "dcgan", "cdcgan"), default="stylegan")
    p.add_argument("--minutes", type=float, default=25.0, help="wall-clock budget (ignored with --steps)")
    p.add_argument("--steps", type=int, default=0, help="train exactly this many steps (reproduces a run)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 = deterministic, fair when two run side by side)")
    p.add_argument("--out", default=str(ASSETS), help="folder for the checkpoint, card and grids")
    p.add_argument("--discriminator", choices=DISCRIMINATORS, default="dcgan",
                   help="ours plays against a DCGAN-shaped D of width --d-base (dcgan) or StyleGAN2's residual D with R1 (resnet)")
    p.add_argument("--up", choices=UPSAMPLING, default="transposed", help="ours: how the synthesis upsamples")
    p.add_argument("--lr", type=float, default=TrainConfig.lr, help="ours against the dcgan D: G's Adam step (resnet: STYLEGAN2_D's)")
    p.add_argument("--d-base", type=int, default=TrainConfig.d_base,
                   help="ours against the dcgan D: its width c, maps c, 2c, 4c at 16, 8, 4 px (the peer's D has 64)")
    p.add_argument("--mixing", type=float, default=TrainConfig.mixing_prob, help="ours: style-mixing regularisation probability")
    p.add_argument("--output", choices=OUTPUTS, default="tanh", help="ours: tanh on the summed ToRGB output, or none")
    p.add_argument("--channels", default="128,64,32,32", help="ours: synthesis maps at 4, 8, 16, 32 px (default: the bundled G's)")
    p.add_argument("--d-channels", default="", help="resnet discriminator maps at 32, 16, 8, 4 px, e.g. 32,64,128,128")
    p.add_argument("--base", type=int, default=CDCGANConfig.base, help="cdcgan: feature maps c at 16x16 (4c at 4x4) in G and D")
    p.add_argument("--device", default="cpu", help="cpu or cuda (the same recipe; cuda runs are not bit-identical to cpu ones)")
    p.add_argument("--train-size", type=int, default=60000, help="use the first N training images")
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{a.model}_fashion"
    ds = data.load("fashion", "train")
    x = pad_fashion(ds.images[: a.train_size])                       # (N, 1, 32, 32) in [-1, 1]
    own = STYLEGAN2_D if a.discriminator == "resnet" else {"lr": a.lr, "d_base": a.d_base}
    tcfg = TrainConfig(batch=a.batch, mixing_prob=a.mixing, **own)
    model_cfg = None
    if a.model == "stylegan":
        chans = {k: tuple(int(c) for c in v.split(",")) for k, v in (("channels", a.channels),
                                                                     ("d_channels", a.d_channels)) if v}
        model_cfg = StyleGANConfig(up=a.up, out=a.output, **chans)
    elif a.model == "cdcgan":
        model_cfg = CDCGANConfig(base=a.base)
    labels = ds.labels[: a.train_size] if a.model == "cdcgan" else None
    tr = Trainer(a.model, x, tcfg, a.seed, model_cfg, device=a.device, labels=labels)
    n_fixed, nrow = (100, 10) if a.model == "cdcgan" else (64, 8)
    z_fixed = torch.randn(n_fixed, tr.z_dim, generator=torch.Generator().manual_seed(1234))
    y_fixed = torch.arange(n_fixed) % 10 if a.model == "cdcgan" else None      # column c: class c

    # the hand-kept record of earlier rounds survives a retrain into the same folder
    old_card = out / f"{name}.json"
    trials = json.loads(old_card.read_text()).get("trials") if old_card.exists() else None
    budget = a.minutes * 60
    snaps_done: list[dict] = []
    t0 = time.perf_counter()

    def progress() -> float:
        return tr.step_count / a.steps if a.steps else (time.perf_counter() - t0) / budget

    def snapshot(final: bool = False) -> None:
        grid_path = out / f"{name}_step{tr.step_count:05d}.png"
        with torch.random.fork_rng():                                 # leaves the training RNG untouched
            torch.manual_seed(999)                                    # same noise for every snapshot
            save_grid(tr.sample(z_fixed, ema=a.model != "dcgan", y=y_fixed), grid_path, nrow)
        snaps_done.append({"step": tr.step_count, "seconds": round(time.perf_counter() - t0, 1),
                           "png": grid_path.name})
        extra = {
            "recipe": recipe(a, tr.step_count),
            "device": torch.cuda.get_device_name(tr.device) if tr.device.type == "cuda" else "cpu",
            "discriminator": type(tr.D).__name__,
            "discriminator_config": dataclasses.asdict(tr.D.config),
            "train_config": tr.recorded_config(),
            "budget_minutes": a.minutes if not a.steps else None,
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "steps_per_second": round(tr.step_count / max(time.perf_counter() - t0, 1e-9), 3),
            "threads": a.threads,
            "snapshots": snaps_done,
            "curves": tr.log,
            "finished": final,
            **({"trials": trials} if trials else {}),
        }
        G = tr.G if a.model == "dcgan" else tr.G_ema
        checkpoint.save(out / name, G, data=f"fashion-mnist train[:{len(x)}], padded to 32x32, [-1, 1]",
                        steps=tr.step_count, seed=a.seed, metrics={}, extra=extra)
        if a.model == "dcgan":   # the weight average too, so the peer gets its best shot in the comparison
            checkpoint.save(out / f"{name}_ema", tr.G_ema, data=f"fashion-mnist train[:{len(x)}]",
                            steps=tr.step_count, seed=a.seed, metrics={}, extra={"ema_of": name})
        print(json.dumps({"snapshot": tr.step_count, "seconds": round(time.perf_counter() - t0, 1)}), flush=True)

    next_snap = 0
    while True:
        if progress() >= 1.0:
            break
        if next_snap < len(SNAP_FRACTIONS) - 1 and progress() >= SNAP_FRACTIONS[next_snap]:
            snapshot()
            next_snap += 1
        tr.step()
        if tr.step_count % 100 == 0:
            last = tr.log[-1]
            print(json.dumps({"step": tr.step_count, "s": round(time.perf_counter() - t0, 1), **{k: round(v, 3) for k, v in last.items() if k != "step"}}), flush=True)
    snapshot(final=True)
    print(f"done: {tr.step_count} steps in {time.perf_counter() - t0:.0f} s; wrote {out / name}.json")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
