"""CLIP tab: gallery search (text -> image, image -> image, click a result to search by it), zero-shot
classification with prompt templates, the contrastive matrix with its InfoNCE loss, and the
embedding map with the modality gap. Thin UI: the model code is in model.py, gallery.py, views.py.

The model (hub ViT-B-32 when reachable, else our bundled small CLIP) and the bundled gallery's
index load on first use, once, shared between sessions; a user's uploads and last results live
in gr.State. The client never names a file of the server: results are addressed by their index
in the user's own last result list, gallery images by their title.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np

from playground.core import hub, validate

HUB_SETTING = os.environ.get("PLAYGROUND_CLIP_HUB", "ViT-B-32:laion2b_s34b_b79k")   # open_clip "model:tag"
EXAMPLES = Path(__file__).resolve().parents[2] / "assets" / "clip" / "examples"
MAX_UPLOADS = 60          # per session
MAX_FILES_PER_CALL = 20
MAX_LABELS = 20
MAX_MATRIX = 10           # texts and images in the contrastive view

LOSS_MD = r"""
**The loss CLIP is trained with** (symmetric InfoNCE). For a batch of $N$ matching pairs with unit
embeddings $x_i$ (image) and $y_j$ (text), $s_{ij} = \langle x_i, y_j \rangle / \tau$:

$$\mathcal{L} = \frac{1}{2N}\sum_{i=1}^{N}\Big[-\log\frac{e^{s_{ii}}}{\sum_{j} e^{s_{ij}}}\;-\;\log\frac{e^{s_{ii}}}{\sum_{j} e^{s_{ji}}}\Big]$$

The first term asks image $i$ to pick its text among all texts: a softmax over a column of the
matrix below, whose rows are texts. The second asks text $i$ to pick its image among all images:
a softmax over a row. Text $i$ is paired with image $i$: the diagonal.
"""
ZS_MD = r"""
$$p(y \mid x) = \frac{\exp(\cos(x, t_y)/\tau)}{\sum_{y'} \exp(\cos(x, t_{y'})/\tau)}$$

$$t_y = \mathrm{normalise}\Big(\frac{1}{|T|}\sum_{\text{template} \in T} \mathrm{normalise}\big(\mathrm{text}(\text{template}(y))\big)\Big)$$

A single template uses the one prompt “a photo of a {label}.”; the ensemble averages the label's embedding over
several templates. A lower temperature $\tau$ sharpens the probabilities; the ranking never changes.
"""

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
_lock = threading.Lock()
_index_lock = threading.Lock()
_shared: dict = {}   # model runner, gallery and index: shared by all sessions, built on first use


# --- shared model and index ------------------------------------------------------------------

def source() -> hub.ModelSource:
    # the bundled path without importing torch (model.BUNDLED is the same file)
    return hub.choose(f"open_clip {HUB_SETTING}", "assets/clip/tiny_clip.safetensors")


def runner():
    """The model, loaded once through open_clip's factory (hub tag or our local safetensors)."""
    with _lock:
        if "runner" in _shared:
            return _shared["runner"]
        from playground.clip import model as cm
        from playground.core import device
        from playground.core.checkpoint import sha256

        dev = device.get()
        src = source()
        r = None
        if src.kind == "hub":
            name, _, tag = HUB_SETTING.partition(":")
            try:
                r = cm.ClipRunner(*cm.load(name, tag or None, dev), f"open_clip-{name}-{tag}", dev)
            except Exception as e:  # noqa: BLE001 - the hub failing means: run the bundled model
                _shared["note"] = f"the hub model failed to load ({type(e).__name__}); using the bundled model"
        if r is None:
            r = cm.ClipRunner(*cm.load_bundled(cm.BUNDLED, dev), f"bundled-{sha256(cm.BUNDLED)[:16]}", dev)
        _shared["runner"] = r
        return r


def gallery():
    with _lock:
        if "gallery" not in _shared:
            from playground.clip.gallery import Gallery

            _shared["gallery"] = Gallery()
        return _shared["gallery"]


def gallery_index(progress=None) -> np.ndarray:
    """The bundled gallery's embeddings for the current model (disk cache keyed by model and image hash)."""
    r, g = runner(), gallery()
    key = ("index", r.model_id)
    with _index_lock:   # one indexing at a time; later callers find it done
        if key in _shared:
            return _shared[key]
        from playground.clip.gallery import EmbeddingCache, index
        from playground.core import settings

        cache = EmbeddingCache(settings.from_env().cache_dir / "clip_embeddings", r.model_id)
        with r.lock:
            emb = index(g, r.encode_pils, cache, progress=progress)
        _shared[key] = emb
        return emb


def _new_state() -> dict:
    return {"uploads": [], "results": []}   # uploads: {title, key, thumb (PIL), emb}; results: [("b"|"u", i)]


def _check_state(state) -> dict:
    if not isinstance(state, dict) or not isinstance(state.get("uploads"), list):
        return _new_state()
    state.setdefault("results", [])
    return state


def _progress_cb(progress):
    return lambda frac, desc: progress(frac, desc=desc)


# --- search ------------------------------------------------------------------------------------

def _all(state) -> tuple[np.ndarray, list[tuple[str, int]]]:
    emb = gallery_index()
    refs = [("b", i) for i in range(len(emb))]
    ups = state["uploads"]
    if ups:
        emb = np.concatenate([emb, np.stack([u["emb"] for u in ups])])
        refs += [("u", j) for j in range(len(ups))]
    return emb, refs


def _thumb_title(state, ref):
    kind, i = ref
    if kind == "u":
        u = state["uploads"][i]
        return u["thumb"], u["title"]
    g = gallery()
    return g.thumb(i), g.items[i].title


def _search(query: np.ndarray, k: int, state: dict, what: str):
    from playground.clip.model import topk

    emb, refs = _all(state)
    t0 = time.perf_counter()
    idx, scores = topk(query, emb, k)
    ms = (time.perf_counter() - t0) * 1000
    state["results"] = [refs[i] for i in idx]
    out = []
    for ref, s in zip(state["results"], scores):
        img, title = _thumb_title(state, ref)
        out.append((img, f"{s:.3f} · {title}"))
    md = (f"Top {len(idx)} of {len(emb):,} images for {what} (cosine similarity; matmul + top-k {ms:.1f} ms). "
          "Click a result to search with it.")
    return out, state, md


def index_gallery(progress=gr.Progress()):
    t0 = time.perf_counter()
    progress(0, desc="loading the model")
    r = runner()
    emb = gallery_index(_progress_cb(progress))
    g = gallery()
    counts = {}
    for it in g.items:
        counts[it.source] = counts.get(it.source, 0) + 1
    parts = ", ".join(f"{n:,} {s}" for s, n in counts.items())
    return (f"**Index ready:** {len(emb):,} images ({parts}), {emb.shape[1]}-dimensional embeddings from "
            f"`{r.model_id}`, in {time.perf_counter() - t0:.1f} s (cached on disk after the first time)."
            + (f" Note: {_shared['note']}." if "note" in _shared else ""))


def search_text(query, k, state, progress=gr.Progress()):
    query = validate.text("Query", query, max_chars=300)
    k = validate.integer("Top k", k, 1, 48)
    state = _check_state(state)
    gallery_index(_progress_cb(progress))
    r = runner()
    with r.lock:
        q = r.encode_texts([query])[0]
    return _search(q, k, state, f"the text “{query}”")


def search_image(image, k, state, progress=gr.Progress()):
    img = validate.image(image, name="Query image")
    k = validate.integer("Top k", k, 1, 48)
    state = _check_state(state)
    gallery_index(_progress_cb(progress))
    r = runner()
    with r.lock:
        q = r.encode_pils([img])[0]
    return _search(q, k, state, "your image")


def search_result(k, state, evt: gr.SelectData = None):
    """A click on a result: search with that result's image (addressed by its index in the user's last results)."""
    state = _check_state(state)
    k = validate.integer("Top k", k, 1, 48)
    if evt is None or not isinstance(evt.index, int) or not 0 <= evt.index < len(state["results"]):
        raise gr.Error("Click one of the results to search with it.")
    ref = state["results"][evt.index]
    emb, refs = _all(state)
    _, title = _thumb_title(state, ref)
    return _search(emb[refs.index(ref)], k, state, f"the image “{title}”")


def upload(files, state, progress=gr.Progress()):
    state = _check_state(state)
    if not files:
        raise gr.Error("Choose one or more image files to add.")
    if not isinstance(files, list):
        files = [files]
    if len(files) > MAX_FILES_PER_CALL:
        raise gr.Error(f"Add at most {MAX_FILES_PER_CALL} images at a time.")
    if len(state["uploads"]) + len(files) > MAX_UPLOADS:
        raise gr.Error(f"This session holds at most {MAX_UPLOADS} uploads; reload the page to start again.")
    from playground.clip.gallery import pixel_hash, thumbnail

    imgs = [validate.image(f, name=f"Upload {i + 1}") for i, f in enumerate(files)]   # type, bytes, pixels
    r = runner()
    progress(0.2, desc="encoding your images")
    with r.lock:
        emb = r.encode_pils(imgs)
    for img, e in zip(imgs, emb):
        n = len(state["uploads"]) + 1
        state["uploads"].append({"title": f"upload {n}", "key": pixel_hash(img), "thumb": thumbnail(img), "emb": e})
    shown = [(u["thumb"], u["title"]) for u in state["uploads"]]
    return state, shown, f"**{len(state['uploads'])}** image(s) of yours are in the gallery for this session."


# --- zero-shot ---------------------------------------------------------------------------------

TEMPLATE_MODES = ("single: a photo of a {}.", "ensemble of 8 templates", "my template")


def _labels(text: str) -> list[str]:
    text = validate.text("Labels", text, max_chars=1000)
    labels = list(dict.fromkeys(s.strip() for s in text.replace("\n", ",").split(",") if s.strip()))
    if len(labels) < 2:
        raise gr.Error("Give at least two labels, separated by commas.")
    if len(labels) > MAX_LABELS:
        raise gr.Error(f"Give at most {MAX_LABELS} labels.")
    if any(len(lab) > 60 for lab in labels):
        raise gr.Error("Keep each label under 60 characters.")
    return labels


def classify(image, labels, mode, template, temperature):
    from playground.clip import model as cm

    img = validate.image(image, name="Image")
    labels = _labels(labels)
    mode = validate.choice("Templates", mode, TEMPLATE_MODES)
    temperature = validate.number("Temperature", temperature, 0.001, 2.0)
    if mode == TEMPLATE_MODES[0]:
        templates = (cm.SINGLE_TEMPLATE,)
    elif mode == TEMPLATE_MODES[1]:
        templates = cm.ENSEMBLE_TEMPLATES
    else:
        template = validate.text("Template", template, max_chars=120)
        if template.count("{}") != 1 or template.replace("{}", "").count("{") or template.replace("{}", "").count("}"):
            raise gr.Error("A template holds exactly one {} where the label goes, e.g. “a sketch of a {}.”")
        templates = (template,)
    r = runner()
    with r.lock:
        x = r.encode_pils([img])[0]
        ce = r.class_embeddings(labels, templates)
    cos = ce @ x                                                   # (L,)
    z = cos / temperature
    p = np.exp(z - z.max())
    p /= p.sum()
    rows = "\n".join(f"| {lab} | {c:.3f} | {q:.3f} |" for lab, c, q in sorted(zip(labels, cos, p), key=lambda t: -t[2]))
    md = (f"Prompts per label: {len(templates)} ({'; '.join(t.format('…') for t in templates[:8])}). "
          f"The model's own learned temperature is {r.temperature:.4f}.\n\n| label | cosine | probability |\n|---|---|---|\n"
          + rows)
    return {lab: float(q) for lab, q in zip(labels, p)}, md


# --- contrastive matrix and embedding map ------------------------------------------------------

def _find(title: str, state: dict):
    """A gallery image by its title (exact, then prefix, then substring), or 'upload N'."""
    t = title.strip().lower()
    for j, u in enumerate(state["uploads"]):
        if u["title"] == t:
            return ("u", j)
    items = gallery().items
    for test in (lambda s: s == t, lambda s: s.startswith(t), lambda s: t in s):
        for i, it in enumerate(items):
            if test(it.title.lower()):
                return ("b", i)
    raise gr.Error(f"No gallery image is called “{title[:60]}”; use a title shown under a search result, "
                   "or “upload 1” for your first upload.")


def _lines(name: str, text: str, cap: int) -> list[str]:
    text = validate.text(name, text, max_chars=2000)
    lines = [s.strip() for s in text.splitlines() if s.strip()]
    if not lines:
        raise gr.Error(f"{name}: write one per line.")
    if len(lines) > cap:
        raise gr.Error(f"{name}: at most {cap} lines.")
    if any(len(s) > 120 for s in lines):
        raise gr.Error(f"{name}: keep each line under 120 characters.")
    return lines


def matrix(texts, images, temperature, state):
    from playground.clip import views
    from playground.clip.model import info_nce

    texts = _lines("Texts", texts, MAX_MATRIX)
    titles = _lines("Images", images, MAX_MATRIX)
    temperature = validate.number("Temperature", temperature, 0.001, 2.0)
    state = _check_state(state)
    emb_all, refs = _all(state)
    refs_chosen = [_find(t, state) for t in titles]
    ie = emb_all[[refs.index(r_) for r_ in refs_chosen]]
    r = runner()
    with r.lock:
        te = r.encode_texts(texts)
    sim = te @ ie.T                                               # (N texts, M images)
    names = [_thumb_title(state, r_)[1] for r_ in refs_chosen]
    fig = views.matrix_figure(sim, texts, names, temperature)
    if len(texts) == len(titles):
        loss = info_nce(sim, temperature)
        md = (f"**InfoNCE loss of this batch: {loss:.3f}** at τ = {temperature:g} (text i is paired with image i; "
              f"a random guess would give ln {len(texts)} = {np.log(len(texts)):.3f}). The model's learned τ is "
              f"{r.temperature:.4f}.")
    else:
        md = (f"The loss needs pairs: give as many texts as images ({len(texts)} texts, {len(titles)} images). "
              "The softmaxes above are shown all the same.")
    thumbs = [(_thumb_title(state, r_)[0], f"{j + 1}. {n}") for j, (r_, n) in enumerate(zip(refs_chosen, names))]
    return fig, md, thumbs


def embedding_map(n, state):
    """Emoji images and their names, projected together (2-D PCA): the modality gap in view."""
    from playground.clip import views

    n = validate.integer("Pairs", n, 10, 400)
    state = _check_state(state)
    emb = gallery_index()
    g = gallery()
    emoji_idx = [i for i, it in enumerate(g.items) if it.source == "emoji"]
    pick = [emoji_idx[i] for i in np.linspace(0, len(emoji_idx) - 1, min(n, len(emoji_idx))).astype(int)]
    names = [g.items[i].title for i in pick]
    r = runner()
    with r.lock:
        te = r.encode_texts(names)
    ie = emb[pick]
    gap = views.gap_numbers(ie, te)
    if gap["centroid_distance"] > 0.25:
        verdict = ("A clear gap: images and texts sit in two separate cones of the shared space. The loss only asks "
                   "that a pair be closer than the other pairs of its batch, not that the two modalities overlap.")
    else:
        verdict = ("Little gap for this model: its image and text clouds overlap (cross-modal and within-modal "
                   "cosines are alike). Large pretrained CLIP models show a clear gap (Liang et al., 2022, "
                   "“Mind the Gap”); compare with the hub model when it is reachable.")
    md = (f"**Modality gap:** the image centroid and the text centroid are {gap['centroid_distance']:.3f} apart "
          f"(unit vectors). Mean cosine: matched image-text pairs {gap['matched_cos']:.3f}, any image-text "
          f"{gap['image_text_cos']:.3f}, image-image {gap['image_image_cos']:.3f}, text-text "
          f"{gap['text_text_cos']:.3f}. " + verdict)
    return views.embedding_map(ie, te, names), md


# --- the UI ------------------------------------------------------------------------------------

def _examples() -> list[list]:
    rows = []
    fashion = "t-shirt, trousers, pullover, dress, coat, sandal, shirt, sneaker, bag, ankle boot"
    for f, labels in (("fashion_sneaker.png", fashion), ("fashion_trousers.png", fashion), ("fashion_bag.png", fashion),
                      ("shape_red_circle.png", "red circle, blue circle, red square, blue square"),
                      ("emoji_rocket.png", "rocket, cat face, red apple, hot beverage")):
        if (EXAMPLES / f).exists():
            rows.append([str(EXAMPLES / f), labels])
    try:
        import skimage

        d = Path(skimage.__file__).parent / "data"
        for f, labels in (("chelsea.png", "cat, dog, coffee, rocket, person"),
                          ("coffee.png", "cat, dog, coffee, rocket, person")):
            if (d / f).exists():
                rows.append([str(d / f), labels])
    except ImportError:
        pass
    return rows


def build(settings) -> None:
    src = source()
    gr.Markdown("## CLIP: one space for images and text\n" + src.markdown() +
                "\n\nTrained with a contrastive loss, CLIP maps an image and its caption to nearby unit vectors. "
                "Everything below is a dot product in that space.")
    state = gr.State(_new_state())
    with gr.Tabs():
        with gr.Tab("Search", elem_id="clip-search-tab"):
            with gr.Row():
                with gr.Column(scale=2):
                    query = gr.Textbox(label="Search the gallery by text", value="a red apple", max_lines=1,
                                       elem_id="clip-query")
                    with gr.Row():
                        k = gr.Slider(1, 48, value=12, step=1, label="Top k")
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
            outs = [results, state, results_md]
            index_btn.click(index_gallery, None, index_md, api_name="clip_index")
            go_text.click(search_text, [query, k, state], outs, api_name="clip_search_text")
            query.submit(search_text, [query, k, state], outs, api_name=False)
            go_img.click(search_image, [query_img, k, state], outs, api_name="clip_search_image")
            results.select(search_result, [k, state], outs, api_name="clip_search_result")
            files.upload(upload, [files, state], [state, up_gallery, up_md], api_name="clip_upload")

        with gr.Tab("Zero-shot classification", elem_id="clip-zs-tab"):
            with gr.Row():
                with gr.Column():
                    zs_img = gr.Image(label="Image", type="filepath", sources=["upload", "clipboard"], height=260,
                                      elem_id="clip-zs-image")
                    zs_labels = gr.Textbox(label="Labels (comma separated)", elem_id="clip-zs-labels",
                                           value="t-shirt, trousers, pullover, dress, coat, sandal, shirt, sneaker, "
                                                 "bag, ankle boot")
                    zs_mode = gr.Radio(list(TEMPLATE_MODES), value=TEMPLATE_MODES[1], label="Prompt templates")
                    zs_tpl = gr.Textbox(label="My template (used with “my template”)", value="a sketch of a {}.",
                                        max_lines=1)
                    zs_temp = gr.Slider(0.001, 1.0, value=0.05, step=0.001, label="Temperature τ")
                    zs_btn = gr.Button("Classify", variant="primary", elem_id="clip-zs-btn")
                with gr.Column():
                    gr.Markdown(ZS_MD, elem_classes=["equation"], latex_delimiters=LATEX)
                    zs_out = gr.Label(num_top_classes=10, label="p(label | image)", elem_id="clip-zs-label")
                    zs_md = gr.Markdown()
            ex = _examples()
            if ex:
                gr.Examples(ex, [zs_img, zs_labels], label="Examples")
            zs_args = [zs_img, zs_labels, zs_mode, zs_tpl, zs_temp]
            zs_btn.click(classify, zs_args, [zs_out, zs_md], api_name="clip_classify")
            zs_temp.release(classify, zs_args, [zs_out, zs_md], api_name=False)

        with gr.Tab("Contrastive matrix", elem_id="clip-matrix-tab"):
            with gr.Row():
                with gr.Column(scale=1):
                    m_texts = gr.Textbox(label="Texts (one per line; text i pairs with image i)", lines=5,
                                         value="red apple\ncat face\nrocket\nhot beverage\ngrinning face")
                    m_imgs = gr.Textbox(label="Images (gallery titles, one per line; “upload 1” for yours)", lines=5,
                                        value="red apple\ncat face\nrocket\nhot beverage\ngrinning face")
                    m_temp = gr.Slider(0.005, 1.0, value=0.07, step=0.005, label="Temperature τ")
                    m_btn = gr.Button("Compute the matrix", variant="primary", elem_id="clip-matrix-btn")
                with gr.Column(scale=1):
                    gr.Markdown(LOSS_MD, elem_classes=["equation"], latex_delimiters=LATEX)
                    m_md = gr.Markdown(elem_id="clip-matrix-loss", latex_delimiters=LATEX)
            m_thumbs = gr.Gallery(label="The images, in column order", columns=10, height=170, allow_preview=False,
                                  object_fit="contain", fit_columns=False)
            m_plot = gr.Plot(label="texts x images")
            m_args = [m_texts, m_imgs, m_temp, state]
            m_btn.click(matrix, m_args, [m_plot, m_md, m_thumbs], api_name="clip_matrix")
            m_temp.release(matrix, m_args, [m_plot, m_md, m_thumbs], api_name=False)

        with gr.Tab("Embedding map", elem_id="clip-map-tab"):
            with gr.Row():
                e_n = gr.Slider(10, 400, value=150, step=10, label="Emoji and their names (pairs)")
                e_btn = gr.Button("Draw the map", variant="primary", elem_id="clip-map-btn")
            e_md = gr.Markdown(elem_id="clip-map-gap")
            e_plot = gr.Plot(label="images and texts, 2-D PCA")
            e_btn.click(embedding_map, [e_n, state], [e_plot, e_md], api_name="clip_map")


def load_calls() -> list:
    """Calls the load script sends (api_name, args); the session state is the component's default."""
    return [("clip_search_text", ["a red apple", 8]), ("clip_matrix", ["red apple\nrocket", "red apple\nrocket", 0.07])]


if __name__ == "__main__":
    from playground.core.ui import standalone

    standalone(build, "CLIP")
