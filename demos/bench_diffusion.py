"""Speed of the Diffusion lab on this machine, as a markdown table with ratios against one U-Net pass.

    python -m demos.bench_diffusion               # the bundled model, 2 threads
    python -m demos.bench_diffusion --min-run-time 2   # longer timing blocks (torch.utils.benchmark)

Rows: one U-Net evaluation (batch 1, the baseline); one guided evaluation (cond + uncond as one batch
of 2); one manual step of the tab as the server runs it (guided eps, sampler step, the seven images
rendered); a whole 50-step DDIM sample with guidance (what the Home tab's speed column shows); DDPM
over the full chain without guidance. Targets: <= 60 ms per manual step, <= 2 s per 50-step guided
sample. The load average is printed: on a shared machine the figures scale with it.
"""
from __future__ import annotations

import argparse
import os

import torch

from playground.core import settings, timing
from playground.diffusion import pipeline, service, views


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds of timed blocks per row")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--full-chain", action="store_true", help="also time DDPM over all T steps (slow)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    svc = service.Service(settings.from_env())
    model, card, sched = svc.model()
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

    chain_args = ("Sneaker", 3.0, "DDIM", 50, 0.0, 0)
    state = {"chain": None}

    def manual_step():   # what the Step button runs on the server: the service's step and the seven pictures
        if state["chain"] is None or state["chain"].done:
            state["chain"] = svc.new_chain(*chain_args).chain
        shown = svc.step(state["chain"], *chain_args)
        views.shown(shown, svc.facts().classes)
        state["chain"] = shown.chain

    def ddim50():
        svc.sample(*chain_args)

    def timed(fn) -> float:
        return timing.median_seconds(fn, min_run_time=a.min_run_time)

    rows = [("one U-Net pass (batch 1)", timed(one_pass), None),
            ("one guided evaluation (cond + uncond, batch 2)", timed(guided_pass), None),
            ("one manual step in the tab (server side)", timed(manual_step), 0.060),
            ("DDIM 50 steps, guided s = 3 (one image)", timed(ddim50), 2.0)]
    if a.full_chain:
        def ddpm_full():
            pipeline.sample(model, sched, y1, 1.0, sampler="DDPM", steps=sched.T, seed=0)
        rows.append((f"DDPM {sched.T} steps, s = 1 (one image)", timed(ddpm_full), None))
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
