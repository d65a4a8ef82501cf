"""Train the Few-shot lab's three bundled models on the sinusoid family and write their cards.

    python -m demos.train_fewshot                       # all three, the paper's settings (below)
    python -m demos.train_fewshot --only maml           # one of them: maml, fomaml, pretrained

The settings of Finn et al. 2017, section 5.1 and appendix: an MLP 1-40-40-1 (ReLU), K = 10 support
and 10 query points per task, a meta-batch of 25 tasks, one inner gradient step of alpha = 0.01,
Adam with beta (learning rate) 0.001 for the meta-update, 70,000 meta-iterations.

- `maml`: second-order MAML, backpropagating the query loss through the inner step.
- `fomaml`: first-order MAML (the inner gradient is treated as a constant).
- `pretrained`: the paper's baseline, one network regressed on the points of every task jointly, with
  the same meta-batches (its 20 points per task), optimiser and number of updates.

Evaluation (in each card): a fixed set of held-out tasks (`--eval-tasks`, seed `--eval-seed`); for
K = 5 and K = 10 support points, 0 to `--eval-steps` plain gradient steps on the support points, and
the MSE against the true wave on `tasks.GRID_POINTS` evenly spaced x after each step (mean over the
tasks and its standard error). MAML's models adapt with their training alpha; the baseline's step
size is tuned as the paper did ("an automatically tuned step size"): the best of `--alpha-sweep` on
separate validation tasks (the MSE after `--eval-steps` steps averaged over K = 5 and 10; a step size
under which a validation task diverges is out); the sweep is in its card.
"""
from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from pathlib import Path

import torch

from playground.core import checkpoint, paths
from playground.fewshot import model as M
from playground.fewshot import tasks

ASSETS = paths.assets("fewshot")
KINDS = ("maml", "fomaml", "pretrained")
LABELS = {"maml": "MAML (second order)", "fomaml": "first-order MAML", "pretrained": "joint pretraining (baseline)"}
EVAL_K = (5, 10)            # the K-shot settings of the held-out table
VAL_TASKS = 500             # validation tasks for the baseline's step size
PAPER = {"iterations": 70_000, "meta_batch": 25, "k": 10, "inner_lr": 0.01, "inner_steps": 1, "meta_lr": 0.001}


def train(kind: str, a) -> tuple[M.SineMLP, dict]:
    """`a.iterations` updates of one model; returns it and its log (loss every `a.log_every` updates)."""
    torch.manual_seed(a.seed)
    model = M.SineMLP(M.SineMLPConfig())
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    g = torch.Generator().manual_seed(a.seed)
    curve, window, t0 = [], [], time.time()
    for it in range(1, a.iterations + 1):
        b = tasks.sample(a.meta_batch, a.k, a.query, g)
        if kind == "pretrained":
            loss = M.joint_objective(model.params(), torch.cat([b.x, b.qx], 1), torch.cat([b.y, b.qy], 1))
        else:
            loss = M.maml_objective(model.params(), b.x, b.y, b.qx, b.qy, a.alpha, a.inner_steps,
                                    first_order=kind == "fomaml")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        window.append(loss.item())
        if it % a.log_every == 0 or it == a.iterations:
            curve.append(round(sum(window) / len(window), 4))
            window = []
            print(f"  {kind} {it}/{a.iterations}: {'query' if kind != 'pretrained' else 'train'} MSE "
                  f"{curve[-1]:.3f} ({time.time() - t0:.0f} s)", flush=True)
    return model.eval(), {"wall_s": round(time.time() - t0, 1), "loss_curve": curve, "log_every": a.log_every}


def evaluate(model: M.SineMLP, batch: tasks.TaskBatch, alpha: float, steps: int, k: int) -> dict:
    """MSE on the query grid after 0..steps gradient steps on the first k support points of each task:
    {"mse": [mean over tasks per step], "se": [its standard error], "per_task": (steps + 1, T)}."""
    x, y = batch.x[:, :k], batch.y[:, :k]
    out, _ = M.finetune(M.per_task(model.params(), x.shape[0]), x, y, alpha, steps, batch.qx)
    per_task = M.mse(out, batch.qy)                                                           # (steps + 1, T)
    n = per_task.shape[1]
    return {"mse": [round(float(v), 4) for v in per_task.mean(1)],
            "se": [round(float(v), 4) for v in per_task.std(1) / math.sqrt(n)], "per_task": per_task}


def heldout_metrics(model: M.SineMLP, alpha: float, a) -> dict:
    batch = tasks.heldout(a.eval_tasks, max(EVAL_K), a.eval_seed)
    out = {"tasks": a.eval_tasks, "seed": a.eval_seed, "query_points": tasks.GRID_POINTS, "inner_lr": alpha,
           "steps": a.eval_steps}
    for k in EVAL_K:
        r = evaluate(model, batch, alpha, a.eval_steps, k)
        out[f"k{k}"] = {"mse": r["mse"], "se": r["se"]}
    return out


def tune_alpha(model: M.SineMLP, a) -> tuple[float, dict]:
    """The baseline's fine-tuning step size, chosen on validation tasks (not the held-out ones): the one with
    the lowest MSE after `a.eval_steps` steps averaged over the K settings; a step size under which any
    validation task diverges (a non-finite MSE) is out."""
    batch = tasks.heldout(VAL_TASKS, max(EVAL_K), a.val_seed)
    sweep = {}
    for al in a.alpha_sweep:
        per_k = [evaluate(model, batch, al, a.eval_steps, k)["per_task"][-1] for k in EVAL_K]
        ok = all(bool(torch.isfinite(t).all()) for t in per_k)
        sweep[f"{al:g}"] = {f"k{k}": round(float(t.mean()), 4) if ok else None for k, t in zip(EVAL_K, per_k)}
    score = {float(al): sum(v.values()) / len(v) for al, v in sweep.items() if None not in v.values()}
    best = min(score, key=score.get)
    return best, {"chosen": best, "mse_after_steps": sweep, "rule": "lowest mean over K of the MSE after the "
                  "last step; a step size with any diverging task is out", "tasks": VAL_TASKS, "seed": a.val_seed,
                  "steps": a.eval_steps}


def command(kind: str, a) -> str:
    return shlex.join(["python", "-m", "demos.train_fewshot", "--only", kind, "--iterations", str(a.iterations),
                       "--seed", str(a.seed), "--meta-batch", str(a.meta_batch), "--k", str(a.k),
                       "--query", str(a.query), "--alpha", f"{a.alpha:g}", "--lr", f"{a.lr:g}",
                       "--eval-tasks", str(a.eval_tasks), "--eval-seed", str(a.eval_seed)])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=KINDS, action="append", help="train only these (repeatable; default all)")
    p.add_argument("--iterations", type=int, default=PAPER["iterations"], help="meta-iterations (updates of theta)")
    p.add_argument("--meta-batch", type=int, default=PAPER["meta_batch"], help="tasks per update")
    p.add_argument("--k", type=int, default=PAPER["k"], help="support points per task")
    p.add_argument("--query", type=int, default=PAPER["k"], help="query points per task")
    p.add_argument("--alpha", type=float, default=PAPER["inner_lr"], help="inner step size")
    p.add_argument("--inner-steps", type=int, default=PAPER["inner_steps"], help="inner steps while meta-training")
    p.add_argument("--lr", type=float, default=PAPER["meta_lr"], help="Adam learning rate (the paper's beta)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-tasks", type=int, default=1000)
    p.add_argument("--eval-seed", type=int, default=2017)
    p.add_argument("--val-seed", type=int, default=7)
    p.add_argument("--eval-steps", type=int, default=10)
    p.add_argument("--alpha-sweep", type=float, nargs="+", default=[0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1])
    p.add_argument("--log-every", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: deterministic; best on a busy CPU)")
    p.add_argument("--out", default=str(ASSETS), help="folder for the checkpoints")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    lo, hi = tasks.AMPLITUDE, tasks.PHASE
    data = (f"sinusoids y = A sin(x - phi), A ~ U[{lo[0]:g}, {lo[1]:g}], phi ~ U[{hi[0]:g}, {hi[1]:.4g}], "
            f"x ~ U[{tasks.X_RANGE[0]:g}, {tasks.X_RANGE[1]:g}]: a fresh meta-batch of {a.meta_batch} tasks x "
            f"({a.k} support + {a.query} query) points per iteration; metrics on {a.eval_tasks} held-out tasks "
            f"(seed {a.eval_seed})")
    results = {}
    for kind in a.only or KINDS:
        print(f"training {kind} for {a.iterations} iterations", flush=True)
        model, log = train(kind, a)
        if kind == "pretrained":
            alpha, sweep = tune_alpha(model, a)
        else:
            alpha, sweep = a.alpha, None
        metrics = {"heldout": heldout_metrics(model, alpha, a), **log}
        recipe = {"algorithm": LABELS[kind], "optimizer": "Adam", "lr": a.lr, "iterations": a.iterations,
                  "meta_batch": a.meta_batch, "k_support": a.k, "k_query": a.query,
                  "inner_lr": a.alpha if kind != "pretrained" else None,
                  "inner_steps": a.inner_steps if kind != "pretrained" else 0,
                  "threads": torch.get_num_threads(), "command": command(kind, a), "paper": PAPER}
        extra = {"label": LABELS[kind], "recipe": recipe, "adapt": {"inner_lr": alpha, "alpha_sweep": sweep}}
        checkpoint.save(out / kind, model, data=data, steps=a.iterations, seed=a.seed, metrics=metrics, extra=extra)
        h = metrics["heldout"]
        print(f"{kind}: held-out MSE K=5 {h['k5']['mse'][0]:.3f} -> {h['k5']['mse'][1]:.3f} -> {h['k5']['mse'][-1]:.3f}; "
              f"K=10 {h['k10']['mse'][0]:.3f} -> {h['k10']['mse'][1]:.3f} -> {h['k10']['mse'][-1]:.3f} "
              f"(alpha {alpha:g}, {log['wall_s']:.0f} s)", flush=True)
        results[kind] = metrics
    return results


if __name__ == "__main__":
    main(sys.argv[1:])
