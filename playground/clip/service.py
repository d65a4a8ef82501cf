"""What the CLIP lab does, with no UI: search a gallery by text, by image or by a result; add a user's
images to their own view of the gallery; classify an image zero-shot against the user's labels and
prompt templates; the texts x images matrix with its InfoNCE loss; the joint embedding map with the
modality gap. Every method validates its raw arguments (core.validate) and returns plain data.

Shared by every user, loaded once through `core.cache.once`:
- the model: `Service._load_model()` is the one place it is chosen and loaded (the hub open_clip tag
  when the hub is reachable, else the bundled small CLIP, whose locked text tower comes from a pip
  package: without it every action answers `Unavailable` with the pip line); swap a tower there and
  nowhere else;
- the bundled gallery and its embedding index (embeddings cached on disk per model).
Every file this lab writes goes under `settings.cache_dir`: the rendered emoji, the open_clip config of
the bundled architecture (`open_clip_configs/`), the gallery embeddings (`clip_embeddings/`) and, when
the hub is reachable, the hub model's weights (`open_clip_hub/`).

Per user (kept by the tab in gr.State): a `Session`, the user's uploads and last results. A client never
names a file of the server: results are addressed by their place in the user's own last result list,
gallery images by their title.

The guided tour (assets/tours/clip.json): `tour_check` computes each step's answer on the running model
at reveal time (zero-shot winner, what the prompt ensemble changes, what a lower temperature changes in
the probabilities and in the InfoNCE loss, the modality gap, a paraphrase query); its thresholds are the
TOUR_* constants below.

The hub model is `Service.hub_setting`, an open_clip "model:tag": the `hub_setting` argument, else the
environment variable PLAYGROUND_CLIP_HUB read when the service is made, else DEFAULT_HUB.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from playground.clip import model as cm
from playground.clip.data import FASHION_LABELS
from playground.clip.gallery import EmbeddingCache, Gallery, index, pixel_hash, thumbnail
from playground.clip.queries import QUERIES, is_hit, read_queries
from playground.core import cache, device, hub, paths, timing, validate
from playground.core.batch import Batcher
from playground.core.errors import InputError, Unavailable
from playground.core.settings import Settings

DEFAULT_HUB = "ViT-B-32:laion2b_s34b_b79k"
HUB_ENV = "PLAYGROUND_CLIP_HUB"
EXAMPLES = paths.assets("clip", "examples")

# Limits of the controls (the tab builds its sliders from these; validation clamps into them).
K = (1, 48, 12)                 # top k: min, max, default
MAP_PAIRS = (10, 400, 150)      # emoji and their names on the embedding map: min, max, default
TEMPERATURE = (0.001, 1.0)      # both temperature sliders
MAX_QUERY_CHARS = 300
MAX_UPLOADS = 60                # per session
MAX_FILES_PER_CALL = 20
MAX_LABELS = 20
MAX_LABEL_CHARS = 60
MAX_TEMPLATE_CHARS = 120
MAX_MATRIX = 10                 # texts and images in the contrastive view
MAX_LINE_CHARS = 120
GAP_SWAPS = 200                 # random image/caption swaps the modality gap is compared with
DEFAULT_QUERY = "a red apple"   # what the search shows when the lab opens
DEFAULT_PICK = "jeans"          # the zero-shot view's first image: a gallery emoji no Fashion label names

# The tour's thresholds (tour_check): what counts as a change, in the units shown in its answers.
TOUR_SPREAD_NATS = 0.05         # the probabilities' entropy moved by more than this: their spread changed
TOUR_LOSS_SAME = 0.05           # two InfoNCE losses within this relative difference are "about the same"

TEMPLATE_MODES = (f"single: {cm.SINGLE_TEMPLATE}", f"ensemble of {len(cm.ENSEMBLE_TEMPLATES)} templates",
                  "my template")
FASHION_LABEL_TEXT = ", ".join(FASHION_LABELS)
EXAMPLE_ROWS = (("fashion_sneaker.png", FASHION_LABEL_TEXT), ("fashion_trousers.png", FASHION_LABEL_TEXT),
                ("fashion_bag.png", FASHION_LABEL_TEXT),
                ("shape_red_circle.png", "red circle, blue circle, red square, blue square"),
                ("emoji_rocket.png", "rocket, cat face, red apple, hot beverage"))
PHOTO_EXAMPLE_ROWS = (("chelsea.png", "cat, dog, coffee, rocket, person"),
                      ("coffee.png", "cat, dog, coffee, rocket, person"))
MATRIX_EXAMPLE = "red apple\ncat face\nrocket\nhot beverage\ngrinning face"

Progress = Callable[[float, "str | None"], None]


# --- per-user state and plain results ---------------------------------------------------------------

@dataclass
class Upload:
    title: str               # "upload N", how the user names it in the matrix
    key: str                 # content hash
    thumb: Image.Image
    emb: np.ndarray          # (D,) unit vector


@dataclass
class Session:
    """One user's uploads and last search results (the tab keeps it in gr.State)."""
    uploads: list[Upload] = field(default_factory=list)
    results: list[tuple[str, int]] = field(default_factory=list)   # ("b", gallery index) | ("u", upload index)


@dataclass
class Loaded:
    runner: cm.ClipRunner
    note: str | None = None  # why the hub model is not the one running, when it failed to load


@dataclass
class TextTower:
    """Which text tower the offline model uses, from its card, and whether it is installed here."""
    model: str                   # e.g. sentence-transformers/all-MiniLM-L6-v2; "" for a from-scratch tower
    package: str
    version: str
    parameters: int
    missing: str | None          # the Unavailable message when the package is not installed
    card: dict                   # the checkpoint's card (its metrics and the baseline's)


@dataclass
class IndexInfo:
    images: int
    by_source: dict[str, int]
    dim: int
    model_id: str
    seconds: float
    note: str | None


@dataclass
class Found:
    hits: list[tuple[Image.Image, str, float]]     # (thumbnail, title, cosine), best first
    searched: int                                   # images searched (gallery + the user's uploads)
    what: str                                       # what was searched for, in words
    ms: float                                       # matmul + top-k
    session: Session


@dataclass
class Classified:
    labels: list[str]
    cosines: np.ndarray          # (L,)
    probs: np.ndarray            # (L,) softmax(cosines / temperature)
    templates: tuple[str, ...]
    model_temperature: float
    image: Image.Image | None = None    # the gallery image classified (classify_pick), to show
    title: str = ""                     # its title


@dataclass
class Matrix:
    sim: np.ndarray              # (texts, images) cosines
    texts: list[str]
    names: list[str]             # image titles, in column order
    thumbs: list[Image.Image]
    temperature: float
    loss: float | None           # InfoNCE when texts and images pair up one to one
    model_temperature: float


@dataclass
class GapMap:
    images: np.ndarray           # (N, D)
    texts: np.ndarray            # (N, D)
    names: list[str]
    gap: dict                    # model.modality_gap


def _session(state) -> Session:
    return state if isinstance(state, Session) else Session()


def _lines(name: str, text, cap: int) -> list[str]:
    text = validate.text(name, text, max_chars=cap * (MAX_LINE_CHARS + 1))
    lines = [s.strip() for s in text.splitlines() if s.strip()]   # not empty: validate.text refused blank text
    if len(lines) > cap:
        raise InputError(f"{name}: at most {cap} lines.")
    if any(len(s) > MAX_LINE_CHARS for s in lines):
        raise InputError(f"{name}: keep each line under {MAX_LINE_CHARS} characters.")
    return lines


def _labels(text) -> list[str]:
    text = validate.text("Labels", text, max_chars=MAX_LABELS * (MAX_LABEL_CHARS + 2))
    labels = list(dict.fromkeys(s.strip() for s in text.replace("\n", ",").split(",") if s.strip()))
    if len(labels) < 2:
        raise InputError("Labels: give at least two labels, separated by commas.")
    if len(labels) > MAX_LABELS:
        raise InputError(f"Labels: give at most {MAX_LABELS} labels.")
    if any(len(lab) > MAX_LABEL_CHARS for lab in labels):
        raise InputError(f"Labels: keep each label under {MAX_LABEL_CHARS} characters.")
    return labels


def _softmax(cos: np.ndarray, temperature: float) -> np.ndarray:
    """p(y | x) = softmax(cos / temperature) over the labels."""
    z = cos / temperature
    p = np.exp(z - z.max())
    return p / p.sum()


def _template(text) -> str:
    t = validate.text("Template", text, max_chars=MAX_TEMPLATE_CHARS)
    rest = t.replace("{}", "")
    if t.count("{}") != 1 or "{" in rest or "}" in rest:
        raise InputError("Template: a template holds exactly one {} where the label goes, e.g. “a sketch of a {}.”")
    return t


class Service:
    def __init__(self, settings: Settings, hub_setting: str | None = None, weights: Path | None = None):
        self.settings = settings
        self.hub_setting = hub_setting or os.environ.get(HUB_ENV, DEFAULT_HUB)   # open_clip "model:tag"
        self.weights = Path(weights) if weights else cm.BUNDLED                # the offline model's checkpoint

    # --- the shared model, gallery and index -----------------------------------------------------------

    def source(self) -> hub.ModelSource:
        ref = self.weights.relative_to(paths.ROOT).as_posix() if self.weights.is_relative_to(paths.ROOT) \
            else str(self.weights)
        return hub.choose(f"open_clip {self.hub_setting}", ref)

    def default_temperature(self) -> float:
        """The bundled model's learned temperature, from its card (the sliders start there)."""
        return float(cm.read_card(self.weights)["metrics"]["temperature"])

    def text_tower(self) -> TextTower:
        """The offline model's text tower as its card names it, and what to install when it is missing."""
        card = cm.read_card(self.weights)
        t = card.get("text_tower")
        if not t:
            return TextTower("", "", "", 0, None, card)
        missing = None
        try:
            cm.text_tower_dir(t["import"], t["version"])
        except Unavailable as e:
            missing = str(e)
        return TextTower(t["model"], t["package"], t["version"], int(t.get("parameters", 0)), missing, card)

    def _load_model(self) -> Loaded:
        """THE place the model is chosen and loaded: the hub tag when the hub is reachable, else (or when
        the hub model fails to load) the bundled checkpoint, through the same open_clip factory call."""
        from playground.core.checkpoint import sha256

        dev = device.for_bundled()     # on ZeroGPU the CPU, hub model too: a query encodes in milliseconds
        note = None
        if self.source().kind == "hub":
            name, _, tag = self.hub_setting.partition(":")
            try:
                hub_model = cm.load(name, tag or None, dev, cache_dir=self.settings.cache_dir / "open_clip_hub")
                return Loaded(cm.ClipRunner(*hub_model, f"open_clip-{name}-{tag}", dev))
            except Exception as e:  # noqa: BLE001 - the hub failing means: run the bundled model
                note = f"the hub model failed to load ({type(e).__name__}); using the bundled model"
        model = cm.load_bundled(self.weights, self.settings.cache_dir / "open_clip_configs", dev)
        return Loaded(cm.ClipRunner(*model, f"bundled-{sha256(self.weights)[:16]}", dev), note)

    def loaded(self) -> Loaded:
        key = ("clip", "model", self.hub_setting, str(self.weights), str(device.for_bundled()), str(self.settings.cache_dir))
        return cache.once(key, self._load_model)

    def runner(self) -> cm.ClipRunner:
        return self.loaded().runner

    def encode_texts(self, texts) -> np.ndarray:
        """(T, D) unit rows for `texts`; concurrent users' texts are encoded in one forward pass."""
        return self._batcher("texts", lambda r, flat: r.encode_texts(flat))(tuple(texts))

    def encode_images(self, imgs) -> np.ndarray:
        """(N, D) unit rows for PIL images; concurrent users' images are encoded in one forward pass."""
        return self._batcher("images", lambda r, flat: r.encode_pils(flat))(tuple(imgs))

    def _batcher(self, kind: str, encode: Callable) -> Batcher:
        """One micro-batcher per model and kind: each item is one user's tuple of inputs; the batch
        encodes all of them at once and gives each user their own rows (equal to encoding them alone
        up to float rounding: padding to a longer text changes nothing under the attention mask)."""
        r = self.runner()

        def run(groups: list[tuple]) -> list[np.ndarray]:
            with r.lock:
                rows = encode(r, [x for g in groups for x in g])
            ends = np.cumsum([len(g) for g in groups])
            return [rows[e - len(g):e] for g, e in zip(groups, ends)]

        return cache.once(("clip", "batcher", kind, id(r)), lambda: Batcher(run, name=f"clip {kind}"))

    def gallery(self) -> Gallery:
        return cache.once(("clip", "gallery", str(self.settings.cache_dir)),
                          lambda: Gallery(cache=self.settings.cache_dir))

    def gallery_index(self, progress: Progress | None = None) -> np.ndarray:
        """(N, D) embeddings of the bundled gallery for the running model (disk cache keyed by model and
        image hash, under the cache folder); one indexing at a time, later callers find it done."""
        r, g = self.runner(), self.gallery()

        def build() -> np.ndarray:
            store = EmbeddingCache(self.settings.cache_dir / "clip_embeddings", r.model_id)
            with r.lock:
                return index(g, r.encode_pils, store, progress=progress)

        return cache.once(("clip", "index", r.model_id, str(self.settings.cache_dir)), build)

    def _all(self, session: Session) -> tuple[np.ndarray, list[tuple[str, int]]]:
        emb = self.gallery_index()
        refs = [("b", i) for i in range(len(emb))]
        if session.uploads:
            emb = np.concatenate([emb, np.stack([u.emb for u in session.uploads])])
            refs += [("u", j) for j in range(len(session.uploads))]
        return emb, refs

    def _thumb_title(self, session: Session, ref: tuple[str, int]) -> tuple[Image.Image, str]:
        kind, i = ref
        if kind == "u":
            return session.uploads[i].thumb, session.uploads[i].title
        g = self.gallery()
        return g.thumb(i), g.items[i].title

    def gallery_titles(self) -> list[str]:
        """Every bundled gallery image's title, in gallery order (what the zero-shot picker offers)."""
        return [it.title for it in self.gallery().items]

    def _pick(self, title) -> int:
        """A gallery image by its exact title (the zero-shot picker, a lesson link), as its index."""
        title = validate.text("Gallery image", title, max_chars=MAX_LINE_CHARS)
        for i, it in enumerate(self.gallery().items):
            if it.title == title:
                return i
        raise InputError(f"No gallery image is called “{title[:60]}”; pick one from the list.")

    def gallery_title(self, title) -> str:
        """The title itself when a gallery image has it, else InputError (a lesson link's check)."""
        return self.gallery().items[self._pick(title)].title

    def _find(self, title: str, session: Session) -> tuple[str, int]:
        """A gallery image by its title (exact, then prefix, then substring), or 'upload N'."""
        t = title.strip().lower()
        for j, u in enumerate(session.uploads):
            if u.title == t:
                return ("u", j)
        items = self.gallery().items
        for test in (lambda s: s == t, lambda s: s.startswith(t), lambda s: t in s):
            for i, it in enumerate(items):
                if test(it.title.lower()):
                    return ("b", i)
        raise InputError(f"No gallery image is called “{title[:60]}”; use a title shown under a search result, "
                         "or “upload 1” for your first upload.")

    # --- user actions ------------------------------------------------------------------------------------

    def index_gallery(self, progress: Progress | None = None) -> IndexInfo:
        t0 = time.perf_counter()
        if progress:
            progress(0.0, "loading the model")
        loaded = self.loaded()
        emb = self.gallery_index(progress)
        counts: dict[str, int] = {}
        for it in self.gallery().items:
            counts[it.source] = counts.get(it.source, 0) + 1
        return IndexInfo(len(emb), counts, int(emb.shape[1]), loaded.runner.model_id, time.perf_counter() - t0,
                         loaded.note)

    def _search(self, query: np.ndarray, k: int, session: Session, what: str) -> Found:
        emb, refs = self._all(session)
        t0 = time.perf_counter()
        idx, scores = cm.topk(query, emb, k)
        ms = (time.perf_counter() - t0) * 1000
        session.results = [refs[i] for i in idx]
        hits = [(*self._thumb_title(session, ref), float(s)) for ref, s in zip(session.results, scores)]
        return Found(hits, len(emb), what, ms, session)

    def _search_with(self, encode: Callable[[], np.ndarray], k, session, what: str,
                     progress: Progress | None) -> Found:
        k = validate.integer("Top k", k, K[0], K[1])
        session = _session(session)
        self.gallery_index(progress)
        return self._search(encode(), k, session, what)

    def search_text(self, query, k, session, progress: Progress | None = None) -> Found:
        query = validate.text("Query", query, max_chars=MAX_QUERY_CHARS)
        return self._search_with(lambda: self.encode_texts([query])[0], k, session, f"the text “{query}”", progress)

    def search_image(self, image, k, session, progress: Progress | None = None) -> Found:
        img = validate.image(image, name="Query image")
        return self._search_with(lambda: self.encode_images([img])[0], k, session, "your image", progress)

    def search_result(self, k, session, clicked) -> Found:
        """Search with one of the user's last results, addressed by its place in that list (a click)."""
        k = validate.integer("Top k", k, K[0], K[1])
        session = _session(session)
        if isinstance(clicked, bool) or not isinstance(clicked, int) or not 0 <= clicked < len(session.results):
            raise InputError("Click one of the results to search with it.")
        ref = session.results[clicked]
        emb, refs = self._all(session)
        _, title = self._thumb_title(session, ref)
        return self._search(emb[refs.index(ref)], k, session, f"the image “{title}”")

    def upload(self, files, session, progress: Progress | None = None) -> Session:
        session = _session(session)
        if not files:
            raise InputError("Choose one or more image files to add.")
        if not isinstance(files, list):
            files = [files]
        if len(files) > MAX_FILES_PER_CALL:
            raise InputError(f"Add at most {MAX_FILES_PER_CALL} images at a time.")
        if len(session.uploads) + len(files) > MAX_UPLOADS:
            raise InputError(f"This session holds at most {MAX_UPLOADS} uploads; reload the page to start again.")
        imgs = [validate.image(f, name=f"Upload {i + 1}") for i, f in enumerate(files)]   # type, bytes, pixels
        if progress:
            progress(0.2, "encoding your images")
        emb = self.encode_images(imgs)
        for img, e in zip(imgs, emb):
            session.uploads.append(Upload(f"upload {len(session.uploads) + 1}", pixel_hash(img), thumbnail(img), e))
        return session

    def classify(self, image, labels, mode, template, temperature) -> Classified:
        img = validate.image(image, name="Image")
        return self._classify(img, labels, mode, template, temperature)

    def classify_pick(self, title, labels, mode, template, temperature) -> Classified:
        """Classify a gallery image named by its title (what a lesson link can carry; an upload cannot)."""
        i, g = self._pick(title), self.gallery()
        c = self._classify(g.images[i], labels, mode, template, temperature)
        c.image, c.title = g.images[i], g.items[i].title      # the very pixels classified
        return c

    def _classify(self, img: Image.Image, labels, mode, template, temperature) -> Classified:
        labels = _labels(labels)
        mode = validate.choice("Templates", mode, TEMPLATE_MODES)
        temperature = validate.number("Temperature", temperature, *TEMPERATURE)
        templates = {TEMPLATE_MODES[0]: (cm.SINGLE_TEMPLATE,), TEMPLATE_MODES[1]: cm.ENSEMBLE_TEMPLATES}.get(mode)
        templates = templates or (_template(template),)
        r = self.runner()
        x = self.encode_images([img])[0]
        with r.lock:
            ce = r.class_embeddings(labels, templates)
        cos = ce @ x                                                   # (L,)
        return Classified(labels, cos, _softmax(cos, temperature), tuple(templates), r.temperature)

    def matrix(self, texts, images, temperature, session) -> Matrix:
        texts = _lines("Texts", texts, MAX_MATRIX)
        titles = _lines("Images", images, MAX_MATRIX)
        temperature = validate.number("Temperature", temperature, *TEMPERATURE)
        session = _session(session)
        emb_all, refs = self._all(session)
        chosen = [self._find(t, session) for t in titles]
        ie = emb_all[[refs.index(c) for c in chosen]]
        r = self.runner()
        te = self.encode_texts(texts)
        sim = te @ ie.T                                               # (N texts, M images)
        shown = [self._thumb_title(session, c) for c in chosen]
        loss = cm.info_nce(sim, temperature) if len(texts) == len(titles) else None
        return Matrix(sim, texts, [t for _, t in shown], [im for im, _ in shown], temperature, loss, r.temperature)

    def embedding_map(self, n, session) -> GapMap:
        """Emoji images and their names, spread evenly over the gallery's emoji: the modality gap in view."""
        n = validate.integer("Pairs", n, MAP_PAIRS[0], MAP_PAIRS[1])
        _session(session)
        emb, g = self.gallery_index(), self.gallery()
        emoji_idx = [i for i, it in enumerate(g.items) if it.source == "emoji"]
        pick = [emoji_idx[i] for i in np.linspace(0, len(emoji_idx) - 1, min(n, len(emoji_idx))).astype(int)]
        names = [g.items[i].title for i in pick]
        te = self.encode_texts(names)
        ie = emb[pick]
        return GapMap(ie, te, names, cm.modality_gap(ie, te, GAP_SWAPS))

    def examples(self) -> list[list[str]]:
        """[image path, labels] rows for the zero-shot examples: bundled images, then scikit-image photos."""
        rows = [[str(EXAMPLES / f), labels] for f, labels in EXAMPLE_ROWS if (EXAMPLES / f).exists()]
        try:
            import skimage
        except ImportError:
            return rows
        d = Path(skimage.__file__).parent / "data"
        return rows + [[str(d / f), labels] for f, labels in PHOTO_EXAMPLE_ROWS if (d / f).exists()]

    # --- the guided tour ---------------------------------------------------------------------------------

    def tour_check(self, check: str, args: dict, values: dict):
        """A tour step's answer, computed on the running model at reveal time (core.lesson.Reveal).
        `args` holds the step's state under the lab's control names (img, labels, tau, q, ...), anything
        else the check needs, and the step's `choices` (the answer is one of them); a control the args
        leave out is read from the learner's current controls (`values`)."""
        from playground.core.lesson import Reveal

        a, choices = {**(values or {}), **(args or {})}, list((args or {}).get("choices") or [])
        tau = validate.number("Temperature", a.get("tau", round(self.default_temperature(), 3)), *TEMPERATURE)

        def zs(mode=None, t=None) -> Classified:
            return self.classify_pick(a.get("img", DEFAULT_PICK), a.get("labels", FASHION_LABEL_TEXT),
                                      mode or a.get("templates", TEMPLATE_MODES[1]), a.get("template", ""), t or tau)

        def ranking(c: Classified, probs: bool = False) -> str:
            v = c.probs if probs else c.cosines
            return " > ".join(f"{c.labels[i]} ({v[i]:.3f})" for i in np.argsort(-c.cosines))

        if check == "zero_shot_top":                  # which label wins for a gallery image
            c = zs()
            top = c.labels[int(np.argmax(c.cosines))]
            return Reveal(top, f"“{c.title}”, cosine with each label ({len(c.templates)} prompt(s) per label): "
                               f"{ranking(c)}. At τ = {tau:g}: p = {ranking(c, probs=True)}.")
        if check == "ensemble_order":                 # one template against the ensemble
            one, ens = zs(TEMPLATE_MODES[0]), zs(TEMPLATE_MODES[1])
            r1, r2 = (list(np.argsort(-c.cosines)) for c in (one, ens))
            answer = choices[0] if r1[0] != r2[0] else choices[1] if r1 != r2 else choices[2]
            return Reveal(answer, f"“{one.title}”. One template (“{cm.SINGLE_TEMPLATE}”): {ranking(one)}. "
                                  f"The ensemble of {len(ens.templates)} templates: {ranking(ens)}.")
        if check == "temperature_effect":             # the same cosines at a higher and a lower temperature
            lo = validate.number("tau_low", args.get("tau_low"), *TEMPERATURE)
            hi, low = zs(t=tau), zs(t=lo)
            n = len(hi.labels)
            swapped = sum(1 for i in range(n) for j in range(n) if hi.probs[i] > hi.probs[j] and low.probs[i] < low.probs[j])
            ent = [float(-(c.probs[c.probs > 0] * np.log(c.probs[c.probs > 0])).sum()) for c in (hi, low)]
            spread = abs(ent[1] - ent[0]) > TOUR_SPREAD_NATS
            answer = choices[2] if swapped and spread else choices[0] if swapped else choices[1] if spread else choices[3]
            return Reveal(answer, f"“{hi.title}”. At τ = {tau:g}: {ranking(hi, True)} (entropy {ent[0]:.3f} nats). "
                                  f"At τ = {lo:g}: {ranking(low, True)} (entropy {ent[1]:.3f} nats). Pairs of labels "
                                  f"whose order swapped: {swapped}; the entropy moved by {abs(ent[1] - ent[0]):.3f} "
                                  f"nats (a change of spread counts above {TOUR_SPREAD_NATS:g}).")
        if check == "infonce_temperature":            # the loss of a matched batch at two temperatures
            hi_t = a.get("mtau", tau)
            lo = validate.number("tau_low", args.get("tau_low"), *TEMPERATURE)
            m = self.matrix(a.get("texts", MATRIX_EXAMPLE), a.get("images", MATRIX_EXAMPLE), hi_t, None)
            if m.loss is None:
                raise InputError("Tour: this step's matrix needs as many texts as images.")
            low = cm.info_nce(m.sim, lo)
            rel = (low - m.loss) / max(m.loss, 1e-12)
            answer = choices[0] if rel < -TOUR_LOSS_SAME else choices[1] if rel > TOUR_LOSS_SAME else choices[2]
            n, d = len(m.texts), np.arange(len(m.texts))
            rows, cols = int((m.sim.argmax(1) == d).sum()), int((m.sim.argmax(0) == d).sum())
            return Reveal(answer, f"InfoNCE of these {n} pairs: {m.loss:.4f} at τ = {m.temperature:g}, {low:.4f} at "
                                  f"τ = {lo:g} ({rel:+.0%}). The matching pair has the highest cosine in {rows} of "
                                  f"{n} rows and {cols} of {n} columns.")
        if check == "modality_gap":                   # image and text centroids against random swaps
            gm = self.embedding_map(a.get("pairs", MAP_PAIRS[2]), None)
            g = gm.gap
            answer = choices[1] if g["centroid_distance"] > g["chance_max"] else choices[0]
            return Reveal(answer, f"{len(gm.names)} emoji and their names: the image centroid and the text centroid are "
                                  f"{g['centroid_distance']:.3f} apart; {g['swaps']} random image/caption swaps gave "
                                  f"at most {g['chance_max']:.3f}. An image sits {g['pair_distance']:.3f} from its own "
                                  f"name on average. Mean cosine: image-image {g['image_image_cos']:.3f}, "
                                  f"text-text {g['text_text_cos']:.3f}, any image-text {g['image_text_cos']:.3f}, "
                                  f"matched pairs {g['matched_cos']:.3f}.")
        if check == "paraphrase":                     # an everyday query against the gallery's titles
            q = validate.text("Query", a.get("q", DEFAULT_QUERY), max_chars=MAX_QUERY_CHARS)
            row = next((x for x in read_queries() if x.text == q), None)
            if row is None:
                raise InputError(f"Tour: “{q[:60]}” is not in the paraphrase set (assets/clip/paraphrase_queries.csv).")
            found = self.search_text(q, a.get("k", K[2]), None)
            first = next((r for r, (_, title, _) in enumerate(found.hits) if is_hit(title, row)), None)
            answer = choices[2] if first is None else choices[0] if first == 0 else choices[1]
            top = "; ".join(f"{r + 1}. {title} ({s:.3f})" for r, (_, title, s) in enumerate(found.hits))
            return Reveal(answer, f"Top {len(found.hits)} for “{q}”: {top}. A title counts when it holds "
                                  f"{' / '.join(row.hits)}" + (f" (not {' / '.join(row.nots)})" if row.nots else "") +
                                  f" (the paraphrase set, {QUERIES.name}, kept out of training).")
        raise InputError(f"Tour: this lab has no check called {str(check)[:40]!r}.")

    # --- Home and the load script ------------------------------------------------------------------------

    def speed_probe(self) -> dict:
        """One text query over the gallery index: text encoder (a query not remembered) + matmul + top-k."""
        emb, r = self.gallery_index(), self.runner()

        def query():
            with r.lock:
                return cm.topk(r.encode_texts([DEFAULT_QUERY], remember=False)[0], emb, K[2])

        return {"family": "CLIP", "what": f"a text query over {len(emb):,} images",
                "seconds": timing.median_seconds(query)}

    def load_calls(self) -> list:
        """Calls the load script sends (api_name, args); the session state is the component's default."""
        t = round(self.default_temperature(), 3)
        return [("clip_search_text", [DEFAULT_QUERY, K[2]]), ("clip_matrix", ["red apple\nrocket", "red apple\nrocket", t])]
