"""GAN tab: style mixing on the StyleGAN-like generator trained here, truncation with w_avg, the mapping
network made visible, and the training story beside the DCGAN peer. Thin UI over playground.gan.sampling."""
from __future__ import annotations

import time

import gradio as gr

from playground.core import validate
from playground.core.hub import choose
from playground.gan import sampling as S

MAX_SEEDS = 6
DEFAULT_SRC, DEFAULT_STYLE = "1, 2, 3, 4, 5", "10, 11, 12, 13, 14"
PRESET_CHOICES = ("coarse", "middle", "fine", "custom")
SCALE = 4                                   # grid cells on screen: 32 px x 4
LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]

EQ_GAME = r"""
**The game.** D scores real against generated, G tries to fool it:
$$\min_G \max_D\; \mathbb{E}_{x\sim p_\text{data}}[\log D(x)] + \mathbb{E}_{z\sim p(z)}[\log(1 - D(G(z)))]$$
**Non-saturating G loss** (what is actually trained: strong gradients while D still wins easily):
$$\mathcal{L}_G = -\,\mathbb{E}_z[\log D(G(z))]$$
Both generators here play it with the same loss against DCGAN's discriminator (with batch norm). Ours plays
a copy half as wide: it costs about a quarter as much per step, so in the same training time our G gets more
training steps. (StyleGAN2's own residual D with the R1 penalty
$\frac{\gamma}{2}\,\mathbb{E}_x\|\nabla_x D(x)\|^2$ is in the code too; on this budget it trained our G less well.)
"""
EQ_MIX = r"""
**Mapping and styles.** $w = f(z)$; layer $i$ gets its own $w_i$, turned into a style $s_i = A_i(w_i)$ that scales
the conv weights (modulation), which are then renormalised (demodulation):
$$w'_{jk} = s_j\,w_{jk}, \qquad w''_{jk} = w'_{jk} \Big/ \sqrt{\textstyle\sum_{j} w'^2_{jk} + \epsilon}$$
**Mixing.** Ticked layers take $w$ from the style seed (row), the rest from the source seed (column):
$w_i = w_\text{style}$ if $i$ is ticked, else $w_\text{source}$.
"""
EQ_TRUNC = r"""
**Truncation.** Pull every $w$ toward the average $\bar w$ (tracked during training):
$$w' = \bar w + \psi\,(w - \bar w)$$
$\psi = 1$ changes nothing; $\psi = 0$ gives every seed the $\bar w$ image; in between trades variety for typicality.
"""
EQ_SINGLE = r"""
Layer $i$ gets $\;w_i = (1 - a_i)\,w_A + a_i\,w_B$: $a_i = 0$ keeps A's style, $a_i = 1$ takes B's.
"""
MODE_COLLAPSE = """
**Mode collapse.** G is only ever asked to fool the current D, not to cover the data. If one kind of
image fools D, G can pour every z into it: many seeds, one garment. D then learns to reject that
image, G hops to another, and the pair can chase each other around the classes instead of settling.
You would see it here as a snapshot grid of near-identical images, a class histogram piled on one or
two classes (entropy far below log2 10 = 3.32 bits) and a diversity ratio far below 1. The
counter-measures in our recipe: batch norm in D (D sees the statistics of a whole batch, so a batch of
look-alikes stands out), style-mixing regularisation (every layer must work with any other layer's
style) and the weight average G_ema, which smooths G's hops. The StyleGAN2 discriminator in the code
uses the minibatch-stddev feature and the R1 penalty for the same purpose.
"""


# --- input checks (every endpoint is public) ---------------------------------------------------

def parse_seeds(name: str, text) -> list[int]:
    text = validate.text(name, text, max_chars=200)
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p.strip()]
    if not parts:
        raise gr.Error(f"{name}: type one to {MAX_SEEDS} seeds separated by commas, e.g. 1, 2, 3.")
    if len(parts) > MAX_SEEDS:
        raise gr.Error(f"{name}: at most {MAX_SEEDS} seeds, you gave {len(parts)}.")
    out = []
    for p in parts:
        try:
            v = int(p.strip())
        except ValueError:
            raise gr.Error(f"{name}: {p.strip()[:20]!r} is not a whole number; use seeds like 1, 2, 3.") from None
        if not 0 <= v <= validate.MAX_SEED:
            raise gr.Error(f"{name}: seeds go from 0 to {validate.MAX_SEED}, not {v}.")
        out.append(v)
    return out


def parse_layers(layers) -> list[int]:
    if layers is None:
        layers = []
    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(layers, (list, tuple)):
        raise gr.Error("Layers must be a list of layer names.")
    return sorted({S.LAYER_NAMES.index(validate.choice("Layer", v, S.LAYER_NAMES)) for v in layers})


def flag(name: str, value) -> bool:
    if not isinstance(value, bool):
        raise gr.Error(f"{name} must be true or false.")
    return value


def _psi(v) -> float:
    return float(validate.number("Truncation psi", v, 0.0, 1.5))


def _img(x, scale: int = SCALE):
    from playground.core.images import to_pil

    return to_pil(x, scale=scale)


# --- handlers ------------------------------------------------------------------------------------

def render_grid(src_text, style_text, layers, psi, noise_on, noise_seed):
    """The style-mixing grid; returns (grid image, w_avg image, caption)."""
    src, sty = parse_seeds("Source seeds", src_text), parse_seeds("Style seeds", style_text)
    idx, psi = parse_layers(layers), _psi(psi)
    noise_on, noise_seed = flag("Noise", noise_on), validate.seed(noise_seed)
    G, _ = S.load()
    t0 = time.perf_counter()
    out = S.mixing_grid(G, src, sty, idx, psi, noise_on, noise_seed)
    grid = _img(S.compose(out["sources"], out["styles"], out["mixes"]))
    ms = (time.perf_counter() - t0) * 1000
    taken = ", ".join(str(i) for i in idx) or "none (every mix equals its source)"
    cap = (f"Top row: source seeds {src}. Left column: style seeds {sty}. Layers from the style seed: {taken}. "
           f"psi = {psi:.2f}, noise {'on (seed %d)' % noise_seed if noise_on else 'off'}. "
           f"{len(src) * len(sty)} {'mix' if len(src) * len(sty) == 1 else 'mixes'} + {len(src) + len(sty)} originals "
           f"in {ms:.0f} ms.")
    return grid, _img(out["w_avg"], 6), cap


def preset_layers(preset):
    """A preset's layers as checkbox values ('custom' leaves them as they are)."""
    preset = validate.choice("Preset", preset, PRESET_CHOICES)
    if preset == "custom":
        return gr.update()
    return [S.LAYER_NAMES[i] for i in S.PRESETS[preset]]


def layers_preset(layers):
    idx = tuple(parse_layers(layers))
    for name, ids in S.PRESETS.items():
        if idx == tuple(ids):
            return name
    return "custom"


def render_single(seed_a, seed_b, *rest):
    """Images A, B and the per-layer blend. rest = 7 weights, psi, noise_on, noise_seed."""
    if len(rest) != len(S.LAYER_NAMES) + 3:
        raise gr.Error(f"Expected {len(S.LAYER_NAMES)} layer weights, psi, noise and noise seed.")
    a, b = validate.seed(seed_a), validate.seed(seed_b)
    weights = validate.numbers("Layer weights", list(rest[:len(S.LAYER_NAMES)]), 0.0, 1.0)
    psi, noise_on, noise_seed = _psi(rest[-3]), flag("Noise", rest[-2]), validate.seed(rest[-1])
    G, _ = S.load()
    out = S.single_mix(G, a, b, weights, psi, noise_on, noise_seed)
    return _img(out["a"], 4), _img(out["b"], 4), _img(out["mix"], 10)


def render_mapping(psi):
    """z and w of 400 seeds in 2-D (PCA), w_avg, and where truncation moves each w."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    psi = _psi(psi)
    G, _ = S.load()
    p = S.mapping_projection(G, 400, psi)
    ez, ew = p["explained_z"], p["explained_w"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"z ~ N(0, I): PCA (PC1+PC2 explain {100 * sum(ez):.0f}%)",
        f"w = f(z): PCA (PC1+PC2 explain {100 * sum(ew):.0f}%)"))
    zx, zy = zip(*p["z"])
    wx, wy = zip(*p["w"])
    tx, ty = zip(*p["w_trunc"])
    fig.add_trace(go.Scatter(x=zx, y=zy, mode="markers", name="z", marker=dict(size=5, color="#7f7f7f")), 1, 1)
    fig.add_trace(go.Scatter(x=wx, y=wy, mode="markers", name="w (psi = 1)",
                             marker=dict(size=5, color="#c7c7c7")), 1, 2)
    lx, ly = [], []
    for (x0, y0), (x1, y1) in list(zip(p["w"], p["w_trunc"]))[:60]:
        lx += [x0, x1, None]
        ly += [y0, y1, None]
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", name="pull of truncation",
                             line=dict(width=1, color="#1f77b4")), 1, 2)
    fig.add_trace(go.Scatter(x=tx, y=ty, mode="markers", name=f"w' (psi = {psi:.2f})",
                             marker=dict(size=5, color="#1f77b4")), 1, 2)
    fig.add_trace(go.Scatter(x=[p["w_avg"][0]], y=[p["w_avg"][1]], mode="markers", name="w_avg",
                             marker=dict(size=16, symbol="star", color="#d62728", line=dict(width=1, color="black"))), 1, 2)
    fig.update_layout(height=420, margin=dict(l=20, r=20, t=40, b=20), legend=dict(orientation="h"))
    note = (f"Mean distance to w_avg: {p['spread_w']:.2f} for w, {p['spread_w_trunc']:.2f} after truncation "
            f"(ratio {p['spread_w_trunc'] / max(p['spread_w'], 1e-9):.2f} = psi). z fills a round cloud; the mapping "
            "network bends it into w, whose shape follows the data, not a Gaussian.")
    return fig, note


def training_curves():
    """D loss, G loss, D(x) and D(G(z)) over steps for both models, from their cards."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=2, subplot_titles=("D loss", "G loss", "D(x) on real images", "D(G(z)) on fakes"))
    for name, label, color in ((S.MODEL, "StyleGAN-like (ours)", "#1f77b4"), (S.PEER, "DCGAN (peer)", "#ff7f0e")):
        c = S.card(name)
        if not c or not c.get("curves"):
            continue
        log = c["curves"]
        steps = [r["step"] for r in log]
        for k, (row, col) in zip(("d_loss", "g_loss", "d_real", "d_fake"), ((1, 1), (1, 2), (2, 1), (2, 2))):
            fig.add_trace(go.Scatter(x=steps, y=[r[k] for r in log], mode="lines", name=label, legendgroup=label,
                                     showlegend=(k == "d_loss"), line=dict(color=color, width=1)), row, col)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=520, margin=dict(l=20, r=20, t=40, b=20), legend=dict(orientation="h"))
    return fig


def _fmt(v, nd=2):
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) else "n/a"


def d_shape(card: dict) -> str:
    """The discriminator a card's G was trained against, in a few words."""
    name, cfg = card.get("discriminator", "not recorded"), card.get("discriminator_config") or {}
    if name == "DCDiscriminator" and "base" in cfg:
        c = cfg["base"]
        return f"DCGAN's, {c}, {2 * c}, {4 * c} maps at 16, 8, 4 px"
    return name


def cards_table() -> str:
    from playground.core.data import FASHION_CLASSES

    rows = ["| | StyleGAN-like (ours) | DCGAN (peer) |", "|---|---|---|"]
    ours, peer = S.card(S.MODEL) or {}, S.card(S.PEER) or {}
    mo, mp = ours.get("metrics", {}), peer.get("metrics", {})

    def row(label, fo, fp):
        rows.append(f"| {label} | {fo} | {fp} |")

    row("FD in the classifier's feature space (lower is better)", _fmt(mo.get("fd")), _fmt(mp.get("fd")))
    row("real-data floor (real test vs train)", _fmt(mo.get("fd_floor_real_test")), _fmt(mp.get("fd_floor_real_test")))
    row("class entropy, bits (3.32 = all classes equally)", _fmt(mo.get("class_entropy_bits")), _fmt(mp.get("class_entropy_bits")))
    row("feature diversity (1.0 = as varied as real data)", _fmt(mo.get("diversity")), _fmt(mp.get("diversity")))
    def steps(c):
        return f"{c.get('steps', 'n/a')} (batch {c.get('train_config', {}).get('batch', '?')})"

    row("training steps", steps(ours), steps(peer))
    row("wall-clock budget, minutes", _fmt(ours.get("budget_minutes"), 0), _fmt(peer.get("budget_minutes"), 0))
    row("parameters of G", f"{ours.get('parameters', 0):,}", f"{peer.get('parameters', 0):,}")
    row("discriminator", d_shape(ours), d_shape(peer))
    mix = mo.get("style_mixing", {})
    if mix:
        row("coarse layers from the style seed: class follows the style", f"{100 * mix['coarse_follows_style']:.0f}% "
            f"of {mix['n_mixes']}", "no style inputs")
        row("fine layers from the style seed: class stays with the source", f"{100 * mix['fine_keeps_source']:.0f}% "
            f"of {mix['n_mixes']}", "no style inputs")
    sb = mo.get("same_budget_comparison")
    if sb:
        verdict = "lower" if sb["ours_lower"] else "higher (the peer won this budget)"
        rows.append(f"\n**Same budget:** {sb['how']}: {sb['budget_minutes']['ours']:.0f} minutes each. "
                    f"Our FD is {verdict}."
                    + (" Every round run so far is listed in its card under `trials`." if ours.get("trials") else ""))
    for label, m in (("our StyleGAN-like", mo), ("the DCGAN peer's", mp)):
        h = m.get("class_histogram")
        if h:
            tot = sum(h)
            rows.append(f"\n**Classes of {tot} samples from {label} G** (by the judge classifier): " + ", ".join(
                f"{FASHION_CLASSES[i]} {100 * v / tot:.0f}%" for i, v in enumerate(h)))
    return "\n".join(rows)


def snapshot_gallery(name: str) -> list:
    """The snapshot grids a card lists, as (PIL image, caption) pairs."""
    from PIL import Image

    c = S.card(name) or {}
    return [(Image.open(S.ASSETS / s["png"]).convert("L"), f"step {s['step']} ({s['seconds'] / 60:.1f} min)")
            for s in c.get("snapshots", []) if (S.ASSETS / s["png"]).exists()]


def speed_probe() -> dict:
    """Seconds for one sample (z -> w -> image), the median of 5 after a warm-up."""
    import statistics

    G, _ = S.load()
    S.sample(G, 1, 0)
    times = []
    for i in range(5):
        t0 = time.perf_counter()
        S.sample(G, 1, i)
        times.append(time.perf_counter() - t0)
    return {"family": "GAN", "what": "one 32x32 image, 1 generator pass", "seconds": statistics.median(times)}


def load_calls() -> list:
    return [
        ("gan_mix", [DEFAULT_SRC, DEFAULT_STYLE, [S.LAYER_NAMES[i] for i in S.PRESETS["coarse"]], 0.8, True, 0]),
        ("gan_single", [1, 10, 1, 1, 1, 0, 0, 0, 0, 0.8, True, 0]),
    ]


# --- the UI --------------------------------------------------------------------------------------

def build(settings=None) -> None:
    source = choose(None, f"assets/gan/{S.MODEL}.safetensors")
    gr.Markdown("## GAN: style mixing on a StyleGAN-like generator\n" + source.markdown() +
                ". 32x32 Fashion-MNIST; 7 style inputs: coarse = 4x4 and 8x8 (layers 0-2), "
                "middle = 16x16 (3-4), fine = 32x32 (5-6).")
    coarse = [S.LAYER_NAMES[i] for i in S.PRESETS["coarse"]]
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            src = gr.Textbox(DEFAULT_SRC, label=f"Source seeds (top row, up to {MAX_SEEDS})", max_lines=1,
                             elem_id="gan-src")
            sty = gr.Textbox(DEFAULT_STYLE, label=f"Style seeds (left column, up to {MAX_SEEDS})", max_lines=1,
                             elem_id="gan-style")
            preset = gr.Radio(list(PRESET_CHOICES), value="coarse", label="Layers that take the style",
                              elem_id="gan-preset")
            layers = gr.CheckboxGroup(list(S.LAYER_NAMES), value=coarse, label="Per layer (index: resolution)",
                                      elem_id="gan-layers")
            psi = gr.Slider(0.0, 1.5, value=0.8, step=0.05, label="Truncation psi", elem_id="gan-psi")
            with gr.Row():
                noise = gr.Checkbox(True, label="Noise inputs on", elem_id="gan-noise")
                noise_seed = gr.Number(0, label="Noise seed", precision=0, minimum=0, maximum=validate.MAX_SEED,
                                       elem_id="gan-noise-seed")
            gr.Markdown(EQ_MIX, elem_classes=["equation"], latex_delimiters=LATEX)
            gr.Markdown(EQ_TRUNC, elem_classes=["equation"], latex_delimiters=LATEX)
        with gr.Column(scale=2):
            grid_inputs = [src, sty, layers, psi, noise, noise_seed]
            grid = gr.Image(label="Style-mixing grid", type="pil", elem_id="gan-grid", elem_classes=["big-image"],
                            interactive=False, height=560)
            caption = gr.Markdown(elem_id="gan-caption")
            with gr.Row():
                wavg = gr.Image(label="w_avg: the image at psi = 0", type="pil", elem_id="gan-wavg",
                                elem_classes=["big-image"], interactive=False, height=200, width=200)
                gr.Markdown("**w_avg** is the running mean of w = f(z) over training. Slide psi toward 0 and every "
                            "image in the grid converges to it: truncation buys typical, clean images with less variety.")

    grid_args = dict(fn=render_grid, inputs=grid_inputs, outputs=[grid, wavg, caption])
    src.submit(**grid_args, api_name="gan_mix")
    sty.submit(**grid_args, api_name=False)
    src.blur(**grid_args, api_name=False)
    sty.blur(**grid_args, api_name=False)
    layers.change(**grid_args, api_name=False, trigger_mode="always_last")
    psi.change(**grid_args, api_name=False, trigger_mode="always_last")
    noise.change(**grid_args, api_name=False)
    noise_seed.change(**grid_args, api_name=False, trigger_mode="always_last")
    preset.input(preset_layers, preset, layers, api_name="gan_preset")
    layers.input(layers_preset, layers, preset, api_name=False)

    gr.Markdown("## One mix, layer by layer")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            with gr.Row():
                seed_a = gr.Number(1, label="Seed A (source)", precision=0, minimum=0, maximum=validate.MAX_SEED,
                                   elem_id="gan-seed-a")
                seed_b = gr.Number(10, label="Seed B (style)", precision=0, minimum=0, maximum=validate.MAX_SEED,
                                   elem_id="gan-seed-b")
            sliders = [gr.Slider(0, 1, value=1.0 if i in S.PRESETS["coarse"] else 0.0, step=0.05,
                                 label=f"layer {name}: weight of B", elem_id=f"gan-w{i}")
                       for i, name in enumerate(S.LAYER_NAMES)]
            gr.Markdown(EQ_SINGLE, elem_classes=["equation"], latex_delimiters=LATEX)
        with gr.Column(scale=2):
            with gr.Row():
                img_a = gr.Image(label="A", type="pil", interactive=False, elem_id="gan-img-a", height=160)
                img_b = gr.Image(label="B", type="pil", interactive=False, elem_id="gan-img-b", height=160)
            img_mix = gr.Image(label="A with B's styles at the chosen weights", type="pil", interactive=False,
                               elem_id="gan-img-mix", elem_classes=["big-image"], height=360)
    single_inputs = [seed_a, seed_b, *sliders, psi, noise, noise_seed]
    single_args = dict(fn=render_single, inputs=single_inputs, outputs=[img_a, img_b, img_mix])
    seed_a.change(**single_args, api_name="gan_single", trigger_mode="always_last")
    seed_b.change(**single_args, api_name=False, trigger_mode="always_last")
    for s in sliders:
        s.change(**single_args, api_name=False, trigger_mode="always_last")
    psi.change(**single_args, api_name=False, trigger_mode="always_last")
    noise.change(**single_args, api_name=False)
    noise_seed.change(**single_args, api_name=False, trigger_mode="always_last")

    gr.Markdown("## The mapping network, made visible\nThe same 400 seeds as z (left) and as w = f(z) (right), each "
                "flattened to 2-D by principal components. Grey: w as mapped; blue: after truncation with the psi "
                "slider above; the lines show where each w is pulled; the red star is w_avg.")
    mapping_plot = gr.Plot(elem_id="gan-mapping")
    mapping_note = gr.Markdown(elem_id="gan-mapping-note")
    psi.change(render_mapping, psi, [mapping_plot, mapping_note], api_name="gan_mapping", trigger_mode="always_last")

    gr.Markdown("## The training story")
    with gr.Row():
        with gr.Column(scale=3):
            curves = gr.Plot(elem_id="gan-curves")
        with gr.Column(scale=2):
            gr.Markdown(EQ_GAME, elem_classes=["equation"], latex_delimiters=LATEX)
            gr.Markdown("Reading the curves: D(x) near 1 and D(G(z)) near 0 means D is winning; both near 0.5 "
                        "means D cannot tell. A healthy game hovers in between; a D loss falling to zero while the "
                        "G loss climbs means G has stopped learning.")
    gr.Markdown(MODE_COLLAPSE)
    table = gr.Markdown(elem_id="gan-cards")
    with gr.Row():
        gr.Gallery(value=lambda: snapshot_gallery(S.MODEL), label="Ours (G_ema): the same 64 z through training",
                   columns=4, height=260, elem_id="gan-snaps-ours")
        gr.Gallery(value=lambda: snapshot_gallery(S.PEER), label="DCGAN peer: the same 64 z through training",
                   columns=4, height=260, elem_id="gan-snaps-peer")

    # First paint on page load (models load lazily, on this first use).
    def first_paint():
        g, w, c = render_grid(DEFAULT_SRC, DEFAULT_STYLE, coarse, 0.8, True, 0)
        a, b, m = render_single(1, 10, *[1.0 if i in S.PRESETS["coarse"] else 0.0 for i in range(7)], 0.8, True, 0)
        fig, note = render_mapping(0.8)
        return g, w, c, a, b, m, fig, note, training_curves(), cards_table()

    from gradio.context import Context

    root = Context.root_block
    if root is not None:
        root.load(first_paint, None, [grid, wavg, caption, img_a, img_b, img_mix, mapping_plot, mapping_note,
                                      curves, table], api_name=False)


if __name__ == "__main__":
    from playground.core.ui import standalone

    standalone(build, "GAN")
