"""The VAE lab's pictures, figures, tables and equations, made from the service's plain data
(no gradio, no model loading). Every figure in the text comes from a card or a constant the code uses."""
from __future__ import annotations

import base64
import io

import numpy as np
import plotly.graph_objects as go
import torch

from playground.core import images, plots
from playground.vae.service import (BETA_IMAGES, MAP_DIM, N_SAMPLES, BetaComparison, DatasetInfo, Encoded,
                                    Interpolation, MapAll, MapView, Sliders, VQView)

SCALE = 10              # a model-sized image shown SCALE times larger (crisp pixels)
MAP_POINTS = 3000       # test-set means drawn on the map: enough to see the clusters, light to send
GIF_SCALE = 6
GIF_MS = 140            # per frame
GREY = 0.35             # the padding between images in a strip

EQ_DECODER = r"""
**Generative model.** $z \sim \mathcal{N}(0, I)$, and each pixel is a Bernoulli with mean
$\sigma(f_\theta(z))$. The image shows that mean:

$$p_\theta(x \mid z) = \prod_{i} \mathrm{Bern}\big(x_i;\ \sigma(f_\theta(z)_i)\big)$$

Sliders are ordered by the KL each dimension carries on the test set (most informative first);
a dimension with KL near 0 is unused: moving it changes nothing.
"""
EQ_ENCODER = r"""
**Encoder.** $q_\phi(z \mid x) = \mathcal{N}\big(\mu_\phi(x),\ \mathrm{diag}\,\sigma_\phi^2(x)\big)$

**Reparameterisation** (the samples on the right):
$$z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I)$$

**ELBO**, the bound the model maximises, in nats:
$$\log p(x) \ \ge\ \underbrace{\mathbb{E}_{q_\phi(z\mid x)}\big[\log p_\theta(x \mid z)\big]}_{-\text{reconstruction}}
\ -\ \underbrace{D_{KL}\big(q_\phi(z \mid x)\,\|\,\mathcal{N}(0, I)\big)}_{\text{KL}}$$

**Closed-form KL**, summed over the dimensions $j$:
$$D_{KL} = \tfrac12 \sum_j \big(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\big)$$
"""
EQ_INTERP = r"""
Between the codes $a = \mu_\phi(x_A)$ and $b = \mu_\phi(x_B)$, with $t \in [0, 1]$:

$$\text{linear: } (1-t)\,a + t\,b \qquad
\text{spherical: } \frac{\sin((1-t)\Omega)}{\sin\Omega}\,a + \frac{\sin(t\Omega)}{\sin\Omega}\,b,\quad
\cos\Omega = \frac{a\cdot b}{\|a\|\,\|b\|}$$
"""


def map_title(dim: int | None) -> str:
    return f"Latent map ({dim}-D model)" if dim else "Latent map"


def map_equation(dim: int | None) -> str:
    if not dim:
        return f"No map model for this data set yet: run `demos/train_vae.py` with `--latent {MAP_DIM}`."
    return (rf"A model with a **{dim}-D latent**, so the whole code fits on the page. Dots: $\mu_\phi(x)$ for test "
            r"images. The grid decodes $z = \big(\Phi^{-1}(u_1), \Phi^{-1}(u_2)\big)$ for evenly spaced "
            r"$u \in (0, 1)$: each cell holds the same prior mass.")


def beta_title(info: DatasetInfo) -> str:
    lo, hi = info.betas or (1.0, float("nan"))
    return f"beta = {lo:g} vs beta = {hi:g}"


def beta_equation(info: DatasetInfo) -> str:
    text = (r"**beta-VAE** trains on "
            r"$\ \mathbb{E}_q[-\log p_\theta(x\mid z)] + \beta\, D_{KL}(q_\phi(z\mid x)\,\|\,p(z))$."
            r" $\beta = 1$ is the negative ELBO.")
    if info.betas is None:
        return text + " This data set has no model with $\\beta > 1$ yet."
    lo, hi = info.betas
    return text + (f" The models compared here were trained with $\\beta = {lo:g}$ and $\\beta = {hi:g}$ (their cards):"
                   " the larger beta pays more for every nat of KL: fewer dimensions carry information, "
                   "reconstructions get blurrier, and prior samples look more alike.")


def beta_rows_label(info: DatasetInfo) -> str:
    lo, hi = info.betas or (1.0, float("nan"))
    return (f"rows: test images · beta = {lo:g} reconstructions · beta = {hi:g} reconstructions · "
            f"prior samples beta = {lo:g} · the same eps through beta = {hi:g}")


BETA_SEED_LABEL = f"seed (which {BETA_IMAGES} test images, which prior draws)"
SAMPLES_LABEL = f"{N_SAMPLES} samples z = mu + sigma * eps, decoded"


def intro(info: DatasetInfo) -> str:
    dim = f"a {info.latent_dim}-dimensional latent z" if info.latent_dim else "a latent z"
    models = "; ".join(f["model"] for f in info.figures) or "none found: run the recipe"
    return (f"## Variational autoencoder\n{info.source}\n\nA Gaussian encoder, a Bernoulli decoder, and {dim}, "
            f"trained here by `demos/train_vae.py` (the set for {info.label}: {models}).")


def figures_table(info: DatasetInfo) -> str:
    rows = ["| model | -ELBO | reconstruction | KL | epochs | params |", "|---|---|---|---|---|---|"]
    rows += [f"| {f['model']} | **{f['neg_elbo']:.1f}** | {f['recon']:.1f} | {f['kl']:.1f} | {f['epochs']} | "
             f"{f['parameters']:,} |" for f in info.figures]
    n = f", {info.figures[0]['images']:,} images" if info.figures else ""
    return (f"**Held-out figures** (test split{n}, nats per image, Bernoulli decoder; lower is better):\n\n"
            + "\n".join(rows))


def slider_labels(info: DatasetInfo, n: int) -> list[str]:
    """Slider i shows dimension order[i] and its held-out KL (the card's)."""
    kl, order = info.kl_per_dim, info.order
    return [f"z[{order[i]}]  ·  KL {kl[order[i]]:.2f} nats" if i < len(order)
            else f"slider {i + 1} (unused by this model)" for i in range(n)]


# --- images ----------------------------------------------------------------------------------

def big(x: torch.Tensor, scale: int = SCALE):
    """(1, H, W) in [0, 1] -> PIL, `scale` times larger."""
    return images.to_pil(x, scale=scale)


def strip(x: torch.Tensor, nrow: int, scale: int = 4):
    """(N, 1, H, W) -> one PIL grid, `nrow` images a row."""
    return images.to_pil(images.grid(x, nrow=nrow, pad=2, pad_value=GREY), scale=scale)


def data_url(x: torch.Tensor) -> str:
    """The live image as a data URL of the model-sized PNG itself (a few hundred bytes): it arrives in the
    same message as the event's answer, with no second request for a file, and the browser scales it up
    with crisp pixels (CSS image-rendering: pixelated)."""
    buf = io.BytesIO()
    images.to_pil(x).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def blank(size: int) -> str:
    """The live image before the first decode (no model is loaded to build the tab)."""
    return data_url(torch.zeros(1, size, size))


def live_template(size: int) -> str:
    px = size * SCALE
    return ('<div class="vae-live" style="display:flex;justify-content:center;padding:8px">'
            f'<img alt="decoded image" src="${{value}}" width="{px}" height="{px}" '
            f'style="width:{px}px;height:{px}px;image-rendering:pixelated;image-rendering:crisp-edges;'
            'background:#000;border-radius:4px"></div>')


def sliders(r: Sliders) -> list:
    """[slider values..., live image] (and the next seed after a prior sample)."""
    return [*r.values, data_url(r.image)] + ([r.next_seed] if r.next_seed is not None else [])


# --- encoding --------------------------------------------------------------------------------

def mu_sigma_figure(mu: list[float], sigma: list[float], order: list[int]) -> plots.Figure:
    """Built from dicts (core/plots.py): one per encoded image."""
    labels = [f"z[{j}]" for j in order]
    sig = [sigma[j] for j in order]
    return plots.figure(
        [dict(type="bar", x=labels, y=[mu[j] for j in order], name="mu", marker=dict(color="#3b6fd8"),
              error_y=dict(type="data", array=sig, visible=True)),
         dict(type="scatter", x=labels, y=sig, mode="markers+lines", name="sigma",
              marker=dict(color="#e0702b", size=9))],
        dict(shapes=[plots.hline(1.0, dash="dot", color="#999")],
             annotations=[dict(text="prior sigma = 1", showarrow=False, x=1, xref="x domain", xanchor="right",
                               y=1.0, yref="y", yanchor="bottom")],
             title=dict(text="q(z|x): mu (bars, whiskers = ±sigma) and sigma per dimension"), height=340,
             margin=dict(l=40, r=10, t=50, b=40), legend=dict(orientation="h"),
             xaxis=dict(title=dict(text="dimension (most KL on the test set first)"))))


def terms_markdown(terms: dict, top: int = 3) -> str:
    kl = terms["kl_per_dim"]
    most = sorted(range(len(kl)), key=lambda j: -kl[j])[:top]
    return (f"**This image's terms** (nats; reconstruction averaged over {terms['samples']} draws of z):\n\n"
            f"| reconstruction $\\mathbb{{E}}_q[-\\log p(x\\mid z)]$ | KL | $-$ELBO |\n|---|---|---|\n"
            f"| {terms['recon']:.1f} | {terms['kl']:.1f} | **{terms['neg_elbo']:.1f}** |\n\n"
            "Most of its KL sits in " + ", ".join(f"z[{j}] ({kl[j]:.1f})" for j in most) + ".")


def encoded(r: Encoded) -> list:
    """[input, reconstruction, samples strip, mu/sigma figure, terms, state]."""
    return [big(r.x), big(r.recon), strip(r.samples, nrow=N_SAMPLES, scale=5),
            mu_sigma_figure(r.mu, r.sigma, r.order), terms_markdown(r.terms), r.state]


def resampled(r) -> list:
    samples, state = r
    return [strip(samples, nrow=N_SAMPLES, scale=5), state]


# --- latent map ------------------------------------------------------------------------------

def map_figure(v: MapView) -> go.Figure:
    fig = go.Figure()
    keep = np.random.default_rng(0).permutation(len(v.points))[:MAP_POINTS]
    for k, name in enumerate(v.classes):
        sel = keep[v.labels[keep] == k]
        fig.add_scattergl(x=v.points[sel, 0], y=v.points[sel, 1], mode="markers", name=name,
                          marker=dict(size=4, opacity=0.6))
    fig.add_scatter(x=[v.z[0]], y=[v.z[1]], mode="markers", name="current z",
                    marker=dict(symbol="x", size=18, color="black", line=dict(width=3)))
    if v.mark is not None:
        fig.add_scatter(x=[v.mark[0]], y=[v.mark[1]], mode="markers", name="encoded image",
                        marker=dict(symbol="star", size=20, color="gold", line=dict(width=1.5, color="black")))
    fig.update_layout(title=f"test-set means mu(x) of the {v.points.shape[1]}-D model, by class", height=480,
                      margin=dict(l=40, r=10, t=50, b=40), xaxis_title="z[0]", yaxis_title="z[1]",
                      xaxis=dict(range=[-v.limit, v.limit]), yaxis=dict(range=[-v.limit, v.limit], scaleanchor="x"))
    return fig


def manifold(r) -> object:
    grid, n = r
    return strip(grid, nrow=n, scale=2)


def map_all(r: MapAll) -> list:
    """[map figure, decoded z, manifold grid]."""
    return [map_figure(r.view), big(r.image), manifold((r.grid, r.n))]


def map_to_encoded(r: MapAll) -> list:
    return [*r.z, *map_all(r)]


# --- interpolation, beta ---------------------------------------------------------------------

def interpolation(r: Interpolation) -> list:
    """[strip (top row linear, bottom row spherical), the GIF (there and back again), the GIF as a file]."""
    n = len(r.linear)
    frames = [big(f, GIF_SCALE) for f in (r.spherical if r.path == "spherical" else r.linear)]
    gif = images.save_gif(frames + frames[-2:0:-1], ms_per_frame=GIF_MS)
    return [strip(torch.cat([r.linear, r.spherical]), nrow=n, scale=4), gif, gif]


def beta_figure(r: BetaComparison) -> go.Figure:
    fig = go.Figure()
    for beta, kl, colour in zip(r.betas, r.kl, ("#3b6fd8", "#d83b3b")):
        kl = sorted(kl, reverse=True)
        fig.add_bar(x=[f"#{i + 1}" for i in range(len(kl))], y=kl, name=f"beta = {beta:g}", marker_color=colour)
    fig.update_layout(barmode="group", height=340, margin=dict(l=40, r=10, t=50, b=40),
                      title="held-out KL per latent dimension, largest first (nats)",
                      xaxis_title="dimension rank", yaxis_title="KL (nats)")
    return fig


def beta(r: BetaComparison) -> list:
    return [strip(r.rows, nrow=r.per_row, scale=3), beta_figure(r)]


# --- VQ-VAE ----------------------------------------------------------------------------------

EQ_VQ = r"""
**VQ-VAE** (van den Oord et al., 2017). The encoder gives one vector per cell, $z_e = E(x)$; each cell takes
the index of its **nearest codebook entry**, and the decoder sees only those entries:

$$k = \arg\min_j \lVert z_e - e_j \rVert^2, \qquad z_q = e_k, \qquad \hat x = \sigma\big(G(z_q)\big)$$

The argmin has no gradient, so training copies the decoder's gradient at $z_q$ onto $z_e$
(**straight-through**: $z_e + \mathrm{sg}(z_q - z_e)$). The loss per image, $\mathrm{sg}$ = stop-gradient:

$$L = \underbrace{-\log p(x \mid z_q)}_{\text{reconstruction}}
+ \underbrace{\lVert \mathrm{sg}(z_e) - e \rVert^2}_{\text{codebook}}
+ \beta\,\underbrace{\lVert z_e - \mathrm{sg}(e) \rVert^2}_{\text{commitment}}$$

**Codebook usage**: the perplexity $\exp(-\sum_k p_k \log p_k)$ of the code frequencies $p_k$: $K$ when all
$K$ codes are used equally, 1 when one code does everything.
"""


VQ_IMAGES = (("x", "test image"), ("recon", "decode of its codes"), ("edited", "decode of the edited grid"))


def vq_grid_figure(v: VQView) -> go.Figure:
    """The code grid as a heatmap with each cell's index written in it; edited cells outlined in red,
    the chosen cell in black."""
    codes = v.state.codes
    g, k = len(codes), v.card["config"]["codes"]
    fig = go.Figure(go.Heatmap(z=codes, text=codes, texttemplate="%{text}", colorscale="Viridis", zmin=0,
                               zmax=k - 1, colorbar=dict(title="code"),
                               hovertemplate="row %{y}, column %{x}: code %{z}<extra></extra>"))
    for (r, c), colour in [*((cell, "#e02020") for cell in v.changed), (v.cell, "black")]:
        fig.add_shape(type="rect", x0=c - 0.5, x1=c + 0.5, y0=r - 0.5, y1=r + 0.5, line=dict(color=colour, width=3))
    fig.update_layout(title=f"code grid ({g} x {g} cells, codebook of {k}); {len(v.changed)} edited",
                      height=380, margin=dict(l=40, r=10, t=50, b=40), xaxis_title="column", yaxis_title="row",
                      yaxis=dict(autorange="reversed", scaleanchor="x", dtick=1),
                      xaxis=dict(dtick=1, constrain="domain"))
    return fig


def vq_usage_figure(v: VQView) -> go.Figure:
    """Held-out code counts (measured live on `usage_images` test images) and the card's perplexity; the codes
    of this image's grid in orange."""
    counts = np.array(v.usage)
    mine = set(np.array(v.state.codes).flatten().tolist())
    m = v.card["metrics"]
    fig = go.Figure(go.Bar(x=list(range(len(counts))), y=counts.tolist(),
                           marker_color=["#e0702b" if j in mine else "#3b6fd8" for j in range(len(counts))]))
    fig.update_layout(title=f"code usage, {v.usage_images:,} test images: perplexity {v.usage_perplexity:.1f} "
                            f"of {len(counts)} ({int((counts > 0).sum())} used)<br>card, {m['eval_images']:,} test "
                            f"images: perplexity {m['perplexity']:.1f} ({m['codes_used']} used)",
                      height=380, margin=dict(l=40, r=10, t=70, b=40), xaxis_title="code (orange: in this grid)",
                      yaxis_title="cells")
    return fig


def vq_terms_markdown(v: VQView) -> str:
    """This image's three terms (live) and the held-out and last-epoch ones (the card)."""
    t, m = v.terms, v.card["metrics"]
    last = m["train_terms_per_epoch"][-1]
    return ("**The three loss terms** (per image; reconstruction in nats; the codebook and commitment terms are "
            "the same squared distance summed over cells, and differ only in what their gradient moves: the codebook "
            f"entries, or the encoder; commitment is weighted by beta = {t['beta']:g} in the loss):\n\n"
            "| | reconstruction | codebook | commitment |\n|---|---|---|---|\n"
            f"| this image | {t['recon']:.1f} | {t['codebook']:.2f} | {t['commitment']:.2f} |\n"
            f"| test split, {m['eval_images']:,} images (card) | {m['recon_nats']:.1f} | {m['codebook']:.2f} | "
            f"{m['commitment']:.2f} |\n"
            f"| last training epoch (card) | {last['recon']:.1f} | {last['codebook']:.2f} | {last['commitment']:.2f} |")


def vq_compare_markdown(v: VQView) -> str:
    """Held-out reconstruction error of the VQ-VAE next to the VAE's, both from their cards."""
    c, m = v.card, v.card["metrics"]
    g = c["config"]["image_size"] // 4
    rows = ["| model (held-out, test split) | reconstruction, nats per image | information in the code |",
            "|---|---|---|",
            f"| VQ-VAE: {g} x {g} codes of {m['codes']}, trained {c['recipe']['epochs']} epochs | "
            f"**{m['recon_nats']:.1f}** (decode of the codes) | at most {g * g} x ln {m['perplexity']:.1f} = "
            f"{g * g * np.log(m['perplexity']):.0f} nats (perplexity) |"]
    if v.vae_card:
        a, cfg = v.vae_card["metrics"], v.vae_card["config"]
        rows.append(f"| VAE: {cfg['latent_dim']}-D Gaussian latent, beta = {cfg['beta']:g}, trained "
                    f"{v.vae_card['recipe']['epochs']} epochs | **{a['recon_nats']:.1f}** (mean over "
                    f"{a['eval_samples']} draws of z ~ q(z given x)) | KL {a['kl_nats']:.1f} nats |")
    return ("**Reconstruction error on held-out images**, the same Bernoulli likelihood for both (lower is "
            "better):\n\n" + "\n".join(rows))


def vq(v: VQView) -> list:
    """[test image, decode of its codes, decode of the edited grid, code grid, usage, terms, comparison, state]."""
    return [big(v.x), big(v.recon), big(v.edited), vq_grid_figure(v), vq_usage_figure(v), vq_terms_markdown(v),
            vq_compare_markdown(v), v.state]
