"""Prompt lab benchmark: tokens/s of the offline model on this machine, single stream and batched,
and self-consistency with N paths as ONE batched call against N sequential calls, in the same run.

    python -m demos.bench_prompt                 # SmolLM2-135M-Instruct, N = 8, 48 new tokens per path
    python -m demos.bench_prompt --threads 1 2 --n 8 --tokens 48 --repeat 2

Weights: "float32, transformers loop" is the baseline (transformers' own forward writes each token);
"float32" and "int8" write tokens with playground.prompting.fast.Decoder (int8 is the CPU default).
Single-stream times are medians from `core.timing` (torch.utils.benchmark, after a warm-up call).

Every row writes exactly --tokens new tokens (end tokens are ignored), so rows do equal work and the
ratios compare like with like. The sequential and batched runs alternate (--repeat pairs) and the
speed-up is the median of the paired ratios, so a change in the machine's load hits both sides. The prompt is the few-shot chain-of-thought juggler question that
self-consistency uses in the lab. Prints markdown tables.
"""
from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> dict:
    import torch

    from demos.common import table
    from playground.core import settings, timing
    from playground.prompting import models, prompts
    from playground.prompting.engine import GenConfig

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=models.OFFLINE_REF)
    p.add_argument("--n", type=int, default=8, help="self-consistency paths")
    p.add_argument("--tokens", type=int, default=48, help="new tokens per path")
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()],
                   help="torch thread counts to compare for the single stream")
    p.add_argument("--repeat", type=int, default=2, help="paired sequential / batched runs, after one warm-up")
    p.add_argument("--no-int8", action="store_true", help="skip the int8 rows (fast.Decoder, int8 weights)")
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the transformers-loop rows (the same model, tokens written by its own forward)")
    a = p.parse_args(argv)

    t0 = time.perf_counter()
    backend = models.load(a.model, settings.from_env().cache_dir, "cpu", int8=False)
    load_s = time.perf_counter() - t0
    variants = [("float32", backend)]
    if not a.no_baseline:                              # the baseline: transformers' forward writes each token
        plain = copy.copy(backend)
        plain.decoder = None
        variants.insert(0, ("float32, transformers loop", plain))
    if not a.no_int8:                                  # the same model, its tokens written with int8 weights
        quick = copy.copy(backend)
        quick.use_decoder(True)
        variants.append(("int8", quick))
    q = prompts.PRESETS["Juggler (chain-of-thought)"]["question"]
    chat = prompts.build("self-consistency", prompts.ARITHMETIC, q)
    prompt_tokens = len(backend.tokenizer(backend.render(chat), add_special_tokens=False)["input_ids"])
    short = prompts.build("zero-shot", prompts.ARITHMETIC, q)

    print(f"# Prompt lab benchmark: {a.model}\n\n{platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}; model load {load_s:.2f} s; few-shot CoT prompt = {prompt_tokens} tokens; "
          f"{a.tokens} new tokens per path; single stream: median seconds after a warm-up.\n")

    # 1. Single stream: tokens/s of one greedy and one sampled path, per thread count.
    rows, single = [], {}
    for (wname, b), th in [(v, th) for v in variants for th in a.threads]:
        torch.set_num_threads(th)
        for label, c, cfg in [("greedy, short prompt", short, GenConfig(max_new_tokens=a.tokens, stop_at_eos=False)),
                              ("sampled T=0.7, short prompt", short,
                               GenConfig(max_new_tokens=a.tokens, temperature=0.7, top_p=0.95, stop_at_eos=False)),
                              ("greedy, few-shot CoT prompt", chat,
                               GenConfig(max_new_tokens=a.tokens, stop_at_eos=False))]:
            s = timing.median_seconds(lambda: b.generate([c], cfg))
            single[(wname, th, label)] = a.tokens / s
            rows.append([wname, th, label, a.tokens, f"{s:.2f}", f"{a.tokens / s:.1f}"])
    base_th = a.threads[-1]
    torch.set_num_threads(base_th)
    print("## Single stream\n")
    print(table(["weights", "threads", "decoding", "tokens", "seconds", "tokens/s"], rows))

    # 2. Self-consistency: N sequential calls against one batched call of N rows (shared prefill).
    cfg1 = GenConfig(max_new_tokens=a.tokens, temperature=0.7, top_p=0.95, stop_at_eos=False)
    rows_b, speedups = [], {}
    for wname, b in variants:
        run_seq = lambda: [b.generate([chat], GenConfig(**{**cfg1.__dict__, "seed": i})) for i in range(a.n)]  # noqa: E731
        run_batched = lambda: b.generate([chat], GenConfig(**{**cfg1.__dict__, "n": a.n}))  # noqa: E731
        run_batched()                                            # warm-up
        pairs = []
        for _ in range(a.repeat):                               # interleaved, so a load change hits both
            t = time.perf_counter()
            run_seq()
            ts = time.perf_counter() - t
            t = time.perf_counter()
            run_batched()
            pairs.append((ts, time.perf_counter() - t))
        seq = statistics.median(p[0] for p in pairs)
        batched = statistics.median(p[1] for p in pairs)
        speedups[wname] = statistics.median(p[0] / p[1] for p in pairs)
        rows_b += [[wname, f"{a.n} sequential calls (baseline)", a.n, a.n * a.tokens, f"{seq:.2f}",
                    f"{a.n * a.tokens / seq:.1f}", "1.00x"],
                   [wname, f"1 batched call, n = {a.n}", 1, a.n * a.tokens, f"{batched:.2f}",
                    f"{a.n * a.tokens / batched:.1f}",
                    f"{speedups[wname]:.2f}x (median of {a.repeat} paired runs: "
                    + ", ".join(f"{p[0] / p[1]:.2f}" for p in pairs) + ")"]]
    print(f"\n## Self-consistency, N = {a.n} paths of the few-shot CoT prompt ({base_th} threads)\n")
    print(table(["weights", "how", "calls", "tokens", "seconds", "tokens/s", "speed-up"], rows_b))
    for wname, sp in speedups.items():
        print(f"\n{wname}: one batched call is {sp:.2f}x faster than {a.n} sequential calls "
              f"({'meets' if sp >= 3 else 'misses'} the 3x target).")
    return {"single": {f"{k[0]} {k[1]}t {k[2]}": v for k, v in single.items()}, "speedup": speedups}


if __name__ == "__main__":
    main()
