"""The Few-shot lab's figures, tables and equations, made from the service's plain data (no gradio,
no model loading). Every figure in the text comes from a card or a constant the code uses."""
from __future__ import annotations

import math

import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont
from plotly.subplots import make_subplots

from playground.core import images, plots
from playground.fewshot import tasks
from playground.fewshot.service import DIVERGED, K_RANGE, MAX_POINTS, SEP, STEPS, XY, Adaptation, Info, points_text

COLOURS = {"maml": "#d62728", "fomaml": "#ff7f0e", "pretrained": "#1f77b4"}
TRUTH = "#555555"
HELDOUT_STEPS = (0, 1, -1)   # columns of the held-out table: before adapting, one step, the last step
LOG_TICKS = [0.001, 0.01, 0.1, 0.2, 0.5, 1, 2, 5]   # where the log-scale MSE axes are labelled
CURVES_HEIGHT = 380        # pixels: the curves plot, which on a phone stays on top while the controls scroll
GIF_PANEL = (260, 220)     # pixels of one initialisation's panel in the exported GIF
GIF_MS = 600               # per step
GIF_HOLD = 3               # extra frames on the last step before the GIF loops

EQ_MAML = r"""
**One task** $\mathcal{T}_i$: $K$ support points $S_i$ to adapt on, query points $Q_i$ of the same wave to be
judged on, and the squared error $\mathcal{L}(\theta; D) = \frac{1}{|D|}\sum_{(x,y)\in D}(f_\theta(x) - y)^2$.

**Inner step** (adaptation: a copy of $\theta$ takes a gradient step on the support points)
$$\theta_i' = \theta - \alpha\,\nabla_\theta \mathcal{L}(\theta; S_i)$$

**Meta-objective** (the outer loop: $\theta$ is judged *after* adapting)
$$\min_\theta \sum_{\mathcal{T}_i \sim p(\mathcal{T})} \mathcal{L}(\theta_i'; Q_i)$$

**Meta-gradient** (chain rule through the inner step; $H_i = \nabla^2_\theta \mathcal{L}(\theta; S_i)$)
$$\nabla_\theta \mathcal{L}(\theta_i'; Q_i) = \big(I - \alpha H_i\big)\,\nabla_{\theta'} \mathcal{L}(\theta_i'; Q_i)$$

**First-order MAML** drops $H_i$ (the inner gradient is treated as a constant):
$\nabla_\theta \mathcal{L}(\theta_i'; Q_i) \approx \nabla_{\theta'} \mathcal{L}(\theta_i'; Q_i)$.
The **joint baseline** has no inner step: it minimises $\sum_i \mathcal{L}(\theta; S_i \cup Q_i)$, one curve for
every task at once, and is fine-tuned by the same inner step at test time.
"""


def _recipe(info: Info) -> dict:
    for m in info.models:
        if m.role == "maml":
            return m.card["recipe"]
    return info.models[0].card["recipe"] if info.models else {}


def algorithm(info: Info) -> str:
    """The algorithm as the recipe runs it, its settings read from the MAML card (and the paper's beside them)."""
    r = _recipe(info)
    if not r:
        return "No bundled model yet: run `python -m demos.train_fewshot`."
    p = r["paper"]
    return (
        "**The algorithm** (`demos/train_fewshot.py`; `playground/fewshot/model.py` holds the equations)\n\n"
        f"1. Draw a meta-batch of {r['meta_batch']} tasks; each gives {r['k_support']} support and "
        f"{r['k_query']} query points.\n"
        f"2. Inner loop, per task: copy $\\theta$ and take {_plural(r['inner_steps'], 'gradient step')} of "
        f"$\\alpha = {r['inner_lr']:g}$ on its support points (`create_graph=True`: the step stays differentiable).\n"
        "3. Outer loop: average the query losses of the adapted copies and backpropagate through the inner step "
        f"to $\\theta$; Adam (learning rate $\\beta = {r['lr']:g}$) updates $\\theta$ once per meta-batch.\n"
        f"4. Repeat: {r['iterations']:,} meta-iterations here (the paper: {p['iterations']:,}, "
        f"$\\alpha = {p['inner_lr']:g}$, {p['meta_batch']} tasks, $K = {p['k']}$, $\\beta = {p['meta_lr']:g}$).\n\n"
        "At test time every initialisation gets the same treatment: plain gradient steps on the $K$ new points.")


def intro(info: Info) -> str:
    a, ph, xr = tasks.AMPLITUDE, tasks.PHASE, tasks.X_RANGE
    models = ", ".join(f"**{m.label}**" for m in info.models) or "none found: run `python -m demos.train_fewshot`"
    return (
        "## Few-shot learning by meta-learning (MAML)\n"
        "The Prompt lab learns from a few examples *in context*, with no weight changing. Here a network learns "
        "*how to adapt*: MAML (Finn et al. 2017) trains an initialisation $\\theta$ so that a few gradient steps "
        "on a handful of points fit a new task.\n\n"
        f"Every task is a sine wave $y = A\\sin(x - \\varphi)$ with $A \\in [{a[0]:g}, {a[1]:g}]$, "
        f"$\\varphi \\in [{ph[0]:g}, \\pi]$, $x \\in [{xr[0]:g}, {xr[1]:g}]$. Bundled initialisations "
        f"(read from `{info.source}`): {models}. Set a task, then scrub or play the gradient steps and watch "
        "each curve move toward the points.")


POINTS_NOTE = (f"The plot does not take clicks (Gradio reports no click position on a plotly figure), so points "
               f"are typed: edit x and y in the table (at most {MAX_POINTS} rows; add a row with the last row's "
               "menu), then press **Adapt to these points**. The table starts with the points of the current wave.")
POINTS_TEXT_LABEL = (f"the points as text, x{XY}y separated by '{SEP}' (a lesson link carries these; "
                     "edit and press Enter to adapt)")
GIF_LABEL = f"the steps 0 to {STEPS} of the task shown, as a GIF"
K_LABEL = f"K: support points drawn from the wave ({K_RANGE[0]} to {K_RANGE[1]})"
STEP_LABEL = f"gradient step shown (0 = the initialisation, up to {STEPS})"
AMPLITUDE_LABEL = f"amplitude A ({tasks.AMPLITUDE[0]:g} to {tasks.AMPLITUDE[1]:g})"
PHASE_LABEL = f"phase φ in radians ({tasks.PHASE[0]:g} to π)"


# --- the task and its adaptation ---------------------------------------------------------------

def _y_view(a: Adaptation) -> float:
    top = max([tasks.AMPLITUDE[1], *map(abs, a.task.y)])
    return 1.2 * top


def _scatter(x, y, name: str, col: int | None = None, **props) -> dict:
    """A scatter trace, on panel `col` of a row of panels when given."""
    trace = {"type": "scatter", "x": x, "y": y, "name": name, **props}
    return trace if col is None else plots.on(trace, col)


def curves_figure(a: Adaptation) -> plots.Figure:
    """One panel per initialisation, side by side: the true wave, the support points, the initialisation
    (step 0, dotted) and the curve after `a.step` gradient steps. Built from dicts (core/plots.py): it is
    redrawn on every move of the step slider."""
    k, n = a.step, len(a.task.x)
    x = a.grid.round(3).tolist()          # plain JSON lists: the page and the API read them as numbers
    layout = plots.panels(1, len(a.runs), shared_yaxes=True, horizontal_spacing=0.03,
                          subplot_titles=tuple(f"{r.label}<br>α = {r.alpha:g}" for r in a.runs))
    for note in layout["annotations"]:
        note["font"] = {"size": 12}          # narrow panels on a phone: short lines, small type
    data = []
    for c, r in enumerate(a.runs, 1):
        first = c == 1
        if a.truth is not None:
            data.append(_scatter(x, a.truth.tolist(), "true wave", c, legendgroup="truth", showlegend=first,
                                 line=dict(color=TRUTH, width=2)))
        # each panel's title names its model, so the legend keeps one key per line style (short on a phone)
        data.append(_scatter(x, r.curves[0].tolist(), f"{r.label}: step 0", c, legendgroup=r.role, showlegend=False,
                             line=dict(color=COLOURS.get(r.role), width=1.5, dash="dot"), opacity=0.7))
        data.append(_scatter(x, r.curves[k].tolist(), f"{r.label}: step {k}", c, legendgroup=r.role, showlegend=False,
                             line=dict(color=COLOURS.get(r.role), width=3)))
        data.append(_scatter(a.task.x, a.task.y, f"K = {n} support points", c, mode="markers", legendgroup="pts",
                             showlegend=first, marker=dict(color="black", size=9)))
    for name, dash, width in (("dotted: the initialisation (step 0)", {"dash": "dot"}, 1.5), (f"solid: after step {k}", {}, 3)):
        data.append(_scatter([None], [None], name, 1, mode="lines", line=dict(color=TRUTH, **dash, width=width),
                             hoverinfo="skip"))
    y = _y_view(a)
    plots.each_axis(layout, "yaxis", range=[-y, y])
    plots.each_axis(layout, "xaxis", range=list(tasks.X_RANGE), title={"text": "x"})
    what = f"K = {n} points of the wave" if a.truth is not None else f"the {n} typed points"
    layout.update(title={"text": f"after {_plural(k, 'gradient step')} on {what}"}, height=CURVES_HEIGHT,
                  margin=dict(l=40, r=10, t=80, b=40), legend=dict(orientation="h", yanchor="top", y=-0.22))
    return plots.figure(data, layout)


def loss_figure(a: Adaptation) -> plots.Figure:
    """Loss per step for each initialisation: the query loss (true curve) when known, solid, and the
    loss on the support points, dotted; the step shown is marked. Built from dicts, as curves_figure."""
    steps = list(range(a.steps + 1))
    data = []
    for r in a.runs:
        colour = COLOURS.get(r.role)
        if r.query_loss is not None:
            data.append(_scatter(steps, r.query_loss, f"{r.label}: query MSE", mode="lines+markers",
                                 line=dict(color=colour, width=3)))
        data.append(_scatter(steps, r.support_loss, f"{r.label}: support MSE", mode="lines+markers",
                             line=dict(color=colour, width=1.5, dash="dot")))
    query = " (solid: query MSE against the true wave; dotted: MSE on the support points)" if a.truth is not None \
        else " (MSE on the typed points: with no true wave there is no query loss)"
    mark = plots.vline(a.step, color="#888", dash="dash")
    return plots.figure(data, dict(
        title={"text": "loss per gradient step" + query}, height=340, margin=dict(l=40, r=10, t=50, b=40),
        xaxis=dict(title={"text": "gradient steps"}, dtick=1),
        yaxis=dict(title={"text": "MSE"}, type="log", tickvals=LOG_TICKS),
        legend=dict(orientation="h", y=-0.25), shapes=[mark]))


def step_table(a: Adaptation) -> str:
    k = a.step
    head = "| initialisation | α | support MSE | query MSE (true wave) |\n|---|---|---|---|\n"
    rows = "\n".join(f"| {r.label} | {r.alpha:g} | " + (
        f"diverged at step {r.diverged} | — |" if r.diverged is not None and k >= r.diverged else
        f"{r.support_loss[k]:.3f} | {'—' if r.query_loss is None else f'**{r.query_loss[k]:.3f}**'} |")
        for r in a.runs)
    task = (f"A = {a.task.amplitude:.2f}, φ = {a.task.phase:.2f}, K = {len(a.task.x)} points (seed {a.task.seed})"
            if a.task.amplitude is not None else f"{len(a.task.x)} typed points (no true wave)")
    blown = [r for r in a.runs if r.diverged is not None]
    note = ("\n\n" + "; ".join(f"{r.label} diverged at step {r.diverged}" for r in blown) +
            f": the loss on the points grew more than {DIVERGED:g}-fold, so the curve stops there. A gradient step "
            "of fixed size α overshoots where the loss curves too sharply for it."
            if blown else "")
    return f"**Step {k} of {a.steps}**, task: {task}\n\n" + head + rows + note


def points_rows(a: Adaptation) -> list[list[float]]:
    """The support points as table rows [x, y] (rounded for reading)."""
    return [[round(x, 3), round(y, 3)] for x, y in zip(a.task.x, a.task.y)]


def points_as_text(a: Adaptation) -> str:
    """The support points as the text a lesson link carries (rounded like the table)."""
    rows = points_rows(a)
    return points_text([r[0] for r in rows], [r[1] for r in rows])


def shown(a: Adaptation) -> list:
    """[state, curves, loss per step, step table]."""
    return [a, curves_figure(a), loss_figure(a), step_table(a)]


def shown_task(a: Adaptation) -> list:
    """A new wave: [state, curves, loss, table, the points table, the seed]."""
    return [*shown(a), points_rows(a), a.task.seed]


def shown_points(a: Adaptation) -> list:
    """Typed points: [state, curves, loss, table, the points as used (clamped)]."""
    return [*shown(a), points_rows(a)]


# --- the exported GIF: every step of the adaptation, drawn with PIL (no plotting library at run time) ---

def _polyline(draw: ImageDraw.ImageDraw, pts: list[tuple[float, float]], **kw) -> None:
    """A line through the points, broken where a value is NaN (a diverged step)."""
    run: list[tuple[float, float]] = []
    for p in pts + [(math.nan, math.nan)]:
        if math.isfinite(p[1]):
            run.append(p)
            continue
        if len(run) > 1:
            draw.line(run, joint="curve", **kw)
        run = []


def steps_frames(a: Adaptation) -> list[Image.Image]:
    """One frame per gradient step, 0 to the last: each initialisation's panel with the true wave (grey),
    its start (thin), its curve at that step (thick) and the support points, as in the curves plot."""
    w, h = GIF_PANEL
    top, pad = 34, 8
    font = ImageFont.load_default(size=13)
    (x0, x1), ylim = tasks.X_RANGE, _y_view(a)
    xs = a.grid.tolist()

    def at(c: int, x: float, y: float) -> tuple[float, float]:
        return (c * w + pad + (x - x0) / (x1 - x0) * (w - 2 * pad),
                top + pad + (ylim - max(-ylim, min(ylim, y))) / (2 * ylim) * (h - top - 2 * pad)) \
            if math.isfinite(y) else (math.nan, math.nan)

    frames = []
    for k in range(a.steps + 1):
        img = Image.new("RGB", (w * len(a.runs), h), "white")
        d = ImageDraw.Draw(img)
        for c, r in enumerate(a.runs):
            colour = COLOURS.get(r.role, "#000000")
            d.rectangle([c * w + pad, top + pad, (c + 1) * w - pad, h - pad], outline="#bbbbbb")
            d.line([at(c, x0, 0), at(c, x1, 0)], fill="#dddddd")
            if a.truth is not None:
                _polyline(d, [at(c, x, y) for x, y in zip(xs, a.truth.tolist())], fill=TRUTH, width=2)
            _polyline(d, [at(c, x, y) for x, y in zip(xs, r.curves[0].tolist())], fill=colour, width=1)
            _polyline(d, [at(c, x, y) for x, y in zip(xs, r.curves[k].tolist())], fill=colour, width=3)
            for x, y in zip(a.task.x, a.task.y):
                px, py = at(c, x, y)
                d.ellipse([px - 3.5, py - 3.5, px + 3.5, py + 3.5], fill="black")
            d.text((c * w + pad, 2), r.label, fill=colour, font=font)
            gone = r.diverged is not None and k >= r.diverged
            d.text((c * w + pad, 17), f"step {k} of {a.steps}" + (f": diverged at step {r.diverged}" if gone else ""),
                   fill="#333333", font=font)
        frames.append(img)
    return frames


def steps_gif(a: Adaptation) -> str:
    """The adaptation as an animated GIF (steps 0 to the last, the last held a moment): its path."""
    frames = steps_frames(a)
    return images.save_gif(frames + [frames[-1]] * GIF_HOLD, ms_per_frame=GIF_MS)


# --- the held-out figures from the cards ---------------------------------------------------------

def _cell(h: dict, k: int, step: int) -> str:
    return f"{h[f'k{k}']['mse'][step]:.3f} ± {h[f'k{k}']['se'][step]:.3f}"


def _ks(info: Info) -> list[int]:
    h = info.models[0].card["metrics"]["heldout"] if info.models else {}
    return sorted(int(key[1:]) for key in h if key.startswith("k") and key[1:].isdigit())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


def heldout_table(info: Info) -> str:
    """One row per initialisation and K: the held-out MSE before adapting, after one step and after the last."""
    if not info.models:
        return "No bundled model yet: run `python -m demos.train_fewshot`."
    h0 = info.models[0].card["metrics"]["heldout"]
    steps = [range(h0["steps"] + 1)[s] for s in HELDOUT_STEPS]
    rows = ["| initialisation | K | α | " + " | ".join(_plural(s, "step") for s in steps) + " | meta-iterations |",
            "|---|---|---|" + "---|" * len(steps) + "---|"]
    for m in info.models:
        h = m.card["metrics"]["heldout"]
        rows += [f"| {m.label} | {k} | {m.alpha:g} | " + " | ".join(_cell(h, k, s) for s in steps)
                 + f" | {m.card['steps']:,} |" for k in _ks(info)]
    return (f"**Held-out tasks** ({h0['tasks']:,} waves, seed {h0['seed']}; MSE against the true wave on "
            f"{h0['query_points']} evenly spaced x, mean ± standard error; from the cards):\n\n" + "\n".join(rows)
            + "\n\n" + ordering(info))


def ordering(info: Info) -> str:
    """The paper's claim, checked on the cards: MAML after one step against the baseline after the last."""
    by = {m.role: m for m in info.models}
    if "maml" not in by or "pretrained" not in by:
        return ""
    out = []
    for k in _ks(info):
        mm = by["maml"].card["metrics"]["heldout"]
        one, last = HELDOUT_STEPS[1], mm["steps"]
        a, b = mm[f"k{k}"]["mse"][one], by["pretrained"].card["metrics"]["heldout"][f"k{k}"]["mse"][last]
        verdict = "MAML adapts faster (the paper's ordering holds)" if a < b else \
            "the paper's ordering does **not** hold here"
        out.append(f"K = {k}: {by['maml'].label} after {one} step **{a:.3f}** vs {by['pretrained'].label} after "
                   f"{last} steps **{b:.3f}**: {verdict}.")
    return " ".join(out)


def heldout_figure(info: Info) -> go.Figure:
    ks = _ks(info)
    fig = make_subplots(rows=1, cols=max(1, len(ks)), shared_yaxes=True, subplot_titles=[f"K = {k}" for k in ks])
    for c, k in enumerate(ks, 1):
        for m in info.models:
            h = m.card["metrics"]["heldout"][f"k{k}"]
            fig.add_scatter(x=list(range(len(h["mse"]))), y=h["mse"], name=m.label, legendgroup=m.role,
                            showlegend=c == 1, mode="lines+markers", line=dict(color=COLOURS.get(m.role)),
                            error_y=dict(type="data", array=h["se"], visible=True), row=1, col=c)
    fig.update_xaxes(title_text="gradient steps", dtick=1)
    fig.update_yaxes(type="log", tickvals=LOG_TICKS)
    fig.update_yaxes(title_text="held-out MSE", col=1)
    fig.update_layout(title="held-out MSE after each gradient step (the cards)", height=340,
                      margin=dict(l=40, r=10, t=60, b=40), legend=dict(orientation="h", y=-0.25))
    return fig
