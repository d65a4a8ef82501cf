"""CLIP tab: gallery search (text -> image, image -> image, click a result to search by it), zero-shot
classification with prompt templates, the contrastive matrix with its InfoNCE loss, and the embedding
map with the modality gap. Layout and wiring only: what each button does is in service.py, the figures
and texts in views.py. A user's uploads and last results live in gr.State (a service.Session).

The lesson link carries every control but the uploads (a link cannot carry a user's files): the zero-shot
view takes its image from the gallery by title (`img`) for that reason. Opening the lab, or a link, shows
the search for the query at once; a link to another view shows that view's result too."""
from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from playground.clip import service as cs
from playground.clip import views
from playground.core import lesson, ui
from playground.core.errors import PlaygroundError

QUIET = dict(api_name=False, show_progress="hidden")


def _quiet(fn: Callable, render: Callable, n: int, md: int) -> Callable:
    """A view's result as its n output values, or (bad input, a missing model) the message in output md."""
    def run(*args):
        try:
            return list(render(fn(*args)))
        except PlaygroundError as e:
            return [f"**{e}**" if i == md else gr.skip() for i in range(n)]
    return run


def _picked(c: cs.Classified) -> list:
    return [gr.Image(value=c.image, alt_text=f"Gallery image being classified: {c.title}"), *views.classify_outputs(c)]


def _uploads(session) -> list:
    state, shown, md = views.upload_outputs(session)
    return [state, gr.Gallery(value=shown, visible=True), md]


def build(svc: cs.Service) -> ui.LessonLink:
    gr.Markdown(views.header_md(svc.source().markdown(), svc.text_tower()))
    state = gr.State(cs.Session())
    tau = round(svc.default_temperature(), 3)
    k_min, k_max, k_default = cs.K
    with gr.Tabs(elem_id="clip-views") as sub:
        with gr.Tab("Search", id="search", elem_id="clip-search-tab") as search_tab:
            with gr.Row():
                with gr.Column(scale=2):
                    query = gr.Textbox(label="Search the gallery by text", value=cs.DEFAULT_QUERY, max_lines=1,
                                       elem_id="clip-query")
                    with gr.Row():
                        k = gr.Slider(k_min, k_max, value=k_default, step=1, label="Top k", elem_id="clip-k")
                        go_text = gr.Button("Search by text", variant="primary", elem_id="clip-search-btn")
                    with gr.Row():
                        query_img = gr.Image(label="…or by an image (a lesson link does not carry it)",
                                             type="filepath", sources=["upload", "clipboard"], height=180,
                                             elem_id="clip-query-image")
                        go_img = gr.Button("Search by image", elem_id="clip-search-image-btn")
                    index_btn = gr.Button("Index the gallery", elem_id="clip-index-btn", elem_classes=["advanced"])
                    index_md = gr.Markdown("The gallery (emoji and sample photos) is indexed when the lab first "
                                           "opens; press the button to see its size and model.",
                                           elem_id="clip-index-status", elem_classes=["advanced"])
                    files = gr.File(label="Add your images to the gallery (this session only: a lesson link cannot "
                                          "carry them)", file_count="multiple", file_types=["image"], elem_id="clip-upload")
                    up_md = gr.Markdown(elem_id="clip-upload-status")
                    up_gallery = gr.Gallery(label="Your uploads", columns=6, height=120, allow_preview=False,
                                            visible=False)
                with gr.Column(scale=3, elem_classes=["result-sticky"]):
                    results_md = gr.Markdown("Searching the gallery… (the lab's first search loads the model and "
                                             "indexes the gallery)", elem_id="clip-results-status")
                    results = gr.Gallery(label="Results (score · title); click one to search with it", columns=4,
                                         height=440, allow_preview=False, object_fit="contain", format="png",
                                         buttons=["download_all"], elem_id="clip-results")

            def search_clicked(k, session, evt: ui.SelectData):
                """A click on a result: search with it (addressed by its place in the user's last results)."""
                return svc.search_result(k, session, evt.index)

            outs = [results, state, results_md]
            search = ui.handler(svc.search_text, views.search_outputs)
            index_btn.click(ui.handler(svc.index_gallery, views.index_markdown), None, index_md, api_name="clip_index")
            go_text.click(search, [query, k, state], outs, api_name="clip_search_text")
            query.submit(search, [query, k, state], outs, api_name=False)
            go_img.click(ui.handler(svc.search_image, views.search_outputs), [query_img, k, state], outs,
                         api_name="clip_search_image")
            results.select(ui.handler(search_clicked, views.search_outputs), [k, state], outs,
                           api_name="clip_search_result")
            files.upload(ui.handler(svc.upload, _uploads), [files, state], [state, up_gallery, up_md],
                         api_name="clip_upload")

        with gr.Tab("Zero-shot classification", id="zeroshot", elem_id="clip-zs-tab") as zs_tab:
            with gr.Row():
                with gr.Column(scale=3):
                    zs_pick = gr.Dropdown([cs.DEFAULT_PICK], value=cs.DEFAULT_PICK, label="Pick a gallery image",
                                          elem_id="clip-zs-pick")
                    zs_img = gr.Image(label="Image (your upload stays out of a lesson link)", type="filepath",
                                      sources=["upload", "clipboard"], height=220, format="png", elem_id="clip-zs-image")
                    zs_labels = gr.Textbox(label="Labels (comma separated)", elem_id="clip-zs-labels",
                                           value=cs.FASHION_LABEL_TEXT)
                    zs_mode = gr.Radio(list(cs.TEMPLATE_MODES), value=cs.TEMPLATE_MODES[1], label="Prompt templates",
                                       elem_id="clip-zs-mode")
                    zs_tpl = gr.Textbox(label="My template (used with “my template”)", value="a sketch of a {}.",
                                        max_lines=1, elem_id="clip-zs-template")
                    zs_temp = gr.Slider(*cs.TEMPERATURE, value=tau, step=0.001, label="Temperature τ",
                                        elem_id="clip-zs-temp")
                    zs_btn = gr.Button("Classify", variant="primary", elem_id="clip-zs-btn")
                with gr.Column(scale=2, elem_classes=["result-sticky"]):
                    zs_out = gr.Label(num_top_classes=cs.MAX_LABELS, label="p(label | image)", elem_id="clip-zs-label")
            with gr.Row():
                with gr.Column(min_width=300):
                    gr.Markdown(views.zero_shot_md(), elem_classes=["equation"], latex_delimiters=ui.LATEX)
                with gr.Column(min_width=300):
                    zs_md = gr.Markdown(elem_id="clip-zs-table")
            examples = svc.examples()
            if examples:
                ex = gr.Examples(examples, [zs_img, zs_labels], label="Examples")
                ex.dataset.click(lambda: None, None, zs_pick, **QUIET)   # an example image is no gallery pick
            zs_args, classify = [zs_img, zs_labels, zs_mode, zs_tpl, zs_temp], ui.handler(svc.classify,
                                                                                           views.classify_outputs)
            pick_args, zs_outs = [zs_pick, zs_labels, zs_mode, zs_tpl, zs_temp], [zs_img, zs_out, zs_md]
            zs_btn.click(classify, zs_args, [zs_out, zs_md], api_name="clip_classify")
            zs_temp.release(classify, zs_args, [zs_out, zs_md], api_name=False)
            picked = zs_pick.input(ui.handler(svc.classify_pick, _picked), pick_args, zs_outs,
                                   api_name="clip_classify_pick")

        with gr.Tab("Contrastive matrix", id="matrix", elem_id="clip-matrix-tab") as matrix_tab:
            with gr.Row():
                with gr.Column(scale=1):
                    m_texts = gr.Textbox(label="Texts (one per line; text i pairs with image i)", lines=5,
                                         value=cs.MATRIX_EXAMPLE, elem_id="clip-matrix-texts")
                    m_imgs = gr.Textbox(label="Images (gallery titles, one per line; “upload 1” for yours)", lines=5,
                                        value=cs.MATRIX_EXAMPLE, elem_id="clip-matrix-images")
                    m_temp = gr.Slider(*cs.TEMPERATURE, value=tau, step=0.001, label="Temperature τ",
                                       elem_id="clip-matrix-temp")
                    m_btn = gr.Button("Compute the matrix", variant="primary", elem_id="clip-matrix-btn")
                    gr.Markdown(views.LOSS_MD, elem_classes=["equation"], latex_delimiters=ui.LATEX)
                with gr.Column(scale=3, elem_classes=["result-sticky"]):   # the three heatmaps need the width
                    m_md = gr.Markdown(elem_id="clip-matrix-loss", latex_delimiters=ui.LATEX)
                    m_plot = gr.Plot(label="texts x images", elem_id="clip-matrix-plot")
            m_thumbs = gr.Gallery(label="The images, in column order", columns=cs.MAX_MATRIX, height=170,
                                  allow_preview=False, object_fit="contain", fit_columns=False)
            m_args, m_outs, matrix = [m_texts, m_imgs, m_temp, state], [m_plot, m_md, m_thumbs], ui.handler(
                svc.matrix, views.matrix_outputs)
            m_btn.click(matrix, m_args, m_outs, api_name="clip_matrix")
            m_temp.release(matrix, m_args, m_outs, api_name=False)

        with gr.Tab("Embedding map", id="map", elem_id="clip-map-tab") as map_tab:
            with gr.Row():
                with gr.Column(scale=1):
                    lo, hi, n = cs.MAP_PAIRS
                    e_n = gr.Slider(lo, hi, value=n, step=lo, label="Emoji and their names (pairs)", elem_id="clip-map-n")
                    e_btn = gr.Button("Draw the map", variant="primary", elem_id="clip-map-btn")
                    e_md = gr.Markdown(elem_id="clip-map-gap")
                with gr.Column(scale=2, elem_classes=["result-sticky"]):
                    e_plot = gr.Plot(label="images and texts, 2-D PCA", elem_id="clip-map-plot")
            e_btn.click(ui.handler(svc.embedding_map, views.map_outputs), [e_n, state], [e_plot, e_md],
                        api_name="clip_map")

    # --- a view opened by a click shows its result; the lesson link: every control but the uploads ---
    search_part = _quiet(svc.search_text, views.search_outputs, 3, 2)
    zs_part = _quiet(svc.classify_pick, _picked, 3, 2)
    m_part = _quiet(svc.matrix, views.matrix_outputs, 3, 1)
    map_part = _quiet(svc.embedding_map, views.map_outputs, 2, 1)
    opened = zs_tab.select(lambda img, pick, *a: zs_part(pick, *a) if pick and not img else [gr.skip()] * 3,
                           [zs_img, *pick_args], zs_outs, **QUIET)   # shown once, unless an image is there already
    # an upload replaces the pick (and a pick still on its way, which would put its image back)
    zs_img.upload(lambda img: None, zs_img, zs_pick, cancels=[picked, opened], **QUIET)
    matrix_tab.select(m_part, m_args, m_outs, **QUIET)
    map_tab.select(map_part, [e_n, state], [e_plot, e_md], **QUIET)

    link = ui.LessonLink("clip")
    for name, comp in (("q", query), ("k", k), ("labels", zs_labels), ("templates", zs_mode), ("template", zs_tpl),
                       ("tau", zs_temp), ("texts", m_texts), ("images", m_imgs), ("mtau", m_temp), ("pairs", e_n)):
        link.control(name, comp)
    link.control("img", zs_pick, lesson.Resolved("img", "choice", resolve=svc.gallery_title))
    link.views(sub, {"search": search_tab, "zeroshot": zs_tab, "matrix": matrix_tab, "map": map_tab})

    def show(view, q, k, pick, labels, mode, tpl, tau, texts, images, mtau, pairs, session):
        skip = gr.skip()
        out = [gr.update(choices=svc.gallery_titles()), *search_part(q, k, session)]
        out += zs_part(pick, labels, mode, tpl, tau) if view == "zeroshot" and pick else [skip] * 3
        out += m_part(texts, images, mtau, session) if view == "matrix" else [skip] * 3
        return out + (map_part(pairs, session) if view == "map" else [skip] * 2)

    link.shows(ui.handler(show), [query, k, *pick_args, m_texts, m_imgs, m_temp, e_n, state],
               [zs_pick, *outs, *zs_outs, *m_outs, e_plot, e_md])
    link.checks(svc.tour_check)
    return link


if __name__ == "__main__":
    ui.standalone("clip")
