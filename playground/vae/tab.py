"""VAE tab: latent sliders decoded live, encoding (mu, sigma, reparameterised samples, the loss terms),
the latent map of the map model, interpolation, the beta = 1 model against a larger beta, and a VQ-VAE's
grid of codes (edit a cell's code, see the decode).

Layout and wiring only: every action is a method of service.Service, every picture and text is made
by views.py. Events run with preprocess=False: the service validates the raw payloads itself.
"""
from __future__ import annotations

import gradio as gr

from playground.core import lesson, ui
from playground.vae import views
from playground.vae.vq import tab as vq_tab
from playground.vae.service import GIF_PATHS, GRID, SLIDER_MAX, STEPS

EQ = dict(elem_classes=["equation"], latex_delimiters=ui.LATEX)
RAW = dict(preprocess=False)
LIVE = dict(trigger_mode="always_last", show_progress="hidden", preprocess=False, queue=False)


def build(svc) -> ui.LessonLink:
    info = svc.dataset_info(svc.default)
    n, h = svc.n_sliders, ui.handler

    def dataset_changed(i):
        return [*(gr.update(value=0.0, label=t) for t in views.slider_labels(i, n)),
                gr.update(choices=i.picks, value=None), gr.update(choices=i.picks, value=i.interp[0]),
                gr.update(choices=i.picks, value=i.interp[1]), gr.update(choices=i.picks, value=None),
                views.figures_table(i)]

    def texts(i):
        return [views.intro(i), views.map_equation(i.map_dim), views.beta_equation(i),
                gr.update(label=views.beta_rows_label(i))]

    with gr.Row():
        with gr.Column(scale=3):
            intro = gr.Markdown(views.intro(info))
        dataset = gr.Dropdown(list(svc.keys), value=svc.default, label="Data set (switches every model)",
                              elem_id="vae-dataset", scale=1)
    with gr.Accordion("Held-out figures: ours against the pytorch/examples MLP VAE", open=False,
                      elem_id="vae-figures-box"):
        figures = gr.Markdown(views.figures_table(info), elem_id="vae-figures", latex_delimiters=ui.LATEX)

    with gr.Tabs() as sub:
        with gr.Tab("Latent sliders", id="vae-sliders-tab") as sliders_tab:
            with gr.Row():
                with gr.Column(scale=3):
                    labels, half, sliders = views.slider_labels(info, n), (n + 1) // 2, []
                    with gr.Row():
                        for col in range(2):
                            with gr.Column(min_width=200):
                                for i in range(col * half, min(n, col * half + half)):
                                    sliders.append(gr.Slider(-SLIDER_MAX, SLIDER_MAX, value=0.0, step=0.05,
                                                             label=labels[i], elem_id=f"vae-z{i}"))
                    with gr.Row():
                        reset_btn = gr.Button("Reset to the prior mean (z = 0)", elem_id="vae-reset")
                        sample_btn = gr.Button("Sample z ~ N(0, I)", variant="primary", elem_id="vae-sample")
                        prior_seed = gr.Number(0, label="seed of the next sample", precision=0, minimum=0,
                                               elem_id="vae-prior-seed")
                with gr.Column(scale=2, elem_classes=["result-sticky"]):
                    decoded = gr.HTML(views.blank(info.image_size), html_template=views.live_template(info.image_size),
                                      label="decoded: sigma(f(z))", elem_id="vae-decoded", container=True)
                    gr.Markdown(views.EQ_DECODER, **EQ)
            # The live decode: only the latest slider position matters (always_last), no spinner, and no
            # queue (a CPU call of a few ms; see service.py).
            gr.on([s.input for s in sliders], h(svc.decode_sliders, views.data_url), [dataset, *sliders], decoded,
                  api_name="vae_decode", **LIVE)
            reset_btn.click(h(svc.reset, views.sliders), dataset, [*sliders, decoded], api_name="vae_reset",
                            show_progress="hidden", **RAW)
            sample_btn.click(h(svc.sample_prior, views.sliders), [dataset, prior_seed], [*sliders, decoded, prior_seed],
                             api_name="vae_sample", show_progress="hidden", **RAW)

        with gr.Tab("Encode an image", id="vae-encode-tab") as encode_tab:
            enc_state = gr.State(None)
            with gr.Row():
                with gr.Column(scale=2):
                    pick = gr.Dropdown(info.picks, value=None, label="Pick a test image", elem_id="vae-pick")
                    upload = gr.Image(type="filepath", sources=["upload"], label="or upload an image",
                                      height=220, elem_id="vae-upload")
                    side = info.image_size * views.SCALE
                    sketch = gr.Sketchpad(type="pil", image_mode="RGBA", label="or draw one", height=300,
                                          canvas_size=(side, side), fixed_canvas=True, elem_id="vae-sketch",
                                          brush=gr.Brush(colors=["#000000"], default_size=18, color_mode="fixed"))
                    draw_btn = gr.Button("Encode the drawing", elem_id="vae-encode-draw")
                with gr.Column(scale=3):
                    with gr.Row():
                        seen = gr.Image(label=f"what the model sees ({info.image_size}x{info.image_size})",
                                        height=200, elem_id="vae-seen", **ui.IMAGE)
                        recon = gr.Image(label="reconstruction: decode(mu)", height=200, elem_id="vae-recon",
                                         **ui.IMAGE)
                    samples_img = gr.Image(label=views.SAMPLES_LABEL, elem_id="vae-samples", **ui.IMAGE)
                    with gr.Row():
                        resample_btn = gr.Button("Resample eps", elem_id="vae-resample")
                        to_sliders_btn = gr.Button("Put mu on the sliders", elem_id="vae-to-sliders")
                    terms = gr.Markdown(elem_id="vae-terms", latex_delimiters=ui.LATEX)
                    musig = gr.Plot(label="mu and sigma per dimension", elem_id="vae-musig")
                    gr.Markdown(views.EQ_ENCODER, **EQ)
            enc_out = [seen, recon, samples_img, musig, terms, enc_state]
            pick.input(h(svc.encode_pick, views.encoded), [dataset, pick], enc_out, api_name="vae_encode_pick", **RAW)
            upload.upload(h(svc.encode_upload, views.encoded), [dataset, upload], enc_out,
                          api_name="vae_encode_upload", **RAW)
            draw_btn.click(h(svc.encode_drawing, views.encoded), [dataset, sketch], enc_out,
                           api_name="vae_encode_drawing", **RAW)
            resample_btn.click(h(svc.resample, views.resampled), enc_state, [samples_img, enc_state],
                               api_name="vae_resample", **RAW)
            to_sliders_btn.click(h(svc.to_sliders, views.sliders), [dataset, enc_state], [*sliders, decoded],
                                 api_name="vae_to_sliders", **RAW)

        with gr.Tab(views.map_title(info.map_dim), id="vae-map-tab") as map_tab:
            map_eq = gr.Markdown(views.map_equation(info.map_dim), **EQ)
            with gr.Row():
                with gr.Column(scale=3):
                    map_plot = gr.Plot(label="latent map", elem_id="vae-map")
                with gr.Column(scale=2):
                    z1 = gr.Slider(-SLIDER_MAX, SLIDER_MAX, value=0.0, step=0.05, label="z[0]", elem_id="vae-map-z1")
                    z2 = gr.Slider(-SLIDER_MAX, SLIDER_MAX, value=0.0, step=0.05, label="z[1]", elem_id="vae-map-z2")
                    map_img = gr.Image(label="decoded z", height=220, elem_id="vae-map-decoded", **ui.IMAGE)
                    mark_btn = gr.Button("Go to the encoded image", elem_id="vae-map-mark")
            grid_n = gr.Slider(GRID[0], GRID[1], value=GRID[2], step=1, label="manifold grid: cells per side",
                               elem_id="vae-grid-n")
            grid_img = gr.Image(label="decoded manifold grid (z[0] left to right, z[1] bottom to top)",
                                elem_id="vae-grid", **ui.IMAGE)
            for s in (z1, z2):
                s.input(h(svc.map_decode, views.big), [dataset, z1, z2], map_img,
                        api_name="vae_map_decode" if s is z1 else None, **LIVE)
                s.release(h(svc.map_plot, views.map_figure), [dataset, z1, z2, enc_state], map_plot,
                          show_progress="hidden", api_name="vae_map_plot" if s is z1 else None, **RAW)
            grid_n.release(h(svc.manifold, views.manifold), [dataset, grid_n], grid_img, api_name="vae_manifold", **RAW)
            map_tab.select(h(svc.map_all, views.map_all), [dataset, z1, z2, grid_n, enc_state],
                           [map_plot, map_img, grid_img], api_name="vae_map", **RAW)
            mark_btn.click(h(svc.map_to_encoded, views.map_to_encoded), [dataset, grid_n, enc_state],
                           [z1, z2, map_plot, map_img, grid_img], api_name="vae_map_to_encoded", **RAW)

        with gr.Tab("Interpolate", id="vae-interp-tab") as interp_tab:
            gr.Markdown(views.EQ_INTERP, **EQ)
            with gr.Row():
                ia = gr.Dropdown(info.picks, value=info.interp[0], label="image A", elem_id="vae-interp-a")
                ib = gr.Dropdown(info.picks, value=info.interp[1], label="image B", elem_id="vae-interp-b")
                steps = gr.Slider(STEPS[0], STEPS[1], value=STEPS[2], step=1, label="steps N",
                                  elem_id="vae-interp-steps")
                gif_path = gr.Radio(list(GIF_PATHS), value=GIF_PATHS[0], label="path in the GIF",
                                    elem_id="vae-interp-mode")
            interp_btn = gr.Button("Interpolate", variant="primary", elem_id="vae-interp-go")
            strip = gr.Image(label="top row: linear, bottom row: spherical", elem_id="vae-interp-strip", **ui.IMAGE)
            with gr.Row():
                gif_view = gr.Image(label="animation", type="filepath", height=200, elem_id="vae-interp-gif",
                                    interactive=False)
                gif_file = gr.File(label="download the GIF", elem_id="vae-interp-file")
            interp_btn.click(h(svc.interpolate, views.interpolation), [dataset, ia, ib, steps, gif_path],
                             [strip, gif_view, gif_file], api_name="vae_interpolate", **RAW)

        with gr.Tab(views.beta_title(info), id="vae-beta-tab") as beta_tab:
            beta_eq = gr.Markdown(views.beta_equation(info), **EQ)
            with gr.Row():
                beta_seed = gr.Number(0, label=views.BETA_SEED_LABEL, precision=0, minimum=0, elem_id="vae-beta-seed")
                beta_btn = gr.Button("Compare", variant="primary", elem_id="vae-beta-go")
            beta_img = gr.Image(label=views.beta_rows_label(info), elem_id="vae-beta-grid", **ui.IMAGE)
            beta_plot = gr.Plot(label="KL per dimension", elem_id="vae-beta-kl")
            beta_btn.click(h(svc.compare_beta, views.beta), [dataset, beta_seed], [beta_img, beta_plot],
                           api_name="vae_compare_beta", **RAW)
        vq = vq_tab.build(svc, dataset, info.picks)

    dataset.input(h(svc.dataset_info, dataset_changed), dataset, [*sliders, pick, ia, ib, vq.pick, figures],
                   api_name="vae_dataset", **RAW).then(
        h(svc.reset, views.sliders), dataset, [*sliders, decoded], show_progress="hidden", api_visibility="private",
        **RAW).then(
        h(svc.dataset_info, texts), dataset, [intro, map_eq, beta_eq, beta_img], show_progress="hidden",
        api_visibility="private", **RAW)

    # --- the lesson link: every control, the sub-tabs, and what a link's state shows without a click ---
    link, picks = ui.LessonLink("vae"), lesson.Param("pick", "choice", options=svc.all_picks())
    for name, comp in (("dataset", dataset), *((f"z{i + 1}", s) for i, s in enumerate(sliders)), ("seed", prior_seed),
                       ("x", z1), ("y", z2), ("grid", grid_n), ("steps", steps), ("path", gif_path),
                       ("beta_seed", beta_seed), ("vq_row", vq.row), ("vq_col", vq.col), ("vq_code", vq.code)):
        link.control(name, comp)
    for name, comp in (("pick", pick), ("a", ia), ("b", ib), ("vq_pick", vq.pick)):
        link.control(name, comp, picks)
    link.views(sub, {"sliders": sliders_tab, "encode": encode_tab, "map": map_tab, "interp": interp_tab,
                     "beta": beta_tab, "vq": vq.tab})

    def show(view, dataset, *rest):
        i, decoded_z, *parts = svc.link_view(view, dataset, rest[:n], *rest[n:])
        out = [*(gr.update(label=t) for t in views.slider_labels(i, n)), *[gr.update(choices=i.picks)] * 4,
               views.figures_table(i), *texts(i), views.data_url(decoded_z)]
        for r, render, k in zip(parts, (views.encoded, views.map_all, views.interpolation, views.beta, views.vq),
                                (len(enc_out), 3, 3, 2, len(vq.outputs))):
            out += list(render(r)) if r is not None else [gr.skip()] * k
        return out

    link.shows(h(show), [dataset, *sliders, pick, z1, z2, grid_n, ia, ib, steps, gif_path, beta_seed, enc_state,
                         vq.pick, vq.row, vq.col, vq.code],
               [*sliders, pick, ia, ib, vq.pick, figures, intro, map_eq, beta_eq, beta_img, decoded, *enc_out,
                map_plot, map_img, grid_img, strip, gif_view, gif_file, beta_img, beta_plot, *vq.outputs])
    link.checks(svc.tour_check)
    return link


if __name__ == "__main__":
    ui.standalone("vae")
