"""Benchmark of the CLIP lab: a text query over a 10,000-image index, and indexing throughput.

    python -m demos.bench_clip                 # the bundled model, 10,000 synthetic index rows
    python -m demos.bench_clip --index 10000 --threads 2

The index holds the embeddings of the real gallery images (emoji and photos, encoded here), tiled
with small random perturbations up to --index rows and renormalised, so that the matmul and the
top-k work on realistic vectors. A query is: tokenise + text encoder + (N, D) @ (D,) + top-k; a query
the runner has seen recently skips the text encoder (its embedding is remembered).
Each table prints ratios against a baseline measured in the same run.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from playground.core.timing import median_seconds


def _table(title: str, rows: list[tuple[str, float, str]], base: str, unit: str = "ms") -> str:
    ref = dict((n, t) for n, t, _ in rows)[base]
    out = [f"\n\n### {title}\n", f"| what | {unit} | vs {base} | note |", "|---|---|---|---|"]
    for name, t, note in rows:
        val = t * 1000 if unit == "ms" else t
        ratio = ref / t if unit == "ms" else t / ref
        out.append(f"| {name} | {val:,.2f} | {ratio:.2f}x | {note} |")
    return "\n".join(out)


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", type=int, default=10_000, help="rows in the index")
    p.add_argument("--k", type=int, default=12)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--gallery", type=int, default=256, help="gallery images encoded for the throughput table")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from playground.clip import model as cm
    from playground.clip.service import Service
    from playground.core import hub, settings

    hub.decide("yes")                              # the bundled model, whatever the hub
    svc = Service(settings.from_env())
    r = svc.runner()
    tower = svc.text_tower().model or "trained from scratch"
    pre = r.preprocess
    imgs = svc.gallery().images[: a.gallery]

    # --- indexing throughput --------------------------------------------------------------------
    n_img = len(imgs)
    t_b64 = median_seconds(lambda: r.encode_pils(imgs, batch=64))
    t_b1 = median_seconds(lambda: r.encode_pils(imgs[:64], batch=1)) * n_img / 64
    t_pre = median_seconds(lambda: [pre(im.convert("RGB")) for im in imgs])
    thr = [("encode, batch 1 (baseline)", n_img / t_b1, "preprocess + image tower, one image at a time"),
           ("encode, batch 64", n_img / t_b64, "what the gallery indexer does"),
           ("preprocess only", n_img / t_pre, "PIL resize + crop + normalise")]

    # --- the 10k index query -------------------------------------------------------------------
    base = r.encode_pils(imgs, batch=64)                                      # (n, D) real embeddings
    rng = np.random.default_rng(0)
    reps = int(np.ceil(a.index / len(base)))
    index = np.tile(base, (reps, 1))[: a.index] + 0.05 * rng.standard_normal((a.index, base.shape[1]), np.float32)
    index /= np.linalg.norm(index, axis=1, keepdims=True)
    index = np.ascontiguousarray(index, np.float32)                           # (N, D)
    q = r.encode_texts(["a red apple"])[0]
    index512 = rng.standard_normal((a.index, 512), np.float32)
    index512 /= np.linalg.norm(index512, axis=1, keepdims=True)
    q512 = index512[0].copy()

    def naive():                      # a Python loop of dot products and a full sort
        s = [(float(np.dot(row, q)), i) for i, row in enumerate(index)]
        return sorted(s, reverse=True)[: a.k]

    def full_sort():                  # numpy matmul (its own BLAS threads) and a full sort
        s = index @ q
        return np.argsort(-s)[: a.k]

    def np_partition():               # numpy matmul and a partial sort
        s = index @ q
        i = np.argpartition(-s, a.k)[: a.k]
        return i[np.argsort(-s[i])]

    def end_to_end():                 # a query never seen before: the text tower runs
        v = r.encode_texts(["a red apple"], remember=False)[0]
        return cm.topk(v, index, a.k)

    def repeated():                   # a query seen before: its embedding is remembered
        v = r.encode_texts(["a red apple"])[0]
        return cm.topk(v, index, a.k)

    rows = [
        ("python loop + sorted (baseline)", median_seconds(naive), f"{a.index:,} x {index.shape[1]}"),
        ("numpy matmul + full argsort", median_seconds(full_sort), f"{a.index:,} x {index.shape[1]}"),
        ("numpy matmul + argpartition", median_seconds(np_partition), f"{a.index:,} x {index.shape[1]}, k = {a.k}"),
        ("torch matmul + topk (the service's)", median_seconds(lambda: cm.topk(q, index, a.k)),
         f"{a.index:,} x {index.shape[1]}, k = {a.k}"),
        ("text encoder alone", median_seconds(lambda: r.encode_texts(["a red apple"], remember=False)),
         f"tokenise + text tower ({tower})"),
        ("**text query end to end**", median_seconds(end_to_end),
         f"encode + matmul + top-k over {a.index:,} images (target: <= 30 ms)"),
        ("text query, repeated", median_seconds(repeated), "the embedding remembered + matmul + top-k"),
        ("torch matmul + topk, 512-D", median_seconds(lambda: cm.topk(q512, index512, a.k)),
         f"{a.index:,} x 512, the size of a ViT-B-32 index"),
    ]
    report = (f"## CLIP lab benchmark (bundled model, {torch.get_num_threads()} torch threads)\n"
              + _table(f"Text query over a {a.index:,}-image index (median of timed blocks, core.timing)", rows,
                       "python loop + sorted (baseline)")
              + _table(f"Indexing throughput ({n_img} gallery images)", thr, "encode, batch 1 (baseline)",
                       unit="images/s"))
    print(report)
    return report


if __name__ == "__main__":
    main()
