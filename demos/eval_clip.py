"""How a CLIP answers a learner's own words: the paraphrase query set over the lab's gallery.

    python -m demos.eval_clip                                   # the bundled model
    python -m demos.eval_clip --weights OLD.safetensors         # any checkpoint with its card beside it
    python -m demos.eval_clip --show 5                          # also print each query's top 5 titles

The bundled card's `baseline` (the earlier model, whose text tower was trained from scratch) is written by
    git show 6c6cd43:assets/clip/tiny_clip.safetensors > /tmp/tiny_clip.safetensors
    git show 6c6cd43:assets/clip/tiny_clip.json > /tmp/tiny_clip.json
    python -m demos.eval_clip --weights /tmp/tiny_clip.safetensors --baseline-into assets/clip/lit_clip.json
which measures it with the same code as the card's own figures (held-out emoji names, Fashion-MNIST
zero-shot, the paraphrase set).

`assets/clip/paraphrase_queries.csv` holds everyday queries ("a puppy", "a cup of hot coffee"), each with
the title words that count as a hit ("dog|poodle|puppy") and the words that rule a title out ("hot dog").
It was written before the locked-text-tower model was trained and is never used for training or for
choosing a model (the recipe selects on its own validation split). A query is a hit at k when one of
the k gallery images nearest to it (cosine, over the whole gallery: emoji and photos) has a matching
title. `hit_rates` is the measurement the card's `paraphrase` entry records.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from playground.clip.queries import QUERIES, Query, is_hit, read_queries  # noqa: F401  (the set and its matching)

KS = (1, 5)


def hit_rates(query_emb: np.ndarray, index: np.ndarray, titles: list[str], queries: list[Query],
              ks: tuple[int, ...] = KS) -> dict:
    """query_emb (Q, D) and index (N, D) unit rows; titles (N,). -> {"top1": rate, "top5": rate, ...,
    "queries": Q, "per_query": [(query, [top max(ks) titles], first hit rank or None)]}."""
    sim = query_emb @ index.T                                                    # (Q, N)
    order = np.argsort(-sim, axis=1)[:, :max(ks)]                                # (Q, max k)
    first = []
    for q, row in zip(queries, order):
        ranks = [r for r, i in enumerate(row) if is_hit(titles[i], q)]
        first.append(ranks[0] + 1 if ranks else None)
    out = {f"top{k}": round(float(np.mean([f is not None and f <= k for f in first])), 4) for k in ks}
    out["queries"] = len(queries)
    out["per_query"] = [(q.text, [titles[i] for i in row], f) for q, row, f in zip(queries, order, first)]
    return out


def measure(svc, queries: list[Query] | None = None) -> dict:
    """The paraphrase hit rates of a service's running model over its gallery (the index the tab searches)."""
    queries = queries or read_queries()
    r = svc.runner()
    index = svc.gallery_index()
    with r.lock:
        q = r.encode_texts([x.text for x in queries])
    return hit_rates(q, index, [it.title for it in svc.gallery().items], queries)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=None, help="a checkpoint (default: the bundled one)")
    p.add_argument("--show", type=int, default=0, help="print each query's top N titles")
    p.add_argument("--baseline-into", type=Path, default=None,
                   help="write this model's figures into that card's `baseline` entry")
    a = p.parse_args(argv)
    from playground.clip import service as cs
    from playground.core import hub, settings

    hub.decide("yes")
    svc = cs.Service(settings.from_env(), weights=a.weights)
    res = measure(svc)
    if a.show:
        for text, top, first in res["per_query"]:
            print(f"{'  ' if first is None else f'{first:2d}'}  {text:35s} {' | '.join(top[:a.show])}")
    summary = {k: v for k, v in res.items() if k != "per_query"}
    summary["model"] = svc.runner().model_id
    print(json.dumps(summary, indent=1))
    if a.baseline_into:
        record_baseline(svc, summary, a.baseline_into)
    return res


def record_baseline(svc, paraphrase: dict, card_path: Path) -> dict:
    """Measure svc's offline model as the card's own figures are measured, and store it as `baseline`."""
    from demos import train_clip
    from playground.clip import model as cm
    from playground.core import checkpoint

    old = cm.read_card(svc.weights)
    px = old["config"]["image_size"]
    runner = svc.runner()
    sets, (fx, fy) = train_clip.held_out_sets(px, old["seed"])
    x, c = sets["emoji_unseen_names"]
    base = {"model": old["model"] + (" (text tower trained from scratch)" if "text_tower" not in old else ""),
            "sha256": checkpoint.sha256(svc.weights), "created": old.get("created"),
            "emoji_unseen_names": train_clip.retrieval_metrics(runner, x, c),
            "fashion_zero_shot": {k: v for k, v in train_clip.zero_shot(runner, fx, fy).items()
                                  if k in ("single_template", "ensemble", "images")},
            "paraphrase": {k: v for k, v in paraphrase.items() if k != "model"}}
    card = json.loads(Path(card_path).read_text())
    card["baseline"] = base
    Path(card_path).write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(base, indent=1))
    return base


if __name__ == "__main__":
    main()
