"""Diffusion tab: a class-conditional U-Net's reverse chain step by step with classifier-free guidance, two
chains in lockstep, text-to-image with Stable Diffusion stepped alike, the forward process, the trade-off.

Layout and wiring only: what each button does is in service.py, what it shows in views.py. The chain
being stepped is per user (gr.State); the model is loaded once, on first use, and shared.
"""
from __future__ import annotations

import gradio as gr

from playground.core import ui, validate
from playground.diffusion import service, views
from playground.diffusion import sd_service as sds
from playground.diffusion.schedulers import SCHEDULES

TICK_SECONDS = 0.25            # Play: one timer tick every TICK_SECONDS, each taking one or more steps
DEFAULT_STEPS = 50
DEFAULT_SD_STEPS, DEFAULT_SD_SCALE = 25, 7.5
DEFAULT_PROMPTS = ("a watercolor painting of a lighthouse at sunset", "a watercolor painting of a lighthouse at night")
BUTTONS = (("New chain", "new"), ("▶ Play", "play"), ("⏸ Pause", "pause"), ("Step ⏭", "step"))


def build(svc: service.Service) -> None:
    facts = svc.facts()
    classes, T = facts.classes, facts.T
    examples = svc.forward_examples()
    gr.Markdown(views.INTRO.format(source=svc.model_source().markdown()), latex_delimiters=ui.LATEX)

    def shown(render):  # a chain's state, pictures and status, and the scrub slider at the step shown
        return lambda r: (*render(r, classes), gr.Slider(value=r.k, maximum=views.length(r.chain)))

    def pictures(*names):  # (label, elem_id) -> large crisp images
        return [gr.Image(label=label, elem_id=eid, height=200, **ui.IMAGE) for label, eid in names]

    def buttons(p):  # New / Play / Pause / Step in a row, elem_ids p-new ...
        with gr.Row():
            return [gr.Button(t, elem_id=f"{p}-{k}", variant="primary" if k == "play" else "secondary")
                    for t, k in BUTTONS]

    def wire(api, actions, render, ctrls, outs, btns, scrub, scrub_in):  # the same events for both families
        (new_b, play_b, pause_b, step_b), timer = btns, gr.Timer(TICK_SECONDS, active=False)
        off = lambda: gr.Timer(active=False)  # noqa: E731
        new_b.click(ui.handler(actions.new_chain, lambda r: (*render(r), off())), ctrls[1:], [*outs, timer],
                    api_name=f"{api}_new")
        step_b.click(ui.handler(actions.step, render), ctrls, outs, api_name=f"{api}_step", concurrency_limit=4)
        play_b.click(ui.handler(actions.play, lambda r: (*render(r), gr.Timer(active=True))), ctrls, [*outs, timer],
                     api_name=f"{api}_play")
        pause_b.click(off, None, timer, api_name=f"{api}_pause")
        # a tick only ever switches the timer off: switching it on would undo a Pause pressed during the tick
        timer.tick(ui.handler(actions.tick, lambda r: (*render(r), off() if r.chain.done else gr.skip())),
                   ctrls, [*outs, timer], api_name=False, show_progress="hidden")
        scrub.input(ui.handler(actions.scrub, lambda r: render(r)[1:]), scrub_in, outs[1:], api_name=f"{api}_scrub",
                    show_progress="hidden")

    chain = gr.State(None)
    with gr.Tab("Step by step"):
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                label = gr.Dropdown(classes, value="Sneaker", label="Class y", elem_id="diff-class")
                scale = gr.Slider(0, service.MAX_SCALE, value=3.0, step=0.1, label="Guidance scale s (1 = no "
                                  "guidance, 0 = unconditional)", elem_id="diff-scale")
                with gr.Row():
                    sampler = gr.Radio(list(service.SAMPLERS), value="DDIM", label="Sampler", elem_id="diff-sampler")
                    eta = gr.Slider(0, 1, value=0.0, step=0.05, label="DDIM eta (0 = deterministic)")
                with gr.Row():
                    steps = gr.Slider(1, T, value=DEFAULT_STEPS, step=1, label="Steps", elem_id="diff-steps")
                    seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=validate.MAX_SEED)
                btns = buttons("diff")
                shown_k = gr.Slider(0, DEFAULT_STEPS, value=0, step=1, elem_id="diff-scrub",
                                    label="Step shown (scrub back through the steps taken)")
                gr.Markdown(views.EQ_GUIDE + views.EQ_STEP, latex_delimiters=ui.LATEX, elem_classes=["equation"])
            with gr.Column(scale=3):
                status = gr.Markdown(elem_id="diff-status", latex_delimiters=ui.LATEX)
                with gr.Row():
                    pics = pictures(("x_t (in)", "diff-xt"), ("predicted x̂_0", "diff-x0"),
                                  ("predicted noise ε̂", "diff-eps"), ("x_t' (out)", "diff-next"))
                gr.Markdown(views.GUIDANCE_NOTE, latex_delimiters=ui.LATEX)
                with gr.Row():
                    pics += pictures(("ε_u (null class)", "diff-eps-u"), ("ε_c (class y)", "diff-eps-c"),
                                   ("ε_u + s (ε_c − ε_u)", "diff-eps-g"))
                with gr.Row():
                    gif_btn = gr.Button("Export trajectory as GIF")
                    png_btn = gr.Button("Export final image as PNG")
                with gr.Row():
                    gif_file = gr.File(label="GIF (x_t | predicted x_0 at each step)", elem_id="diff-gif")
                    png_file = gr.File(label="PNG", elem_id="diff-png")
                with gr.Row(equal_height=True):
                    once_btn = gr.Button("Or: the whole chain in one call (same settings)", elem_id="diff-once")
                    once_img, = pictures(("final image", "diff-once-img"))
                plot = gr.Plot(label="Guidance trade-off (from the model card)", elem_id="diff-tradeoff")
                gr.Markdown(views.tradeoff_table(facts))
        ctrls = [chain, label, scale, sampler, steps, eta, seed]
        wire("diffusion", svc, shown(views.shown), ctrls, [chain, *pics, status, shown_k], btns, shown_k,
             [chain, shown_k])
        gif_btn.click(ui.handler(svc.export_gif), chain, gif_file, api_name="diffusion_gif")
        png_btn.click(ui.handler(svc.export_png), chain, png_file, api_name="diffusion_png")
        # triggers=None: on page load and whenever s changes (no model is loaded for this)
        gr.on(None, ui.handler(svc.tradeoff, views.tradeoff_figure), scale, plot, api_name="diffusion_tradeoff",
              show_progress="hidden")
        once_btn.click(ui.handler(svc.sample, views.final_picture), ctrls[1:], once_img, api_name="diffusion_sample")

    with gr.Tab("Lockstep comparison"):
        gr.Markdown(views.LOCKSTEP_INTRO, latex_delimiters=ui.LATEX)
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                c_mode = gr.Radio(list(service.COMPARE_MODES), value=service.COMPARE_MODES[0], label="Compare")
                c_label = gr.Dropdown(classes, value="Dress", label="Class y")
                with gr.Row():
                    c_sa = gr.Slider(0, service.MAX_SCALE, value=1.0, step=0.1, label="Scale A")
                    c_sb = gr.Slider(0, service.MAX_SCALE, value=5.0, step=0.1, label="Scale B")
                c_sampler = gr.Radio(list(service.SAMPLERS), value="DDIM", label="Sampler (two scales)")
                with gr.Row():
                    c_steps = gr.Slider(1, T, value=DEFAULT_STEPS, step=1, label="Steps")
                    c_seed = gr.Number(value=1, precision=0, label="Seed", minimum=0, maximum=validate.MAX_SEED)
                c_btn = gr.Button("Run both in lockstep", variant="primary", elem_id="diff-compare")
            with gr.Column(scale=3):
                c_status = gr.Markdown(latex_delimiters=ui.LATEX)
                with gr.Row():
                    c_pics = pictures(("A: x_t'", None), ("A: predicted x̂_0", None), ("B: x_t'", None),
                                    ("B: predicted x̂_0", None))
        c_btn.click(ui.handler(svc.compare, views.lockstep), [c_mode, c_label, c_sa, c_sb, c_sampler, c_steps, c_seed],
                    [*c_pics, c_status], api_name="diffusion_compare")

    sd_chain, info, cap = gr.State(None), svc.sd.info(), sds.MAX_PROMPT_CHARS
    with gr.Tab("Text-to-image (Stable Diffusion)"):
        gr.Markdown(views.sd_info(info), elem_id="sd-info")
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                prompt = gr.Textbox(DEFAULT_PROMPTS[0], label="Prompt", max_length=cap, elem_id="sd-prompt")
                negative = gr.Textbox("", label="Negative prompt (for ε_u; empty: no text)", max_length=cap)
                sd_scale = gr.Slider(0, sds.MAX_SCALE, value=DEFAULT_SD_SCALE, step=0.5, elem_id="sd-scale",
                                     label="Guidance scale s (live: re-mixes the step shown; 1 = no guidance)")
                with gr.Row():
                    sd_sampler = gr.Radio(list(sds.SAMPLERS), value="DDIM", label="Sampler", elem_id="sd-sampler")
                    size = gr.Radio(list(sds.SIZES), value=info.default_size, label="Size (of the model's own)")
                with gr.Row():
                    sd_steps = gr.Slider(1, sds.MAX_STEPS, DEFAULT_SD_STEPS, step=1, label="Steps", elem_id="sd-steps")
                    sd_seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=validate.MAX_SEED)
                eps_view = gr.Radio(list(sds.EPS_VIEWS), value=sds.EPS_VIEWS[0], label="ε shown as", elem_id="sd-eps")
                sd_btns = buttons("sd")
                sd_k = gr.Slider(0, DEFAULT_SD_STEPS, value=0, step=1, elem_id="sd-scrub", label="Step shown")
                gr.Markdown(views.SD_EQ, latex_delimiters=ui.LATEX, elem_classes=["equation"])
            with gr.Column(scale=3):
                sd_status = gr.Markdown(elem_id="sd-status", latex_delimiters=ui.LATEX)
                with gr.Row():
                    sd_pics = pictures(("z_t (decoded)", "sd-xt"), ("predicted ẑ_0 (decoded)", "sd-x0"),
                                     ("final image (full VAE)", "sd-final"))
                with gr.Row():
                    sd_pics += pictures(("ε_u (negative prompt)", "sd-eps-u"), ("ε_c (your prompt)", "sd-eps-c"),
                                      ("ε_u + s (ε_c − ε_u)", "sd-eps-g"))
                with gr.Row(equal_height=True):
                    sd_once = gr.Button("Or: the whole chain in one call", elem_id="sd-once")
                    sd_once_out = pictures(("final image", "sd-once-img"))
                sd_once_out.append(gr.Markdown())
                with gr.Accordion("Same seed, A / B: two guidance scales or two prompts", open=False):
                    with gr.Row():
                        ab_mode = gr.Radio(list(sds.COMPARE_MODES), value=sds.COMPARE_MODES[0], label="Compare")
                        ab_scale = gr.Slider(0, sds.MAX_SCALE, value=1.0, step=0.5, label="Scale B")
                        ab_prompt = gr.Textbox(DEFAULT_PROMPTS[1], label="Prompt B", max_length=cap)
                    ab_btn = gr.Button("Run A (the settings above) and B in lockstep", elem_id="sd-compare")
                    ab_status = gr.Markdown(latex_delimiters=ui.LATEX)
                    with gr.Row():
                        ab_pics = pictures(("A: z_t", None), ("A: ẑ_0", None), ("B: z_t", None), ("B: ẑ_0", None))
        sd_ctrls, sd_outs, sd_render = ([sd_chain, prompt, negative, sd_scale, sd_sampler, sd_steps, sd_seed, size,
                                         eps_view], [sd_chain, *sd_pics, sd_status, sd_k], shown(views.sd_shown))
        wire("sd", svc.sd, sd_render, sd_ctrls, sd_outs, sd_btns, sd_k, [sd_chain, sd_k, eps_view])
        gr.on([sd_scale.input, eps_view.input], ui.handler(svc.sd.guidance, lambda r: sd_render(r)[1:]),
              [sd_chain, sd_k, sd_scale, eps_view], sd_outs[1:], api_name="sd_guidance", show_progress="hidden",
              trigger_mode="always_last")
        sd_once.click(ui.handler(svc.sd.sample, views.sd_final), sd_ctrls[1:-1], sd_once_out, api_name="sd_sample")
        ab_btn.click(ui.handler(svc.sd.compare, views.sd_lockstep), [ab_mode, prompt, ab_prompt, negative, sd_scale,
                     ab_scale, sd_sampler, sd_steps, sd_seed, size], [*ab_pics, ab_status], api_name="sd_compare")

    with gr.Tab("Forward process"):
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                gr.Markdown(views.EQ_FORWARD + views.eq_loss(facts.p_uncond), latex_delimiters=ui.LATEX,
                            elem_classes=["equation"])
                gr.Markdown(views.examples_note(examples), elem_id="diff-forward-note")
                f_example = gr.Dropdown(examples.names, value=examples.names[-1], elem_id="diff-forward-example",
                                        label=views.example_label(examples))
                f_upload = gr.Image(label="…or your own image (used when given)", type="pil", height=160,
                                    sources=["upload", "clipboard"])
                f_t = gr.Slider(0, T - 1, value=300, step=1, label="t", elem_id="diff-forward-t")
                f_sched = gr.Radio(list(SCHEDULES), value=facts.schedule,
                                   label=f"Schedule (the model was trained on {facts.schedule})")
                f_seed = gr.Number(value=0, precision=0, label="Noise seed", minimum=0, maximum=validate.MAX_SEED)
            with gr.Column(scale=3):
                f_img = gr.Image(label="x_0 and samples of q(x_t | x_0)", interactive=False, elem_id="diff-forward-img")
                f_text = gr.Markdown(latex_delimiters=ui.LATEX)
                f_plot = gr.Plot(label="schedule")
        # on page load and on every change of an input (the t slider updates while it is dragged)
        gr.on(None, ui.handler(svc.forward, views.forward), [f_example, f_upload, f_t, f_sched, f_seed],
              [f_img, f_text, f_plot], api_name="diffusion_forward", show_progress="hidden", trigger_mode="always_last")
    with gr.Tab("Model card"):
        gr.Markdown(views.card_markdown(facts), latex_delimiters=ui.LATEX)


if __name__ == "__main__":
    ui.standalone("diffusion")
