"""The Diffusion lab's pictures, figures, tables and text, from the service's plain data: the equations
(the same as in schedulers.py and pipeline.py), a chain's images and status line, the lockstep
comparison, the forward process and its schedule, the guidance trade-off and the model card."""
from __future__ import annotations

import functools

import torch
from PIL import Image

from playground.core import images, plots
from playground.diffusion.schedulers import NoiseSchedule

SCALE = 8          # screen pixels per model pixel
EPS_RANGE = 2.5    # noise images are shown with [-EPS_RANGE, EPS_RANGE] mapped to black..white

EQ_FORWARD = r"""
**Forward process** (fixed, no learning): noise is added in closed form

$$q(x_t\mid x_0)=\mathcal N\!\big(\sqrt{\bar\alpha_t}\,x_0,\;(1-\bar\alpha_t)\,I\big),\qquad \bar\alpha_t=\prod_{s\le t}(1-\beta_s)$$

so $x_t=\sqrt{\bar\alpha_t}\,x_0+\sqrt{1-\bar\alpha_t}\,\varepsilon$ with $\varepsilon\sim\mathcal N(0,I)$.
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
# The pictures of each view: (label, elem_id, text alternative for screen readers)
STEP_PICTURES = (
    ("x_t (in)", "diff-xt", "x_t: the noisy image that goes into the network at the step shown"),
    ("predicted x̂_0", "diff-x0", "predicted x0-hat: the clean image the network expects at the step shown"),
    ("predicted noise ε̂", "diff-eps", "predicted noise eps-hat at the step shown, grey is zero"),
    ("x_t' (out)", "diff-next", "x_t': the image after the step shown, the input of the next step"),
    ("ε_u (null class)", "diff-eps-u", "eps_u: the noise the network predicts without the class"),
    ("ε_c (class y)", "diff-eps-c", "eps_c: the noise the network predicts for class y"),
    ("ε_u + s (ε_c − ε_u)", "diff-eps-g", "the guided noise eps_u + s (eps_c - eps_u) at your s"))
LOCKSTEP_PICTURES = (
    ("A: x_t'", "diff-compare-a", "chain A: its image after the latest step"),
    ("A: predicted x̂_0", "diff-compare-a-x0", "chain A: its predicted clean image x0-hat"),
    ("B: x_t'", "diff-compare-b", "chain B: its image after the latest step"),
    ("B: predicted x̂_0", "diff-compare-b-x0", "chain B: its predicted clean image x0-hat"))
SD_PICTURES = (
    ("z_t (decoded)", "sd-xt", "z_t: the noisy latent at the step shown, decoded to an image"),
    ("predicted ẑ_0 (decoded)", "sd-x0", "predicted z0-hat at the step shown, decoded to an image"),
    ("final image (full VAE)", "sd-final", "the final image of the chain, decoded by the full VAE"),
    ("ε_u (negative prompt)", "sd-eps-u", "eps_u: the noise predicted for the negative prompt"),
    ("ε_c (your prompt)", "sd-eps-c", "eps_c: the noise predicted for your prompt"),
    ("ε_u + s (ε_c − ε_u)", "sd-eps-g", "the guided noise eps_u + s (eps_c - eps_u) at your s"))
SD_LOCKSTEP_PICTURES = (
    ("A: z_t", "sd-compare-a", "chain A: its latest image"), ("A: ẑ_0", "sd-compare-a-x0", "chain A: its predicted z0-hat"),
    ("B: z_t", "sd-compare-b", "chain B: its latest image"), ("B: ẑ_0", "sd-compare-b-x0", "chain B: its predicted z0-hat"))
ONCE_ALT = "the final image of the whole chain in one call"

INTRO = ("## Diffusion: the reverse chain, one step at a time\n{source}\n\nA small class-conditional U-Net trained "
         "here on Fashion-MNIST predicts the noise in a noisy image. Starting from pure noise $x_T$, each step "
         "removes a little of the predicted noise. **Guidance scale $s$: $s = 1$ means no guidance, $s = 0$ "
         "ignores the class, larger $s$ follows the class more strongly.**")
GUIDANCE_NOTE = (f"**Guidance at this step**: what the network says without the class, with it, and their mix at "
                 f"your $s$ (noise shown with ±{EPS_RANGE:g} as black/white).")
LOCKSTEP_INTRO = ("Two chains from **the same start noise**, stepped together: two guidance scales with one sampler, "
                  "or DDPM against DDIM at scale A. Each side shows $x_{t'}$ and its predicted $\\hat x_0$.")


def eq_loss(p_uncond: float | None) -> str:
    """The training loss, with the card's probability of the null class."""
    how_often = f"{p_uncond:.0%} of the time" if p_uncond is not None else "with a probability the card records"
    return (r"**Training** teaches the U-Net to find the noise (the label $y$ is replaced by the null class "
            rf"$\varnothing$ {how_often}):" "\n\n"
            r"$$L=\mathbb E_{x_0,y,t,\varepsilon}\,\big\|\varepsilon-\varepsilon_\theta(x_t,t,y)\big\|^2$$")


def picture(x: torch.Tensor | None, noise: bool = False):
    """A model-range image (C,H,W) as a large PIL image; noise is shown over [-EPS_RANGE, EPS_RANGE]."""
    if x is None:
        return None
    r = EPS_RANGE if noise else 1.0
    return images.to_pil(x.float(), scale=SCALE, lo=-r, hi=r)


def step_pictures(chain, k: int) -> tuple:
    """(x_t, x0_hat, eps, x_t', eps_u, eps_c, eps_guided) at display index k (0 = x_T)."""
    if chain is None or chain.x_T is None:
        return (None,) * 7
    if k == 0:
        return (picture(chain.x_T),) + (None,) * 6
    f = chain.frames[k - 1]
    return (picture(f.x_t), picture(f.x0), picture(f.eps, True), picture(f.x_prev), picture(f.eps_u, True),
            picture(f.eps_c, True), picture(f.eps, True))


def status(chain, k: int, classes: list[str]) -> str:
    if chain is None or chain.x_T is None:
        return "No chain yet: press **New chain**, **Step** or **Play**."
    n = chain.steps
    if k == 0:
        return (f"**Step 0 / {n}** (taken: {len(chain.frames)}): pure noise $x_T$. "
                f"{chain.sampler}, {n} steps, class *{classes[chain.label]}*, seed {chain.seed}.")
    f = chain.frames[k - 1]
    return (f"**Step {k} / {n}** (taken: {len(chain.frames)}): network at $t={f.t}$ "
            f"($\\sqrt{{\\bar\\alpha_t}}={f.abar ** 0.5:.3f}$, $\\sqrt{{1-\\bar\\alpha_t}}={(1 - f.abar) ** 0.5:.3f}$), "
            + (f"output $x_{{t'}}$ at $t'={f.t_next}$. " if f.t_next >= 0 else "output: the final image $x_0$. ")
            + f"Class *{classes[f.label]}*, $s={f.scale:g}$, {chain.sampler}"
            f"{f', eta={chain.eta:g}' if chain.sampler == 'DDIM' else ''}, seed {chain.seed}."
            + (" **Finished.**" if chain.done and k == len(chain.frames) else ""))


def length(chain) -> int:
    """Steps in a chain: a Stable Diffusion chain's timesteps (a multistep sampler may add one), else its steps."""
    return 1 if chain is None else getattr(chain, "total", None) or chain.steps


def shown(r, classes: list[str]) -> tuple:
    """A service's Shown as (chain, the seven pictures, status)."""
    return (r.chain, *step_pictures(r.chain, r.k), status(r.chain, r.k, classes))


def final_picture(x: torch.Tensor):
    return picture(x.clamp(-1, 1))


def lockstep(r) -> tuple:
    """(A x_t', A x0_hat, B x_t', B x0_hat, status) of a service Lockstep."""
    return (final_picture(r.x[0]), picture(r.x0[0]), final_picture(r.x[1]), picture(r.x0[1]),
            f"Step {r.step} / {r.steps} (t = {r.t}), same start noise (seed {r.seed}). "
            f"Left: **{r.names[0]}**; right: **{r.names[1]}**. {r.seconds:.1f} s")


def example_label(ex) -> str:
    return f"Image x_0 (a {'Fashion-MNIST test image' if ex.source == 'fashion' else 'synthetic shape'})"


def examples_note(ex) -> str:
    if not ex.missing:
        return ""
    return (f"**Fashion-MNIST is not on this machine**, so the examples are synthetic shapes "
            f"({', '.join(ex.names)}); your own image works too. {ex.missing}")


def forward(r) -> tuple:
    """(row of x_0 and the draws, text, schedule figure) of a service Forward."""
    a = r.abar
    text = (f"$t={r.t}$, {r.schedule} schedule: $\\sqrt{{\\bar\\alpha_t}}={a ** 0.5:.4f}$ (how much of $x_0$ is "
            f"left), $\\sqrt{{1-\\bar\\alpha_t}}={(1 - a) ** 0.5:.4f}$ (noise std), signal-to-noise "
            f"$\\bar\\alpha_t/(1-\\bar\\alpha_t)={a / (1 - a):.3g}$. Left: $x_0$; then {len(r.row) - 1} draws of "
            f"$q(x_t\\mid x_0)$. Across these draws the pixel std is {r.pixel_std:.3f}.")
    row = images.grid(r.row.clamp(-1, 1), nrow=len(r.row), lo=-1, hi=1)
    return images.to_pil(row, scale=5), text, schedule_figure(r.t, r.schedule, r.T)


@functools.lru_cache(maxsize=8)
def _schedule_curves(T: int) -> tuple[dict, ...]:
    """The four curves of both schedules over t = 0..T-1, as traces (they depend on T only)."""
    ts = list(range(T))
    out = []
    for name, dash in (("linear", "dash"), ("cosine", "solid")):
        ab = NoiseSchedule(name, T).alphas_cumprod
        out.append(dict(type="scatter", x=ts, y=ab.sqrt().tolist(), name=f"√ᾱ_t  (signal, {name})",
                        line=dict(color="#1f77b4", dash=dash)))
        out.append(dict(type="scatter", x=ts, y=(1 - ab).sqrt().tolist(), name=f"√(1−ᾱ_t)  (noise, {name})",
                        line=dict(color="#d62728", dash=dash)))
    return tuple(out)


def schedule_figure(t: int, schedule: str, T: int):
    """Signal and noise coefficients of both schedules, the user's t marked. Built from dicts
    (core/plots.py): it is redrawn on every move of the t slider, and its curves are 4 x T points."""
    ab = float(NoiseSchedule(schedule, T).abar(t))
    here = dict(type="scatter", x=[t, t], y=[ab ** 0.5, (1 - ab) ** 0.5], mode="markers+text",
                text=[f"{ab ** 0.5:.3f}", f"{(1 - ab) ** 0.5:.3f}"], textposition="middle right",
                marker=dict(size=11, color="black"), name=f"t = {t} ({schedule})")
    mark = plots.vline(t, color="black", width=1)
    return plots.figure([*_schedule_curves(T), here], dict(
        title={"text": f"Noise schedules (T = {T}); solid: cosine, dashed: linear"}, xaxis={"title": {"text": "t"}},
        yaxis={"title": {"text": "coefficient"}}, height=380, margin=dict(l=40, r=10, t=50, b=40),
        legend=dict(orientation="h", y=-0.25), shapes=[mark]))


def tradeoff_figure(r):
    """Accuracy, diversity and FD against s from the card's sweep, with the user's s marked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    sw = r.sweep
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
    fig.add_vline(x=r.scale, line=dict(color="black", width=2, dash="dash"),
                  annotation_text=f"your s = {r.scale:g}", annotation_position="top")
    fig.update_layout(title=f"Guidance trade-off, measured on the bundled model ({sw['sampler']} {sw['steps']} steps, "
                            f"N = {sw['n_per_scale']} per s)", height=380, xaxis_title="guidance scale s",
                      margin=dict(l=40, r=10, t=50, b=40), legend=dict(orientation="h", y=-0.25))
    fig.update_yaxes(title_text="accuracy, diversity", range=[0, max(1.05, max(sw["diversity"]) + 0.05)],
                     secondary_y=False)
    fig.update_yaxes(title_text="FD", secondary_y=True)
    return fig


def tradeoff_table(facts) -> str:
    sw, cmp = facts.sweep, facts.ddim_vs_ddpm
    if not sw:
        return "The card holds no guidance sweep yet."
    rows = ["| s | accuracy | diversity | FD |", "|---|---|---|---|"]
    for i, s in enumerate(sw["scales"]):
        rows.append(f"| {s:g} | {sw['accuracy'][i]:.1%} | {sw['diversity'][i]:.3f} | {sw['fd'][i]:.2f} |")
    floor = sw.get("fd_floor_real_same_n", sw.get("fd_floor_real_test", float("nan")))
    out = "\n".join(rows) + (
        f"\n\nChance accuracy is {1 / len(facts.classes):.0%} (one class in {len(facts.classes)}). FD floor (as "
        f"many real test images against the training set): {floor:.2f}. Diversity is the spread of all samples "
        "(all classes together) in the classifier's features, relative to real data's: guidance separates the "
        "classes, so it can rise above 1; it does not measure the variety within one class.")
    if cmp:
        out += (f" At s = {cmp['scale']:g}, FD of DDIM in {cmp['ddim_steps']} steps is **{cmp['fd_ddim']:.2f}** "
                f"against **{cmp['fd_ddpm']:.2f}** for DDPM over all {cmp['ddpm_steps']} steps (ratio "
                f"{cmp['ratio']:.2f}, N = {cmp['n']} each, same start noise).")
    return out


def card_markdown(facts) -> str:
    c = facts.card
    if not c:
        return "No model card found (assets/diffusion/fashion_unet.json)."
    lines = [f"**Recipe:** `{c.get('recipe', '')}`",
             f"**Data:** {c.get('data')}; **steps** {c.get('steps')}, **seed** {c.get('seed')}, "
             f"**wall time** {c.get('wall_seconds', 0) / 60:.0f} min on {c.get('threads')} CPU threads",
             f"**U-Net:** {c.get('parameters', 0):,} parameters, channels {tuple(c['config']['channels'])}, "
             f"{c.get('schedule')} schedule with T = {c.get('num_train_timesteps')}, label dropout "
             f"{c.get('p_uncond')}, EMA {c.get('ema')}; {c.get('bytes', 0) / 1e6:.1f} MB, sha256 `{c.get('sha256', '')[:16]}…`",
             f"**Held-out eps-MSE:** {c.get('metrics', {}).get('heldout_eps_mse')}", "", tradeoff_table(facts)]
    return "\n\n".join(lines)


# --- text-to-image (Stable Diffusion) ----------------------------------------------------------------

PREVIEW_SIDE = 256   # small pictures (latent channels, tiny models) are enlarged to at least this many pixels
SD_EQ = r"""
**Stable Diffusion** runs the same reverse chain on **latents** $z$ (an autoencoder's code of the image), with a
text embedding $c$ of your prompt and $c_\varnothing$ of the negative prompt (empty by default), computed once:

$$\hat\varepsilon=\varepsilon_\theta(z_t,t,c_\varnothing)+s\,\big(\varepsilon_\theta(z_t,t,c)-\varepsilon_\theta(z_t,t,c_\varnothing)\big)$$

Per step the U-Net sees the batch $[z_t, z_t]$ with $[c_\varnothing, c]$; the sampler takes $\hat\varepsilon$ to
$z_{t'}$, and $\hat z_0=\big(z_t-\sqrt{1-\bar\alpha_t}\,\hat\varepsilon\big)/\sqrt{\bar\alpha_t}$. Pictures of $z_t$ and
$\hat z_0$ come from a tiny decoder (TAESD); the final image from the full VAE.
Moving $s$ re-mixes the shown step's two predictions at once (no network call); later steps use it.
"""


def sd_info(info) -> str:
    """Which Stable Diffusion model the tab runs and where, or why there is none and how to get one."""
    from playground.diffusion import sd_service as ss

    if not info.available:
        return (f"**Stable Diffusion is not available here**: {info.source.reason}. Every button below runs the "
                f"bundled class-conditional model instead (the class is read from your prompt) and says so.\n\n"
                f"To enable it, either set `{ss.ENV_MODEL}` to a Stable Diffusion folder (diffusers' layout, "
                f"safetensors) before starting the app, or run it where the hub is reachable (it then loads "
                f"`{ss.HUB_ID}`). `python -m playground.diffusion.sd_tiny DIR` writes a tiny untrained one "
                "that shows the mechanics (its pictures are noise).")
    where = {"ZeroGPU": f"on a ZeroGPU GPU, up to {info.chunk_steps} steps per GPU call; the chain waits on the "
                        "CPU between calls",
             "cuda": "on the GPU", "mps": "on the Apple GPU"}.get(info.where, "on the CPU (no GPU here: expect "
                                                                         "seconds per step; smaller sizes are faster)")
    return f"{info.source.markdown()}. Runs {where}."


def _enlarge(img):
    s = max(1, -(-PREVIEW_SIDE // max(img.size)))      # rounded up
    return img.resize((img.width * s, img.height * s), Image.NEAREST) if s > 1 else img


def sd_picture(x):
    """A decoded image (uint8 (3, H, W)) as PIL; a latent (4, h, w) as its channels, 2 x 2, over ±EPS_RANGE."""
    if x is None:
        return None
    if x.dtype == torch.uint8:
        return _enlarge(Image.fromarray(x.permute(1, 2, 0).numpy()))
    g = images.grid(x.float()[:, None], nrow=2, lo=-EPS_RANGE, hi=EPS_RANGE)
    return _enlarge(images.to_pil(g))


def sd_status(r) -> str:
    c, k = r.chain, r.k
    head = f"**Step {k} / {c.total}** (taken: {len(c.frames)}): "
    where = (f"{c.sampler_name}, {c.total} steps, seed {c.seed}, {c.width}×{c.height}, on {c.where}"
             + (f", {c.seconds_per_step:.2f} s per step" if c.seconds_per_step else ""))
    if k == 0:
        return head + f"pure noise $z_T$. {where}." + (f" {r.notice}" if r.notice else "")
    f = c.frames[k - 1]
    s = f.scale if r.scale is None else r.scale
    shown_at = "" if r.scale is None else f" **Shown at your $s={r.scale:g}$**; this step ran with $s={f.scale:g}$."
    return (head + f"U-Net at $t={f.t}$ ($\\sqrt{{\\bar\\alpha_t}}={f.abar ** 0.5:.3f}$), prompt “{f.prompt}”"
            + (f", negative “{f.negative}”" if f.negative else "") + f", $s={s:g}$. {where}.{shown_at}"
            + (" **Finished.**" if c.done and k == len(c.frames) else "") + (f" {r.notice}" if r.notice else ""))


def sd_shown(r, classes: list[str]) -> tuple:
    """(chain, x_t, x0_hat, final, eps_u, eps_c, eps, status) of an SDShown; the bundled model's pictures
    when it stood in."""
    from playground.diffusion.pipeline import Chain

    if r.chain is None:
        return (None,) * 7 + ("No chain yet: type a prompt and press **New chain**, **Step** or **Play**; $s$ "
                              "applies from the next step on.",)
    if isinstance(r.chain, Chain):
        x_t, x0, eps, x_prev, eps_u, eps_c, eps_g = step_pictures(r.chain, r.k)
        return (r.chain, x_t, x0, x_prev, eps_u, eps_c, eps_g,
                (f"{r.notice}\n\n" if r.notice else "") + status(r.chain, r.k, classes))
    p = r.pictures
    return (r.chain, *(sd_picture(p.get(n)) for n in ("x_t", "x0", "final", "eps_u", "eps_c", "eps")), sd_status(r))


def sd_final(result) -> tuple:
    """(image, notice) of SDService.sample: a decoded image, or the bundled model's in model range."""
    img, notice = result
    return (sd_picture(img) if img.dtype == torch.uint8 else final_picture(img)), notice


def sd_lockstep(r) -> tuple:
    pics = [sd_picture(x) if x.dtype == torch.uint8 else picture(x.clamp(-1, 1)) for x in r.pictures]
    return (*pics, f"Step {r.step} / {r.total}, same start noise (seed {r.seed}). Left: **{r.names[0]}**; right: "
                   f"**{r.names[1]}**. {r.seconds:.1f} s" + (f"\n\n{r.notice}" if r.notice else ""))
