"""Diffusion tab: the reverse chain of a class-conditional U-Net, step by step, with classifier-free
guidance; two chains in lockstep; the forward process and its schedule; the guidance trade-off.

The model code is in unet.py, schedulers.py and pipeline.py (no gradio there); this file is the UI.
Per-user state (the chain being stepped) lives in gr.State; the model is loaded once, lazily.
"""
from __future__ import annotations

import tempfile
import time

import gradio as gr
import torch

from playground.core import data as data_mod
from playground.core import hub, images, validate
from playground.diffusion import pipeline
from playground.diffusion.schedulers import SCHEDULES, NoiseSchedule

CLASSES = list(data_mod.FASHION_CLASSES)
SAMPLERS = ("DDIM", "DDPM")
MAX_SCALE = 10.0
MAX_STEPS = 1000
SCALE = 8                      # 28 px -> 224 px on screen
EPS_RANGE = 2.5                # noise images are shown with [-2.5, 2.5] mapped to black..white
TICK_SECONDS = 0.25            # play: one timer tick every 0.25 s, each taking one or more steps

EQ_FORWARD = r"""
**Forward process** (fixed, no learning): noise is added in closed form

$$q(x_t\mid x_0)=\mathcal N\!\big(\sqrt{\bar\alpha_t}\,x_0,\;(1-\bar\alpha_t)\,I\big),\qquad \bar\alpha_t=\prod_{s\le t}(1-\beta_s)$$

so $x_t=\sqrt{\bar\alpha_t}\,x_0+\sqrt{1-\bar\alpha_t}\,\varepsilon$ with $\varepsilon\sim\mathcal N(0,I)$.
"""
EQ_LOSS = r"""
**Training** teaches the U-Net to find the noise (the label $y$ is replaced by the null class $\varnothing$ 15 % of the time):

$$L=\mathbb E_{x_0,y,t,\varepsilon}\,\big\|\varepsilon-\varepsilon_\theta(x_t,t,y)\big\|^2$$
"""
EQ_GUIDE = r"""
**Classifier-free guidance** (scale $s$):

$$\hat\varepsilon=\varepsilon_\theta(x_t,t,\varnothing)+s\,\big(\varepsilon_\theta(x_t,t,y)-\varepsilon_\theta(x_t,t,\varnothing)\big)$$

$s=1$: **no guidance** (the conditional model as trained). $s=0$: the **unconditional** model (the class is ignored).
$s>1$: pushed further towards the class: more typical, less varied.
"""
EQ_STEP = r"""
**Predicted clean image** from the current noise estimate:
$\hat x_0=\big(x_t-\sqrt{1-\bar\alpha_t}\,\hat\varepsilon\big)/\sqrt{\bar\alpha_t}$, clipped to $[-1,1]$

**DDPM** (ancestral, random):
$$x_{t'}=\frac{\sqrt{\bar\alpha_{t'}}\,\beta}{1-\bar\alpha_t}\hat x_0+\frac{\sqrt{\alpha}\,(1-\bar\alpha_{t'})}{1-\bar\alpha_t}x_t+\sigma z,\quad \sigma^2=\frac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}\beta$$
with $\alpha=\bar\alpha_t/\bar\alpha_{t'}$, $\beta=1-\alpha$, $t'$ the next step down.

**DDIM** ($\eta=0$: deterministic):
$$x_{t'}=\sqrt{\bar\alpha_{t'}}\,\hat x_0+\sqrt{1-\bar\alpha_{t'}-\sigma_t^2}\,\hat\varepsilon'+\sigma_t z,\quad \sigma_t=\eta\sqrt{\tfrac{1-\bar\alpha_{t'}}{1-\bar\alpha_t}}\sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_{t'}}}$$
with $\hat\varepsilon'=\big(x_t-\sqrt{\bar\alpha_t}\,\hat x_0\big)/\sqrt{1-\bar\alpha_t}$, the noise that matches the clipped $\hat x_0$
(with strong guidance the raw $\hat\varepsilon$ would pull the image apart).
"""


# --- model access --------------------------------------------------------------------------------

def _model():
    try:
        return pipeline.bundled()
    except Exception as e:  # noqa: BLE001 - a missing or damaged checkpoint: say how to make one
        raise gr.Error(f"The diffusion model could not be loaded ({e}). Train it with "
                       "`python -m demos.train_diffusion`.") from None


def _card() -> dict:
    try:
        from playground.core import checkpoint

        return checkpoint.read_card(pipeline.BUNDLED)
    except Exception:  # noqa: BLE001
        return {}


# --- rendering -----------------------------------------------------------------------------------

def _img(x: torch.Tensor | None, noise: bool = False):
    if x is None:
        return None
    r = EPS_RANGE if noise else 1.0
    return images.to_pil(x.float(), scale=SCALE, lo=-r, hi=r)


def _status(chain: pipeline.Chain | None, k: int, schedule: NoiseSchedule) -> str:
    if chain is None or chain.x_T is None:
        return "No chain yet: press **New chain**, **Step** or **Play**."
    n = chain.steps
    if k == 0:
        return (f"**Step 0 / {n}** (taken: {len(chain.frames)}): pure noise $x_T$. "
                f"{chain.sampler}, {n} steps, class *{CLASSES[chain.label]}*, seed {chain.seed}.")
    f = chain.frames[k - 1]
    a = float(schedule.abar(f.t))
    nxt = f.t - schedule.T // n
    return (f"**Step {k} / {n}** (taken: {len(chain.frames)}): network at $t={f.t}$ "
            f"($\\sqrt{{\\bar\\alpha_t}}={a ** 0.5:.3f}$, $\\sqrt{{1-\\bar\\alpha_t}}={(1 - a) ** 0.5:.3f}$), "
            + (f"output $x_{{t'}}$ at $t'={nxt}$. " if nxt >= 0 else "output: the final image $x_0$. ")
            + f"Class *{CLASSES[f.label]}*, $s={f.scale:g}$, {chain.sampler}"
            f"{f', eta={chain.eta:g}' if chain.sampler == 'DDIM' else ''}, seed {chain.seed}."
            + (" **Finished.**" if chain.done and k == len(chain.frames) else ""))


def _view(chain: pipeline.Chain | None, k: int):
    """(x_t, x0_hat, eps, x_t', eps_u, eps_c, eps_guided, status) at display index k (0 = x_T)."""
    _, _, schedule = _model()
    if chain is None or chain.x_T is None:
        return (None,) * 7 + (_status(None, 0, schedule),)
    k = max(0, min(int(k), len(chain.frames)))
    if k == 0:
        return (_img(chain.x_T), None, None, None, None, None, None, _status(chain, 0, schedule))
    f = chain.frames[k - 1]
    return (_img(f.x_t), _img(f.x0), _img(f.eps, True), _img(f.x_prev), _img(f.eps_u, True),
            _img(f.eps_c, True), _img(f.eps, True), _status(chain, k, schedule))


# --- step-by-step chain --------------------------------------------------------------------------

def _settings(label, scale, sampler, steps, eta, seed):
    label = validate.choice("Class", label, CLASSES)
    scale = validate.number("Guidance scale s", scale, 0.0, MAX_SCALE)
    sampler = validate.choice("Sampler", sampler, SAMPLERS)
    steps = validate.integer("Steps", steps, 1, MAX_STEPS)
    eta = validate.number("eta", eta, 0.0, 1.0)
    seed = validate.seed(seed)
    return CLASSES.index(label), float(scale), sampler, steps, float(eta), seed


def _fresh(label, scale, sampler, steps, eta, seed) -> pipeline.Chain:
    model, _, _ = _model()
    return pipeline.Chain(label=label, scale=scale, sampler=sampler, steps=steps, seed=seed, eta=eta).start(model)


def _same_run(chain, sampler, steps, eta, seed) -> bool:
    return (chain is not None and chain.x_T is not None and chain.sampler == sampler and chain.steps == steps
            and chain.seed == seed and (sampler == "DDPM" or abs(chain.eta - eta) < 1e-9))


def _advance(chain, label, scale, sampler, steps, eta, seed, n_steps: int = 1):
    """Take n_steps more steps; class and s apply from the next step on (change them mid-chain to see
    what happens); a new sampler, step count, eta or seed starts a new chain from its own noise."""
    label, scale, sampler, steps, eta, seed = _settings(label, scale, sampler, steps, eta, seed)
    model, _, schedule = _model()
    if not _same_run(chain, sampler, steps, eta, seed):
        chain = _fresh(label, scale, sampler, steps, eta, seed)
    for _ in range(n_steps):
        if chain.done:
            break
        chain.label, chain.scale = label, scale
        chain.step(model, schedule)
    return chain


def new_chain(label, scale, sampler, steps, eta, seed):
    label, scale, sampler, steps, eta, seed = _settings(label, scale, sampler, steps, eta, seed)
    chain = _fresh(label, scale, sampler, steps, eta, seed)
    return (chain, *_view(chain, 0), gr.Slider(value=0, maximum=steps), gr.Timer(active=False))


def step_once(chain, label, scale, sampler, steps, eta, seed):
    """One step forward (server time of one step is what the benchmark measures)."""
    chain = _advance(chain, label, scale, sampler, steps, eta, seed, 1)
    k = len(chain.frames)
    return (chain, *_view(chain, k), gr.Slider(value=k, maximum=chain.steps))


def tick(chain, label, scale, sampler, steps, eta, seed):
    """One timer tick while playing: a few steps (so any chain plays in about 50 ticks); stops when done."""
    steps_i = validate.integer("Steps", steps, 1, MAX_STEPS)
    per_tick = max(1, steps_i // 50)
    chain = _advance(chain, label, scale, sampler, steps, eta, seed, per_tick)
    k = len(chain.frames)
    # only ever switch the timer off here: switching it on would undo a Pause pressed during this tick
    return (chain, *_view(chain, k), gr.Slider(value=k, maximum=chain.steps),
            gr.Timer(active=False) if chain.done else gr.skip())


def play(chain, label, scale, sampler, steps, eta, seed):
    """Start playing; a finished chain (or one with other settings) starts again from fresh noise."""
    label_i, scale, sampler, steps_i, eta, seed_i = _settings(label, scale, sampler, steps, eta, seed)
    if not _same_run(chain, sampler, steps_i, eta, seed_i) or chain.done:
        chain = _fresh(label_i, scale, sampler, steps_i, eta, seed_i)
    return (chain, *_view(chain, len(chain.frames)), gr.Slider(value=len(chain.frames), maximum=chain.steps),
            gr.Timer(active=True))


def pause():
    return gr.Timer(active=False)


def scrub(chain, k):
    """Show a step already taken (0 = the start noise); later steps than those taken show the last."""
    k = validate.integer("Step shown", k, 0, MAX_STEPS)
    if chain is None or chain.x_T is None:
        raise gr.Error("No chain yet: press New chain, Step or Play first, then scrub through its steps.")
    k = min(k, len(chain.frames))
    return (*_view(chain, k), gr.Slider(value=k))


def sample_image(label, scale, sampler, steps, eta, seed):
    """The final image of a whole chain in one call (API and load script)."""
    label, scale, sampler, steps, eta, seed = _settings(label, scale, sampler, steps, eta, seed)
    model, _, schedule = _model()
    g = torch.Generator().manual_seed(seed)
    x = pipeline.sample(model, schedule, torch.tensor([label]), scale, sampler=sampler, steps=steps, eta=eta,
                        x_T=torch.randn((1, 1, 28, 28), generator=g), seed=seed + 1)
    return _img(x[0].clamp(-1, 1))


# --- export --------------------------------------------------------------------------------------

def export_gif(chain):
    if chain is None or not chain.frames:
        raise gr.Error("Nothing to export yet: take some steps first (Step or Play).")
    idx = list(range(len(chain.frames)))
    if len(idx) > 60:  # keep GIFs small: at most 60 frames, always ending on the last step
        idx = sorted(set([round(i * (len(idx) - 1) / 59) for i in range(60)]))
    frames = []
    for i in [None] + idx:
        if i is None:
            pair = torch.stack([chain.x_T, torch.zeros_like(chain.x_T)])
        else:
            f = chain.frames[i]
            pair = torch.stack([f.x_prev, f.x0])
        frames.append(images.to_pil(images.grid(pair.clamp(-1, 1), nrow=2, lo=-1, hi=1), scale=6))
    frames += [frames[-1]] * 8
    return images.save_gif(frames, ms_per_frame=100)


def export_png(chain):
    if chain is None or not chain.frames:
        raise gr.Error("Nothing to export yet: take some steps first (Step or Play).")
    x = chain.frames[-1].x_prev.clamp(-1, 1)
    path = tempfile.NamedTemporaryFile(prefix="diffusion-", suffix=".png", delete=False).name
    images.to_pil(x, scale=SCALE, lo=-1, hi=1).save(path)
    return path


# --- lockstep comparison -------------------------------------------------------------------------

def compare(mode, label, s_a, s_b, sampler, steps, seed):
    """Two chains from the same noise, stepped together; streams both every few steps."""
    mode = validate.choice("Compare", mode, ("two guidance scales", "DDPM against DDIM"))
    label = CLASSES.index(validate.choice("Class", label, CLASSES))
    s_a = validate.number("Scale A", s_a, 0.0, MAX_SCALE)
    s_b = validate.number("Scale B", s_b, 0.0, MAX_SCALE)
    sampler = validate.choice("Sampler", sampler, SAMPLERS)
    steps = validate.integer("Steps", steps, 1, MAX_STEPS)
    seed = validate.seed(seed)
    model, _, schedule = _model()
    if mode == "two guidance scales":
        specs = [(sampler, s_a), (sampler, s_b)]
    else:
        specs = [("DDPM", s_a), ("DDIM", s_a)]
    chains = [pipeline.Chain(label=label, scale=s, sampler=k, steps=steps, seed=seed).start(model) for k, s in specs]
    names = [f"{k}, s = {s:g}" for k, s in specs]
    every = max(1, steps // 25)
    t0 = time.perf_counter()
    for i in range(steps):
        for c in chains:
            c.step(model, schedule)
        if (i + 1) % every == 0 or i + 1 == steps:
            imgs = [_img(c.frames[-1].x_prev.clamp(-1, 1)) for c in chains]
            x0s = [_img(c.frames[-1].x0) for c in chains]
            yield (imgs[0], x0s[0], imgs[1], x0s[1],
                   f"Step {i + 1} / {steps} (t = {chains[0].frames[-1].t}), same start noise (seed {seed}). "
                   f"Left: **{names[0]}**; right: **{names[1]}**. {time.perf_counter() - t0:.1f} s")


# --- forward process -----------------------------------------------------------------------------

_examples: dict[str, torch.Tensor] = {}


def _example_images() -> dict[str, torch.Tensor]:
    """One Fashion-MNIST test image per class (the first of each), loaded on first use."""
    if not _examples:
        try:
            ds = data_mod.load("fashion", "test")
            for k, name in enumerate(CLASSES):
                i = int((ds.labels == k).nonzero()[0])
                _examples[name] = ds.images[i].float()[None] / 255.0          # (1, 28, 28)
        except Exception:  # noqa: BLE001 - no data set: synthetic shapes still show the idea
            ds = data_mod.synthetic(40)
            for k, name in enumerate(data_mod.SYNTHETIC_CLASSES):
                _examples[name] = ds.images[int((ds.labels == k).nonzero()[0])].float()[None] / 255.0
    return _examples


def schedule_plot(t: int, schedule: str, T: int = 1000):
    import plotly.graph_objects as go

    fig = go.Figure()
    ts = list(range(T))
    for name, dash in (("linear", "dash"), ("cosine", "solid")):
        ab = NoiseSchedule(name, T).alphas_cumprod
        fig.add_trace(go.Scatter(x=ts, y=ab.sqrt().tolist(), name=f"√ᾱ_t  (signal, {name})",
                                 line=dict(color="#1f77b4", dash=dash)))
        fig.add_trace(go.Scatter(x=ts, y=(1 - ab).sqrt().tolist(), name=f"√(1−ᾱ_t)  (noise, {name})",
                                 line=dict(color="#d62728", dash=dash)))
    ab = NoiseSchedule(schedule, T).abar(t)
    fig.add_vline(x=t, line=dict(color="black", width=1))
    fig.add_trace(go.Scatter(x=[t, t], y=[float(ab.sqrt()), float((1 - ab).sqrt())], mode="markers+text",
                             text=[f"{float(ab.sqrt()):.3f}", f"{float((1 - ab).sqrt()):.3f}"],
                             textposition="middle right", marker=dict(size=11, color="black"),
                             name=f"t = {t} ({schedule})"))
    fig.update_layout(title=f"Noise schedules (T = {T}); solid: cosine, dashed: linear", xaxis_title="t",
                      yaxis_title="coefficient", height=380, margin=dict(l=40, r=10, t=50, b=40),
                      legend=dict(orientation="h", y=-0.25))
    return fig


def forward_process(example, upload, t, schedule, seed):
    t = validate.integer("t", t, 0, 999)
    schedule = validate.choice("Schedule", schedule, SCHEDULES)
    seed = validate.seed(seed)
    img = validate.image(upload, mode="L", required=False, name="Your image")
    if img is not None:
        x0 = images.from_pil(img, 28)                                                 # (1, 28, 28) in [0, 1]
    else:
        ex = _example_images()
        example = validate.choice("Image", example, list(ex))
        x0 = ex[example]
    x0 = x0 * 2 - 1
    sched = NoiseSchedule(schedule, 1000)
    g = torch.Generator().manual_seed(seed)
    n = 8
    noise = torch.randn((n, *x0.shape), generator=g)
    xt = sched.q_sample(x0.expand(n, -1, -1, -1), torch.full((n,), t), noise)          # (8, 1, 28, 28)
    row = images.grid(torch.cat([x0[None], xt]).clamp(-1, 1), nrow=n + 1, lo=-1, hi=1)
    a = float(sched.abar(t))
    emp_mean, emp_std = float(xt.mean(0).sub(a ** 0.5 * x0).abs().mean()), float(xt.std(0).mean())
    text = (f"$t={t}$, {schedule} schedule: $\\sqrt{{\\bar\\alpha_t}}={a ** 0.5:.4f}$ (how much of $x_0$ is left), "
            f"$\\sqrt{{1-\\bar\\alpha_t}}={(1 - a) ** 0.5:.4f}$ (noise std), signal-to-noise $\\bar\\alpha_t/(1-\\bar\\alpha_t)"
            f"={a / (1 - a):.3g}$. Left: $x_0$; then {n} draws of $q(x_t\\mid x_0)$. Across these draws the "
            f"pixel std is {emp_std:.3f}.")
    return images.to_pil(row, scale=5), text, schedule_plot(t, schedule)


# --- guidance trade-off --------------------------------------------------------------------------

def tradeoff_plot(scale):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    scale = validate.number("Guidance scale s", scale, 0.0, MAX_SCALE)
    sw = _card().get("metrics", {}).get("guidance_sweep")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    if not sw or not sw.get("scales"):
        fig.update_layout(title="No guidance sweep in the card yet: run `python -m demos.eval_diffusion`", height=360)
        return fig
    s = sw["scales"]
    fig.add_trace(go.Scatter(x=s, y=sw["accuracy"], name="class accuracy", mode="lines+markers"), secondary_y=False)
    fig.add_trace(go.Scatter(x=s, y=sw["diversity"], name="diversity (1 = real data)", mode="lines+markers"),
                  secondary_y=False)
    fig.add_trace(go.Scatter(x=s, y=sw["fd"], name="FD (lower is better)", mode="lines+markers",
                             line=dict(dash="dot")), secondary_y=True)
    fig.add_vline(x=scale, line=dict(color="black", width=2, dash="dash"),
                  annotation_text=f"your s = {scale:g}", annotation_position="top")
    fig.update_layout(title=f"Guidance trade-off, measured on the bundled model ({sw['sampler']} {sw['steps']} steps, "
                            f"N = {sw['n_per_scale']} per s)", height=380, xaxis_title="guidance scale s",
                      margin=dict(l=40, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(title_text="accuracy, diversity", range=[0, max(1.05, max(sw["diversity"]) + 0.05)],
                     secondary_y=False)
    fig.update_yaxes(title_text="FD", secondary_y=True)
    return fig


def tradeoff_table() -> str:
    m = _card().get("metrics", {})
    sw, cmp = m.get("guidance_sweep"), m.get("ddim_vs_ddpm")
    if not sw:
        return "The card holds no guidance sweep yet."
    rows = ["| s | accuracy | diversity | FD |", "|---|---|---|---|"]
    for i, s in enumerate(sw["scales"]):
        rows.append(f"| {s:g} | {sw['accuracy'][i]:.1%} | {sw['diversity'][i]:.3f} | {sw['fd'][i]:.2f} |")
    floor = sw.get("fd_floor_real_same_n", sw.get("fd_floor_real_test", float("nan")))
    out = "\n".join(rows) + (
        f"\n\nChance accuracy is 10 %. FD floor (as many real test images against the training set): "
        f"{floor:.2f}. Diversity is the spread of all samples (all classes together) in the classifier's "
        "features, relative to real data's: guidance separates the classes, so it can rise above 1; it "
        "does not measure the variety within one class.")
    if cmp:
        out += (f" At s = 1, FD of DDIM in {cmp['ddim_steps']} steps is **{cmp['fd_ddim']:.2f}** against "
                f"**{cmp['fd_ddpm']:.2f}** for DDPM over all {cmp['ddpm_steps']} steps (ratio {cmp['ratio']:.2f}, "
                f"N = {cmp['n']} each, same start noise).")
    return out


# --- speed probe, load calls, build --------------------------------------------------------------

def speed_probe() -> dict:
    """Seconds for one 28x28 sample: DDIM 50 steps with guidance (cond + uncond as one batch of 2)."""
    model, _, schedule = pipeline.bundled()
    y = torch.tensor([0])
    pipeline.sample(model, schedule, y, 3.0, steps=2, seed=0)               # warm-up
    t0 = time.perf_counter()
    pipeline.sample(model, schedule, y, 3.0, sampler="DDIM", steps=50, seed=0)
    return {"family": "Diffusion", "what": "DDIM 50 steps, guided, 2 U-Net passes per step",
            "seconds": time.perf_counter() - t0}


def load_calls() -> list:
    return [("diffusion_sample", ["Sneaker", 3.0, "DDIM", 50, 0.0, 0]),
            ("diffusion_forward", ["Sneaker", None, 300, "cosine", 0])]


def build(settings=None) -> None:
    source = hub.choose(None, "assets/diffusion/fashion_unet.safetensors")
    gr.Markdown("## Diffusion: the reverse chain, one step at a time\n" + source.markdown() +
                "\n\nA small class-conditional U-Net trained here on Fashion-MNIST predicts the noise in a noisy "
                "image. Starting from pure noise $x_T$, each step removes a little of the predicted noise. "
                "**Guidance scale $s$: $s = 1$ means no guidance, $s = 0$ ignores the class, larger $s$ "
                "follows the class more strongly.**", latex_delimiters=_LATEX)
    chain = gr.State(None)
    with gr.Tab("Step by step"):
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                label = gr.Dropdown(CLASSES, value="Sneaker", label="Class y", elem_id="diff-class")
                scale = gr.Slider(0, MAX_SCALE, value=3.0, step=0.1, label="Guidance scale s (1 = no guidance, "
                                  "0 = unconditional)", elem_id="diff-scale")
                with gr.Row():
                    sampler = gr.Radio(list(SAMPLERS), value="DDIM", label="Sampler", elem_id="diff-sampler")
                    eta = gr.Slider(0, 1, value=0.0, step=0.05, label="DDIM eta (0 = deterministic)")
                with gr.Row():
                    steps = gr.Slider(1, MAX_STEPS, value=50, step=1, label="Steps", elem_id="diff-steps")
                    seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=validate.MAX_SEED)
                with gr.Row():
                    new_btn = gr.Button("New chain", elem_id="diff-new")
                    play_btn = gr.Button("▶ Play", variant="primary", elem_id="diff-play")
                    pause_btn = gr.Button("⏸ Pause", elem_id="diff-pause")
                    step_btn = gr.Button("Step ⏭", elem_id="diff-step")
                shown = gr.Slider(0, 50, value=0, step=1, label="Step shown (scrub back through the steps taken)",
                                  elem_id="diff-scrub")
                gr.Markdown(EQ_GUIDE + EQ_STEP, latex_delimiters=_LATEX, elem_classes=["equation"])
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="diff-status", latex_delimiters=_LATEX)
                with gr.Row():
                    im_xt = gr.Image(label="x_t (in)", elem_id="diff-xt", **_IMG)
                    im_x0 = gr.Image(label="predicted x̂_0", elem_id="diff-x0", **_IMG)
                    im_eps = gr.Image(label="predicted noise ε̂", elem_id="diff-eps", **_IMG)
                    im_next = gr.Image(label="x_t' (out)", elem_id="diff-next", **_IMG)
                gr.Markdown("**Guidance at this step**: what the network says without the class, with it, and "
                            "their mix at your $s$ (noise shown with ±2.5 as black/white).", latex_delimiters=_LATEX)
                with gr.Row():
                    im_eu = gr.Image(label="ε_u (null class)", elem_id="diff-eps-u", **_IMG)
                    im_ec = gr.Image(label="ε_c (class y)", elem_id="diff-eps-c", **_IMG)
                    im_eg = gr.Image(label="ε_u + s (ε_c − ε_u)", elem_id="diff-eps-g", **_IMG)
                with gr.Row():
                    gif_btn = gr.Button("Export trajectory as GIF")
                    png_btn = gr.Button("Export final image as PNG")
                with gr.Row():
                    gif_file = gr.File(label="GIF (x_t | predicted x_0 at each step)", elem_id="diff-gif")
                    png_file = gr.File(label="PNG", elem_id="diff-png")
                with gr.Row(equal_height=True):
                    once_btn = gr.Button("Or: the whole chain in one call (same settings)", elem_id="diff-once")
                    once_img = gr.Image(label="final image", elem_id="diff-once-img", **_IMG)
                plot = gr.Plot(label="Guidance trade-off (from the model card)", elem_id="diff-tradeoff")
                table = gr.Markdown(tradeoff_table())
        timer = gr.Timer(TICK_SECONDS, active=False)
        ctrls = [chain, label, scale, sampler, steps, eta, seed]
        views = [im_xt, im_x0, im_eps, im_next, im_eu, im_ec, im_eg, status]
        new_btn.click(new_chain, ctrls[1:], [chain, *views, shown, timer], api_name="diffusion_new")
        step_btn.click(step_once, ctrls, [chain, *views, shown], api_name="diffusion_step", concurrency_limit=4)
        play_btn.click(play, ctrls, [chain, *views, shown, timer], api_name="diffusion_play")
        pause_btn.click(pause, None, timer, api_name="diffusion_pause")
        timer.tick(tick, ctrls, [chain, *views, shown, timer], api_name=False, show_progress="hidden")
        shown.input(scrub, [chain, shown], [*views, shown], api_name="diffusion_scrub", show_progress="hidden")
        gif_btn.click(export_gif, chain, gif_file, api_name="diffusion_gif")
        png_btn.click(export_png, chain, png_file, api_name="diffusion_png")
        # triggers=None: on page load and whenever s changes (no model is loaded for this)
        gr.on(None, tradeoff_plot, scale, plot, api_name="diffusion_tradeoff", show_progress="hidden")
        once_btn.click(sample_image, ctrls[1:], once_img, api_name="diffusion_sample")

    with gr.Tab("Lockstep comparison"):
        gr.Markdown("Two chains from **the same start noise**, stepped together: two guidance scales with one "
                    "sampler, or DDPM against DDIM at scale A. Each side shows $x_{t'}$ and its predicted $\\hat x_0$.",
                    latex_delimiters=_LATEX)
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                c_mode = gr.Radio(["two guidance scales", "DDPM against DDIM"], value="two guidance scales",
                                  label="Compare")
                c_label = gr.Dropdown(CLASSES, value="Dress", label="Class y")
                with gr.Row():
                    c_sa = gr.Slider(0, MAX_SCALE, value=1.0, step=0.1, label="Scale A")
                    c_sb = gr.Slider(0, MAX_SCALE, value=5.0, step=0.1, label="Scale B")
                c_sampler = gr.Radio(list(SAMPLERS), value="DDIM", label="Sampler (two scales)")
                with gr.Row():
                    c_steps = gr.Slider(1, MAX_STEPS, value=50, step=1, label="Steps")
                    c_seed = gr.Number(value=1, precision=0, label="Seed", minimum=0, maximum=validate.MAX_SEED)
                c_btn = gr.Button("Run both in lockstep", variant="primary", elem_id="diff-compare")
            with gr.Column(scale=3):
                c_status = gr.Markdown(latex_delimiters=_LATEX)
                with gr.Row():
                    ca = gr.Image(label="A: x_t'", **_IMG)
                    ca0 = gr.Image(label="A: predicted x̂_0", **_IMG)
                    cb = gr.Image(label="B: x_t'", **_IMG)
                    cb0 = gr.Image(label="B: predicted x̂_0", **_IMG)
        c_btn.click(compare, [c_mode, c_label, c_sa, c_sb, c_sampler, c_steps, c_seed], [ca, ca0, cb, cb0, c_status],
                    api_name="diffusion_compare")

    with gr.Tab("Forward process"):
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                gr.Markdown(EQ_FORWARD + EQ_LOSS, latex_delimiters=_LATEX, elem_classes=["equation"])
                f_example = gr.Dropdown(CLASSES, value="Ankle boot", label="Image x_0 (a Fashion-MNIST test image)")
                f_upload = gr.Image(label="…or your own image (used when given)", type="pil", height=160,
                                    sources=["upload", "clipboard"])
                f_t = gr.Slider(0, 999, value=300, step=1, label="t", elem_id="diff-forward-t")
                f_sched = gr.Radio(list(SCHEDULES), value="cosine", label="Schedule (the model was trained on "
                                   f"{_card().get('schedule', 'cosine')})")
                f_seed = gr.Number(value=0, precision=0, label="Noise seed", minimum=0, maximum=validate.MAX_SEED)
            with gr.Column(scale=3):
                f_img = gr.Image(label="x_0 and samples of q(x_t | x_0)", interactive=False, elem_id="diff-forward-img")
                f_text = gr.Markdown(latex_delimiters=_LATEX)
                f_plot = gr.Plot(label="schedule")
        f_inputs = [f_example, f_upload, f_t, f_sched, f_seed]
        # on page load and on every change of an input (the t slider updates while it is dragged)
        gr.on(None, forward_process, f_inputs, [f_img, f_text, f_plot], api_name="diffusion_forward",
              show_progress="hidden", trigger_mode="always_last")
    with gr.Tab("Model card"):
        card_md = gr.Markdown(latex_delimiters=_LATEX)
        gr.on(None, card_markdown, None, card_md, api_name=False, show_progress="hidden")


def card_markdown() -> str:
    c = _card()
    if not c:
        return "No model card found (assets/diffusion/fashion_unet.json)."
    m = c.get("metrics", {})
    lines = [f"**Recipe:** `{c.get('recipe', '')}`",
             f"**Data:** {c.get('data')}; **steps** {c.get('steps')}, **seed** {c.get('seed')}, "
             f"**wall time** {c.get('wall_seconds', 0) / 60:.0f} min on {c.get('threads')} CPU threads",
             f"**U-Net:** {c.get('parameters', 0):,} parameters, channels {tuple(c['config']['channels'])}, "
             f"{c.get('schedule')} schedule with T = {c.get('num_train_timesteps')}, label dropout "
             f"{c.get('p_uncond')}, EMA {c.get('ema')}; {c.get('bytes', 0) / 1e6:.1f} MB, sha256 `{c.get('sha256', '')[:16]}…`",
             f"**Held-out eps-MSE:** {m.get('heldout_eps_mse')}", "", tradeoff_table()]
    return "\n\n".join(lines)


_LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
_IMG = dict(type="pil", interactive=False, height=200, show_label=True, elem_classes=["big-image"])


if __name__ == "__main__":
    from playground.core.ui import standalone

    standalone(build, "Diffusion")
