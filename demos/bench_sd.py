"""Speed of text-to-image (Stable Diffusion) in the Diffusion lab, as a markdown table with ratios against
the bundled U-Net's guided step measured in the same run.

    python -m demos.bench_sd                          # the tiny SD of sd_tiny.py (random weights), CPU
    python -m demos.bench_sd --threads 1              # one thread (faster for tiny models on a busy machine)
    python -m demos.bench_sd --device cuda            # also on the GPU, when there is one
    python -m demos.bench_sd --ref segmind/tiny-sd --device cuda   # a real model (a folder, or a hub id
                                                      # when online): its per-step seconds on the GPU are
                                                      # what sd_service.GPU_SECONDS_PER_STEP should record

Rows per device: one guided step of our loop (the U-Net on the batch [uncond, cond], the guided eps, the
scheduler's step) at the model's own size and at half of it; encoding one prompt; one TAESD preview
decode; one full-VAE decode. The baseline is one step of the bundled class-conditional chain (DDIM, the
U-Net on a batch of 2), on the CPU as the app runs it. The load average is printed: on a shared machine
the figures scale with it.
"""
from __future__ import annotations

import argparse
import os
import tempfile

import torch

from playground.core import device, settings, timing
from playground.diffusion import pipeline, sd, sd_tiny, service

PROMPT = "a watercolor painting of a lighthouse on a cliff at sunset"


def bundled_step_seconds(min_run_time: float) -> float:
    """One step of the bundled model's chain (guided, s = 3, DDIM 50 steps), as Step runs it."""
    svc = service.Service(settings.from_env())
    model, _, schedule = svc.model()
    state = {"chain": None}

    def one():
        if state["chain"] is None or state["chain"].done:
            state["chain"] = pipeline.Chain(label=7, scale=3.0, sampler="DDIM", steps=50, seed=0).start(model)
        state["chain"].step(model, schedule)
    return timing.median_seconds(one, min_run_time=min_run_time)


def sd_rows(m: sd.SD, min_run_time: float) -> list[tuple[str, float]]:
    rows = []
    for frac in (1.0, 0.5):
        side = max(m.size_multiple, int(m.native_size * frac) // m.size_multiple * m.size_multiple)
        state = {"run": None}

        def one():
            if state["run"] is None or state["run"].done:
                state["run"] = sd.start(m, PROMPT, "", "DDIM", 50, 0, side, side)
                state["run"].cond, state["run"].uncond = sd.encode(m, PROMPT), sd.encode(m, "")
                state["run"].encoded = (PROMPT, "")
            sd.step(m, state["run"], 7.5)
            if m.device.type == "cuda":
                torch.cuda.synchronize()
        rows.append((f"one guided step (U-Net on batch 2 + scheduler), {side}×{side}", timing.median_seconds(
            one, min_run_time=min_run_time)))
    z = torch.randn(1, m.unet.config.in_channels, m.native_size // m.vae_scale_factor,
                    m.native_size // m.vae_scale_factor, device=m.device, dtype=m.dtype)
    rows.append(("encode one prompt (text encoder)", timing.median_seconds(lambda: sd.encode(m, PROMPT),
                                                                          min_run_time=min_run_time)))
    if m.taesd is not None:
        rows.append((f"TAESD preview decode, {m.native_size}×{m.native_size}",
                     timing.median_seconds(lambda: sd.decode(m, z), min_run_time=min_run_time)))
    rows.append((f"full VAE decode, {m.native_size}×{m.native_size}",
                 timing.median_seconds(lambda: sd.decode(m, z, full=True), min_run_time=min_run_time)))
    return rows


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ref", help="a Stable Diffusion folder or hub id (default: the tiny random one, built here)")
    p.add_argument("--taesd", help="a TAESD folder or hub id (a model folder's own taesd/ is used anyway)")
    p.add_argument("--device", action="append", default=None, help="cpu (default), cuda; may be repeated")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--min-run-time", type=float, default=0.5, help="seconds of timed blocks per row")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    load0 = os.getloadavg()[0]
    base = bundled_step_seconds(a.min_run_time)
    tmp = None
    if a.ref is None:
        tmp = tempfile.TemporaryDirectory()
        ref, what = str(sd_tiny.save(tmp.name)), "the tiny SD of sd_tiny.py (random weights)"
    else:
        ref, what = a.ref, a.ref
    lines = ["| device | what | median time | × bundled step |", "|---|---|---|---|",
             f"| cpu | bundled U-Net: one guided step of its chain (batch 2, 28×28) | {base * 1000:.1f} ms | 1.0x |"]
    for name in a.device or ["cpu"]:
        dev = device.resolve(name)
        if str(dev) != name and name != "cpu":
            lines.append(f"| {name} | not available on this machine | | |")
            continue
        dtype = torch.float16 if dev.type == "cuda" else torch.float32
        m = sd.load_sd(ref, dtype=dtype, taesd=a.taesd, cache_dir=settings.from_env().cache_dir).to(dev)
        for label, sec in sd_rows(m, a.min_run_time):
            shown = f"{sec * 1000:.1f} ms" if sec < 1 else f"{sec:.2f} s"
            lines.append(f"| {dev.type}{' (fp16)' if dtype == torch.float16 else ''} | {label} | {shown} | "
                         f"{sec / base:.1f}x |")
    head = (f"Text-to-image speed: {what}; {a.threads} threads, load average {load0:.1f} -> "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    table = head + "\n\n" + "\n".join(lines)
    print(table)
    if tmp is not None:
        tmp.cleanup()
    return table


if __name__ == "__main__":
    main()
