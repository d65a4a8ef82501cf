"""VAE tab: latent sliders decoded live, encoding (mu, sigma, reparameterised samples, the loss
terms), the latent map of a 2-D model, interpolation, and beta = 1 against beta = 4.

The models and the operations live in playground/vae/ (model.py, losses.py, latent.py, lab.py);
this file only lays out components and validates what arrives through them.
"""
from __future__ import annotations

import base64
import io
import math
import time

import gradio as gr
import numpy as np
import torch

from playground.core import hub, images, validate
from playground.vae import lab
from playground.vae.latent import lerp, quantile_grid, slerp

N_SLIDERS = 16          # one per latent dimension of the bundled models (D = 16)
N_SAMPLES = 6           # reparameterised samples shown per encoded image
SCALE = 10              # 28 px -> 280 px (the browser keeps the pixels crisp)
DEFAULT_DATASET = "Fashion-MNIST"
INTERP_DEFAULTS = {"fashion": (7, 9), "digits": (1, 7)}   # class of image A, class of image B
SLIDER_MAX = 3.0        # the sliders span [-3, 3]; the API accepts up to lab.Z_LIMIT
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]

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
EQ_MAP = r"""
A model with a **2-D latent**, so the whole code fits on the page. Dots: $\mu_\phi(x)$ for test images.
The grid decodes $z = \big(\Phi^{-1}(u_1), \Phi^{-1}(u_2)\big)$ for evenly spaced $u \in (0, 1)$:
each cell holds the same prior mass.
"""
EQ_INTERP = r"""
Between the codes $a = \mu_\phi(x_A)$ and $b = \mu_\phi(x_B)$, with $t \in [0, 1]$:

$$\text{linear: } (1-t)\,a + t\,b \qquad
\text{spherical: } \frac{\sin((1-t)\Omega)}{\sin\Omega}\,a + \frac{\sin(t\Omega)}{\sin\Omega}\,b,\quad
\cos\Omega = \frac{a\cdot b}{\|a\|\,\|b\|}$$
"""
EQ_BETA = r"""
**beta-VAE** trains on $\ \mathbb{E}_q[-\log p_\theta(x\mid z)] + \beta\, D_{KL}(q_\phi(z\mid x)\,\|\,p(z))$.
$\beta = 1$ is the negative ELBO. $\beta = 4$ pays more for every nat of KL: fewer dimensions carry
information, reconstructions get blurrier, and prior samples look more alike.
"""


# --- validation ------------------------------------------------------------------------------

def _dataset(value) -> str:
    return lab.DATASETS[validate.choice("Data set", value, list(lab.DATASETS))]


def _latent(name: str, value) -> float:
    """A latent coordinate: a finite number within [-Z_LIMIT, Z_LIMIT], else a clear error."""
    if isinstance(value, bool) or value is None:
        raise gr.Error(f"{name} must be a number in [-{lab.Z_LIMIT:g}, {lab.Z_LIMIT:g}].")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise gr.Error(f"{name} must be a number in [-{lab.Z_LIMIT:g}, {lab.Z_LIMIT:g}], "
                       f"not {str(value)[:40]!r}.") from None
    if not math.isfinite(v):
        raise gr.Error(f"{name} must be a finite number in [-{lab.Z_LIMIT:g}, {lab.Z_LIMIT:g}] (got {v}).")
    if abs(v) > lab.Z_LIMIT:
        raise gr.Error(f"{name} = {v:g} is out of range: latents must lie in [-{lab.Z_LIMIT:g}, {lab.Z_LIMIT:g}] "
                       f"(the prior N(0, 1) puts almost no mass beyond that).")
    return v


def _pick(key: str, value, name: str) -> str:
    labels = lab.pick_labels(key)
    if value not in labels:
        raise gr.Error(f"{name}: choose one of the listed test images, e.g. {labels[0]!r} "
                       f"(got {str(value)[:40]!r}).")
    return value


def _model(key: str, role: str) -> lab.Loaded:
    name = lab.model_name(key, role)
    if not lab.available(name):
        raise gr.Error(f"The checkpoint assets/vae/{name} is missing; train it with "
                       f"`python -m demos.train_vae --data {key}` (see its --help).")
    return lab.get(name)


def _big(x: torch.Tensor, scale: int = SCALE):
    return images.to_pil(x, scale=scale)


def _live(x: torch.Tensor) -> str:
    """The live image as a data URL of the 28x28 PNG itself (a few hundred bytes): it arrives in the
    same message as the event's answer, with no second request for a file, and the browser scales it
    up with crisp pixels (CSS image-rendering: pixelated)."""
    buf = io.BytesIO()
    images.to_pil(x).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


BLANK = _live(torch.zeros(1, 28, 28))        # shown until the first decode (no model at build time)
LIVE_TEMPLATE = ('<div class="vae-live" style="display:flex;justify-content:center;padding:8px">'
                 '<img alt="decoded image" src="${value}" width="280" height="280" '
                 'style="width:280px;height:280px;image-rendering:pixelated;image-rendering:crisp-edges;'
                 'background:#000;border-radius:4px"></div>')


def _strip(x: torch.Tensor, nrow: int, scale: int = 4):
    return images.to_pil(images.grid(x, nrow=nrow, pad=2, pad_value=0.35), scale=scale)


# --- sliders ---------------------------------------------------------------------------------

def _z_from_sliders(m: lab.Loaded, values) -> torch.Tensor:
    """Slider i drives latent dimension m.order[i]. Returns z (1, D)."""
    if len(values) != N_SLIDERS:
        raise gr.Error(f"Send exactly {N_SLIDERS} latent values, not {len(values)}.")
    z = torch.zeros(1, m.dim)
    for i, v in enumerate(values):
        val = _latent(f"Latent slider {i + 1}", v)
        if i < m.dim:
            z[0, m.order[i]] = val
    return z


def _sliders_from_z(m: lab.Loaded, z: torch.Tensor) -> list[float]:
    vals = [float(z[m.order[i]]) if i < m.dim else 0.0 for i in range(N_SLIDERS)]
    return [round(max(-SLIDER_MAX, min(SLIDER_MAX, v)), 2) for v in vals]


def decode_sliders(dataset, *values):
    """The live decode: slider values (most-KL dimension first) -> the decoded image."""
    key = _dataset(dataset)
    m = _model(key, "main")
    z = _z_from_sliders(m, values)
    return _live(lab.decode(lab.model_name(key, "main"), z)[0])


def reset_sliders(dataset):
    key = _dataset(dataset)
    m = _model(key, "main")
    z = torch.zeros(m.dim)
    return [*_sliders_from_z(m, z), _live(lab.decode(lab.model_name(key, "main"), z[None])[0])]


def sample_prior(dataset, seed):
    """z ~ N(0, I) (clipped to the slider range), its decoding, and the next seed."""
    key = _dataset(dataset)
    seed = validate.seed(seed)
    m = _model(key, "main")
    z = lab.prior(1, m.dim, seed)[0].clamp(-SLIDER_MAX, SLIDER_MAX)
    img = _live(lab.decode(lab.model_name(key, "main"), z[None])[0])
    return [*_sliders_from_z(m, z), img, (seed + 1) % validate.MAX_SEED]


def slider_updates(dataset):
    """New labels for the sliders when the data set changes (a model orders its own dimensions)."""
    key = _dataset(dataset)
    name = lab.model_name(key, "main")
    if not lab.available(name):
        return [gr.update(value=0.0) for _ in range(N_SLIDERS)]
    kl = lab.card_summary(name)["metrics"]["kl_per_dim_nats"]
    order = sorted(range(len(kl)), key=lambda j: -kl[j])
    return [gr.update(value=0.0, label=_slider_label(order, kl, i)) for i in range(N_SLIDERS)]


def _slider_label(order, kl, i) -> str:
    if i >= len(order):
        return f"slider {i + 1} (unused by this model)"
    j = order[i]
    return f"z[{j}]  ·  KL {kl[j]:.2f} nats"


# --- encode ----------------------------------------------------------------------------------

def _mu_sigma_plot(mu: torch.Tensor, logvar: torch.Tensor, order: list[int]):
    import plotly.graph_objects as go

    sigma = (0.5 * logvar).exp()
    labels = [f"z[{j}]" for j in order]
    fig = go.Figure()
    fig.add_bar(x=labels, y=[float(mu[j]) for j in order], name="mu",
                error_y=dict(type="data", array=[float(sigma[j]) for j in order], visible=True),
                marker_color="#3b6fd8")
    fig.add_scatter(x=labels, y=[float(sigma[j]) for j in order], mode="markers+lines", name="sigma",
                    marker=dict(color="#e0702b", size=9))
    fig.add_hline(y=1.0, line_dash="dot", line_color="#999", annotation_text="prior sigma = 1")
    fig.update_layout(title="q(z|x): mu (bars, whiskers = ±sigma) and sigma per dimension",
                      height=340, margin=dict(l=40, r=10, t=50, b=40), legend=dict(orientation="h"),
                      xaxis_title="dimension (most KL on the test set first)")
    return fig


def _encode(key: str, x: torch.Tensor, seed: int = 0):
    """x (1, 1, 28, 28) -> [input view, reconstruction, samples strip, mu/sigma plot, terms, state]."""
    name = lab.model_name(key, "main")
    m = _model(key, "main")
    mu, logvar = lab.encode(name, x)
    terms = lab.image_terms(name, x)
    recon = lab.decode(name, mu)[0]
    state = {"key": key, "x": x.flatten().tolist(), "mu": mu[0].tolist(), "logvar": logvar[0].tolist(),
             "seed": int(seed)}
    top = sorted(range(m.dim), key=lambda j: -terms["kl_per_dim"][j])[:3]
    md = (f"**This image's terms** (nats; reconstruction averaged over 16 draws of z):\n\n"
          f"| reconstruction $\\mathbb{{E}}_q[-\\log p(x\\mid z)]$ | KL | $-$ELBO |\n|---|---|---|\n"
          f"| {terms['recon']:.1f} | {terms['kl']:.1f} | **{terms['neg_elbo']:.1f}** |\n\n"
          f"Most of its KL sits in " + ", ".join(f"z[{j}] ({terms['kl_per_dim'][j]:.1f})" for j in top) + ".")
    return [_big(x[0]), _big(recon), _samples_strip(name, state), _mu_sigma_plot(mu[0], logvar[0], m.order),
            md, state]


def _samples_strip(name: str, state: dict):
    mu, logvar = torch.tensor(state["mu"]), torch.tensor(state["logvar"])
    z = lab.samples(mu, logvar, N_SAMPLES, state["seed"])
    return _strip(lab.decode(name, z), nrow=N_SAMPLES, scale=5)


def encode_pick(dataset, pick):
    key = _dataset(dataset)
    label = _pick(key, pick, "Test image")
    return _encode(key, lab.test_image(key, lab.pick_index(key, label)))


def _prepared(key: str, value, name: str) -> torch.Tensor:
    img = validate.image(value, mode="L", name=name)
    try:
        return lab.prepare(img, key)
    except ValueError as e:
        raise gr.Error(f"{name}: {e}.") from None


def _unwrap(value):
    """Events run with preprocess=False, so files arrive as FileData dicts ({"path": ...}, already
    checked by Gradio to lie in its upload cache) and a sketchpad as {"composite": FileData, ...}."""
    if isinstance(value, dict) and isinstance(value.get("composite"), dict):
        value = value["composite"]
    if isinstance(value, dict) and "composite" not in value and not value.get("path"):
        return None
    return value


def encode_upload(dataset, image):
    key = _dataset(dataset)
    image = _unwrap(image)
    return _encode(key, _prepared(key, image, "Uploaded image"))


def encode_drawing(dataset, sketch):
    key = _dataset(dataset)
    sketch = _unwrap(sketch)
    return _encode(key, _prepared(key, sketch, "Drawing"))


def resample(state):
    if not state:
        raise gr.Error("Encode an image first (pick, upload or draw one).")
    state = {**state, "seed": (int(state["seed"]) + 1) % validate.MAX_SEED}
    return _samples_strip(lab.model_name(state["key"], "main"), state), state


def to_sliders(dataset, state):
    """Put this image's mu on the sliders (when it was encoded by the current data set's model)."""
    key = _dataset(dataset)
    if not state or state.get("key") != key:
        raise gr.Error("Encode an image with this data set's model first.")
    m = _model(key, "main")
    mu = torch.tensor(state["mu"])
    vals = _sliders_from_z(m, mu)
    z = _z_from_sliders(m, vals)
    return [*vals, _live(lab.decode(lab.model_name(key, "main"), z)[0])]


# --- latent map ------------------------------------------------------------------------------

def _map_figure(key: str, z, mark=None):
    import plotly.graph_objects as go

    pts, labels = lab.map_points(key)
    fig = go.Figure()
    rng = np.random.default_rng(0)
    keep = rng.permutation(len(pts))[:3000]                      # enough to see the clusters
    for k, cname in enumerate(lab.CLASSES[key]):
        sel = keep[labels[keep] == k]
        fig.add_scattergl(x=pts[sel, 0], y=pts[sel, 1], mode="markers", name=cname,
                          marker=dict(size=4, opacity=0.6))
    fig.add_scatter(x=[z[0]], y=[z[1]], mode="markers", name="current z",
                    marker=dict(symbol="x", size=18, color="black", line=dict(width=3)))
    if mark is not None:
        fig.add_scatter(x=[mark[0]], y=[mark[1]], mode="markers", name="encoded image",
                        marker=dict(symbol="star", size=20, color="gold", line=dict(width=1.5, color="black")))
    fig.update_layout(title="test-set means mu(x) of the 2-D model, by class", height=480,
                      margin=dict(l=40, r=10, t=50, b=40), xaxis_title="z[0]", yaxis_title="z[1]",
                      xaxis=dict(range=[-4, 4]), yaxis=dict(range=[-4, 4], scaleanchor="x"))
    return fig


def _mark(key: str, state):
    if state and state.get("key") == key:
        x = torch.tensor(state["x"]).view(1, 1, 28, 28)
        mu, _ = lab.encode(lab.model_name(key, "map"), x)
        return mu[0].tolist()
    return None


def map_decode(dataset, z1, z2):
    key = _dataset(dataset)
    _model(key, "map")
    z = torch.tensor([[_latent("z[0]", z1), _latent("z[1]", z2)]])
    return _big(lab.decode(lab.model_name(key, "map"), z)[0])


def map_plot(dataset, z1, z2, state):
    key = _dataset(dataset)
    _model(key, "map")
    z = (_latent("z[0]", z1), _latent("z[1]", z2))
    return _map_figure(key, z, _mark(key, state))


def manifold(dataset, n):
    key = _dataset(dataset)
    n = validate.integer("Grid size", n, 4, 20)
    _model(key, "map")
    x = lab.decode(lab.model_name(key, "map"), quantile_grid(n))
    return _strip(x, nrow=n, scale=2)


def map_all(dataset, z1, z2, n, state):
    return [map_plot(dataset, z1, z2, state), map_decode(dataset, z1, z2), manifold(dataset, n)]


def map_to_encoded(dataset, n, state):
    """Move the map's z to the encoded image's mu under the 2-D model."""
    key = _dataset(dataset)
    _model(key, "map")
    mark = _mark(key, state)
    if mark is None:
        raise gr.Error("Encode an image (Encode tab) with this data set first.")
    z1, z2 = [round(max(-SLIDER_MAX, min(SLIDER_MAX, v)), 2) for v in mark]
    return [z1, z2, *map_all(dataset, z1, z2, n, state)]


# --- interpolation ---------------------------------------------------------------------------

def interpolate(dataset, pick_a, pick_b, steps, gif_mode):
    key = _dataset(dataset)
    labels = lab.pick_labels(key)
    a, b = _pick(key, pick_a, "Image A"), _pick(key, pick_b, "Image B")
    n = validate.integer("Steps", steps, 3, 16)
    gif_mode = validate.choice("GIF path", gif_mode, ["spherical", "linear"])
    name = lab.model_name(key, "main")
    _model(key, "main")
    x = torch.cat([lab.test_image(key, lab.pick_index(key, a)), lab.test_image(key, lab.pick_index(key, b))])
    mu, _ = lab.encode(name, x)
    t = torch.linspace(0, 1, n)
    lin = lab.decode(name, lerp(mu[0], mu[1], t))                  # (n, 1, 28, 28)
    sph = lab.decode(name, slerp(mu[0], mu[1], t))
    strip = _strip(torch.cat([lin, sph]), nrow=n, scale=4)
    frames_x = sph if gif_mode == "spherical" else lin
    frames = [_big(f, scale=6) for f in frames_x]
    frames = frames + frames[-2:0:-1]                               # there and back again
    gif = images.save_gif(frames, ms_per_frame=140)
    return strip, gif, gif


def interp_defaults(dataset):
    key = _dataset(dataset)
    labels = lab.pick_labels(key)
    ca, cb = INTERP_DEFAULTS[key]
    return gr.update(choices=labels, value=labels[ca]), gr.update(choices=labels, value=labels[cb])


# --- beta comparison -------------------------------------------------------------------------

def compare_beta(dataset, seed):
    import plotly.graph_objects as go

    key = _dataset(dataset)
    seed = validate.seed(seed)
    lo, hi = _model(key, "main"), _model(key, "beta")
    ds = lab.test_set(key)
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:8]
    x = ds.float01()[idx]                                           # (8, 1, 28, 28)
    rows = [x]
    for role in ("main", "beta"):
        name = lab.model_name(key, role)
        mu, _ = lab.encode(name, x)
        rows.append(lab.decode(name, mu))
    eps = lab.prior(8, lo.dim, seed)                                # the same eps through both decoders
    rows.append(lab.decode(lab.model_name(key, "main"), eps))
    rows.append(lab.decode(lab.model_name(key, "beta"), eps[:, : hi.dim]))
    grid_img = _strip(torch.cat(rows), nrow=8, scale=3)

    fig = go.Figure()
    for m, nm, colour in ((lo, "beta = 1", "#3b6fd8"), (hi, f"beta = {lab.BETA_HIGH:g}", "#d83b3b")):
        kl = sorted(m.card["metrics"]["kl_per_dim_nats"], reverse=True)
        fig.add_bar(x=[f"#{i + 1}" for i in range(len(kl))], y=kl, name=nm, marker_color=colour)
    fig.update_layout(barmode="group", height=340, margin=dict(l=40, r=10, t=50, b=40),
                      title="held-out KL per latent dimension, largest first (nats)",
                      xaxis_title="dimension rank", yaxis_title="KL (nats)")
    return grid_img, fig


def figures_table(key: str) -> str:
    rows = [("ours, beta = 1", lab.model_name(key, "main")),
            (f"ours, beta = {lab.BETA_HIGH:g}", lab.model_name(key, "beta")),
            ("ours, 2-D latent", lab.model_name(key, "map")), ("peer: MLP VAE 784-400-20", lab.model_name(key, "peer"))]
    out = ["| model | -ELBO | reconstruction | KL | epochs | params |", "|---|---|---|---|---|---|"]
    for label, name in rows:
        if not lab.available(name):
            continue
        c = lab.card_summary(name)
        m = c["metrics"]
        out.append(f"| {label} | **{m['neg_elbo_nats']:.1f}** | {m['recon_nats']:.1f} | {m['kl_nats']:.1f} | "
                   f"{c['recipe']['epochs']} | {c['parameters']:,} |")
    return ("**Held-out figures** (test split, nats per image, Bernoulli decoder; lower is better):\n\n"
            + "\n".join(out))


def dataset_changed(dataset):
    key = _dataset(dataset)
    labels = lab.pick_labels(key)
    a, b = interp_defaults(dataset)
    return [*slider_updates(dataset), gr.update(choices=labels, value=None), a, b, figures_table(key)]


# --- the tab ---------------------------------------------------------------------------------

def build(settings=None) -> None:
    source = hub.choose(None, "assets/vae/")
    key0 = lab.DATASETS[DEFAULT_DATASET]
    with gr.Row():
        with gr.Column(scale=3):
            gr.Markdown("## Variational autoencoder\n" + source.markdown() + "\n\nA Gaussian encoder, a Bernoulli "
                        "decoder, and a 16-dimensional latent z, trained here by `demos/train_vae.py` "
                        "(one set per data set: beta = 1, beta = 4, a 2-D latent, and the MLP peer).")
        dataset = gr.Dropdown(list(lab.DATASETS), value=DEFAULT_DATASET, label="Data set (switches every model)",
                              elem_id="vae-dataset", scale=1)
    with gr.Accordion("Held-out figures: ours against the pytorch/examples MLP VAE", open=False,
                      elem_id="vae-figures-box"):
        figures = gr.Markdown(figures_table(key0), elem_id="vae-figures", latex_delimiters=LATEX)

    with gr.Tabs():
        # --- sliders ---
        with gr.Tab("Latent sliders", id="vae-sliders-tab"):
            with gr.Row():
                with gr.Column(scale=3):
                    labels = slider_updates(DEFAULT_DATASET)
                    sliders = []
                    with gr.Row():
                        for col in range(2):
                            with gr.Column(min_width=200):
                                for i in range(col * 8, col * 8 + 8):
                                    sliders.append(gr.Slider(-SLIDER_MAX, SLIDER_MAX, value=0.0, step=0.05,
                                                             label=labels[i].get("label", f"slider {i + 1}"),
                                                             elem_id=f"vae-z{i}"))
                    with gr.Row():
                        reset_btn = gr.Button("Reset to the prior mean (z = 0)", elem_id="vae-reset")
                        sample_btn = gr.Button("Sample z ~ N(0, I)", variant="primary", elem_id="vae-sample")
                        prior_seed = gr.Number(0, label="seed of the next sample", precision=0, minimum=0,
                                               elem_id="vae-prior-seed")
                with gr.Column(scale=2):
                    decoded = gr.HTML(BLANK, html_template=LIVE_TEMPLATE, label="decoded: sigma(f(z))",
                                      elem_id="vae-decoded", js_on_load=None, container=True)
                    gr.Markdown(EQ_DECODER, elem_classes=["equation"], latex_delimiters=LATEX)
            # The live decode: only the latest slider position matters (always_last), no spinner, and no
            # queue (a 2 ms CPU call; see lab.py). Raw payloads: the handler validates every number.
            gr.on([s.input for s in sliders], decode_sliders, [dataset, *sliders], decoded,
                  trigger_mode="always_last", show_progress="hidden", preprocess=False, queue=False,
                  api_name="vae_decode")
            reset_btn.click(reset_sliders, dataset, [*sliders, decoded], preprocess=False, api_name="vae_reset",
                            show_progress="hidden")
            sample_btn.click(sample_prior, [dataset, prior_seed], [*sliders, decoded, prior_seed],
                             preprocess=False, api_name="vae_sample", show_progress="hidden")

        # --- encode ---
        with gr.Tab("Encode an image", id="vae-encode-tab"):
            enc_state = gr.State(None)
            with gr.Row():
                with gr.Column(scale=2):
                    pick = gr.Dropdown(lab.pick_labels(key0), value=None, label="Pick a test image",
                                       elem_id="vae-pick")
                    upload = gr.Image(type="filepath", sources=["upload"], label="or upload an image",
                                      height=220, elem_id="vae-upload")
                    sketch = gr.Sketchpad(type="pil", image_mode="RGBA", label="or draw one", height=300,
                                          canvas_size=(280, 280), fixed_canvas=True, elem_id="vae-sketch",
                                          brush=gr.Brush(colors=["#000000"], default_size=18, color_mode="fixed"))
                    draw_btn = gr.Button("Encode the drawing", elem_id="vae-encode-draw")
                with gr.Column(scale=3):
                    with gr.Row():
                        seen = gr.Image(label="what the model sees (28x28)", height=200, format="png",
                                        elem_id="vae-seen", elem_classes=["big-image"], interactive=False)
                        recon = gr.Image(label="reconstruction: decode(mu)", height=200, format="png",
                                         elem_id="vae-recon", elem_classes=["big-image"], interactive=False)
                    samples_img = gr.Image(label=f"{N_SAMPLES} samples z = mu + sigma * eps, decoded", format="png",
                                           elem_id="vae-samples", elem_classes=["big-image"], interactive=False)
                    with gr.Row():
                        resample_btn = gr.Button("Resample eps", elem_id="vae-resample")
                        to_sliders_btn = gr.Button("Put mu on the sliders", elem_id="vae-to-sliders")
                    terms = gr.Markdown(elem_id="vae-terms", latex_delimiters=LATEX)
                    musig = gr.Plot(label="mu and sigma per dimension", elem_id="vae-musig")
                    gr.Markdown(EQ_ENCODER, elem_classes=["equation"], latex_delimiters=LATEX)
            enc_out = [seen, recon, samples_img, musig, terms, enc_state]
            pick.input(encode_pick, [dataset, pick], enc_out, preprocess=False, api_name="vae_encode_pick")
            upload.upload(encode_upload, [dataset, upload], enc_out, preprocess=False, api_name="vae_encode_upload")
            draw_btn.click(encode_drawing, [dataset, sketch], enc_out, preprocess=False, api_name="vae_encode_drawing")
            resample_btn.click(resample, enc_state, [samples_img, enc_state], preprocess=False, api_name="vae_resample")
            to_sliders_btn.click(to_sliders, [dataset, enc_state], [*sliders, decoded], preprocess=False,
                                 api_name="vae_to_sliders")

        # --- latent map ---
        with gr.Tab("Latent map (2-D model)", id="vae-map-tab") as map_tab:
            gr.Markdown(EQ_MAP, elem_classes=["equation"], latex_delimiters=LATEX)
            with gr.Row():
                with gr.Column(scale=3):
                    map_plot_c = gr.Plot(label="latent map", elem_id="vae-map")
                with gr.Column(scale=2):
                    z1 = gr.Slider(-SLIDER_MAX, SLIDER_MAX, value=0.0, step=0.05, label="z[0]", elem_id="vae-map-z1")
                    z2 = gr.Slider(-SLIDER_MAX, SLIDER_MAX, value=0.0, step=0.05, label="z[1]", elem_id="vae-map-z2")
                    map_img = gr.Image(label="decoded z", height=220, format="png", elem_id="vae-map-decoded",
                                       elem_classes=["big-image"], interactive=False)
                    mark_btn = gr.Button("Go to the encoded image", elem_id="vae-map-mark")
            with gr.Row():
                grid_n = gr.Slider(4, 20, value=12, step=1, label="manifold grid: cells per side",
                                   elem_id="vae-grid-n")
            grid_img = gr.Image(label="decoded manifold grid (z[0] left to right, z[1] bottom to top)",
                                format="png", elem_id="vae-grid", elem_classes=["big-image"], interactive=False)
            for s in (z1, z2):
                s.input(map_decode, [dataset, z1, z2], map_img, trigger_mode="always_last",
                        show_progress="hidden", preprocess=False, queue=False,
                        api_name="vae_map_decode" if s is z1 else None)
                s.release(map_plot, [dataset, z1, z2, enc_state], map_plot_c, show_progress="hidden",
                          preprocess=False, api_name="vae_map_plot" if s is z1 else None)
            grid_n.release(manifold, [dataset, grid_n], grid_img, preprocess=False, api_name="vae_manifold")
            map_tab.select(map_all, [dataset, z1, z2, grid_n, enc_state], [map_plot_c, map_img, grid_img],
                           preprocess=False, api_name="vae_map")
            mark_btn.click(map_to_encoded, [dataset, grid_n, enc_state],
                           [z1, z2, map_plot_c, map_img, grid_img], preprocess=False, api_name="vae_map_to_encoded")

        # --- interpolation ---
        with gr.Tab("Interpolate", id="vae-interp-tab"):
            gr.Markdown(EQ_INTERP, elem_classes=["equation"], latex_delimiters=LATEX)
            labels0 = lab.pick_labels(key0)
            ca, cb = INTERP_DEFAULTS[key0]
            with gr.Row():
                ia = gr.Dropdown(labels0, value=labels0[ca], label="image A", elem_id="vae-interp-a")
                ib = gr.Dropdown(labels0, value=labels0[cb], label="image B", elem_id="vae-interp-b")
                steps = gr.Slider(3, 16, value=8, step=1, label="steps N", elem_id="vae-interp-steps")
                gif_mode = gr.Radio(["spherical", "linear"], value="spherical", label="path in the GIF",
                                    elem_id="vae-interp-mode")
            interp_btn = gr.Button("Interpolate", variant="primary", elem_id="vae-interp-go")
            strip = gr.Image(label="top row: linear, bottom row: spherical", format="png",
                             elem_id="vae-interp-strip", elem_classes=["big-image"], interactive=False)
            with gr.Row():
                gif_view = gr.Image(label="animation", type="filepath", height=200, elem_id="vae-interp-gif",
                                    interactive=False)
                gif_file = gr.File(label="download the GIF", elem_id="vae-interp-file")
            interp_btn.click(interpolate, [dataset, ia, ib, steps, gif_mode], [strip, gif_view, gif_file],
                             preprocess=False, api_name="vae_interpolate")

        # --- beta ---
        with gr.Tab("beta = 1 vs beta = 4", id="vae-beta-tab"):
            gr.Markdown(EQ_BETA, elem_classes=["equation"], latex_delimiters=LATEX)
            with gr.Row():
                beta_seed = gr.Number(0, label="seed (which 8 test images, which prior draws)", precision=0,
                                      minimum=0, elem_id="vae-beta-seed")
                beta_btn = gr.Button("Compare", variant="primary", elem_id="vae-beta-go")
            beta_img = gr.Image(label="rows: test images · beta = 1 reconstructions · beta = 4 reconstructions · "
                                      "prior samples beta = 1 · the same eps through beta = 4",
                                format="png", elem_id="vae-beta-grid", elem_classes=["big-image"], interactive=False)
            beta_plot = gr.Plot(label="KL per dimension", elem_id="vae-beta-kl")
            beta_btn.click(compare_beta, [dataset, beta_seed], [beta_img, beta_plot], preprocess=False,
                           api_name="vae_compare_beta")

    dataset.change(dataset_changed, dataset, [*sliders, pick, ia, ib, figures], preprocess=False,
                   api_name="vae_dataset").then(
        reset_sliders, dataset, [*sliders, decoded], preprocess=False, show_progress="hidden")


# --- for the Home tab and the load script ----------------------------------------------------

def speed_probe() -> dict:
    """Time to decode one sample from the prior with the bundled Fashion-MNIST model (median of 30)."""
    name = lab.model_name("fashion", "main")
    m = lab.get(name)
    z = lab.prior(1, m.dim, 0)
    lab.decode(name, z)
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        lab.decode(name, z)
        times.append(time.perf_counter() - t0)
    return {"family": "VAE", "what": "one 28x28 decoder pass", "seconds": float(np.median(times))}


def load_calls() -> list:
    labels = lab.pick_labels("fashion")
    return [("vae_decode", [DEFAULT_DATASET, *([0.5] * N_SLIDERS)]),
            ("vae_encode_pick", [DEFAULT_DATASET, labels[0]]),
            ("vae_interpolate", [DEFAULT_DATASET, labels[7], labels[9], 8, "spherical"])]


if __name__ == "__main__":
    from playground.core.ui import standalone

    standalone(build, "VAE")
