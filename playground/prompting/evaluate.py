"""Accuracy of a prompting technique over a small labelled set, batched, step by step.

    accuracy = (1 / |D|) sum_{(x, y) in D} 1[extract(model(prompt(x))) = y]

ReAct and the prompt chain (agents.py) call the model several times per item; their completion is the
whole trace, whose last line states the answer. Self-consistency samples N_max paths per question once; the accuracy at N <= N_max votes over the
first N of them, so the curve accuracy(N) for N = 1, 3, 5, 10 costs one run, not four.
`run` is a generator (it yields progress) so that the tab can show a bar and stop it midway.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from typing import Iterator

from playground.core import paths
from playground.prompting import agents, answers, prompts
from playground.prompting.engine import GenConfig

ASSETS = paths.assets("prompting")
SETS = {"arithmetic": "arithmetic.csv", "sentiment": "sentiment.csv"}
BUNDLED = ASSETS / "eval_smollm2.json"     # written by `python -m demos.eval_prompt`, shown before any run
BUNDLED_FLOAT32 = ASSETS / "eval_smollm2_float32.json"     # the same with --weights float32 (the comparison)
SC_NS = (1, 3, 5, 10)
MAX_ROWS = 200
MAX_CELL = 1000


def load_set(name: str) -> list[dict]:
    return parse_csv((ASSETS / SETS[name]).read_text(encoding="utf-8"))


def parse_csv(text: str) -> list[dict]:
    """Rows {question, answer} from CSV text with a header `question,answer`. Raises ValueError
    with what to change."""
    reader = csv.reader(io.StringIO(text.strip()))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise ValueError("the CSV is empty; paste a header line `question,answer` and one row per item") from None
    if "question" not in header or "answer" not in header:
        raise ValueError(f"the header must name the columns question and answer (got {', '.join(header)[:80]})")
    qi, ai = header.index("question"), header.index("answer")
    rows = []
    for k, rec in enumerate(reader, start=2):
        if not any(c.strip() for c in rec):
            continue
        if len(rec) <= max(qi, ai):
            raise ValueError(f"line {k} has {len(rec)} cells; each line needs a question and an answer")
        q, a = rec[qi].strip(), rec[ai].strip()
        if not q or not a:
            raise ValueError(f"line {k}: the question or the answer is empty")
        if len(q) > MAX_CELL:
            raise ValueError(f"line {k}: the question is {len(q)} characters; keep it under {MAX_CELL}")
        rows.append({"question": q, "answer": a})
        if len(rows) > MAX_ROWS:
            raise ValueError(f"more than {MAX_ROWS} rows; evaluate a smaller set")
    if not rows:
        raise ValueError("no rows under the header")
    return rows


def cache_key(model: str, rows: list[dict], technique: str, params: dict) -> str:
    blob = json.dumps([model, rows, technique, params], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def run(backend, task: prompts.Task, rows: list[dict], technique: str, *, n: int = 10, temperature: float = 0.7,
        top_p: float = 0.95, seed: int = 0, max_new_tokens: int | None = None,
        max_rows_per_call: int = 16, should_stop=None) -> Iterator[dict]:
    """Yields {"done", "total"} after each batch, then the result {"accuracy", "items", ...}.
    Greedy decoding for single-answer techniques; N sampled paths for self-consistency.
    `should_stop()` (optional) ends the run after the current batch; the result then covers the
    items done so far and says so (partial=True)."""
    sc = technique == "self-consistency"
    cfg = GenConfig(n=n if sc else 1, temperature=temperature if sc else 0.0, top_p=top_p if sc else 1.0,
                    max_new_tokens=max_new_tokens or prompts.needs_tokens(technique, task), seed=seed)
    per_call = max(1, max_rows_per_call // cfg.n)
    items, tokens, t0 = [], 0, time.perf_counter()
    for start in range(0, len(rows), per_call):
        chunk = rows[start:start + per_call]
        if technique in prompts.MULTI_CALL:              # a loop or a chain per row, the rows in one batch
            going = [agents.make(technique, task, r["question"]) for r in chunk]
            tokens += agents.run_batch(backend, going, GenConfig(**{**cfg.__dict__, "seed": seed + start}))[0]
            texts_per_row = [[g.trace()] for g in going]
        else:
            chats = [prompts.build(technique, task, r["question"]) for r in chunk]
            out = backend.generate(chats, GenConfig(**{**cfg.__dict__, "seed": seed + start}))
            tokens += out.tokens
            texts_per_row = out.texts
        for r, texts in zip(chunk, texts_per_row):
            got = [answers.extract(agents.answer_part(technique, t), task.kind, task.labels) for t in texts]
            items.append({"question": r["question"], "gold": r["answer"], "completions": texts, "answers": got})
        yield {"done": len(items), "total": len(rows)}
        if should_stop is not None and len(items) < len(rows) and should_stop():
            break
    seconds = time.perf_counter() - t0
    result = {"technique": technique, "total": len(items), "partial": len(items) < len(rows), "tokens": tokens, "seconds": round(seconds, 1),
              "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature, "n": cfg.n}
    if sc:
        by_n = {}
        for k in [k for k in SC_NS if k <= n] or [n]:
            ok = sum(answers.matches(answers.vote(it["answers"][:k]).winner, it["gold"], task.kind) for it in items)
            by_n[str(k)] = ok / len(items)
        result["accuracy_by_n"] = by_n
        result["accuracy"] = by_n[str(max(int(k) for k in by_n))]
    else:
        result["accuracy"] = sum(answers.matches(it["answers"][0], it["gold"], task.kind) for it in items) / len(items)
    result["items"] = items
    yield result
