"""The VAE lab's VQ-VAE sub-tab: a test image's grid of codes, one cell's code changed by hand, and the
decode of the edited grid beside the original (the model: ../vqvae.py; the actions: ../service.py).

Layout and wiring only, built inside the lab's tab (../tab.py), which passes the data set control and
registers this sub-tab's controls with its lesson link.
"""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from playground.core import ui
from playground.vae import views

RAW = dict(preprocess=False)


@dataclass
class Part:
    """The built sub-tab: the tab, its controls (for the lesson link) and its outputs."""

    tab: gr.Tab
    pick: gr.Dropdown
    row: gr.Slider
    col: gr.Slider
    code: gr.Slider
    outputs: list        # views.vq's pictures, plots and texts, then the state


def build(svc, dataset, picks) -> Part:
    h, (cells, codes) = ui.handler, svc.vq_shape
    with gr.Tab("VQ-VAE: a grid of codes", id="vae-vq-tab") as tab:
        state = gr.State(None)
        with gr.Row():
            pick = gr.Dropdown(picks, value=None, label="Pick a test image", elem_id="vae-vq-pick")
            row, col = (gr.Slider(0, cells - 1, value=cells // 2, step=1, label=f"cell {w}", elem_id=f"vae-vq-{w[:3]}")
                        for w in ("row", "column"))
            code = gr.Slider(0, codes - 1, value=0, step=1, label="new code k", elem_id="vae-vq-code")
            edit = gr.Button("Put code k in the cell", variant="primary", elem_id="vae-vq-edit")
        with gr.Row():
            out = [gr.Image(label=t, height=200, elem_id=f"vae-vq-{e}", **ui.IMAGE) for e, t in views.VQ_IMAGES]
        with gr.Row():
            out += [gr.Plot(label=f"code {e}", elem_id=f"vae-vq-{e}") for e in ("grid", "usage")]
        out += [gr.Markdown(elem_id=f"vae-vq-{e}", latex_delimiters=ui.LATEX) for e in ("terms", "compare")]
        gr.Markdown(views.EQ_VQ, elem_classes=["equation"], latex_delimiters=ui.LATEX)
        out.append(state)
    pick.input(h(svc.vq_encode, views.vq), [dataset, pick], out, api_name="vae_vq_encode", **RAW)
    edit.click(h(svc.vq_edit, views.vq), [dataset, state, row, col, code], out, api_name="vae_vq_edit", **RAW)
    tab.select(h(svc.vq_first, lambda r: [gr.skip()] * (len(out) + 1) if r is None else [*views.vq(r[0]), r[1]]),
               [dataset, state], [*out, pick], api_visibility="private", **RAW)
    return Part(tab, pick, row, col, code, out)
