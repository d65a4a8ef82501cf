"""Transformer tab: a prompt read by the Prompt lab's language model, from the inside: its tokens, each
head's attention (scores before and after the softmax), grouped-query attention and RoPE, the logit lens
layer by layer, a head or a layer switched off, and the next-token distribution. Layout and wiring only:
every action is a call into service.py, every figure and text comes from views.py."""
from __future__ import annotations

import gradio as gr

from playground.core import ui
from playground.prompting.service import MAX_TOP_K, TEMPERATURE, TOP_P
from playground.transformer import views
from playground.transformer.service import ABLATIONS, DEFAULT, DEFAULT_PROMPT, MAX_CHARS, MAX_TOKENS, SHIFT

D = DEFAULT

EQ = dict(elem_classes=["equation"], latex_delimiters=ui.LATEX)
LIVE = dict(trigger_mode="always_last", show_progress="minimal", preprocess=False)   # the service clamps raw values


def _render(r):
    """Sliders follow the model (layer and head counts) and the prompt (its length); then every view."""
    s, a, n = r.info.shape, r.attention, len(r.ids)
    return (gr.update(maximum=s.layers - 1, value=a.layer), gr.update(maximum=s.heads - 1, value=a.head),
            gr.update(maximum=max(n - 1, 1), value=a.query), gr.update(maximum=max(a.query, 1), value=r.rope.key),
            *views.outputs(r))


def build(svc) -> None:
    status = svc.status()
    gr.Markdown(views.header(status))
    with gr.Row():
        prompt = gr.Textbox(DEFAULT_PROMPT, label=f"Prompt (up to {MAX_TOKENS} tokens)", max_length=MAX_CHARS,
                            max_lines=3, scale=5, elem_id="transformer-prompt")
        run = gr.Button("Read it", variant="primary", scale=1, elem_id="transformer-run")
    info = gr.Markdown(elem_id="transformer-info", latex_delimiters=ui.LATEX)
    tokens = gr.HTML(elem_id="transformer-tokens")
    with gr.Row():
        # the maxima follow the model's config once it has read the first prompt (_render)
        layer = gr.Slider(0, D["layer"], value=D["layer"], step=1, label="Layer", elem_id="transformer-layer")
        head = gr.Slider(0, D["head"], value=D["head"], step=1, label="Head", elem_id="transformer-head")
        query = gr.Slider(0, MAX_TOKENS - 1, value=MAX_TOKENS - 1, step=1, label="Query token (position)",
                          elem_id="transformer-query")
    notes = gr.Markdown(elem_id="transformer-notes")

    with gr.Tabs():
        with gr.Tab("Attention", id="transformer-attention-tab"):
            with gr.Row():
                attn = gr.Plot(label="attention of the chosen head", elem_id="transformer-attn")
                heads = gr.Plot(label="every head of the layer", elem_id="transformer-heads")
            scores = gr.Plot(label="before and after the softmax", elem_id="transformer-scores")
            scores_md = gr.Markdown(elem_id="transformer-scores-md", **EQ)
        with gr.Tab("Heads share keys; RoPE", id="transformer-rope-tab"):
            gqa = gr.Markdown(elem_id="transformer-gqa", latex_delimiters=ui.LATEX)
            with gr.Row():
                key = gr.Slider(0, MAX_TOKENS - 1, value=0, step=1, label="Key token (position)",
                                elem_id="transformer-key")
                shift = gr.Slider(*SHIFT, value=D["shift"], step=1, label="Shift both positions by s",
                                  elem_id="transformer-shift")
            rope = gr.Plot(label="RoPE score under shifts", elem_id="transformer-rope")
            rope_md = gr.Markdown(elem_id="transformer-rope-md", **EQ)
            positions = gr.Plot(label="sinusoidal encoding beside RoPE", elem_id="transformer-positions")
        with gr.Tab("Layers (logit lens)", id="transformer-lens-tab"):
            lens_md = gr.Markdown(elem_id="transformer-lens-md", **EQ)
            lens = gr.Plot(label="logit lens", elem_id="transformer-lens")
            lens_table = gr.Dataframe(headers=views.LENS_HEADERS, interactive=False, wrap=True, max_height=1400,
                                      elem_id="transformer-lens-table")   # tall enough for every layer at once
        with gr.Tab("Switch off", id="transformer-ablation-tab"):
            ablation = gr.Radio(list(ABLATIONS), value=D["ablation"],
                                label="Switch off (the layer and head chosen above)", elem_id="transformer-ablation")
            ablated = gr.Plot(label="intact against switched off", elem_id="transformer-ablated")
            ablation_md = gr.Markdown(elem_id="transformer-ablation-md", **EQ)
        with gr.Tab("Next token", id="transformer-next-tab"):
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
    new_prompt = ui.handler(svc.inspect_prompt, _render)
    fresh = [prompt, layer, head, shift, ablation, temperature, top_k, top_p]
    gr.on([prompt.submit, run.click], new_prompt, fresh, outputs, api_name="transformer_prompt", **LIVE)
    gr.on([c.release for c in (layer, head, query, key, shift, temperature, top_k, top_p)] + [ablation.input],
          ui.handler(svc.inspect, _render), [prompt, layer, head, query, key, shift, ablation, temperature, top_k,
                                             top_p], outputs, api_name="transformer_inspect", **LIVE)
    if not status.problem:       # the first view on opening (gr.on with no triggers: on page load only)
        values = [c.value for c in fresh]
        gr.on(None, lambda: new_prompt(*values), None, outputs, api_name=False, show_progress="hidden")


if __name__ == "__main__":
    ui.standalone("transformer")
