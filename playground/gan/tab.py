"""GAN tab: style mixing on the StyleGAN-like generator trained here, truncation with w_avg (and its sweep as
a GIF), the mapping network made visible, and the training story beside the DCGAN peer. Layout and wiring
only: what each control does is in service.py, the text and figures in views.py.

Every control is part of the lesson link; `show` is what a link's state shows and what the tab shows when it
is first opened. Handlers listen to what a person does (.input, .submit, .blur, .click), not to .change, so a
link that sets the controls does not run them again after `show`."""
from __future__ import annotations

import gradio as gr

from playground.core import ui
from playground.core.validate import MAX_SEED
from playground.gan import views
from playground.gan.service import DEFAULTS, MAX_SEED_CHARS, MAX_SEEDS, MODEL, PEER, PSI_RANGE, SWEEP

EQ = dict(elem_classes=["equation"], latex_delimiters=ui.LATEX)
SEED = dict(precision=0, minimum=0, maximum=MAX_SEED)
GRID_HEIGHT = "min(560px, 62vw)"     # the grid is about square: on a phone it stays small enough to keep psi in view


def _img(pic, alt: str):
    """A picture with its text alternative (for screen readers)."""
    return gr.update(value=pic, alt_text=alt)


def _alt(*texts):
    """Text alternatives for pictures an API event has just drawn (the API itself returns the plain files)."""
    return [gr.update(alt_text=t) for t in texts] if len(texts) > 1 else gr.update(alt_text=texts[0])


QUIET = dict(api_name=False, queue=False, show_progress="hidden")


def build(svc) -> ui.LessonLink:
    facts, names, presets = svc.facts(), svc.layer_names(), svc.presets()
    n_layers, d, h = len(names), DEFAULTS, ui.handler
    ticked = presets[d["preset"]]
    gr.Markdown(views.header(facts, svc.source_markdown()))
    with gr.Tabs() as sub:
        with gr.Tab("Style mixing", id="gan-style-tab") as style_tab:
            with gr.Row():
                with gr.Column(scale=1, min_width=320):
                    src = gr.Textbox(d["src"], label=f"Source seeds (top row, up to {MAX_SEEDS})", max_lines=1,
                                     max_length=MAX_SEED_CHARS, elem_id="gan-src")
                    sty = gr.Textbox(d["style"], label=f"Style seeds (left column, up to {MAX_SEEDS})", max_lines=1,
                                     max_length=MAX_SEED_CHARS, elem_id="gan-style")
                    preset = gr.Radio([*presets, "custom"], value=d["preset"], label="Layers that take the style",
                                      elem_id="gan-preset")
                    layers = gr.CheckboxGroup(names, value=ticked, label="Per layer (index: resolution)", elem_id="gan-layers")
                    psi = gr.Slider(*PSI_RANGE, value=d["psi"], step=0.05, label="Truncation psi", elem_id="gan-psi")
                    with gr.Row():
                        noise = gr.Checkbox(d["noise"], label="Noise inputs on", elem_id="gan-noise")
                        noise_seed = gr.Number(d["noise_seed"], label="Noise seed", elem_id="gan-noise-seed", **SEED)
                    gr.Markdown(views.EQ_MIX, **EQ)
                    gr.Markdown(views.EQ_TRUNC, **EQ)
                with gr.Column(scale=2, elem_classes=["result-sticky"]):
                    grid = gr.Image(label="Style-mixing grid", elem_id="gan-grid", height=GRID_HEIGHT,
                                    alt_text="Style-mixing grid", **ui.IMAGE)
                    caption = gr.Markdown(elem_id="gan-caption")
            with gr.Row(equal_height=False):
                wavg = gr.Image(label="w_avg: the image at psi = 0", elem_id="gan-wavg", height=200, width=200,
                                alt_text=views.WAVG_ALT, **ui.IMAGE)
                with gr.Column(scale=2):
                    gr.Markdown(views.WAVG)
                    sweep_btn = gr.Button(f"Truncation sweep of the source seeds, psi from {SWEEP[0]:g} to {SWEEP[1]:g}",
                                          elem_id="gan-sweep-go")
                    sweep_file = gr.File(label="the sweep as a GIF", elem_id="gan-sweep-file")
                sweep_img = gr.Image(label="truncation sweep", type="filepath", height=200, interactive=False, scale=2,
                                     alt_text="Truncation sweep", elem_id="gan-sweep")

            grid_inputs, grid_outputs = [src, sty, layers, psi, noise, noise_seed], [grid, wavg, caption]
            describe = grid_inputs[:4]                # what the grid's text alternative says: seeds, layers, psi
            grid_fn, grid_alt = h(svc.mix_grid, views.grid_outputs), h(svc.grid_settings, lambda s: _alt(views.grid_alt(*s)))
            gr.on([src.submit, sty.submit, src.blur, sty.blur, layers.input, psi.input, noise.input, noise_seed.input],
                  grid_fn, grid_inputs, grid_outputs, api_name="gan_mix", trigger_mode="always_last").success(
                grid_alt, describe, grid, **QUIET)
            preset.input(h(svc.preset_layers, lambda v: gr.update() if v is None else v), preset, layers,
                         api_name="gan_preset").then(grid_fn, grid_inputs, grid_outputs, api_visibility="private").success(
                grid_alt, describe, grid, **QUIET)
            layers.input(h(svc.layers_preset), layers, preset, api_name=False)
            sweep_btn.click(h(svc.truncation_sweep, views.sweep_outputs), [src, noise, noise_seed], [sweep_img, sweep_file],
                            api_name="gan_sweep").success(h(lambda t: svc.seeds("Source seeds", t),
                                                            lambda s: _alt(views.sweep_alt(s))), src, sweep_img, **QUIET)

            gr.Markdown("## One mix, layer by layer")
            with gr.Row():
                with gr.Column(scale=1, min_width=320):
                    with gr.Row():
                        seed_a = gr.Number(d["seed_a"], label="Seed A (source)", elem_id="gan-seed-a", **SEED)
                        seed_b = gr.Number(d["seed_b"], label="Seed B (style)", elem_id="gan-seed-b", **SEED)
                    sliders = [gr.Slider(0, 1, value=float(name in ticked), step=0.05, label=f"layer {name}: weight of B",
                                         elem_id=f"gan-w{i}") for i, name in enumerate(names)]
                    gr.Markdown(views.EQ_SINGLE, **EQ)
                with gr.Column(scale=2, elem_classes=["result-sticky"]):   # a phone: the mix stays in view
                    with gr.Row(elem_classes=["result-pair"]):
                        img_a = gr.Image(label="A", elem_id="gan-img-a", height=160, alt_text="Seed A", **ui.PNG)
                        img_b = gr.Image(label="B", elem_id="gan-img-b", height=160, alt_text="Seed B", **ui.PNG)
                    img_mix = gr.Image(label="A with B's styles at the chosen weights", elem_id="gan-img-mix", height=360,
                                       alt_text="A with B's styles", **ui.IMAGE)

            def single(seed_a, seed_b, *rest):       # rest: the layer weights, then psi, noise and noise seed
                return svc.single_mix(seed_a, seed_b, list(rest[:n_layers]), *rest[n_layers:])

            gr.on([seed_a.input, seed_b.input, *(s.input for s in sliders), psi.input, noise.input, noise_seed.input],
                  h(single, views.single_outputs), [seed_a, seed_b, *sliders, psi, noise, noise_seed],
                  [img_a, img_b, img_mix], api_name="gan_single", trigger_mode="always_last").success(
                h(svc.pair, lambda ab: _alt(*views.single_alts(*ab))), [seed_a, seed_b], [img_a, img_b, img_mix], **QUIET)

            gr.Markdown(views.mapping_intro(facts["mapping_seeds"]))
            mapping_plot = gr.Plot(label="z and w = f(z), flattened by PCA", show_label=False, elem_id="gan-mapping")
            mapping_note = gr.Markdown(elem_id="gan-mapping-note")
            psi.input(h(svc.mapping, views.mapping_outputs), psi, [mapping_plot, mapping_note], api_name="gan_mapping",
                      trigger_mode="always_last")

            gr.Markdown("## The training story")
            with gr.Row():
                with gr.Column(scale=3):
                    curves = gr.Plot(label="D and G through training", show_label=False, elem_id="gan-curves")
                with gr.Column(scale=2):
                    gr.Markdown(views.eq_game(facts), **EQ)
                    gr.Markdown(views.READING_CURVES)
            gr.Markdown(views.mode_collapse(len(facts["classes"])))
            gr.Markdown(views.cards_table(facts), elem_id="gan-cards")
            with gr.Row():
                snaps_ours = gr.Gallery(label="Ours (G_ema): the same z through training", columns=4, height=260,
                                        elem_id="gan-snaps-ours")
                snaps_peer = gr.Gallery(label="DCGAN peer: the same z through training", columns=4, height=260,
                                        elem_id="gan-snaps-peer")
            told = gr.State(False)                   # the training story is sent once per session: it never changes
        with gr.Tab("Conditional (pick a class)", id="gan-cond-tab") as cond_tab:
            gr.Markdown(views.conditional_intro(facts["conditional"]))
            with gr.Row():
                with gr.Column(scale=1, min_width=280):
                    cclass = gr.Dropdown(facts["classes"], value=d["cclass"], label="Class y", elem_id="gan-cclass")
                    cseed = gr.Number(d["cseed"], label=f"First seed (shows {facts['cond_seeds']} seeds from it)",
                                      elem_id="gan-cseed", **SEED)
                    gr.Markdown(views.EQ_CONDITIONAL, **EQ)
                with gr.Column(scale=3):
                    cstrip = gr.Image(label="Samples of the class, one per seed", elem_id="gan-cstrip",
                                      alt_text="Samples of the class", **ui.IMAGE)
                    cjudge = gr.Markdown(elem_id="gan-cjudge")
            gr.Markdown(views.conditional_card(facts["conditional"]), elem_id="gan-ccard")
        gr.on([cclass.input, cseed.input], h(svc.conditional, views.conditional_outputs), [cclass, cseed],
              [cstrip, cjudge], api_name="gan_conditional", trigger_mode="always_last").success(
            h(svc.conditional_settings, lambda cs: _alt(views.conditional_alt(*cs))),
            [cclass, cseed], cstrip, **QUIET)


    # --- the lesson link: every control, and what a link's state shows without a click ---
    link = ui.LessonLink("gan")
    for name, comp in (("src", src), ("style", sty), ("preset", preset), ("layers", layers), ("psi", psi),
                       ("noise", noise), ("noise_seed", noise_seed), ("a", seed_a), ("b", seed_b),
                       *((f"w{i}", s) for i, s in enumerate(sliders)), ("cclass", cclass), ("cseed", cseed)):
        link.control(name, comp)
    link.views(sub, {"style": style_tab, "conditional": cond_tab})

    def show(view, src_t, sty_t, preset_v, layers_v, psi_v, noise_v, nseed, a, b, *rest):
        weights, (story_sent, c_v, cs_v) = list(rest[:n_layers]), rest[n_layers:]
        layers_v, preset_v = svc.link_layers(preset_v, layers_v)
        g = svc.mix_grid(src_t, sty_t, layers_v, psi_v, noise_v, nseed)
        one = svc.single_mix(a, b, weights, psi_v, noise_v, nseed)
        sweep = svc.truncation_sweep(src_t, noise_v, nseed)
        path = views.sweep_gif(sweep)
        out = [preset_v, layers_v, _img(g.grid, views.grid_alt(g.sources, g.styles, g.layers, g.psi)), g.w_avg,
               views.grid_caption(g), *map(_img, (one.a, one.b, one.mix), views.single_alts(*one.seeds)),
               *views.mapping_outputs(svc.mapping(psi_v)), _img(path, views.sweep_alt(sweep.seeds)), path]
        cond = svc.conditional(c_v, cs_v)
        out += [_img(cond.strip, views.conditional_alt(cond.label, cond.seeds)), views.conditional_table(cond)]
        if story_sent:
            return out + [gr.skip()] * 4
        return out + [True, views.curves_figure(facts["ours"], facts["peer"]), views.gallery(svc.snapshots(MODEL)),
                      views.gallery(svc.snapshots(PEER))]

    link.shows(h(show), [src, sty, preset, layers, psi, noise, noise_seed, seed_a, seed_b, *sliders, told, cclass,
                         cseed],
               [preset, layers, grid, wavg, caption, img_a, img_b, img_mix, mapping_plot, mapping_note, sweep_img,
                sweep_file, cstrip, cjudge, told, curves, snaps_ours, snaps_peer])
    link.checks(svc.tour_check)
    return link


if __name__ == "__main__":
    ui.standalone("gan")
