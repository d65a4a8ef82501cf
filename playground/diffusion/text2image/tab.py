"""The Diffusion lab's text-to-image sub-tab: a Stable Diffusion chain (sd_service.py) stepped, played and
scrubbed like the bundled model's, with a live guidance scale and an A / B comparison; where Stable
Diffusion cannot run, the bundled model stands in and says so.

Layout and wiring only, built inside the lab's tab (../tab.py), which passes its shared widgets in
(`kit`: pictures, buttons, wire, shown) and its lesson link, with which this sub-tab registers its controls.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.core import lesson, ui, validate
from playground.diffusion import views
from playground.diffusion import sd_service as sds

DEFAULT_SD_STEPS, DEFAULT_SD_SCALE = 25, 7.5
DEFAULT_PROMPTS = ("a watercolor painting of a lighthouse at sunset", "a watercolor painting of a lighthouse at night")


@dataclass
class Part:
    """The built sub-tab, for the lab's lesson link: the tab, what `show` reads and what it writes."""

    tab: gr.Tab
    inputs: list
    outputs: list
    show: object      # show(*values of inputs) -> values of outputs: the chain taken k steps, shown at its last


def build(sd: sds.SDService, kit, link: ui.LessonLink) -> Part:
    info, cap = sd.info(), sds.MAX_PROMPT_CHARS
    with gr.Tab("Text-to-image (Stable Diffusion)", id="diff-sd-tab") as tab:
        sd_chain = gr.State(None)
        gr.Markdown(views.sd_info(info), elem_id="sd-info")
        with gr.Row():
            with gr.Column(scale=2, min_width=320):
                prompt = gr.Textbox(DEFAULT_PROMPTS[0], label="Prompt", max_length=cap, elem_id="sd-prompt")
                negative = gr.Textbox("", label="Negative prompt (for ε_u; empty: no text)", max_length=cap,
                                      elem_id="sd-negative")
                scale = gr.Slider(0, sds.MAX_SCALE, value=DEFAULT_SD_SCALE, step=0.5, elem_id="sd-scale",
                                  label="Guidance scale s (live: re-mixes the step shown; 1 = no guidance)")
                with gr.Row():
                    sampler = gr.Radio(list(sds.SAMPLERS), value="DDIM", label="Sampler", elem_id="sd-sampler")
                    size = gr.Radio(list(sds.SIZES), value=info.default_size, label="Size (of the model's own)",
                                    elem_id="sd-size")
                with gr.Row():
                    steps = gr.Slider(1, sds.MAX_STEPS, DEFAULT_SD_STEPS, step=1, label="Steps", elem_id="sd-steps")
                    seed = gr.Number(value=0, precision=0, label="Seed", minimum=0, maximum=validate.MAX_SEED,
                                     elem_id="sd-seed")
                eps_view = gr.Radio(list(sds.EPS_VIEWS), value=sds.EPS_VIEWS[0], label="ε shown as", elem_id="sd-eps")
                btns = kit.buttons("sd")
                k = gr.Slider(0, DEFAULT_SD_STEPS, value=0, step=1, elem_id="sd-scrub", label="Step shown")
                gr.Markdown(views.SD_EQ, latex_delimiters=ui.LATEX, elem_classes=["equation"])
            with gr.Column(scale=3, elem_classes=["result-sticky"]):
                status = gr.Markdown(elem_id="sd-status", latex_delimiters=ui.LATEX)
                with gr.Row():
                    pics = kit.pictures(*views.SD_PICTURES[:3])
        with gr.Row():
            pics += kit.pictures(*views.SD_PICTURES[3:], height=200)
        with gr.Row(equal_height=True):
            once = gr.Button("Or: the whole chain in one call", elem_id="sd-once")
            once_out = kit.pictures(("final image", "sd-once-img", views.ONCE_ALT), height=200)
        once_out.append(gr.Markdown())
        with gr.Accordion("Same seed, A / B: two guidance scales or two prompts", open=False):
            with gr.Row():
                ab_mode = gr.Radio(list(sds.COMPARE_MODES), value=sds.COMPARE_MODES[0], label="Compare")
                ab_scale = gr.Slider(0, sds.MAX_SCALE, value=1.0, step=0.5, label="Scale B")
                ab_prompt = gr.Textbox(DEFAULT_PROMPTS[1], label="Prompt B", max_length=cap)
            ab_btn = gr.Button("Run A (the settings above) and B in lockstep", elem_id="sd-compare")
            ab_status = gr.Markdown(latex_delimiters=ui.LATEX)
            with gr.Row():
                ab_pics = kit.pictures(*views.SD_LOCKSTEP_PICTURES)
        ctrls, outs, render = ([sd_chain, prompt, negative, scale, sampler, steps, seed, size, eps_view],
                               [sd_chain, *pics, status, k], kit.shown(views.sd_shown, sd.fallback.facts().classes))
        kit.wire("sd", sd, render, ctrls, outs, btns, k, [sd_chain, k, eps_view])
        gr.on([scale.input, eps_view.input], ui.handler(sd.guidance, lambda r: render(r)[1:]),
              [sd_chain, k, scale, eps_view], outs[1:], api_name="sd_guidance", show_progress="hidden",
              trigger_mode="always_last")
        once.click(ui.handler(sd.sample, views.sd_final), ctrls[1:-1], once_out, api_name="sd_sample", **ui.LONG)
        ab_btn.click(ui.handler(sd.compare, views.sd_lockstep), [ab_mode, prompt, ab_prompt, negative, scale,
                     ab_scale, sampler, steps, seed, size], [*ab_pics, ab_status], api_name="sd_compare",
                     **ui.LONG)

    for name, comp in (("prompt", prompt), ("negative", negative), ("sd_s", scale), ("sd_sampler", sampler),
                       ("size", size), ("sd_steps", steps), ("sd_seed", seed), ("eps", eps_view), ("ab", ab_mode),
                       ("ab_s", ab_scale), ("prompt_b", ab_prompt)):
        link.control(name, comp)                         # text is capped by the control's max_length
    link.control("sd_k", k, lesson.Param("sd_k", "int", 0, sds.MAX_SHOWN))   # its maximum follows the chain

    def show(*values):
        r = sd.open(*values)
        *out, _ = render(r)
        return [*out, gr.update(value=r.k, maximum=views.length(r.chain))]

    return Part(tab, ctrls[1:] + [k], outs, show)
