"""GAN tab: style mixing on the StyleGAN-like generator trained here, truncation with w_avg, the mapping
network made visible, and the training story beside the DCGAN peer. Layout and wiring only: what each
control does is in service.py, the text and figures in views.py."""
from __future__ import annotations

import gradio as gr

from playground.core import ui
from playground.gan import views
from playground.gan.service import DEFAULTS, MAX_SEEDS, MODEL, PEER, PSI_RANGE


def _on_load(fn, inputs, outputs) -> None:
    """Run `fn` once when the page loads, with the inputs' initial values (gr.on with no triggers and no
    inputs fires on page load only)."""
    values = [c.value for c in inputs]
    gr.on(None, lambda: fn(*values), None, outputs, api_name=False, show_progress="hidden")


def build(svc) -> None:
    facts, names, presets = svc.facts(), svc.layer_names(), svc.presets()
    n_layers, d = len(names), DEFAULTS
    ticked = presets[d["preset"]]
    gr.Markdown(views.header(facts, svc.source_markdown()))
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            src = gr.Textbox(d["src"], label=f"Source seeds (top row, up to {MAX_SEEDS})", max_lines=1,
                             elem_id="gan-src")
            sty = gr.Textbox(d["style"], label=f"Style seeds (left column, up to {MAX_SEEDS})", max_lines=1,
                             elem_id="gan-style")
            preset = gr.Radio([*presets, "custom"], value=d["preset"], label="Layers that take the style",
                              elem_id="gan-preset")
            layers = gr.CheckboxGroup(names, value=ticked, label="Per layer (index: resolution)", elem_id="gan-layers")
            psi = gr.Slider(*PSI_RANGE, value=d["psi"], step=0.05, label="Truncation psi", elem_id="gan-psi")
            with gr.Row():
                noise = gr.Checkbox(d["noise"], label="Noise inputs on", elem_id="gan-noise")
                noise_seed = gr.Number(d["noise_seed"], label="Noise seed", precision=0, elem_id="gan-noise-seed")
            gr.Markdown(views.EQ_MIX, elem_classes=["equation"], latex_delimiters=ui.LATEX)
            gr.Markdown(views.EQ_TRUNC, elem_classes=["equation"], latex_delimiters=ui.LATEX)
        with gr.Column(scale=2):
            grid = gr.Image(label="Style-mixing grid", elem_id="gan-grid", height=560, **ui.IMAGE)
            caption = gr.Markdown(elem_id="gan-caption")
            with gr.Row():
                wavg = gr.Image(label="w_avg: the image at psi = 0", elem_id="gan-wavg", height=200, width=200,
                                **ui.IMAGE)
                gr.Markdown(views.WAVG)

    grid_inputs, grid_outputs = [src, sty, layers, psi, noise, noise_seed], [grid, wavg, caption]
    grid_fn = ui.handler(svc.mix_grid, views.grid_outputs)
    gr.on([src.submit, sty.submit, src.blur, sty.blur, layers.change, psi.change, noise.change, noise_seed.change],
          grid_fn, grid_inputs, grid_outputs, api_name="gan_mix", trigger_mode="always_last")
    _on_load(grid_fn, grid_inputs, grid_outputs)
    preset.input(ui.handler(svc.preset_layers, lambda v: gr.update() if v is None else v), preset, layers,
                 api_name="gan_preset")
    layers.input(ui.handler(svc.layers_preset), layers, preset, api_name=False)

    gr.Markdown("## One mix, layer by layer")
    with gr.Row():
        with gr.Column(scale=1, min_width=320):
            with gr.Row():
                seed_a = gr.Number(d["seed_a"], label="Seed A (source)", precision=0, elem_id="gan-seed-a")
                seed_b = gr.Number(d["seed_b"], label="Seed B (style)", precision=0, elem_id="gan-seed-b")
            sliders = [gr.Slider(0, 1, value=float(name in ticked), step=0.05, label=f"layer {name}: weight of B",
                                 elem_id=f"gan-w{i}") for i, name in enumerate(names)]
            gr.Markdown(views.EQ_SINGLE, elem_classes=["equation"], latex_delimiters=ui.LATEX)
        with gr.Column(scale=2):
            with gr.Row():
                img_a = gr.Image(label="A", type="pil", interactive=False, elem_id="gan-img-a", height=160)
                img_b = gr.Image(label="B", type="pil", interactive=False, elem_id="gan-img-b", height=160)
            img_mix = gr.Image(label="A with B's styles at the chosen weights", elem_id="gan-img-mix", height=360,
                               **ui.IMAGE)

    def single(seed_a, seed_b, *rest):       # rest: the layer weights, then psi, noise and noise seed
        return svc.single_mix(seed_a, seed_b, list(rest[:n_layers]), *rest[n_layers:])

    gr.on(None, ui.handler(single, views.single_outputs), [seed_a, seed_b, *sliders, psi, noise, noise_seed],
          [img_a, img_b, img_mix], api_name="gan_single", trigger_mode="always_last")

    gr.Markdown(views.mapping_intro(facts["mapping_seeds"]))
    mapping_plot = gr.Plot(elem_id="gan-mapping")
    mapping_note = gr.Markdown(elem_id="gan-mapping-note")
    gr.on(None, ui.handler(svc.mapping, views.mapping_outputs), psi, [mapping_plot, mapping_note],
          api_name="gan_mapping", trigger_mode="always_last")

    gr.Markdown("## The training story")
    with gr.Row():
        with gr.Column(scale=3):
            gr.Plot(value=lambda: views.curves_figure(facts["ours"], facts["peer"]), elem_id="gan-curves")
        with gr.Column(scale=2):
            gr.Markdown(views.eq_game(facts), elem_classes=["equation"], latex_delimiters=ui.LATEX)
            gr.Markdown(views.READING_CURVES)
    gr.Markdown(views.mode_collapse(len(facts["classes"])))
    gr.Markdown(views.cards_table(facts), elem_id="gan-cards")
    with gr.Row():
        gr.Gallery(value=lambda: views.gallery(svc.snapshots(MODEL)), label="Ours (G_ema): the same z through training",
                   columns=4, height=260, elem_id="gan-snaps-ours")
        gr.Gallery(value=lambda: views.gallery(svc.snapshots(PEER)), label="DCGAN peer: the same z through training",
                   columns=4, height=260, elem_id="gan-snaps-peer")


if __name__ == "__main__":
    ui.standalone("gan")
