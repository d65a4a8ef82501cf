"""Evaluate every prompting technique on the bundled labelled sets (assets/prompting/*.csv) with one
model, and write the figures to a JSON file (by default assets/prompting/eval_smollm2.json, which
the Prompt lab shows before anything is run).

    python -m demos.eval_prompt                         # offline SmolLM2-135M-Instruct, all techniques
    python -m demos.eval_prompt --sets arithmetic --techniques zero-shot few-shot --budget-min 5

Deterministic given --seed: greedy decoding for zero-shot / few-shot / CoT; self-consistency draws
--n paths per question at --temperature and votes over the first 1, 3, 5, 10 of them.
Techniques run in --order; when --budget-min runs out, the run in progress is recorded as partial
(accuracy over the items it finished) and the rest are listed as not run.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROG = "python -m demos.eval_prompt"


def build_parser() -> argparse.ArgumentParser:
    from playground.prompting import evaluate, models, prompts

    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=models.OFFLINE_REF, help="hub id, local folder, or the offline default")
    p.add_argument("--sets", nargs="+", default=["sentiment", "arithmetic"], choices=list(evaluate.SETS))
    p.add_argument("--techniques", nargs="+", default=list(prompts.TECHNIQUES), choices=list(prompts.TECHNIQUES))
    p.add_argument("--n", type=int, default=10, help="self-consistency paths per question (votes over 1,3,5,10)")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rows-per-call", type=int, default=16, help="batch rows per generate call")
    p.add_argument("--weights", choices=("int8", "float32"), default="int8",
                   help="the weights that write the tokens on the CPU (int8 is the app's default; see fast.py)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument("--budget-min", type=float, default=25.0,
                   help="wall-clock budget: a run still going at this point stops after its current batch and is "
                        "recorded as partial; later runs are listed as not run")
    p.add_argument("--order", nargs="+", default=["zero-shot", "few-shot", "CoT (few-shot)", "self-consistency",
                                                  "CoT (zero-shot)"], help="the order the techniques run in")
    p.add_argument("--out", default=str(evaluate.BUNDLED))
    p.add_argument("--merge", nargs="+", metavar="JSON", help="merge the results of earlier runs into --out and exit")
    return p


def int8_kernel(weights: str) -> dict:
    """Which int8 activations this CPU used (fast.full_range): answers differ between the two, so a card
    is reproduced only where they match."""
    from playground.prompting import fast

    return {"int8_activations": "8-bit" if fast.full_range() else "7-bit"} if weights == "int8" else {}


def recipe(argv: list[str]) -> str:
    """The command line that remakes a file, as recorded in it."""
    return shlex.join([*shlex.split(PROG), *argv])


def recipe_args(text: str) -> argparse.Namespace:
    """The settings a recorded recipe ran with (its defaults filled in), e.g. for re-measuring a slice."""
    words = shlex.split(text)
    prog = shlex.split(PROG)
    if words[:len(prog)] != prog:
        raise ValueError(f"not a recipe of {PROG}: {text!r}")
    return build_parser().parse_args(words[len(prog):])


def main(argv=None) -> None:
    import torch

    from playground.core import settings
    from playground.prompting import evaluate, models, prompts

    argv = sys.argv[1:] if argv is None else list(argv)
    a = build_parser().parse_args(argv)
    if a.merge:
        merged = None
        for f in a.merge:
            part = json.loads(Path(f).read_text(encoding="utf-8"))
            if merged is None:
                merged = {**part, "results": {}, "not_run": [], "wall_seconds_per_run": {}, "recipes": {}}
            for set_name, by_tech in part["results"].items():          # a set's techniques from every run
                merged["results"].setdefault(set_name, {}).update(by_tech)
            merged["recipes"][Path(f).name] = part["recipe"]
            merged["not_run"] += part["not_run"]
            merged["wall_seconds_per_run"][Path(f).name] = part.get("wall_seconds")
        merged.pop("wall_seconds", None)
        merged["not_run"] = [x for x in merged["not_run"]          # what a later run did is not missing
                             if x.split("/", 1)[1] not in merged["results"].get(x.split("/", 1)[0], {})]
        Path(a.out).write_text(json.dumps(merged, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"merged {len(a.merge)} files into {a.out}")
        return
    if a.threads:
        torch.set_num_threads(a.threads)

    cfg = settings.from_env()
    t_start = time.perf_counter()
    backend = models.load(a.model, cfg.cache_dir, "cpu", int8=a.weights == "int8")
    ran = "int8" if getattr(backend.decoder, "int8", False) else "float32"     # what wrote the tokens (a model
    # without fast.Decoder, or a torch without int8 kernels, writes float32 whatever was asked)
    plan = []
    for tech in a.techniques:             # cheapest first: direct answers, then reasoning, then N paths
        for s in a.sets:
            plan.append((s, tech))
    rank = {t: i for i, t in enumerate(a.order + [t for t in prompts.TECHNIQUES if t not in a.order])}
    plan.sort(key=lambda st: (rank[st[1]], st[0]))
    report = {"recipe": recipe(argv),
              "model": a.model, "weights": ran, **int8_kernel(ran), "seed": a.seed, "self_consistency": {"n": a.n, "temperature": a.temperature,
              "top_p": a.top_p}, "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch "
              f"{torch.__version__}, {torch.get_num_threads()} threads", "results": {}, "not_run": []}
    for set_name, tech in plan:
        if (time.perf_counter() - t_start) / 60 > a.budget_min:
            report["not_run"].append(f"{set_name}/{tech}")
            continue
        task = prompts.TASKS[set_name]
        rows = evaluate.load_set(set_name)
        t0 = time.perf_counter()
        result = None
        over = lambda: (time.perf_counter() - t_start) / 60 > a.budget_min  # noqa: E731
        for step in evaluate.run(backend, task, rows, tech, n=a.n, temperature=a.temperature, top_p=a.top_p,
                                 seed=a.seed, max_rows_per_call=a.rows_per_call, should_stop=over):
            if "accuracy" in step:
                result = step
            else:
                print(f"  {set_name}/{tech}: {step['done']}/{step['total']} "
                      f"({time.perf_counter() - t0:.0f} s)", flush=True)
        items = result.pop("items")
        result["items"] = [{"question": it["question"], "gold": it["gold"], "answers": it["answers"],
                            "completion": it["completions"][0]} for it in items]
        report["results"].setdefault(set_name, {})[tech] = result
        extra = f"  by N: {result['accuracy_by_n']}" if "accuracy_by_n" in result else ""
        print(f"{set_name:10s} {tech:18s} accuracy {result['accuracy']:.3f} on {result['total']} items"
              f"{' (PARTIAL: budget ran out)' if result['partial'] else ''}  ({result['tokens']} tokens, "
              f"{result['seconds']:.0f} s){extra}", flush=True)
        report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
        Path(a.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    report["wall_seconds"] = round(time.perf_counter() - t_start, 1)
    Path(a.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {a.out} after {time.perf_counter() - t_start:.0f} s; not run: {report['not_run'] or 'none'}")


if __name__ == "__main__":
    main()
