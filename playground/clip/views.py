"""Figures and text of the CLIP lab (plotly and markdown), from the service's plain results. No gradio here.

- the equations shown beside the controls (`LOSS_MD`, `zero_shot_md`);
- `matrix_figure`: the N texts x M images cosine matrix, its softmax over rows (text -> image)
  and over columns (image -> text), at a chosen temperature;
- `embedding_map`: images and texts projected together onto the first two principal axes
  (`torch.pca_lowrank`), with matched pairs joined; the modality gap in words (`gap_markdown`);
- the `*_outputs` functions: a service result -> the values of the tab's output components, in order.
"""
from __future__ import annotations

import numpy as np
import torch

from playground.clip.model import ENSEMBLE_TEMPLATES, SINGLE_TEMPLATE, softmaxes
from playground.core import images, plots

PCA_Q = 8          # columns of pca_lowrank's random basis: the 2 axes shown plus oversampling
PCA_NITER = 4      # its power iterations

LOSS_MD = r"""
**The loss CLIP is trained with** (symmetric InfoNCE). For a batch of $N$ matching pairs with unit
embeddings $x_i$ (image) and $y_j$ (text), $s_{ij} = \langle x_i, y_j \rangle / \tau$:

$$\mathcal{L} = \frac{1}{2N}\sum_{i=1}^{N}\Big[-\log\frac{e^{s_{ii}}}{\sum_{j} e^{s_{ij}}}\;-\;\log\frac{e^{s_{ii}}}{\sum_{j} e^{s_{ji}}}\Big]$$

The first term asks image $i$ to pick its text among all texts: a softmax over a column of the
matrix below, whose rows are texts. The second asks text $i$ to pick its image among all images:
a softmax over a row. Text $i$ is paired with image $i$: the diagonal.
"""


def zero_shot_md() -> str:
    return (r"""
$$p(y \mid x) = \frac{\exp(\cos(x, t_y)/\tau)}{\sum_{y'} \exp(\cos(x, t_{y'})/\tau)}$$

$$t_y = \mathrm{normalise}\Big(\frac{1}{|T|}\sum_{\text{template} \in T} \mathrm{normalise}\big(\mathrm{text}(\text{template}(y))\big)\Big)$$

""" + f"A single template uses the one prompt “{SINGLE_TEMPLATE.format('{label}')}”; the ensemble averages the "
        f"label's embedding over {len(ENSEMBLE_TEMPLATES)} templates. A lower temperature $\\tau$ sharpens the "
        "probabilities; the ranking never changes.")


def header_md(source_md: str, tower=None) -> str:
    """The model line, then (for a model with a locked text tower) which tower, why, and what it changed,
    every figure from the checkpoint's card; or what to install when the tower's package is missing."""
    return ("## CLIP: one space for images and text\n" + source_md + "\n\n" + (tower_md(tower) if tower else "") +
            "\n\nTrained with a contrastive loss, CLIP maps an image and its caption to nearby unit vectors. "
            "Everything below is a dot product in that space.")


def tower_md(t) -> str:
    """A service.TextTower in words."""
    if not t.model:
        return "**Text tower:** trained from scratch with the image tower."
    if t.missing:
        return f"**The offline model's text tower is missing.** {t.missing}"
    m = t.card["metrics"]
    para, base = m.get("paraphrase"), t.card.get("baseline", {})
    line = (f"**Text tower of the offline model:** `{t.model}` ({t.parameters / 1e6:.1f}M parameters, from the pip "
            f"package `{t.package}` {t.version}), **locked**: only the image tower, the text projection and the "
            "temperature were trained (LiT, Zhai et al., 2022, with the text side locked). Why: a text tower "
            "trained from scratch on this project's few thousand captions knows only their words; a pretrained "
            "sentence encoder already puts “a puppy” next to “dog”, so the image tower only has to meet it.")
    if para and base.get("paraphrase"):
        b = base["paraphrase"]
        line += (f" On {para['queries']} everyday queries kept out of training, a right image is among the top 5 "
                 f"for {para['top5']:.0%} of them (first: {para['top1']:.0%}); the earlier model, whose text tower "
                 f"was trained from scratch, managed {b['top5']:.0%} (first: {b['top1']:.0%}).")
    return line


def _short(s: str, n: int = 28) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def matrix_figure(sim: np.ndarray, texts: list[str], images: list[str], temperature: float):
    """sim: (N texts, M images) cosine similarities. Built from dicts (core/plots.py): one per Compute."""
    rows, cols = softmaxes(sim, temperature)
    xs = [f"{j + 1}. {_short(t, 18)}" for j, t in enumerate(images)]
    ys = [f"{i + 1}. {_short(t)}" for i, t in enumerate(texts)]
    layout = plots.panels(1, 3, horizontal_spacing=0.06, subplot_titles=(
        "cosine", "softmax per row: text → image", "per column: image → text"))
    data = []
    for k, (z, scale) in enumerate(((sim, "RdBu_r"), (rows, "Blues"), (cols, "Greens"))):
        data.append(plots.on(dict(type="heatmap", z=z, x=xs, y=ys, colorscale=plots.colorscale(scale), showscale=False,
                                  texttemplate="%{z:.2f}", zmin=-1 if k == 0 else 0, zmax=1,
                                  hovertemplate="%{y}<br>%{x}<br>%{z:.3f}<extra></extra>"), k + 1))
        n = "" if k == 0 else k + 1
        layout[f"yaxis{n}"].update(autorange="reversed", showticklabels=k == 0)
        layout[f"xaxis{n}"].update(tickangle=-35)
    layout.update(height=190 + 48 * len(texts), margin=dict(l=10, r=10, t=70, b=10), font=dict(size=13),
                  title=dict(text=f"{len(texts)} texts x {len(images)} images, temperature τ = {temperature:g}"))
    return plots.figure(data, layout)


def pca2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project rows of x (N, D) onto their first two principal axes: (N, 2) and the explained-variance
    ratios of those axes. torch.pca_lowrank's randomized SVD, with a fixed seed so a picture redraws the same."""
    t = torch.from_numpy(np.asarray(x, np.float32))
    c = t - t.mean(0, keepdim=True)                                    # (N, D) centred
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        _, s, v = torch.pca_lowrank(c, q=min(PCA_Q, *c.shape), center=False, niter=PCA_NITER)
    var = s[:2] ** 2 / (c**2).sum().clamp_min(1e-12)
    return (c @ v[:, :2]).numpy(), var.numpy()


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


# --- a service result -> the tab's outputs ------------------------------------------------------------

def index_markdown(info) -> str:
    parts = ", ".join(f"{n:,} {s}" for s, n in info.by_source.items())
    return (f"**Index ready:** {info.images:,} images ({parts}), {info.dim}-dimensional embeddings from "
            f"`{info.model_id}`, in {info.seconds:.1f} s (cached on disk after the first time)."
            + (f" Note: {info.note}." if info.note else ""))


def search_outputs(found) -> tuple[list, object, str]:
    """-> (gallery items, the session, the status line)."""
    items = [(images.png_file(img), f"{score:.3f} · {title}") for img, title, score in found.hits]
    md = (f"Top {len(found.hits)} of {found.searched:,} images for {found.what} (cosine similarity; matmul + "
          f"top-k {found.ms:.1f} ms). Click a result to search with it.")
    return items, found.session, md


def upload_outputs(session) -> tuple[object, list, str]:
    """-> (the session, the user's uploads as gallery items, the status line)."""
    shown = [(u.thumb, u.title) for u in session.uploads]
    return session, shown, f"**{len(session.uploads)}** image(s) of yours are in the gallery for this session."


def classify_outputs(c) -> tuple[dict, str]:
    """-> ({label: probability} for a Label, the table of cosines and probabilities)."""
    order = np.argsort(-c.probs)
    rows = "\n".join(f"| {c.labels[i]} | {c.cosines[i]:.3f} | {c.probs[i]:.3f} |" for i in order)
    md = (f"Prompts per label: {len(c.templates)} ({'; '.join(t.format('…') for t in c.templates)}). "
          f"The model's own learned temperature is {c.model_temperature:.4f}.\n\n"
          "| label | cosine | probability |\n|---|---|---|\n" + rows)
    return {lab: float(q) for lab, q in zip(c.labels, c.probs)}, md


def matrix_outputs(m) -> tuple[object, str, list]:
    """-> (the figure, the loss in words, the images in column order)."""
    fig = matrix_figure(m.sim, m.texts, m.names, m.temperature)
    n = len(m.texts)
    if m.loss is not None:
        md = (f"**InfoNCE loss of this batch: {m.loss:.3f}** at τ = {m.temperature:g} (text i is paired with image i; "
              f"a random guess would give ln {n} = {np.log(n):.3f}). The model's learned τ is "
              f"{m.model_temperature:.4f}.")
    else:
        md = (f"The loss needs pairs: give as many texts as images ({n} texts, {len(m.names)} images). "
              "The softmaxes above are shown all the same.")
    thumbs = [(img, f"{j + 1}. {name}") for j, (img, name) in enumerate(zip(m.thumbs, m.names))]
    return fig, md, thumbs


def gap_markdown(gap: dict) -> str:
    """The modality gap in words: the measured offset, what chance gives, and the scale of a pair."""
    d, chance, pair = gap["centroid_distance"], gap["chance_max"], gap["pair_distance"]
    if d > chance:
        verdict = (f"That is beyond chance: swapping image and caption within random pairs ({gap['swaps']} times) "
                   f"never put the centroids more than {chance:.3f} apart, so the offset is systematic, a modality "
                   f"gap. It is {d / pair:.0%} of the mean distance between an image and its own caption "
                   f"({pair:.3f}). The loss only asks that a pair be closer than the other pairs of its batch, not "
                   "that the two modalities overlap.")
    else:
        verdict = (f"That is within chance: swapping image and caption within random pairs ({gap['swaps']} times) "
                   f"put the centroids up to {chance:.3f} apart, so these pairs show no systematic gap.")
    return (f"**Modality gap:** the image centroid and the text centroid are {d:.3f} apart "
            f"(unit vectors). Mean cosine: matched image-text pairs {gap['matched_cos']:.3f}, any image-text "
            f"{gap['image_text_cos']:.3f}, image-image {gap['image_image_cos']:.3f}, text-text "
            f"{gap['text_text_cos']:.3f}. " + verdict + " Liang et al. (2022, “Mind the Gap”) found a clear gap "
            "in large pretrained CLIP models; compare with the hub model when it is reachable.")


def map_outputs(g) -> tuple[object, str]:
    """-> (the figure, the modality gap in words)."""
    return embedding_map(g.images, g.texts, g.names), gap_markdown(g.gap)
