"""The Transformer lab's text and figures, built from the service's plain data (an Inspection): the
tokens, the attention heatmaps (causal mask visible), the scores before and after the softmax, the
key/value groups, RoPE beside the sinusoidal encoding, the logit lens, a head switched off, and the
next-token distribution (the Prompt lab's own figure). Every figure on screen is read from the model's
config or measured on the prompt."""
from __future__ import annotations

import html

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from playground.core import images, plots
from playground.prompting import views as prompt_views
from playground.transformer.service import SINUSOID_BASE

MASKED = "#d9d9d9"        # cells above the diagonal: the future, never attended to
SCALE = "Blues"
_GREY = [[0, MASKED], [1, MASKED]]
CHOSEN, OTHER, OFF = "#e76f51", "#8aa1b1", "#264653"
LENS_HEADERS = ["after", "top 1", "top 2", "top 3", "p(answer)", "rank of answer"]
# The heatmap's height in pixels grows with the prompt (a short prompt fits beside its slider on a phone)
HEAT_BASE, HEAT_ROW, HEAT_MAX = 300, 20, 560
GIF_SIZE = (640, 300)     # one frame of the logit-lens animation, pixels
GIF_MS = 450              # per layer
GIF_HOLD = 6              # frames the last layer is held before the loop starts again
# A font with the visible-space glyph (␣) where one is installed; Pillow's own otherwise.
FONTS = ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

ATTENTION_EQ = ("$s_{ij} = \\dfrac{q_i \\cdot k_j}{\\sqrt{d_k}}, \\quad a_{ij} = \\dfrac{e^{s_{ij} + M_{ij}}}"
                "{\\sum_{j'} e^{s_{ij'} + M_{ij'}}}, \\quad M_{ij} = \\begin{cases} 0 & j \\le i \\\\ -\\infty & j > i"
                "\\end{cases}, \\quad z_i = \\sum_j a_{ij} v_j$")
ROPE_EQ = ("RoPE rotates each pair of coordinates of $q$ and $k$ by an angle that grows with the position: "
           "$R_m x = x \\cos(m\\theta) + \\text{rot}(x) \\sin(m\\theta)$, $\\theta_i = b^{-2i/d_k}$. "
           "Rotations compose, so $(R_m q) \\cdot (R_n k) = q \\cdot R_{n-m} k$: the score depends on the offset "
           "$n - m$ only. The original transformer instead adds $PE(p, 2i) = \\sin(p / B^{2i/d})$, "
           f"$PE(p, 2i{{+}}1) = \\cos(p / B^{{2i/d}})$, $B$ = {SINUSOID_BASE:g}, to the token's vector.")
LENS_EQ = ("The logit lens reads the residual stream $h_\\ell$ after layer $\\ell$ with the model's own final norm "
           "and unembedding: $p_\\ell = \\text{softmax}(W_U\\, \\text{RMSNorm}(h_\\ell))$. After the last layer this "
           "is the model's output.")
ABLATION_EQ = ("Switching a head off zeroes its output before the output projection: "
               "$o = W_O\\,[z_0; \\dots; 0; \\dots; z_{H-1}]$. Switching off all heads of a layer leaves "
               "$h_{\\ell+1} = h_\\ell + \\text{MLP}(\\text{RMSNorm}(h_\\ell))$.")


def header(status) -> str:
    text = (f"## Transformer: inside the language model, live\n**Model:** `{status.model}`, the same copy "
            "as the Prompt lab's. Type a prompt; pick a layer, a head and a query token.")
    return text + (f"\n\n**No local model can run here.** {status.problem}" if status.problem else "")


def info_markdown(r) -> str:
    s = r.info.shape
    rope = f"RoPE (base {s.rope_theta:,.0f})" if s.rope_theta else f"RoPE ({s.rope_type})"
    mlp = "SwiGLU" if s.act == "silu" else s.act
    return (f"**{r.info.name}**: {s.layers} layers; {s.heads} query heads sharing {s.kv_heads} key/value heads "
            f"({s.group} per group); $d_k$ = {s.head_dim}, $d_{{model}}$ = {s.hidden:,}; {rope}; "
            f"{r.info.norm}; {mlp} MLP of width {s.intermediate:,}; vocabulary {s.vocab:,} tokens.")


def labels(r) -> list[str]:
    """Unique axis labels, position first: '3 ␣France'."""
    return [f"{i} {t}" for i, t in enumerate(r.tokens)]


def tokens_html(r) -> str:
    # the theme's own text colours (AA contrast on the light and the dark background alike)
    chips = "".join(
        f"<span style='display:inline-block;margin:2px;padding:2px 6px;border:1px solid var(--border-color-primary);"
        f"border-radius:6px;font-family:monospace'><sup style='color:var(--body-text-color-subdued)'>{i}</sup>"
        f"{html.escape(t)}<sub style='color:var(--link-text-color)'>{tid}</sub></span>"
        for i, (t, tid) in enumerate(zip(r.tokens, r.ids)))
    return f"<div id='transformer-token-chips'><b>{len(r.ids)} tokens</b> (position, text, id): {chips}</div>"


def notes_markdown(r) -> str:
    a = r.attention
    shown = (f"Showing **layer {a.layer}, head {a.head}** (reads key/value head {a.kv_of[a.head]}), query token "
             f"**{a.query} `{r.tokens[a.query]}`**.")
    took = f"*Computed in {r.seconds:.2f} s ({'forward pass reused' if r.cached else 'one new forward pass'}).*"
    return "\n\n".join([*(f"⚠️ {n}" for n in r.notes), shown, took])


def _masked(w: np.ndarray) -> np.ndarray:
    out = w.astype(float).copy()
    out[np.triu_indices(len(w), 1)] = np.nan
    return out


def attention_figure(r) -> plots.Figure:
    a, lab = r.attention, labels(r)
    t = len(lab)
    z = _masked(a.weights[a.head]).astype(np.float32)
    return plots.figure([
        dict(type="heatmap", z=np.where(np.isnan(z), 1.0, np.nan), x=lab, y=lab, colorscale=_GREY, showscale=False,
             hoverinfo="skip", name="masked"),
        dict(type="heatmap", z=z, x=lab, y=lab, colorscale=plots.colorscale(SCALE), zmin=0, zmax=1,
             colorbar=dict(title=dict(text="a_ij")), name="weights",
             hovertemplate="query %{y}<br>key %{x}<br>a = %{z:.3f}<extra></extra>")],
        dict(shapes=[dict(type="rect", x0=-0.5, x1=t - 0.5, y0=a.query - 0.5, y1=a.query + 0.5,
                          line=dict(color=CHOSEN, width=2))],
             title=dict(text=f"Layer {a.layer}, head {a.head}: attention weights (grey = masked future)"),
             xaxis=dict(title=dict(text="key j"), type="category", tickangle=-60),
             yaxis=dict(title=dict(text="query i"), type="category", autorange="reversed"),
             height=min(HEAT_MAX, HEAT_BASE + HEAT_ROW * t), margin=dict(t=50, l=10, r=10, b=10)))


def overview_figure(r) -> plots.Figure:
    """Every head of the layer in one picture, one row per key/value head: heads in a row share their
    keys and values. (One heatmap with blank gutters: fast to build and to send.)"""
    a = r.attention
    t = a.weights.shape[-1]
    groups = sorted(set(a.kv_of))
    rows = [[h for h in range(len(a.kv_of)) if a.kv_of[h] == g] for g in groups]
    cols = max(len(row) for row in rows)
    z = np.full((len(rows) * (t + 1), cols * (t + 1)), np.nan, dtype=np.float32)
    masked = np.full(z.shape, np.nan, dtype=np.float32)
    future = np.triu(np.ones((t, t), dtype=bool), 1)
    who = np.full(z.shape, -1, dtype=np.int16)
    notes = []
    for gi, row in enumerate(rows):
        for ci, h in enumerate(row):
            y0, x0 = gi * (t + 1), ci * (t + 1)
            z[y0:y0 + t, x0:x0 + t] = _masked(a.weights[h])
            masked[y0:y0 + t, x0:x0 + t][future] = 1.0
            who[y0:y0 + t, x0:x0 + t] = h
            notes.append(dict(x=x0 + t / 2, y=y0 - 0.5, yanchor="bottom", showarrow=False, font=dict(size=11),
                              text=f"{'<b>' if h == a.head else ''}head {h} · kv {groups[gi]} · prev-token "
                                   f"{a.prev[h]:.0%}{'</b>' if h == a.head else ''}"))
    hidden = dict(showticklabels=False, showgrid=False, zeroline=False)
    return plots.figure(
        [dict(type="heatmap", z=masked, colorscale=_GREY, showscale=False, hoverinfo="skip"),
         dict(type="heatmap", z=z, customdata=who, colorscale=plots.colorscale(SCALE), zmin=0, zmax=1,
              showscale=False, hovertemplate="head %{customdata}: a = %{z:.3f}<extra></extra>")],
        dict(xaxis=dict(hidden), yaxis=dict(hidden, autorange="reversed"),
             title=dict(text=f"Layer {a.layer}: all {len(a.kv_of)} heads, a row per key/value head"),
             annotations=notes, height=170 * len(rows) + 90, margin=dict(t=70, l=10, r=10, b=10),
             plot_bgcolor="white"))


def _side_by_side(left: list[dict], right: list[dict], titles: tuple[str, str], layout: dict) -> plots.Figure:
    """Two panels on their own axes (plots.panels: make_subplots' layout, each title centred over its panel),
    with `layout` merged in (its xaxis, xaxis2, yaxis2 merged into the panels' own)."""
    axes = plots.panels(1, 2, subplot_titles=titles, horizontal_spacing=0.08)
    for a in axes["annotations"]:
        del a["font"]                                   # the figure's default size (12 px), not make_subplots' 16
    for k, v in layout.items():
        axes[k] = {**axes[k], **v} if k in axes else v
    return plots.figure([*(plots.on(t, 1) for t in left), *(plots.on(t, 2) for t in right)],
                        dict(axes, margin=dict(t=70, b=10)))


def scores_figure(r) -> plots.Figure:
    a, lab = r.attention, labels(r)[: r.attention.query + 1]
    s = a.scores[: a.query + 1]
    w = a.weights[a.head, a.query, : a.query + 1]
    return _side_by_side([dict(type="bar", x=lab, y=s, marker=dict(color=OTHER), name="score")],
                         [dict(type="bar", x=lab, y=w, marker=dict(color=CHOSEN), name="weight")],
                         ("scores s = q·k/√d_k (before the softmax)", "weights a = softmax(s) (after)"),
                         dict(height=400, showlegend=False, xaxis=dict(type="category", tickangle=-60),
                              xaxis2=dict(type="category", tickangle=-60), yaxis2=dict(range=[0, 1]),
                              title=dict(text=f"Query {a.query} {r.tokens[a.query]} (layer {a.layer}, head "
                                              f"{a.head}); keys after it are masked")))


def scores_markdown(r) -> str:
    a, s = r.attention, r.info.shape
    w = a.weights[a.head, a.query]
    j = int(np.argmax(w))
    return (f"{ATTENTION_EQ}\n\nIn the overview, *prev-token* is a head's mean attention to the token just before "
            f"each query (a previous-token head comes close to 100%). For query {a.query} and its strongest key {j} "
            f"`{r.tokens[j]}`: "
            f"$q \\cdot k$ = {a.dots[j]:.3f}, divided by $\\sqrt{{{s.head_dim}}}$ (×{s.scaling:.4g}) gives "
            f"$s$ = {a.scores[j]:.3f}; the softmax over the {a.query + 1} visible keys gives $a$ = {w[j]:.3f}.\n\n"
            f"**Check:** our $\\text{{softmax}}(QK^T/\\sqrt{{d_k}})V$ for all {s.heads} heads, through the layer's "
            f"own $W_O$, equals the model's attention output for layer {a.layer} to "
            f"max $|\\Delta|$ = {a.check:.1e}.")


def gqa_markdown(r) -> str:
    s, a = r.info.shape, r.attention
    rows = "\n".join(f"| {g} | {', '.join(str(h) for h in range(s.heads) if a.kv_of[h] == g)} |"
                     for g in range(s.kv_heads))
    return (f"**Grouped-query attention.** {s.heads} query heads share {s.kv_heads} key/value heads: head $h$ reads "
            f"key/value head $\\lfloor h / {s.group} \\rfloor$. The key/value cache a token leaves behind is "
            f"{s.heads // s.kv_heads}× smaller than with one key/value head per query head "
            f"({2 * s.kv_heads * s.head_dim * s.layers:,} numbers per token instead of "
            f"{2 * s.heads * s.head_dim * s.layers:,}).\n\n| key/value head | query heads |\n|---|---|\n{rows}")


def rope_figure(r) -> plots.Figure:
    p = r.rope
    return plots.figure([
        dict(type="scatter", x=p.shifts, y=p.both, name=f"RoPE, both moved: positions ({p.query}+s, {p.key}+s)",
             line=dict(color=CHOSEN, width=3)),
        dict(type="scatter", x=p.shifts, y=p.query_only, name=f"RoPE, only the query moved: ({p.query}+s, {p.key})",
             line=dict(color=OTHER)),
        dict(type="scatter", x=p.shifts, y=p.added, line=dict(color=OFF, dash="dot"),
             name="sinusoidal code added instead: (q+PE)·(k+PE)/√d_k, both moved")],
        dict(shapes=[plots.vline(p.shift, color="#999", dash="dash")],
             title=dict(text=f"Score of query {p.query} and key {p.key} (this head's real vectors) as positions shift"),
             xaxis=dict(title=dict(text="shift s (positions)")), yaxis=dict(title=dict(text="score")), height=400,
             legend=dict(orientation="h", y=-0.25), margin=dict(t=50, b=10)))


def rope_markdown(r) -> str:
    p, theta = r.rope, r.info.shape.rope_theta
    both, alone, added = p.at_shift
    base = f" (base $b$ = {theta:,.0f})" if theta else ""
    last = len(p.thetas) - 1
    said = [f"At shift $s$ = {p.shift}: the score with both moved is {both:.4f} (the original positions give "
            f"{p.both[0]:.4f});", f"with only the query moved it is {alone:.4f};",
            f"with the sinusoidal code added it is {added:.4f}.",
            f"This model's RoPE{base} turns pair $i$ by $\\theta_i$ radians per position, from "
            f"$\\theta_0$ = {p.thetas[0]:.3g} to $\\theta_{{{last}}}$ = {p.thetas[-1]:.3g}."]
    return ROPE_EQ + "\n\n" + " ".join(said)


def positions_figure(r) -> plots.Figure:
    p = r.rope
    rdbu = plots.colorscale("RdBu")
    return _side_by_side([dict(type="heatmap", z=p.sinusoid.astype(np.float32), colorscale=rdbu, zmin=-1, zmax=1,
                               showscale=False)],
                         [dict(type="heatmap", z=p.rotary_cos.astype(np.float32), colorscale=rdbu, zmin=-1, zmax=1)],
                         ("sinusoidal PE(p, i): added to the input", "RoPE cos(p θ_i): the rotation of pair i"),
                         dict(height=380, xaxis=dict(title=dict(text="dimension i")),
                              xaxis2=dict(title=dict(text="pair i")),
                              yaxis=dict(title=dict(text="position p"), autorange="reversed"),
                              yaxis2=dict(autorange="reversed")))


def lens_figure(r) -> plots.Figure:
    lens = r.lens
    text = [[f"{t}" for t in row] for row in lens.top]
    return plots.figure(
        [dict(type="heatmap", z=lens.probs, x=[f"top {k + 1}" for k in range(lens.probs.shape[1])], y=lens.labels,
              text=text, texttemplate="%{text}", colorscale=plots.colorscale(SCALE), zmin=0, zmax=1,
              colorbar=dict(title=dict(text="p")),
              hovertemplate="%{y}, %{x}: %{text} (p = %{z:.3f})<extra></extra>")],
        dict(title=dict(text=f"Logit lens at token {lens.position} {r.tokens[lens.position]}"),
             yaxis=dict(autorange="reversed", type="category", title=dict(text="read after")),
             height=max(360, 22 * len(lens.labels) + 90), margin=dict(t=50, l=10, r=10, b=10)))


def lens_rows(r) -> list[list]:
    lens = r.lens
    return [[lab, *(f"{t} ({p:.2f})" for t, p in zip(top[:3], probs[:3])), f"{pa:.2g}", rank]
            for lab, top, probs, pa, rank in zip(lens.labels, lens.top, lens.probs, lens.answer_probs,
                                                 lens.answer_ranks)]


def lens_markdown(r) -> str:
    lens = r.lens
    where = (f"it is the lens's top token from **{lens.labels[lens.first]}** on" if lens.first is not None else
             "it never leads the lens")
    return (f"{LENS_EQ}\n\nThe model's next token after token {lens.position} `{r.tokens[lens.position]}` is "
            f"**`{lens.answer}`** (p = {lens.answer_probs[-1]:.2f}); {where}.")


def ablation_figure(r) -> plots.Figure | None:
    ab = r.ablation
    if ab is None:
        return None
    return plots.figure([dict(type="bar", name="intact model", x=ab.tokens, y=ab.intact, marker=dict(color=OTHER)),
                         dict(type="bar", name=_what(ab), x=ab.tokens, y=ab.ablated, marker=dict(color=CHOSEN))],
                        dict(title=dict(text=f"Next token after the prompt, intact and with {_what(ab)}"),
                             barmode="group", yaxis=dict(title=dict(text="probability")),
                             xaxis=dict(type="category", tickangle=-45), height=380, margin=dict(t=50, b=10)))


def _what(ab) -> str:
    return (f"head {ab.heads[0]} of layer {ab.layer} off" if len(ab.heads) == 1 else
            f"all {len(ab.heads)} heads of layer {ab.layer} off")


def ablation_markdown(r) -> str:
    ab = r.ablation
    if ab is None:
        return f"{ABLATION_EQ}\n\nChoose a head or a layer to switch off."
    (t0, p0), (t1, p1) = ab.top_before, ab.top_after
    return (f"{ABLATION_EQ}\n\nWith {_what(ab)}: the top token goes from `{t0}` (p = {p0:.3f}) to `{t1}` "
            f"(p = {p1:.3f}); $KL(\\text{{intact}} \\,\\|\\, \\text{{off}})$ = {ab.kl:.4f} nats. Only layers "
            f"{ab.layer}–{r.info.shape.layers - 1} were rerun: the earlier ones cannot see the change.")


def outputs(r) -> tuple:
    """Every view of an Inspection, in the tab's output order (after its slider updates)."""
    return (info_markdown(r), tokens_html(r), notes_markdown(r), attention_figure(r), overview_figure(r),
            scores_figure(r), scores_markdown(r), gqa_markdown(r), rope_figure(r), rope_markdown(r),
            positions_figure(r), lens_markdown(r), lens_figure(r), lens_rows(r), ablation_figure(r),
            ablation_markdown(r), prompt_views.next_token_figure(r.next_token))


NEXT_TOKEN = prompt_views.SAMPLING


# ---- the logit lens, layer by layer, as an animated GIF -------------------------------------------

def _font(size: int):
    for name in FONTS:
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def lens_frames(run) -> list[Image.Image]:
    """One frame per row of the lens: its top tokens as bars (the model's final answer in the accent
    colour), and where the answer stands after that layer."""
    lens, (w, h) = run.lens, GIF_SIZE
    big, small = _font(18), _font(15)
    token = run.tokens[lens.position]
    x0, bar_w, row_h, top = 170, 380, 34, 64
    frames = []
    for row, label in enumerate(lens.labels):
        im = Image.new("RGB", (w, h), "white")
        d = ImageDraw.Draw(im)
        where = "the embeddings (no layer yet)" if row == 0 else label
        d.text((16, 10), f"Logit lens at token {lens.position} {token}: after {where}", fill="black", font=big)
        d.rectangle([16, 40, w - 16, 46], fill="#e5e5e5")                     # how deep in the model
        d.rectangle([16, 40, 16 + (w - 32) * row / max(len(lens.labels) - 1, 1), 46], fill=OFF)
        for k, (tok, p) in enumerate(zip(lens.top[row], lens.probs[row])):
            y = top + k * row_h
            d.text((16, y + 4), tok[:16], fill="black", font=small)
            d.rectangle([x0, y + 4, x0 + max(bar_w * float(p), 1), y + row_h - 8],
                        fill=CHOSEN if tok == lens.answer else OTHER)
            d.text((x0 + bar_w * float(p) + 8, y + 4), f"{float(p):.2f}", fill="black", font=small)
        d.text((16, h - 40), f"the model's answer {lens.answer}: p = {lens.answer_probs[row]:.3f}, "
                             f"rank {lens.answer_ranks[row]:,}", fill="black", font=small)
        frames.append(im)
    return frames


def lens_gif(run) -> tuple[str, str]:
    """The animation's file and its text alternative."""
    lens = run.lens
    frames = lens_frames(run)
    path = images.save_gif(frames + [frames[-1]] * GIF_HOLD, ms_per_frame=GIF_MS)
    lead = (f"{lens.answer} leads from {lens.labels[lens.first]} on" if lens.first is not None
            else f"{lens.answer} never leads")
    alt = (f"Animated logit lens of {run.model}, {len(lens.labels)} frames: the top {lens.probs.shape[1]} next "
           f"tokens read after each layer at token {lens.position} {run.tokens[lens.position]}; {lead}.")
    return path, alt
