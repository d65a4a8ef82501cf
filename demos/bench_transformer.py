"""Transformer lab benchmark: the whole view for a 64-token prompt against one plain forward pass of the
same model, in the same run, on this machine.

    python -m demos.bench_transformer                   # the offline SmolLM2-135M-Instruct, torch's threads
    python -m demos.bench_transformer --threads 1 2 --repeat 3

Rows (each a median from `core.timing`, after a warm-up call):
- plain forward: model(input_ids) on the prompt, what the Prompt lab's next-token view costs (logits for
  every position); and the same pass computing the last position's logits only (logits_to_keep=1);
- recorded forward: the pass the lab makes, with its hooks (model.trace), every layer's q, k, v, attention
  output and residual kept, the last position's logits only;
- whole view, new prompt: Service.inspect_prompt with the per-prompt cache emptied first, plus every figure
  and table of views.outputs; the head switched off is the default one (its layer and the later ones rerun);
- whole view, layer 0 switched off: the worst case of the rerun (every layer);
- whole view, slider moved: the prompt's pass reused, layer / head / query changed (no switch-off rerun).
The ratio is each row over the plain forward pass of the same round; rounds alternate (--repeat), and the
ratio shown is the median over rounds, so a change in the machine's load hits both sides. The 1-minute
load average is printed before and after: on a shared machine read the ratios, not the seconds.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv=None) -> dict:
    import torch

    from demos.common import table
    from playground.core import settings, timing
    from playground.transformer import model as tm
    from playground.transformer import views
    from playground.transformer.service import DEFAULT, Service

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[torch.get_num_threads()], help="torch thread counts")
    p.add_argument("--repeat", type=int, default=3, help="rounds (each times every row once)")
    p.add_argument("--min-run-time", type=float, default=1.0, help="seconds per median (torch.utils.benchmark)")
    a = p.parse_args(argv)

    svc = Service(settings.from_env())
    backend = svc._backend()
    text = svc.bench_prompt()                       # BENCH_PROMPT, at most MAX_TOKENS of this model's tokens
    ids = backend.tokenizer(text)["input_ids"]
    x = torch.tensor([ids], device=backend.device)
    d = DEFAULT
    load0 = os.getloadavg()[0]

    def plain():
        with torch.inference_mode():
            return backend.model(input_ids=x).logits

    def plain_last():
        with torch.inference_mode():
            return backend.model(input_ids=x, logits_to_keep=1).logits

    def view(new: bool, layer: int, head: int, query, ablation: str):
        def run():
            if new:
                svc.forget()
            r = svc.inspect(text, layer, head, query, None, d["shift"], ablation, 1.0, 0, 1.0)
            return views.outputs(r)
        return run

    rows = {"plain forward": plain, "plain forward, last position's logits only": plain_last,
            "recorded forward (hooks; last position's logits)": lambda: tm.trace(backend.model, ids),
            f"whole view, new prompt (layer {d['layer']} head {d['head']} off)":
                view(True, d["layer"], d["head"], len(ids), "this head"),
            "whole view, new prompt (layer 0 off: rerun all)": view(True, 0, 0, len(ids), "all heads of this layer"),
            "whole view, slider moved (pass reused)": view(False, 12, 3, 40, "nothing")}
    print(f"# Transformer lab benchmark: {backend.name}\n\n{platform.machine()}, {os.cpu_count()} CPUs, torch "
          f"{torch.__version__}; prompt = {len(ids)} tokens; medians of torch.utils.benchmark "
          f"(min run time {a.min_run_time:g} s) per round, {a.repeat} rounds.\n")
    out = {}
    for th in a.threads:
        torch.set_num_threads(th)
        secs = {k: [] for k in rows}
        for _ in range(a.repeat):
            for name, fn in rows.items():
                secs[name].append(timing.median_seconds(fn, min_run_time=a.min_run_time))
        base = secs["plain forward"]
        table_rows = [[th, name, statistics.median(s), statistics.median(v / b for v, b in zip(s, base))]
                      for name, s in secs.items()]
        print(table(["threads", "what", "seconds (median)", "x plain forward"], table_rows) + "\n")
        out[th] = {r[1]: {"seconds": r[2], "ratio": r[3]} for r in table_rows}
    print(f"1-minute load average: {load0:.2f} before, {os.getloadavg()[0]:.2f} after "
          f"({os.cpu_count()} CPUs; above that, other work shares the cores).")
    return out


if __name__ == "__main__":
    main()
