"""Diffusion tab: the reverse chain of a class-conditional U-Net, step by step, with classifier-free
guidance; two chains in lockstep; the forward process and its schedule; the guidance trade-off.

Layout and wiring only: what each button does is in service.py, what it shows in views.py. The chain
being stepped is per user (gr.State); the model is loaded once, on first use, and shared.
"""
from __future__ import annotations

import gradio as gr

from playground.core import ui, validate
from playground.diffusion import service, views
from playground.diffusion.schedulers import SCHEDULES

TICK_SECONDS = 0.25            # Play: one timer tick every TICK_SECONDS, each taking one or more steps
DEFAULT_STEPS = 50


def build(svc: service.Service) -> None:
    facts = svc.facts()
    classes, T = facts.classes, facts.T
    examples = svc.forward_examples()
    gr.Markdown(views.INTRO.format(source=svc.model_source().markdown()), latex_delimiters=ui.LATEX)

    def shown(r):  # a chain's state, pictures and status, and the scrub slider at the step shown
        return (*views.shown(r, classes), gr.Slider(value=r.k, maximum=r.chain.steps))

    def pictures(*names):  # (label, elem_id) -> large crisp images
        return [gr.Image(label=label, elem_id=eid, height=200, **ui.IMAGE) for label, eid in names]

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
                with gr.Row():
                    new_btn = gr.Button("New chain", elem_id="diff-new")
                    play_btn = gr.Button("▶ Play", variant="primary", elem_id="diff-play")
                    pause_btn = gr.Button("⏸ Pause", elem_id="diff-pause")
                    step_btn = gr.Button("Step ⏭", elem_id="diff-step")
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
        timer = gr.Timer(TICK_SECONDS, active=False)
        ctrls = [chain, label, scale, sampler, steps, eta, seed]
        outs = [chain, *pics, status, shown_k]
        new_btn.click(ui.handler(svc.new_chain, lambda r: (*shown(r), gr.Timer(active=False))), ctrls[1:],
                      [*outs, timer], api_name="diffusion_new")
        step_btn.click(ui.handler(svc.step, shown), ctrls, outs, api_name="diffusion_step", concurrency_limit=4)
        play_btn.click(ui.handler(svc.play, lambda r: (*shown(r), gr.Timer(active=True))), ctrls, [*outs, timer],
                       api_name="diffusion_play")
        pause_btn.click(lambda: gr.Timer(active=False), None, timer, api_name="diffusion_pause")
        # a tick only ever switches the timer off: switching it on would undo a Pause pressed during the tick
        timer.tick(ui.handler(svc.tick, lambda r: (*shown(r), gr.Timer(active=False) if r.chain.done else gr.skip())),
                   ctrls, [*outs, timer], api_name=False, show_progress="hidden")
        shown_k.input(ui.handler(svc.scrub, lambda r: shown(r)[1:]), [chain, shown_k], outs[1:],
                      api_name="diffusion_scrub", show_progress="hidden")
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
