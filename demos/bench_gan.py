"""Benchmark of the GAN tab's server time: the 5x5 style-mixing grid (the tab's live update) against
baselines measured in the same run. Prints a markdown table.

    python -m demos.bench_gan            # at least 0.3 s of calls per row, median (core.timing)
    python -m demos.bench_gan --min-time 2

Rows:
- grid action: what the tab runs per update (validation, one batched generator call for the 5 sources,
  5 styles, 25 mixes and w_avg, the figure through make_grid, the PIL images). Target: <= 300 ms.
- raw generator forward: the same 36 images, torch only (the floor of the action).
- 25 single-mix actions: the naive way, one generator call per mix (what batching saves).
- one sample: z -> w -> image, batch 1 (the Home tab's speed probe).
"""
from __future__ import annotations

import argparse
import os

import torch

TARGET_MS = 300


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--min-time", type=float, default=0.3, help="seconds of calls per row (blocked_autorange)")
    a = ap.parse_args(argv)
    from playground.core import settings, timing
    from playground.gan import stylegan as sg
    from playground.gan.service import DEFAULTS, Service

    svc = Service(settings.from_env())
    G = svc.generator()
    src, sty = "1, 2, 3, 4, 5", "10, 11, 12, 13, 14"
    coarse = svc.presets()["coarse"]
    weights = [float(n in coarse) for n in svc.layer_names()]
    n_src, n_sty = len(svc.seeds("Source seeds", src)), len(svc.seeds("Style seeds", sty))
    ws = torch.randn(n_src + n_sty + n_src * n_sty + 1, G.num_ws, G.config.w_dim)

    def raw():
        with torch.inference_mode():
            G.synthesize(ws, "fixed", 0)

    def singles():
        for i in range(n_sty):
            for j in range(n_src):
                svc.single_mix(j + 1, i + 10, weights, DEFAULTS["psi"], True, 0)

    t = lambda fn: timing.median_seconds(fn, min_run_time=a.min_time)  # noqa: E731
    rows = [
        (f"{n_sty}x{n_src} mixing grid, service action (validate + generate + figure + PIL)",
         t(lambda: svc.mix_grid(src, sty, coarse, DEFAULTS["psi"], True, 0))),
        (f"raw generator forward, same {len(ws)} images in one batch", t(raw)),
        (f"{n_src * n_sty} single-mix actions (one generator call per mix)", t(singles)),
        ("one sample, batch 1 (speed probe)", t(lambda: sg.sample(G, 1, 0))),
    ]
    base = rows[0][1]
    print(f"GAN lab benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, median through torch.utils.benchmark\n")
    print("| what | ms | relative to the grid action |\n|---|---:|---:|")
    for name, s in rows:
        print(f"| {name} | {s * 1000:.1f} | {s / base:.2f}x |")
    print(f"\nTarget: grid <= {TARGET_MS} ms server time -> {'met' if base * 1000 <= TARGET_MS else 'NOT met'} "
          f"({base * 1000:.0f} ms).")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
