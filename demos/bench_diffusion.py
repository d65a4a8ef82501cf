"""Speed of the Diffusion lab on this machine, as a markdown table with ratios against one U-Net pass.

    python -m demos.bench_diffusion               # the bundled model, 2 threads
    python -m demos.bench_diffusion --repeat 5

Rows: one U-Net evaluation (batch 1, the baseline); one guided evaluation (cond + uncond as one batch
of 2); one manual step of the tab as the server runs it (guided eps, sampler step, the seven images
rendered); a whole 50-step DDIM sample with guidance (what the Home tab's speed column shows); DDPM
over the full chain without guidance. Targets: <= 60 ms per manual step, <= 2 s per 50-step guided
sample. The load average is printed: on a shared machine the figures scale with it.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from playground.diffusion import pipeline


def timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--full-chain", action="store_true", help="also time DDPM over all T steps (slow)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    from playground.diffusion import tab

    model, card, sched = pipeline.bundled()
    x1, x2 = torch.randn(1, 1, 28, 28), torch.randn(2, 1, 28, 28)
    t1, t2 = torch.tensor([500]), torch.tensor([500, 500])
    y1, y2 = torch.tensor([3]), torch.tensor([10, 3])
    load0 = os.getloadavg()[0]

    def one_pass():
        with torch.inference_mode():
            model(x1, t1, y1)

    def guided_pass():
        with torch.inference_mode():
            model(x2, t2, y2)

    state = {"chain": None}

    def manual_step():
        if state["chain"] is None or state["chain"].done:
            state["chain"] = tab._fresh(7, 3.0, "DDIM", 50, 0.0, 0)
        state["chain"] = tab.step_once(state["chain"], "Sneaker", 3.0, "DDIM", 50, 0.0, 0)[0]

    def ddim50():
        pipeline.sample(model, sched, y1, 3.0, sampler="DDIM", steps=50, seed=0)

    rows = [("one U-Net pass (batch 1)", timeit(one_pass, a.repeat * 10), None),
            ("one guided evaluation (cond + uncond, batch 2)", timeit(guided_pass, a.repeat * 10), None),
            ("one manual step in the tab (server side)", timeit(manual_step, a.repeat * 5), 0.060),
            ("DDIM 50 steps, guided s = 3 (one image)", timeit(ddim50, a.repeat), 2.0)]
    if a.full_chain:
        def ddpm_full():
            pipeline.sample(model, sched, y1, 1.0, sampler="DDPM", steps=sched.T, seed=0)
        rows.append((f"DDPM {sched.T} steps, s = 1 (one image)", timeit(ddpm_full, 1), None))
    base = rows[0][1]
    lines = [f"Diffusion lab speed: U-Net {tuple(card['config']['channels'])}, {card['parameters']:,} parameters, "
             f"{a.threads} threads, load average {load0:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
             "", "| what | median time | x one U-Net pass | target | meets it |", "|---|---|---|---|---|"]
    for name, sec, target in rows:
        tgt = f"<= {target * 1000:.0f} ms" if target and target < 1 else (f"<= {target:g} s" if target else "")
        ok = ("yes" if sec <= target else "no") if target else ""
        shown = f"{sec * 1000:.1f} ms" if sec < 1 else f"{sec:.2f} s"
        lines.append(f"| {name} | {shown} | {sec / base:.1f}x | {tgt} | {ok} |")
    table = "\n".join(lines)
    print(table)
    return table


if __name__ == "__main__":
    main()
