"""Figures of the CLIP lab (plotly), from embeddings. No gradio here.

- `matrix_figure`: the N texts x M images cosine matrix, its softmax over rows (text -> image)
  and over columns (image -> text), at a chosen temperature.
- `embedding_map`: images and texts projected together onto the first two principal axes, with
  matched pairs joined, and the numbers of the modality gap (Liang et al., 2022, "Mind the Gap").
"""
from __future__ import annotations

import numpy as np

from playground.clip.model import softmaxes


def _short(s: str, n: int = 28) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def matrix_figure(sim: np.ndarray, texts: list[str], images: list[str], temperature: float):
    """sim: (N texts, M images) cosine similarities."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows, cols = softmaxes(sim, temperature)
    xs = [f"{j + 1}. {_short(t, 18)}" for j, t in enumerate(images)]
    ys = [f"{i + 1}. {_short(t)}" for i, t in enumerate(texts)]
    fig = make_subplots(rows=1, cols=3, horizontal_spacing=0.06, subplot_titles=(
        "cosine similarity", "softmax over rows (text → image)", "softmax over columns (image → text)"))
    for k, (z, scale, fmt) in enumerate(((sim, "RdBu_r", ".2f"), (rows, "Blues", ".2f"), (cols, "Greens", ".2f"))):
        fig.add_trace(go.Heatmap(z=z, x=xs, y=ys, colorscale=scale, showscale=False, texttemplate=f"%{{z:{fmt}}}",
                                 zmin=-1 if k == 0 else 0, zmax=1, hovertemplate="%{y}<br>%{x}<br>%{z:.3f}<extra></extra>"),
                      row=1, col=k + 1)
        fig.update_yaxes(autorange="reversed", row=1, col=k + 1, showticklabels=k == 0)
        fig.update_xaxes(tickangle=-35, row=1, col=k + 1)
    fig.update_layout(height=190 + 48 * len(texts), margin=dict(l=10, r=10, t=70, b=10), font=dict(size=13),
                      title=f"{len(texts)} texts x {len(images)} images, temperature τ = {temperature:g}")
    return fig


def pca2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows of x (N, D) onto their first two principal axes: (N, 2) and the explained-variance ratios."""
    c = x - x.mean(0, keepdims=True)
    _, s, vt = np.linalg.svd(c, full_matrices=False)
    var = s**2 / max((s**2).sum(), 1e-12)
    return c @ vt[:2].T, var[:2]


def gap_numbers(img: np.ndarray, txt: np.ndarray) -> dict:
    """Unit rows img (N, D), txt (N, D), row i of each a matched pair."""
    mi, mt = img.mean(0), txt.mean(0)
    return {
        "centroid_distance": float(np.linalg.norm(mi - mt)),
        "matched_cos": float((img * txt).sum(1).mean()),
        "image_image_cos": float((img @ img.T)[~np.eye(len(img), dtype=bool)].mean()) if len(img) > 1 else 1.0,
        "text_text_cos": float((txt @ txt.T)[~np.eye(len(txt), dtype=bool)].mean()) if len(txt) > 1 else 1.0,
        "image_text_cos": float((img @ txt.T).mean()),
    }


def embedding_map(img: np.ndarray, txt: np.ndarray, names: list[str]):
    """Scatter of images and texts on the joint 2-D PCA, matched pairs joined by thin lines."""
    import plotly.graph_objects as go

    xy, var = pca2(np.concatenate([img, txt]))
    n = len(img)
    pi, pt = xy[:n], xy[n:]
    fig = go.Figure()
    lx, ly = [], []
    for a, b in zip(pi, pt):
        lx += [a[0], b[0], None]
        ly += [a[1], b[1], None]
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", line=dict(color="rgba(120,120,120,0.25)", width=1),
                             hoverinfo="skip", name="matched pair"))
    fig.add_trace(go.Scatter(x=pi[:, 0], y=pi[:, 1], mode="markers", name="images", text=names,
                             marker=dict(size=8, color="#1f77b4"), hovertemplate="image: %{text}<extra></extra>"))
    fig.add_trace(go.Scatter(x=pt[:, 0], y=pt[:, 1], mode="markers", name="texts", text=names,
                             marker=dict(size=8, color="#d62728", symbol="diamond"),
                             hovertemplate="text: %{text}<extra></extra>"))
    fig.update_layout(height=520, margin=dict(l=10, r=10, t=40, b=10), font=dict(size=13),
                      title=f"PCA of {n} images and their {n} captions (PC1 {var[0]:.0%}, PC2 {var[1]:.0%} of variance)",
                      xaxis_title="PC 1", yaxis_title="PC 2", legend=dict(orientation="h"))
    return fig
