"""Diffusion tab: a class-conditional U-Net's reverse chain step by step with classifier-free guidance, two
chains in lockstep, text-to-image with Stable Diffusion stepped alike, the forward process, the trade-off.

Layout and wiring only: what each button does is in service.py, what it shows in views.py. The chain
being stepped is per user (gr.State); the model is loaded once, on first use, and shared. A lesson link
carries every control; what its state shows (the tab's first result too) is `show` at the end.
"""
from __future__ import annotations

import sys

import gradio as gr

from playground.core import lesson, ui, validate
from playground.diffusion import service, views
from playground.diffusion.schedulers import SCHEDULES
from playground.diffusion.text2image import tab as text2image

TICK_SECONDS = 0.25            # Play: one timer tick every TICK_SECONDS, each taking one or more steps
DEFAULT_STEPS = 50
BUTTONS = (("New chain", "new"), ("▶ Play", "play"), ("⏸ Pause", "pause"), ("Step ⏭", "step"))


def shown(render, classes):
    """A chain's state, pictures and status, and the scrub slider at the step shown."""
    return lambda r: (*render(r, classes), gr.Slider(value=r.k, maximum=views.length(r.chain)))


def pictures(*names, height=None):
    """(label, elem_id, text alternative) -> large crisp images."""
    return [gr.Image(label=label, elem_id=eid, height=height, alt_text=alt, min_width=60, buttons=["download", "fullscreen"],
                     **ui.IMAGE) for label, eid, alt in names]


def buttons(p):
    """New / Play / Pause / Step in a row, elem_ids p-new ..."""
    with gr.Row():
        return [gr.Button(t, elem_id=f"{p}-{k}", variant="primary" if k == "play" else "secondary") for t, k in BUTTONS]


def wire(api, actions, render, ctrls, outs, btns, scrub, scrub_in):
    """The same events for both families (the bundled model and Stable Diffusion)."""
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
    # scrubbing shows the step the slider ends on, and leaves the slider alone (it is the learner's to move)
    scrub.input(ui.handler(actions.scrub, lambda r: render(r)[1:-1]), scrub_in, outs[1:-1], api_name=f"{api}_scrub",
                show_progress="hidden", trigger_mode="always_last")


def build(svc: service.Service) -> ui.LessonLink:
    facts = svc.facts()
    classes, T = facts.classes, facts.T
    examples = svc.forward_examples()
    gr.Markdown(views.INTRO.format(source=svc.model_source().markdown()), latex_delimiters=ui.LATEX)
    link = ui.LessonLink("diffusion")
    chain = gr.State(None)
    with gr.Tabs() as sub:
        with gr.Tab("Step by step", id="diff-step-tab") as step_tab:
            with gr.Row():
                with gr.Column(scale=2, min_width=320):
                    label = gr.Dropdown(classes, value="Sneaker", label="Class y", elem_id="diff-class")
                    scale = gr.Slider(0, service.MAX_SCALE, value=3.0, step=0.1, label="Guidance scale s (1 = no "
                                      "guidance, 0 = unconditional)", elem_id="diff-scale")
                    with gr.Row():
                        sampler = gr.Radio(list(service.SAMPLERS), value="DDIM", label="Sampler", elem_id="diff-sampler")
                        eta = gr.Slider(0, 1, value=0.0, step=0.05, label="DDIM eta (0 = deterministic)", elem_id="diff-eta")
                    with gr.Row():
                        steps = gr.Slider(1, T, value=DEFAULT_STEPS, step=1, label="Steps", elem_id="diff-steps")
                        seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=validate.MAX_SEED,
                                         elem_id="diff-seed")
                    btns = buttons("diff")
                    shown_k = gr.Slider(0, DEFAULT_STEPS, value=DEFAULT_STEPS, step=1, elem_id="diff-scrub",
                                        label="Step shown (scrub back through the steps taken)")
                    gr.Markdown(views.EQ_GUIDE + views.EQ_STEP, latex_delimiters=ui.LATEX, elem_classes=["equation"])
                with gr.Column(scale=3, elem_classes=["result-sticky"]):
                    status = gr.Markdown(elem_id="diff-status", latex_delimiters=ui.LATEX)
                    with gr.Row():
                        pics = pictures(*views.STEP_PICTURES[:2])
                    with gr.Row():
                        pics += pictures(*views.STEP_PICTURES[2:4])
            gr.Markdown(views.GUIDANCE_NOTE, latex_delimiters=ui.LATEX)
            with gr.Row():
                pics += pictures(*views.STEP_PICTURES[4:], height=200)
            with gr.Row():
                gif_btn = gr.Button("Export trajectory as GIF")
                png_btn = gr.Button("Export final image as PNG")
                gif_file = gr.File(label="GIF (x_t | predicted x_0 at each step)", elem_id="diff-gif")
                png_file = gr.File(label="PNG", elem_id="diff-png")
            with gr.Row(equal_height=True):
                once_btn = gr.Button("Or: the whole chain in one call (same settings)", elem_id="diff-once")
                once_img, = pictures(("final image", "diff-once-img", views.ONCE_ALT), height=200)
            plot = gr.Plot(label="Guidance trade-off (from the model card)", elem_id="diff-tradeoff")
            gr.Markdown(views.tradeoff_table(facts))
            ctrls = [chain, label, scale, sampler, steps, eta, seed]
            step_outs = [chain, *pics, status, shown_k]
            wire("diffusion", svc, shown(views.shown, classes), ctrls, step_outs, btns, shown_k, [chain, shown_k])
            gif_btn.click(ui.handler(svc.export_gif), chain, gif_file, api_name="diffusion_gif", **ui.LONG)
            png_btn.click(ui.handler(svc.export_png), chain, png_file, api_name="diffusion_png")
            scale.input(ui.handler(svc.tradeoff, views.tradeoff_figure), scale, plot, api_name="diffusion_tradeoff",
                        show_progress="hidden")
            once_btn.click(ui.handler(svc.sample, views.final_picture), ctrls[1:], once_img, api_name="diffusion_sample")

        with gr.Tab("Lockstep comparison", id="diff-lockstep-tab") as lock_tab:
            gr.Markdown(views.LOCKSTEP_INTRO, latex_delimiters=ui.LATEX)
            with gr.Row():
                with gr.Column(scale=2, min_width=300):
                    c_mode = gr.Radio(list(service.COMPARE_MODES), value=service.COMPARE_MODES[0], label="Compare",
                                      elem_id="diff-compare-mode")
                    c_label = gr.Dropdown(classes, value="Dress", label="Class y", elem_id="diff-compare-class")
                    with gr.Row():
                        c_sa = gr.Slider(0, service.MAX_SCALE, value=1.0, step=0.1, label="Scale A")
                        c_sb = gr.Slider(0, service.MAX_SCALE, value=5.0, step=0.1, label="Scale B")
                    c_sampler = gr.Radio(list(service.SAMPLERS), value="DDIM", label="Sampler (two scales)")
                    with gr.Row():
                        c_steps = gr.Slider(1, T, value=DEFAULT_STEPS, step=1, label="Steps", elem_id="diff-compare-steps")
                        c_seed = gr.Number(value=1, precision=0, label="Seed", minimum=0, maximum=validate.MAX_SEED)
                    c_btn = gr.Button("Run both in lockstep", variant="primary", elem_id="diff-compare")
                with gr.Column(scale=3, elem_classes=["result-sticky"]):
                    c_status = gr.Markdown(latex_delimiters=ui.LATEX, elem_id="diff-compare-status")
                    with gr.Row():
                        c_pics = pictures(*views.LOCKSTEP_PICTURES)
                    c_gif = gr.File(label="GIF of both chains", elem_id="diff-compare-gif")
        lockstep = lambda r: (*views.lockstep(r), r.gif)  # noqa: E731
        c_btn.click(ui.handler(svc.compare, lockstep), [c_mode, c_label, c_sa, c_sb, c_sampler, c_steps, c_seed],
                    [*c_pics, c_status, c_gif], api_name="diffusion_compare", **ui.LONG)
        t2i = text2image.build(svc.sd, sys.modules[__name__], link)   # with this module's pictures, buttons, wire

        with gr.Tab("Forward process", id="diff-forward-tab") as fwd_tab:
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
                    f_sched = gr.Radio(list(SCHEDULES), value=facts.schedule, elem_id="diff-forward-schedule",
                                       label=f"Schedule (the model was trained on {facts.schedule})")
                    f_seed = gr.Number(value=0, precision=0, label="Noise seed", minimum=0, maximum=validate.MAX_SEED)
                with gr.Column(scale=3, elem_classes=["result-sticky"]):
                    f_img = gr.Image(label="x_0 and samples of q(x_t | x_0)", elem_id="diff-forward-img",
                                     alt_text="x_0, then draws of the noisy x_t at the chosen t", **ui.PNG)
                    f_text = gr.Markdown(latex_delimiters=ui.LATEX, elem_id="diff-forward-text")
                    f_plot = gr.Plot(label="schedule")
        f_in, f_out = [f_example, f_upload, f_t, f_sched, f_seed], [f_img, f_text, f_plot]
        # on opening this view and on every change a person makes (the t slider updates while it is dragged)
        gr.on([fwd_tab.select, *(c.input for c in f_in if c is not f_upload), f_upload.change],
              ui.handler(svc.forward, views.forward), f_in, f_out, api_name="diffusion_forward",
              show_progress="hidden", trigger_mode="always_last")
        with gr.Tab("Model card", id="diff-card-tab") as card_tab:
            gr.Markdown(views.card_markdown(facts), latex_delimiters=ui.LATEX)

    # --- the lesson link: every control, the sub-tabs, and what a link's state shows without a click ---
    for name, comp in (("class", label), ("s", scale), ("sampler", sampler), ("eta", eta), ("steps", steps),
                       ("seed", seed), ("cmp", c_mode), ("cmp_class", c_label), ("sa", c_sa), ("sb", c_sb),
                       ("cmp_sampler", c_sampler), ("cmp_steps", c_steps), ("cmp_seed", c_seed), ("image", f_example),
                       ("t", f_t), ("schedule", f_sched), ("noise_seed", f_seed)):
        link.control(name, comp)
    link.control("k", shown_k, lesson.Param("k", "int", 0, T))                 # its maximum follows the chain
    link.views(sub, {"step": step_tab, "lockstep": lock_tab, "sd": t2i.tab, "forward": fwd_tab, "card": card_tab})
    step_in = [label, scale, sampler, steps, eta, seed, shown_k]
    lock_in, lock_out = [c_mode, c_label, c_sa, c_sb, c_sampler, c_steps, c_seed], [*c_pics, c_status, c_gif]

    def step_view(*values):  # the chain taken k steps, the one-call image when it is finished, the trade-off
        r = svc.open_chain(*values)
        *out, _ = shown(views.shown, classes)(r)
        done = views.final_picture(r.chain.frames[-1].x_prev) if r.chain.done else None
        return [*out, gr.update(value=r.k, maximum=views.length(r.chain)), done,
                views.tradeoff_figure(svc.tradeoff(values[1]))]

    def show(view, *v):
        a, b, c, skip = len(step_in), len(step_in) + len(lock_in), len(step_in) + len(lock_in) + len(t2i.inputs), gr.skip()
        out = step_view(*v[:a])            # the step view too, so that it is ready when opened after another
        out += lockstep(svc.compare_final(*v[a:b])) if view == "lockstep" else [skip] * len(lock_out)
        out += t2i.show(*v[b:c]) if view == "sd" else [skip] * len(t2i.outputs)
        return out + (list(views.forward(svc.forward(*v[c:]))) if view == "forward" else [skip] * len(f_out))

    link.shows(ui.handler(show), [*step_in, *lock_in, *t2i.inputs, *f_in],
               [*step_outs, once_img, plot, *lock_out, *t2i.outputs, *f_out])
    link.checks(svc.tour_check)
    return link


if __name__ == "__main__":
    ui.standalone("diffusion")
