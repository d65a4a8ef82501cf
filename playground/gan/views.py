"""The GAN tab's text, equations, figures and tables, built from the service's plain data: every figure
in them is read from the model config, a card or a live measurement."""
from __future__ import annotations

import math

from PIL import Image, ImageDraw, ImageFont

from playground.core import cache, images
from playground.gan.service import SWEEP, SWEEP_MS, Conditional, MixGrid, SingleMix, Sweep

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
WAVG = ("**w_avg** is the running mean of w = f(z) over training. Slide psi toward 0 and every image in the grid "
        "converges to it: truncation buys typical, clean images with less variety.")
READING_CURVES = ("Reading the curves: D(x) near 1 and D(G(z)) near 0 means D is winning; both near one half means "
                  "D cannot tell. A healthy game hovers in between; a D loss falling to zero while the G loss climbs "
                  "means G has stopped learning.")
SWEEP_LABEL_PX = 16                   # the label above each frame of the truncation-sweep GIF: font size
SWEEP_SCALE = 3                       # GIF pixels per generated pixel (smaller than the grid's: a lighter file)
LINES_SHOWN = 60                      # truncation arrows drawn in the mapping picture (the rest as dots only)
OURS, PEER = "StyleGAN-like (ours)", "DCGAN (peer)"


def _fmt(v, nd: int = 2) -> str:
    return f"{v:.{nd}f}" if isinstance(v, (int, float)) else "n/a"


def _span(idx) -> str:
    return f"{idx[0]}-{idx[-1]}" if len(idx) > 1 else str(idx[0])


# --- text ----------------------------------------------------------------------------------------

def header(f: dict, source_markdown: str) -> str:
    sizes = f["layer_sizes"]
    parts = [f"{name} = {' and '.join(dict.fromkeys(f'{sizes[i]}x{sizes[i]}' for i in idx))} (layers {_span(idx)})"
             for name, idx in f["groups"].items() if idx]
    res = f["resolution"]
    return (f"## GAN: style mixing on a StyleGAN-like generator\n{source_markdown}. {res}x{res} Fashion-MNIST; "
            f"{f['num_ws']} style inputs: " + ", ".join(parts) + ".")


def d_shape(card: dict, maps, resolution: int) -> str:
    """The discriminator a card's G was trained against, in a few words (`maps`: DCGAN D's feature maps)."""
    if maps:
        px = [resolution // 2 ** (i + 1) for i in range(len(maps))]    # each of its convs halves the size
        return f"DCGAN's, {', '.join(map(str, maps))} maps at {', '.join(map(str, px))} px"
    return card.get("discriminator", "not recorded")


def eq_game(f: dict) -> str:
    """The game, and which D each G played against, from the cards."""
    ours, peer = f["ours"], f["peer"]
    wo, wp = ((c.get("discriminator_config") or {}).get("base") for c in (ours, peer))
    if wo and wp and wo != wp and ours.get("steps") and peer.get("steps"):
        budget = ours.get("budget_minutes")
        when = f"in the same {budget:.0f} minutes" if budget and budget == peer.get("budget_minutes") else "in training"
        d_text = (f"Ours plays a copy of width {wo} where the peer's has width {wp}, so each of its steps costs less: "
                  f"{when} our G took {ours['steps']:,} steps and the peer {peer['steps']:,}.")
    else:
        d_text = "The cards do not record both discriminators' widths and step counts."
    return (r"""
**The game.** D scores real against generated, G tries to fool it:
$$\min_G \max_D\; \mathbb{E}_{x\sim p_\text{data}}[\log D(x)] + \mathbb{E}_{z\sim p(z)}[\log(1 - D(G(z)))]$$
**Non-saturating G loss** (what is actually trained: strong gradients while D still wins easily):
$$\mathcal{L}_G = -\,\mathbb{E}_z[\log D(G(z))]$$
Both generators here play it with the same loss against DCGAN's discriminator (with batch norm). """ + d_text + r"""
(StyleGAN2's own residual D with the R1 penalty $\frac{\gamma}{2}\,\mathbb{E}_x\|\nabla_x D(x)\|^2$ is in the code
too; on this budget it trained our G less well.)
""")


def mode_collapse(n_classes: int) -> str:
    return f"""
**Mode collapse.** G is only ever asked to fool the current D, not to cover the data. If one kind of
image fools D, G can pour every z into it: many seeds, one garment. D then learns to reject that
image, G hops to another, and the pair can chase each other around the classes instead of settling.
You would see it here as a snapshot grid of near-identical images, a class histogram piled on one or
two classes (entropy far below log2 {n_classes} = {math.log2(n_classes):.2f} bits) and a diversity ratio far below 1. The
counter-measures in our recipe: batch norm in D (D sees the statistics of a whole batch, so a batch of
look-alikes stands out), style-mixing regularisation (every layer must work with any other layer's
style) and the weight average G_ema, which smooths G's hops. The StyleGAN2 discriminator in the code
uses the minibatch-stddev feature and the R1 penalty for the same purpose.
"""


def mapping_intro(n: int) -> str:
    return (f"## The mapping network, made visible\nThe same {n} seeds as z (left) and as w = f(z) (right), each "
            "flattened to 2-D by principal components. Grey: w as mapped; blue: after truncation with the psi "
            "slider above; the lines show where each w is pulled; the red star is w_avg.")


def grid_caption(r) -> str:
    """A MixGrid in words."""
    taken = ", ".join(map(str, r.layers)) or "none (every mix equals its source)"
    n = len(r.sources) * len(r.styles)
    noise = f"on (seed {r.noise_seed})" if r.noise_on else "off"
    return (f"Top row: source seeds {r.sources}. Left column: style seeds {r.styles}. Layers from the style seed: "
            f"{taken}. psi = {r.psi:.2f}, noise {noise}. {n} {'mix' if n == 1 else 'mixes'} + "
            f"{len(r.sources) + len(r.styles)} originals in {r.ms:.0f} ms.")


def grid_outputs(r: MixGrid) -> tuple:
    return r.grid, r.w_avg, grid_caption(r)


def single_outputs(r: SingleMix) -> tuple:
    return r.a, r.b, r.mix


def _seeds(seeds) -> str:
    return ", ".join(map(str, seeds))


def grid_alt(sources, styles, layers, psi: float) -> str:
    """The grid's text alternative."""
    taken = ", ".join(map(str, layers)) or "none"
    return (f"Style-mixing grid of generated garments: source seeds {_seeds(sources)} along the top row, style "
            f"seeds {_seeds(styles)} down the left column, each mix taking layers {taken} from its style seed; "
            f"psi {psi:.2f}.")


WAVG_ALT = "The image of w_avg, the average w: what every seed gives at psi = 0."


def single_alts(a: int, b: int) -> tuple[str, str, str]:
    return (f"Generated image of seed A = {a}.", f"Generated image of seed B = {b}.",
            f"Seed {a} with the styles of seed {b} at the chosen layer weights.")


def sweep_frames(r: Sweep) -> list[Image.Image]:
    """One picture per psi: the source seeds in a row, under a label that says the psi."""
    out = []
    for psi, row in zip(r.psis, r.frames):
        pic = images.to_pil(images.grid(row, nrow=len(r.seeds)), scale=SWEEP_SCALE).convert("RGB")
        band = _sweep_label(f"{psi:.2f}", pic.width)
        frame = Image.new("RGB", (pic.width, pic.height + band.height), "white")
        frame.paste(band, (0, 0))
        frame.paste(pic, (0, band.height))
        out.append(frame)
    return out


_LABELS: cache.Recent[tuple[str, int], Image.Image] = cache.Recent(64)      # (psi, width) -> its band


def _sweep_label(psi: str, width: int) -> Image.Image:
    """The white band over a sweep frame that says its psi: drawn once per psi and width (every sweep
    shows the same few psi values) and kept, not drawn on every call."""
    return _LABELS.make((psi, width), lambda: _draw_label(psi, width))


def _draw_label(psi: str, width: int) -> Image.Image:
    font = ImageFont.load_default(size=SWEEP_LABEL_PX)
    band = Image.new("RGB", (width, SWEEP_LABEL_PX * 3 // 2), "white")
    draw, label = ImageDraw.Draw(band), f"psi = {psi}   w' = w_avg + psi (w - w_avg)"
    if draw.textlength(label, font=font) > width - 8:          # a narrow row (few seeds): the psi only
        label = f"psi = {psi}"
    draw.text((4, band.height // 6), label, fill="black", font=font)
    return band


def sweep_alt(seeds) -> str:
    return (f"Animation: source seeds {_seeds(seeds)} as psi goes from {SWEEP[0]:g} (every seed gives the w_avg "
            f"image) to {SWEEP[1]:g} (no truncation) in {SWEEP[2]} frames, and back.")


def sweep_gif(r: Sweep) -> str:
    """The sweep as a looping GIF (there and back again); its path."""
    frames = sweep_frames(r)
    return images.save_gif(frames + frames[-2:0:-1], ms_per_frame=SWEEP_MS)


def sweep_outputs(r: Sweep) -> tuple:
    """[the GIF shown, the GIF as a file]."""
    path = sweep_gif(r)
    return path, path


def gallery(shots: list[dict]) -> list:
    return [(s["image"], f"step {s['step']} ({s['seconds'] / 60:.1f} min)") for s in shots]


# --- figures -------------------------------------------------------------------------------------

def mapping_figure(p: dict):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    ez, ew, psi = p["explained_z"], p["explained_w"], p["psi"]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        f"z ~ N(0, I): PCA (PC1+PC2 explain {100 * sum(ez):.0f}%)",
        f"w = f(z): PCA (PC1+PC2 explain {100 * sum(ew):.0f}%)"))
    zx, zy = zip(*p["z"])
    wx, wy = zip(*p["w"])
    tx, ty = zip(*p["w_trunc"])
    fig.add_trace(go.Scatter(x=zx, y=zy, mode="markers", name="z", marker=dict(size=5, color="#7f7f7f")), 1, 1)
    fig.add_trace(go.Scatter(x=wx, y=wy, mode="markers", name="w (psi = 1)", marker=dict(size=5, color="#c7c7c7")), 1, 2)
    lx, ly = [], []
    for (x0, y0), (x1, y1) in list(zip(p["w"], p["w_trunc"]))[:LINES_SHOWN]:
        lx += [x0, x1, None]
        ly += [y0, y1, None]
    fig.add_trace(go.Scatter(x=lx, y=ly, mode="lines", name="pull of truncation", line=dict(width=1, color="#1f77b4")), 1, 2)
    fig.add_trace(go.Scatter(x=tx, y=ty, mode="markers", name=f"w' (psi = {psi:.2f})",
                             marker=dict(size=5, color="#1f77b4")), 1, 2)
    fig.add_trace(go.Scatter(x=[p["w_avg"][0]], y=[p["w_avg"][1]], mode="markers", name="w_avg",
                             marker=dict(size=16, symbol="star", color="#d62728", line=dict(width=1, color="black"))), 1, 2)
    fig.update_layout(height=420, margin=dict(l=20, r=20, t=40, b=20), legend=dict(orientation="h"))
    return fig


def mapping_note(p: dict) -> str:
    return (f"Mean distance to w_avg: {p['spread_w']:.2f} for w, {p['spread_w_trunc']:.2f} after truncation "
            f"(ratio {p['spread_w_trunc'] / max(p['spread_w'], 1e-9):.2f} = psi). z fills a round cloud; the mapping "
            "network bends it into w, whose shape follows the data, not a Gaussian.")


def mapping_outputs(p: dict) -> tuple:
    return mapping_figure(p), mapping_note(p)


def curves_figure(ours: dict, peer: dict):
    """D loss, G loss, D(x) and D(G(z)) over steps for both models, from their cards."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    keys = {"d_loss": "D loss", "g_loss": "G loss", "d_real": "D(x) on real images", "d_fake": "D(G(z)) on fakes"}
    fig = make_subplots(rows=2, cols=2, subplot_titles=tuple(keys.values()))
    for card, label, color in ((ours, OURS, "#1f77b4"), (peer, PEER, "#ff7f0e")):
        log = card.get("curves") or []
        steps = [r["step"] for r in log]
        for i, k in enumerate(keys):
            fig.add_trace(go.Scatter(x=steps, y=[r[k] for r in log], mode="lines", name=label, legendgroup=label,
                                     showlegend=i == 0, line=dict(color=color, width=1)), i // 2 + 1, i % 2 + 1)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=520, margin=dict(l=20, r=20, t=40, b=20), legend=dict(orientation="h"))
    return fig


# --- the cards -----------------------------------------------------------------------------------

def same_budget_text(sb: dict | None) -> str:
    """The card's same-budget verdict over its recorded seed pairs, in words a teacher can say aloud."""
    if not sb:
        return ("**Same budget:** the card records no repeated seed pairs, so no verdict is drawn from the one "
                "bundled pair.")
    o, p, n = sb["ours"], sb["peer"], sb["pairs"]
    verdict = {"level": "level within run-to-run spread", "ours lower": "ours lower, beyond run-to-run spread",
               "peer lower": "the peer lower, beyond run-to-run spread"}[sb["verdict"]]
    return (f"**Same budget** ({sb['budget_minutes']:g} minutes each, trained side by side): over {n} seed pairs, "
            f"FD of ours {o['mean']:.2f} ± {o['sd']:.2f}, the peer {p['mean']:.2f} ± {p['sd']:.2f} "
            f"(mean ± standard deviation): {verdict}. Ours was lower in {sb['ours_lower_in']} of the {n} pairs. "
            "Every pair is listed in our card under `trials`.")


def cards_table(f: dict) -> str:
    ours, peer, classes, res = f["ours"], f["peer"], f["classes"], f["resolution"]
    mo, mp = ours.get("metrics", {}), peer.get("metrics", {})
    rows = [f"| | {OURS} | {PEER} |", "|---|---|---|"]

    def row(label, fo, fp):
        rows.append(f"| {label} | {fo} | {fp} |")

    def steps(c):
        return f"{c.get('steps', 'n/a')} (batch {c.get('train_config', {}).get('batch', '?')})"

    n = mo.get("n") or mp.get("n")
    row(f"FD in the classifier's feature space, {n} samples (lower is better)", _fmt(mo.get("fd")), _fmt(mp.get("fd")))
    row("real-data floor (real test vs train)", _fmt(mo.get("fd_floor_real_test")), _fmt(mp.get("fd_floor_real_test")))
    row(f"class entropy, bits ({math.log2(len(classes)):.2f} = all {len(classes)} classes equally)",
        _fmt(mo.get("class_entropy_bits")), _fmt(mp.get("class_entropy_bits")))
    row("feature diversity (1.0 = as varied as real data)", _fmt(mo.get("diversity")), _fmt(mp.get("diversity")))
    row("training steps", steps(ours), steps(peer))
    row("wall-clock budget, minutes", _fmt(ours.get("budget_minutes"), 0), _fmt(peer.get("budget_minutes"), 0))
    row("parameters of G", f"{ours.get('parameters', 0):,}", f"{peer.get('parameters', 0):,}")
    row("discriminator", d_shape(ours, f["d_maps"]["ours"], res), d_shape(peer, f["d_maps"]["peer"], res))
    mix = mo.get("style_mixing", {})
    if mix:
        row("coarse layers from the style seed: class follows the style",
            f"{100 * mix['coarse_follows_style']:.0f}% of {mix['n_mixes']}", "no style inputs")
        row("fine layers from the style seed: class stays with the source",
            f"{100 * mix['fine_keeps_source']:.0f}% of {mix['n_mixes']}", "no style inputs")
    rows.append("\n" + same_budget_text(ours.get("same_budget")))
    for label, m in (("our StyleGAN-like", mo), ("the DCGAN peer's", mp)):
        h = m.get("class_histogram")
        if h:
            tot = sum(h)
            rows.append(f"\n**Classes of {tot} samples from {label} G** (by the judge classifier): " + ", ".join(
                f"{classes[i]} {100 * v / tot:.0f}%" for i, v in enumerate(h)))
    return "\n".join(rows)


# --- the conditional DCGAN ---------------------------------------------------------------------------

EQ_CONDITIONAL = r"""
**Generator: class-conditional batch norm.** Each batch norm keeps its normalisation and looks its scale and
shift up by the class $y$:
$$h' = \gamma_y \odot \frac{h - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}} + \beta_y$$
**Discriminator: projection** (Miyato and Koyama 2018). With $\phi(x)$ D's features before its last layer $\psi$:
$$l(x, y) = \psi(\phi(x)) + e_y^\top \phi(x)$$
the first term asks *is this real?*, the second *is it real as class $y$?* The game is DCGAN's, with $l(x, y)$.
"""


def conditional_intro(card: dict) -> str:
    cfg = card.get("config", {})
    return ("## Conditional DCGAN: pick a class\nThe DCGAN peer's architecture, told which class to draw: "
            f"{card.get('parameters', 0):,} parameters in G (feature maps {cfg.get('base', '?')} at 16x16), trained "
            f"{card.get('steps', 'n/a')} steps (batch {card.get('train_config', {}).get('batch', '?')}); the "
            "weight average of G is shown. Under each sample: the class the judge classifier reads in it, and its "
            "probability.")


def conditional_table(r: Conditional) -> str:
    """The judge's reading of each sample, one column per seed (as the strip above it)."""
    head = "| seed | " + " | ".join(map(str, r.seeds)) + " |"
    rows = [head, "|---" * (len(r.seeds) + 1) + "|",
            "| judge | " + " | ".join(r.judged) + " |",
            "| p | " + " | ".join(f"{100 * c:.0f}%" for c in r.confidence) + " |"]
    hits = sum(j == r.label for j in r.judged)
    return "\n".join(rows) + (f"\n\nAsked for **{r.label}**: the judge reads {hits} of {len(r.seeds)} as "
                               f"{r.label} ({r.ms:.0f} ms, generator and judge).")


def conditional_alt(label: str, seeds) -> str:
    return f"{len(seeds)} generated samples of the class {label}, seeds {_seeds(seeds)}, side by side."


def conditional_outputs(r: Conditional) -> tuple:
    return r.strip, conditional_table(r)


def conditional_card(card: dict) -> str:
    """The conditional model's card: the judge's accuracy per class, its mean, FD."""
    m = card.get("metrics", {})
    acc, classes = m.get("per_class_accuracy"), m.get("classes")
    if not acc or not classes:
        return "**Card:** no held-out metrics recorded (run `python -m demos.eval_gan --model cdcgan`)."
    real = m.get("judge_real_test_per_class_accuracy") or [None] * len(acc)
    rows = [f"| class | judge accuracy on {m['n_per_class']} samples | the judge on real test images |", "|---|---|---|"]
    rows += [f"| {c} | {100 * a:.1f}% | {'n/a' if r is None else f'{100 * r:.1f}%'} |"
             for c, a, r in zip(classes, acc, real)]
    rows.append(f"| **mean** | **{100 * m['mean_class_accuracy']:.1f}%** | "
                f"{'n/a' if None in real else f'{100 * sum(real) / len(real):.1f}%'} |")
    return ("### The card: does each class come out as asked?\n" + "\n".join(rows) +
            f"\n\nFD in the classifier's feature space over all {m['n']} samples: {_fmt(m.get('fd'))} (real-data "
            f"floor {_fmt(m.get('fd_floor_real_test'))}; lower is better); feature diversity {_fmt(m.get('diversity'))} "
            f"(1.0 = as varied as real data). Remake: `{card.get('recipe', 'n/a')}`, then `{m.get('recipe', 'n/a')}`.")
