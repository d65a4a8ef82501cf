"""Measure the bundled diffusion model with the domain classifier and write the figures into its card.

    python -m demos.eval_diffusion                   # time-boxed: picks N to fit --minutes
    python -m demos.eval_diffusion --n 1000          # a fixed number of samples per setting

1. The guidance trade-off: for each scale s (eps = eps_u + s (eps_c - eps_u)), N samples with
   DDIM in 50 steps (eta = 0), classes balanced; class accuracy (the classifier agrees with the
   class asked for), diversity (mean pairwise feature distance / real test data's) and FD against
   the real training set (in the classifier's feature space).
2. Few steps against the full chain: FD at s = 1 of DDIM in 50 steps against DDPM over all T
   steps, from the same start noise and the same N on both sides.

Results go into the card (NAME.json) under metrics.guidance_sweep and metrics.ddim_vs_ddpm; the
weights and their sha256 are not touched. Partial results are written after every setting.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from playground.core import checkpoint, timing
from playground.diffusion import pipeline, service
from playground.diffusion.schedulers import NoiseSchedule
from playground.judge import metrics

SCALES = (0.0, 3.0, 5.0, 7.5, 2.0)  # s = 1 runs first, with the DDIM vs DDPM comparison


def judge(images_pm1: torch.Tensor, labels: torch.Tensor) -> dict:
    m = metrics.evaluate((images_pm1.clamp(-1, 1) + 1) / 2, domain="fashion", labels=labels)
    return {"accuracy": round(m["accuracy"], 4), "diversity": round(m["diversity"], 4), "fd": round(m["fd"], 3),
            "class_entropy_bits": round(m["class_entropy_bits"], 3), "n": m["n"],
            "fd_floor_same_n": round(m["fd_floor_real_test"], 3)}


def forwards_per_second(model, n: int = 100) -> float:
    """Image-forwards per second of the U-Net at batch n (median of core.timing's blocks)."""
    c, hw = model.config.in_channels, model.config.image_size
    x, t, y = torch.randn(n, c, hw, hw), torch.full((n,), 500), torch.arange(n) % model.config.n_classes

    def one():
        with torch.inference_mode():
            model(x, t, y)
    return n / timing.median_seconds(one)


def guided_samples(model, sched, s: float, n: int, *, seed: int = 0, sampler: str = "DDIM", steps: int = 50,
                   eta: float = 0.0, batch: int = 250, x_T: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """n samples at guidance s, classes balanced (image i asks for class i mod n_classes), from the start
    noise of `seed` (or x_T) with pipeline's step-noise rule. -> (images (n,C,H,W) in [-1, 1], labels (n,))"""
    y = torch.arange(n) % model.config.n_classes
    x = pipeline.sample(model, sched, y, s, sampler=sampler, steps=steps, eta=eta, seed=seed, x_T=x_T, batch=batch)
    return x, y


def class_accuracy(images_pm1: torch.Tensor, labels: torch.Tensor) -> float:
    """The judge's class accuracy, as metrics.evaluate computes it (without the FD, which needs the data set)."""
    return float((metrics.predict((images_pm1.clamp(-1, 1) + 1) / 2, "fashion") == labels).double().mean())


def write_card(path: Path, key: str, value) -> None:
    card = checkpoint.read_card(path)
    card["metrics"][key] = value
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", type=Path, default=service.CHECKPOINT)
    p.add_argument("--n", type=int, default=0, help="samples per guidance scale (0: as many as fit --minutes, <= 1000)")
    p.add_argument("--n-fd", type=int, default=0, help="samples on each side of DDIM-50 vs DDPM-full (0: n // 2)")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--scales", default=",".join(map(str, SCALES)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=250)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    model, card = checkpoint.load(a.ckpt)
    sched = NoiseSchedule(card["schedule"], card["num_train_timesteps"])
    scales = [float(s) for s in a.scales.split(",") if float(s) != 1.0]
    T = sched.T
    # network evaluations per sample: DDIM-50 at each s (1 pass at s in {0, 1}, else 2); DDPM at s = 1 runs
    # T passes for each of n_fd = n // 2 samples (its DDIM side is the first n_fd of the s = 1 sweep)
    passes = 50 + sum(50 * (1 if s == 0.0 else 2) for s in scales) + T / 2
    rate = forwards_per_second(model)
    n = a.n or int(max(60, min(1000, rate * a.minutes * 60 * 0.85 / passes)) // 20 * 20)
    n_fd = min(n, a.n_fd or n // 2)
    print(f"{rate:.0f} image-forwards/s; N = {n} per scale, {n_fd} per side for DDIM vs DDPM "
          f"(~{(n * (passes - T / 2) + n_fd * T) / rate / 60:.1f} min)", flush=True)
    x_T = pipeline.start_noise(n, model, a.seed)
    t_start = time.perf_counter()

    def run(s, sampler, steps, m=n):
        t0 = time.perf_counter()
        x, y = guided_samples(model, sched, s, m, seed=a.seed, sampler=sampler, steps=steps, batch=a.batch,
                              x_T=x_T[:m])
        r = judge(x, y)
        r["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"s={s:g} {sampler}-{steps} (N = {m}): {r}", flush=True)
        return r, x

    sweep = {"sampler": "DDIM", "steps": 50, "eta": 0.0, "n_per_scale": n, "seed": a.seed,
             "fd_floor_real_test": metrics.card("fashion")["metrics"]["fd_real_test_vs_train"],
             "fd_floor_real_same_n": round(metrics.real_floor("fashion", n), 3),   # FD is biased up at small n
             "chance_accuracy": 1 / model.config.n_classes, "scales": [], "accuracy": [], "diversity": [], "fd": [], "class_entropy_bits": []}

    def add(s, r):
        sweep["scales"].append(s)
        for k in ("accuracy", "diversity", "fd", "class_entropy_bits"):
            sweep[k].append(r[k])
        order = sorted(range(len(sweep["scales"])), key=lambda i: sweep["scales"][i])
        for k in ("scales", "accuracy", "diversity", "fd", "class_entropy_bits"):
            sweep[k] = [sweep[k][i] for i in order]
        write_card(a.ckpt, "guidance_sweep", sweep)

    # the must-have comparison first: s = 1, DDIM-50 against DDPM over the full chain, same x_T and N.
    # DDIM with eta = 0 is deterministic per image, so its first n_fd samples are those from x_T[:n_fd].
    r1, x1 = run(1.0, "DDIM", 50)
    add(1.0, r1)
    ddim = judge(x1[:n_fd], (torch.arange(n) % model.config.n_classes)[:n_fd])
    ddim["seconds"] = round(r1["seconds"] * n_fd / n, 1)
    ddpm, _ = run(1.0, "DDPM", T, n_fd)
    cmp = {"scale": 1.0, "n": n_fd, "seed": a.seed, "ddim_steps": 50, "ddim_eta": 0.0, "ddpm_steps": T,
           "fd_ddim": ddim["fd"], "fd_ddpm": ddpm["fd"], "ratio": round(ddim["fd"] / max(ddpm["fd"], 1e-9), 3),
           "fd_floor_real_same_n": ddpm["fd_floor_same_n"],
           "accuracy_ddim": ddim["accuracy"], "accuracy_ddpm": ddpm["accuracy"],
           "seconds_ddim": ddim["seconds"], "seconds_ddpm": ddpm["seconds"]}
    write_card(a.ckpt, "ddim_vs_ddpm", cmp)
    print(f"FD DDIM-50 / DDPM-{T} = {cmp['ratio']}", flush=True)
    for s in scales:
        add(s, run(s, "DDIM", 50)[0])
    sweep["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    write_card(a.ckpt, "guidance_sweep", sweep)
    print(json.dumps({"guidance_sweep": sweep, "ddim_vs_ddpm": cmp}, indent=1), flush=True)
    return {"guidance_sweep": sweep, "ddim_vs_ddpm": cmp}


if __name__ == "__main__":
    main()
