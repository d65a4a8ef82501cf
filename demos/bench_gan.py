"""Benchmark of the GAN tab's server time: the 5x5 style-mixing grid (the tab's live update) against
baselines measured in the same run. Prints a markdown table.

    python -m demos.bench_gan            # median of 15 runs each
    python -m demos.bench_gan --runs 30

Rows:
- grid handler: what the tab runs per update (validation, 35 generator passes in one batch: 5 sources,
  5 styles, 25 mixes, plus w_avg; composing the figure; the PNG-ready PIL image). Target: <= 300 ms.
- raw generator forward: the same 36 images, torch only (the floor of the handler).
- 25 single-image calls: the naive way, one generator call per mix (what batching saves).
- one sample: z -> w -> image, batch 1 (the Home tab's speed probe).
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch


def timed(fn, runs: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15)
    a = ap.parse_args(argv)
    from playground.gan import sampling as S
    from playground.gan import tab

    G, _ = S.load()
    src, sty = "1, 2, 3, 4, 5", "10, 11, 12, 13, 14"
    coarse = [S.LAYER_NAMES[i] for i in S.PRESETS["coarse"]]
    ws = torch.randn(36, G.num_ws, G.config.w_dim)

    def raw():
        with torch.inference_mode():
            G.synthesize(ws, "fixed", 0)

    def singles():
        for i in range(5):
            for j in range(5):
                S.single_mix(G, i + 1, j + 10, [1, 1, 1, 0, 0, 0, 0], 0.8, True, 0)

    rows = [
        ("5x5 mixing grid, tab handler (validate + generate + compose + PIL)", timed(lambda: tab.render_grid(src, sty, coarse, 0.8, True, 0), a.runs)),
        ("raw generator forward, same 36 images in one batch", timed(raw, a.runs)),
        ("25 single-mix calls (one generator call per mix)", timed(singles, max(3, a.runs // 3))),
        ("one sample, batch 1 (speed probe)", timed(lambda: S.sample(G, 1, 0), a.runs)),
    ]
    base = rows[0][1]
    print(f"GAN lab benchmark: torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{os.cpu_count()} CPUs, median of {a.runs} runs\n")
    print("| what | ms | relative to the grid handler |\n|---|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t * 1000:.1f} | {t / base:.2f}x |")
    print(f"\nTarget: 5x5 grid <= 300 ms server time -> {'met' if base <= 0.3 else 'NOT met'} ({base * 1000:.0f} ms).")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
