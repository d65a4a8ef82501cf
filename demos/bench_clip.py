"""Benchmark of the CLIP lab: a text query over a 10,000-image index, and indexing throughput.

    python -m demos.bench_clip                 # the bundled model, 10,000 synthetic index rows
    python -m demos.bench_clip --index 10000 --queries 50 --threads 2

The index holds the embeddings of the real gallery images (emoji and photos, encoded here), tiled
with small random perturbations up to --index rows and renormalised, so that the matmul and the
top-k work on realistic vectors. A query is: tokenise + text encoder + (N, D) @ (D,) + top-k.
Each table prints ratios against a baseline measured in the same run.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def _time(fn, repeat: int) -> float:
    """Median seconds of `repeat` calls after one warm-up call."""
    fn()
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


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
    p.add_argument("--queries", type=int, default=30, help="timed repeats per row")
    p.add_argument("--k", type=int, default=12)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--gallery", type=int, default=256, help="gallery images encoded for the throughput table")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from playground.clip import model as cm
    from playground.clip.gallery import Gallery

    model, pre, tok = cm.load_bundled()
    r = cm.ClipRunner(model, pre, tok, "bundled")
    g = Gallery(emoji_limit=a.gallery)
    imgs = g.images[: a.gallery]

    # --- indexing throughput --------------------------------------------------------------------
    n_img = len(imgs)
    t_b64 = _time(lambda: r.encode_pils(imgs, batch=64), 1)
    t_b1 = _time(lambda: r.encode_pils(imgs[:64], batch=1), 1) * n_img / 64
    t_pre = _time(lambda: [pre(im.convert("RGB")) for im in imgs], 1)
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

    def end_to_end():
        v = r.encode_texts(["a red apple"])[0]
        return cm.topk(v, index, a.k)

    rows = [
        ("python loop + sorted (baseline)", _time(naive, max(3, a.queries // 10)), f"{a.index:,} x {index.shape[1]}"),
        ("numpy matmul + full argsort", _time(full_sort, a.queries), f"{a.index:,} x {index.shape[1]}"),
        ("numpy matmul + argpartition", _time(np_partition, a.queries), f"{a.index:,} x {index.shape[1]}, k = {a.k}"),
        ("torch matmul + topk (the tab's)", _time(lambda: cm.topk(q, index, a.k), a.queries),
         f"{a.index:,} x {index.shape[1]}, k = {a.k}"),
        ("text encoder alone", _time(lambda: r.encode_texts(["a red apple"]), a.queries), "tokenise + text tower"),
        ("**text query end to end**", _time(end_to_end, a.queries),
         f"encode + matmul + top-k over {a.index:,} images (target: <= 30 ms)"),
        ("torch matmul + topk, 512-D", _time(lambda: cm.topk(q512, index512, a.k), a.queries),
         f"{a.index:,} x 512, the size of a ViT-B-32 index"),
    ]
    report = (f"## CLIP lab benchmark (bundled model, {torch.get_num_threads()} torch threads)\n"
              + _table(f"Text query over a {a.index:,}-image index (median of {a.queries})", rows,
                       "python loop + sorted (baseline)")
              + _table(f"Indexing throughput ({n_img} gallery images)", thr, "encode, batch 1 (baseline)",
                       unit="images/s"))
    print(report)
    return report


if __name__ == "__main__":
    main()
