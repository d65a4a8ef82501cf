"""CLIP tab: gallery search (text -> image, image -> image, click a result to search by it), zero-shot
classification with prompt templates, the contrastive matrix with its InfoNCE loss, and the embedding
map with the modality gap. Layout and wiring only: what each button does is in service.py, the figures
and texts in views.py. A user's uploads and last results live in gr.State (a service.Session)."""
from __future__ import annotations

import gradio as gr

from playground.clip import service as cs
from playground.clip import views
from playground.core import ui


class _Click(gr.SelectData):
    """gr.SelectData that also takes an API call with no click (Gradio then passes no event data, and
    gr.SelectData itself fails before the service can say what to do)."""

    def __init__(self, target, data):
        gr.EventData.__init__(self, target, data)
        self.index = (data or {}).get("index")


def build(svc: cs.Service) -> None:
    gr.Markdown(views.header_md(svc.source().markdown(), svc.text_tower()))
    state = gr.State(cs.Session())
    tau = round(svc.default_temperature(), 3)
    k_min, k_max, k_default = cs.K
    with gr.Tabs():
        with gr.Tab("Search", elem_id="clip-search-tab"):
            with gr.Row():
                with gr.Column(scale=2):
                    query = gr.Textbox(label="Search the gallery by text", value="a red apple", max_lines=1,
                                       elem_id="clip-query")
                    with gr.Row():
                        k = gr.Slider(k_min, k_max, value=k_default, step=1, label="Top k")
                        go_text = gr.Button("Search by text", variant="primary", elem_id="clip-search-btn")
                    with gr.Row():
                        query_img = gr.Image(label="…or by an image", type="filepath", sources=["upload", "clipboard"],
                                             height=180, elem_id="clip-query-image")
                        go_img = gr.Button("Search by image", elem_id="clip-search-image-btn")
                with gr.Column(scale=1):
                    index_btn = gr.Button("Index the gallery", elem_id="clip-index-btn")
                    index_md = gr.Markdown("The gallery (emoji and sample photos) is indexed on the first search.",
                                           elem_id="clip-index-status")
                    files = gr.File(label="Add your images to the gallery (this session only)", file_count="multiple",
                                    file_types=["image"], elem_id="clip-upload")
                    up_md = gr.Markdown(elem_id="clip-upload-status")
                    up_gallery = gr.Gallery(label="Your uploads", columns=6, height=120, allow_preview=False)
            results_md = gr.Markdown(elem_id="clip-results-status")
            results = gr.Gallery(label="Results (score · title); click one to search with it", columns=6, height=520,
                                 allow_preview=False, object_fit="contain", elem_id="clip-results")

            def search_clicked(k, session, evt: _Click):
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
            files.upload(ui.handler(svc.upload, views.upload_outputs), [files, state], [state, up_gallery, up_md],
                         api_name="clip_upload")

        with gr.Tab("Zero-shot classification", elem_id="clip-zs-tab"):
            with gr.Row():
                with gr.Column():
                    zs_img = gr.Image(label="Image", type="filepath", sources=["upload", "clipboard"], height=260,
                                      elem_id="clip-zs-image")
                    zs_labels = gr.Textbox(label="Labels (comma separated)", elem_id="clip-zs-labels",
                                           value=cs.FASHION_LABEL_TEXT)
                    zs_mode = gr.Radio(list(cs.TEMPLATE_MODES), value=cs.TEMPLATE_MODES[1], label="Prompt templates")
                    zs_tpl = gr.Textbox(label="My template (used with “my template”)", value="a sketch of a {}.",
                                        max_lines=1)
                    zs_temp = gr.Slider(*cs.TEMPERATURE, value=tau, step=0.001, label="Temperature τ")
                    zs_btn = gr.Button("Classify", variant="primary", elem_id="clip-zs-btn")
                with gr.Column():
                    gr.Markdown(views.zero_shot_md(), elem_classes=["equation"], latex_delimiters=ui.LATEX)
                    zs_out = gr.Label(num_top_classes=cs.MAX_LABELS, label="p(label | image)", elem_id="clip-zs-label")
                    zs_md = gr.Markdown()
            examples = svc.examples()
            if examples:
                gr.Examples(examples, [zs_img, zs_labels], label="Examples")
            zs_args, classify = [zs_img, zs_labels, zs_mode, zs_tpl, zs_temp], ui.handler(svc.classify,
                                                                                           views.classify_outputs)
            zs_btn.click(classify, zs_args, [zs_out, zs_md], api_name="clip_classify")
            zs_temp.release(classify, zs_args, [zs_out, zs_md], api_name=False)

        with gr.Tab("Contrastive matrix", elem_id="clip-matrix-tab"):
            with gr.Row():
                with gr.Column(scale=1):
                    m_texts = gr.Textbox(label="Texts (one per line; text i pairs with image i)", lines=5,
                                         value=cs.MATRIX_EXAMPLE)
                    m_imgs = gr.Textbox(label="Images (gallery titles, one per line; “upload 1” for yours)", lines=5,
                                        value=cs.MATRIX_EXAMPLE)
                    m_temp = gr.Slider(*cs.TEMPERATURE, value=tau, step=0.001, label="Temperature τ")
                    m_btn = gr.Button("Compute the matrix", variant="primary", elem_id="clip-matrix-btn")
                with gr.Column(scale=1):
                    gr.Markdown(views.LOSS_MD, elem_classes=["equation"], latex_delimiters=ui.LATEX)
                    m_md = gr.Markdown(elem_id="clip-matrix-loss", latex_delimiters=ui.LATEX)
            m_thumbs = gr.Gallery(label="The images, in column order", columns=cs.MAX_MATRIX, height=170,
                                  allow_preview=False, object_fit="contain", fit_columns=False)
            m_plot = gr.Plot(label="texts x images")
            m_args, m_outs, matrix = [m_texts, m_imgs, m_temp, state], [m_plot, m_md, m_thumbs], ui.handler(
                svc.matrix, views.matrix_outputs)
            m_btn.click(matrix, m_args, m_outs, api_name="clip_matrix")
            m_temp.release(matrix, m_args, m_outs, api_name=False)

        with gr.Tab("Embedding map", elem_id="clip-map-tab"):
            with gr.Row():
                lo, hi, n = cs.MAP_PAIRS
                e_n = gr.Slider(lo, hi, value=n, step=lo, label="Emoji and their names (pairs)")
                e_btn = gr.Button("Draw the map", variant="primary", elem_id="clip-map-btn")
            e_md = gr.Markdown(elem_id="clip-map-gap")
            e_plot = gr.Plot(label="images and texts, 2-D PCA")
            e_btn.click(ui.handler(svc.embedding_map, views.map_outputs), [e_n, state], [e_plot, e_md],
                        api_name="clip_map")


if __name__ == "__main__":
    ui.standalone("clip")
