"""Transformer tab: a prompt read by the Prompt lab's language model, from the inside: its tokens, each
head's attention (scores before and after the softmax), grouped-query attention and RoPE, the logit lens
layer by layer (and as an animation), a head or a layer switched off, and the next-token distribution.
Layout and wiring only: every action is a call into service.py, every figure and text comes from views.py.
The first view is computed when the tab is first opened, or by a lesson link (`show`), not on page load."""
from __future__ import annotations

import gradio as gr

from playground.core import lesson, ui
from playground.prompting.service import MAX_TOP_K, TEMPERATURE, TOP_P
from playground.transformer import views
from playground.transformer.service import (ABLATIONS, DEFAULT, DEFAULT_PROMPT, INDEX_CAP, MAX_CHARS, MAX_TOKENS,
                                            SHIFT)

D = DEFAULT

EQ = dict(elem_classes=["equation"], latex_delimiters=ui.LATEX)
LIVE = dict(trigger_mode="always_last", show_progress="minimal", preprocess=False)   # the service clamps raw values


def _render(r):
    """Sliders follow the model (layer and head counts) and the prompt (its length); then every view."""
    s, a, n = r.info.shape, r.attention, len(r.ids)
    return (gr.update(maximum=s.layers - 1, value=a.layer), gr.update(maximum=s.heads - 1, value=a.head),
            gr.update(maximum=max(n - 1, 1), value=a.query), gr.update(maximum=max(a.query, 1), value=r.rope.key),
            *views.outputs(r))


def _gif(run):
    path, alt = views.lens_gif(run)
    return gr.update(value=path, alt_text=alt, visible=True), path


def build(svc) -> ui.LessonLink:
    status = svc.status()
    gr.Markdown(views.header(status))
    with gr.Row():
        prompt = gr.Textbox(DEFAULT_PROMPT, label=f"Prompt (up to {MAX_TOKENS} tokens)", max_length=MAX_CHARS,
                            max_lines=3, scale=5, elem_id="transformer-prompt")
        run = gr.Button("Read it", variant="primary", scale=1, elem_id="transformer-run")
    info = gr.Markdown(elem_id="transformer-info", latex_delimiters=ui.LATEX)
    tokens = gr.HTML(elem_id="transformer-tokens")
    with gr.Row():
        with gr.Column(scale=2, min_width=280):
            # the maxima follow the model's config once it has read the first prompt (_render)
            layer = gr.Slider(0, D["layer"], value=D["layer"], step=1, label="Layer", elem_id="transformer-layer")
            head = gr.Slider(0, D["head"], value=D["head"], step=1, label="Head", elem_id="transformer-head")
            query = gr.Slider(0, MAX_TOKENS - 1, value=MAX_TOKENS - 1, step=1, label="Query token (position)",
                              elem_id="transformer-query")
            notes = gr.Markdown(elem_id="transformer-notes")
        with gr.Column(scale=3, elem_classes=["result-sticky"]):     # on a phone: first, and kept in view
            attn = gr.Plot(label="attention of the chosen head", elem_id="transformer-attn")

    with gr.Tabs() as sub:
        with gr.Tab("Attention", id="transformer-attention-tab") as attention_tab:
            heads = gr.Plot(label="every head of the layer", elem_id="transformer-heads")
            scores = gr.Plot(label="before and after the softmax", elem_id="transformer-scores")
            scores_md = gr.Markdown(elem_id="transformer-scores-md", **EQ)
        with gr.Tab("Heads share keys; RoPE", id="transformer-rope-tab") as rope_tab:
            gqa = gr.Markdown(elem_id="transformer-gqa", latex_delimiters=ui.LATEX)
            with gr.Row():
                key = gr.Slider(0, MAX_TOKENS - 1, value=0, step=1, label="Key token (position)",
                                elem_id="transformer-key")
                shift = gr.Slider(*SHIFT, value=D["shift"], step=1, label="Shift both positions by s",
                                  elem_id="transformer-shift")
            rope = gr.Plot(label="RoPE score under shifts", elem_id="transformer-rope")
            rope_md = gr.Markdown(elem_id="transformer-rope-md", **EQ)
            positions = gr.Plot(label="sinusoidal encoding beside RoPE", elem_id="transformer-positions")
        with gr.Tab("Layers (logit lens)", id="transformer-lens-tab") as lens_tab:
            lens_md = gr.Markdown(elem_id="transformer-lens-md", **EQ)
            lens = gr.Plot(label="logit lens", elem_id="transformer-lens")
            with gr.Row():
                gif_btn = gr.Button("Animate the lens layer by layer (GIF)", elem_id="transformer-lens-gif-go")
                gif_file = gr.File(label="download the GIF", interactive=False, elem_id="transformer-lens-gif-file")
            gif_view = gr.Image(label="the lens, layer by layer", type="filepath", interactive=False, visible=False,
                                alt_text="the logit lens animation", elem_id="transformer-lens-gif")
            lens_table = gr.Dataframe(headers=views.LENS_HEADERS, interactive=False, wrap=True, max_height=1400,
                                      elem_id="transformer-lens-table")   # tall enough for every layer at once
        with gr.Tab("Switch off", id="transformer-ablation-tab") as ablation_tab:
            ablation = gr.Radio(list(ABLATIONS), value=D["ablation"],
                                label="Switch off (the layer and head chosen above)", elem_id="transformer-ablation")
            ablated = gr.Plot(label="intact against switched off", elem_id="transformer-ablated")
            ablation_md = gr.Markdown(elem_id="transformer-ablation-md", **EQ)
        with gr.Tab("Next token", id="transformer-next-tab") as next_tab:
            gr.Markdown(views.NEXT_TOKEN, **EQ)
            with gr.Row():
                temperature = gr.Slider(*TEMPERATURE, value=D["temperature"], step=0.05, label="Temperature T",
                                        elem_id="transformer-temp")
                top_k = gr.Slider(0, MAX_TOP_K, value=D["top_k"], step=1, label="Top-k (0 = off)",
                                  elem_id="transformer-topk")
                top_p = gr.Slider(*TOP_P, value=D["top_p"], step=0.05, label="Top-p",
                                  elem_id="transformer-topp")
            next_plot = gr.Plot(label="next-token distribution", elem_id="transformer-next")

    outputs = [layer, head, query, key, info, tokens, notes, attn, heads, scores, scores_md, gqa, rope, rope_md,
               positions, lens_md, lens, lens_table, ablated, ablation_md, next_plot]
    state = [prompt, layer, head, query, key, shift, ablation, temperature, top_k, top_p]
    fresh = [prompt, layer, head, shift, ablation, temperature, top_k, top_p]
    gr.on([prompt.submit, run.click], ui.handler(svc.inspect_prompt, _render), fresh, outputs,
          api_name="transformer_prompt", **LIVE)
    gr.on([c.release for c in (layer, head, query, key, shift, temperature, top_k, top_p)] + [ablation.input],
          ui.handler(svc.inspect, _render), state, outputs, api_name="transformer_inspect", **LIVE)
    gif_btn.click(ui.handler(svc.lens_run, _gif), [prompt, query], [gif_view, gif_file],
                  api_name="transformer_lens_gif", preprocess=False, **ui.LONG)

    # --- the lesson link: every control, the sub-tabs, and what a link's state shows without a click ---
    link = ui.LessonLink("transformer")
    for name, comp in zip(("prompt", "layer", "head", "query", "key", "shift", "ablation", "temp", "top_k", "top_p"),
                          state):
        link.control(name, comp)
    for name, comp in (("layer", layer), ("head", head)):   # their maxima are the model's, known once it is
        link.control(name, comp, lesson.Param(name, "int", 0, INDEX_CAP))   # loaded: the service clamps to them
    link.views(sub, {"attention": attention_tab, "rope": rope_tab, "lens": lens_tab, "ablation": ablation_tab,
                     "next": next_tab})

    def show(view, *values):
        """The state's whole view (one inspection fills every sub-tab); nothing when no model can run."""
        return [gr.skip()] * len(outputs) if status.problem else _render(svc.inspect(*values))

    link.shows(ui.handler(show), state, outputs)
    link.checks(svc.tour_check)
    return link


if __name__ == "__main__":
    ui.standalone("transformer")
