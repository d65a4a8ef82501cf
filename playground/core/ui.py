"""The only Gradio helpers (with the tabs, the only place that imports gradio).

- `handler(fn, render)`: how every tab wires a service call to an event. It keeps `fn`'s signature
  (Gradio reads it to count inputs), turns the user-facing errors of `core.errors` into a gr.Error with
  the same message (not logged: a user's mistake is not the server's error), applies `render` (plain data -> component values) to the result or to each value a
  generator yields, keeps generator functions generators (Gradio streams only those), and injects a
  gr.Progress when `fn` has a `progress` parameter (the service sees a plain `progress(frac, desc)`).
- `LATEX`, `IMAGE`: the settings every tab uses for equations and for pictures of small images.
- `raw_payloads(blocks)`: every event of the app hands its inputs to the service as sent (Gradio's
  own preprocessing off), so that one validation policy (core/validate.py) answers every caller, the
  browser and the API alike: a slider value out of range is clamped by the service instead of being
  refused by the component, a string where a number belongs gets a message naming the field, and
  an upload arrives as its file reference ({"path": ...}, which Gradio has already checked is an
  upload) for `validate.image`. app.py and `standalone` apply it after building the tabs.
- `Blocks`: gr.Blocks that answers a malformed file reference (`7` or `"x"` sent where an upload
  belongs, which Gradio's own payload model refuses before any preprocessing) with a gr.Error that
  names the field, instead of an unhandled exception.
- `standalone(lab_key)`: serve one lab alone, `python -m playground.<lab>.tab`.

Importing this module also makes Gradio's result-file cache safe for a class: Gradio names a cached
result by the hash of its bytes and (in save_pil_to_cache / save_bytes_to_cache) rewrites that file in
place on every call. Two students who get the same picture share one path, so one student's download
could read a file that the other's call had just truncated ("peer closed connection without sending
complete message body"). `_atomic_cache_writes` writes under a temporary name and renames into place,
as Gradio's own save_file_to_cache already does: a reader keeps the complete old file, never a torn one.

It also sets how often Gradio's queue recomputes its monitoring summary (a pandas table of up to
10,000 recent events, grouped, with percentiles): after every event by default, so each call of a
class's hour costs a pass over all the others (3 % of the server's CPU in a 2-minute class run, and
growing with the run). Every 100 events here (`GRADIO_ANALYTICS_CACHE_FREQUENCY` still decides).
And it keeps two costs out of the server's event loop, where every request waits for them: a new
session's copy of every component's config (`_lazy_session_configs`), and the search for matplotlib
that Gradio repeats around every event where it is not installed (`_no_matplotlib_search`).
"""
from __future__ import annotations

import functools
import inspect
import os
import tempfile
import threading
import weakref
from pathlib import Path
from collections.abc import Callable
from typing import Any

import gradio as gr
from pydantic import ValidationError

from playground.core import device, fair, lesson
from playground.core.errors import PlaygroundError

os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")      # read when a Blocks' queue is made


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_cache_writes() -> None:
    """Replace Gradio's two in-place cache writers by atomic ones (same names, paths and contents)."""
    from gradio import processing_utils as pu

    if getattr(pu.save_pil_to_cache, "atomic", False):
        return

    def save_pil_to_cache(img, cache_dir: str, name: str = "image", format: str = "webp") -> str:
        data = pu.encode_pil_to_bytes(img, format)
        folder = Path(cache_dir) / pu.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        path = (folder / f"{name}.{format}").resolve()
        _atomic_write(path, data)
        return str(path)

    def save_bytes_to_cache(data: bytes, file_name: str, cache_dir: str) -> str:
        folder = Path(cache_dir) / pu.hash_bytes(data)
        folder.mkdir(exist_ok=True, parents=True)
        if not Path(file_name).suffix:
            file_name = file_name + pu.detect_audio_format(data)
        path = (folder / Path(file_name).name).resolve()
        _atomic_write(path, data)
        return str(path)

    save_pil_to_cache.atomic = save_bytes_to_cache.atomic = True
    pu.save_pil_to_cache, pu.save_bytes_to_cache = save_pil_to_cache, save_bytes_to_cache


_atomic_cache_writes()


class _SessionConfigs(dict):
    """A session's `config_values` (Gradio's per-session copy of every component's config, which only
    its deep-link route reads), filled on the first read of the whole of it instead of when the session
    starts. An entry that the session changes (a value, a component replaced) is set as before and kept;
    the others are computed from the session's blocks when filled, as they would have been at its start,
    in the blocks' order. It holds its session weakly: a closed session is freed as before (a reference
    cycle would wait for the collector, and the server freezes what is alive after each model load)."""

    def __init__(self, session, blocks):
        super().__init__()
        self._pending = (weakref.ref(session), blocks)
        self._lock = threading.Lock()

    def _fill(self) -> None:
        with self._lock:
            if self._pending is None:
                return
            session, blocks = self._pending[0](), self._pending[1]
            if session is not None:
                bc = session.blocks_config
                full = {k: dict.__getitem__(self, k) if dict.__contains__(self, k) else bc.config_for_block(k, [], v)
                        for k, v in list(bc.blocks.items()) if k in blocks.blocks}
                for k, v in dict.items(self):             # a component the session added (a render)
                    full.setdefault(k, v)
                dict.clear(self)
                dict.update(self, full)
            self._pending = None

    def __missing__(self, key):
        self._fill()
        if dict.__contains__(self, key):
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def __iter__(self):
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def items(self):
        self._fill()
        return super().items()

    def keys(self):
        self._fill()
        return super().keys()

    def values(self):
        self._fill()
        return super().values()


def _lazy_session_configs() -> None:
    """Gradio builds a new session's `config_values` (the config of each of the app's 640 components,
    inspecting their signatures) in the server's event loop when the session's first event arrives:
    47 ms alone, 60-190 ms in a class, during which no request moves. Thirty students starting at once
    stalled every request of the class's first seconds. The session starts with an empty
    `_SessionConfigs` instead (Gradio's own __init__ runs on a view of the app with no components)."""
    from types import SimpleNamespace

    from gradio import state_holder

    init = state_holder.SessionState.__init__
    if getattr(init, "lazy", False):
        return

    def __init__(self, blocks):
        init(self, SimpleNamespace(default_config=blocks.default_config, blocks={}))
        self.config_values = _SessionConfigs(self, blocks)

    __init__.lazy = True
    state_holder.SessionState.__init__ = __init__


_lazy_session_configs()


def _no_matplotlib_search() -> None:
    """Gradio tries `import matplotlib` twice around every event (to set its backend and back). Where it
    is not installed, each failed import searches sys.path again: file-system calls in the event loop,
    each of which hands the interpreter lock to another thread and waits to get it back. Marked absent
    once, the import fails at once."""
    import importlib.util
    import sys

    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None


_no_matplotlib_search()

# The page's style (Gradio keeps each rule as written and adds a copy scoped to the app; inside @media
# only the scoped copy is kept, so rules for the page itself stay outside media queries): equations, crisp small images, presenter mode (body.presenter: projector-sized type and
# images, advanced controls folded) and phones (a lab's result column, .result-sticky, comes first and
# stays in view while its controls scroll under it; a .result-pair row in it stays one row of small images).
CSS = """
.equation { font-size: 1.05em; }
.big-image img { image-rendering: pixelated; }
#classroom-bar { align-items: center; }
#copy-link { max-height: 44px; }
body.presenter .gradio-container { font-size: 130%; max-width: 100% !important; }
body.presenter .advanced { display: none !important; }
body.presenter .big-image img, body.presenter .vae-live img { min-height: 40vh; min-width: 40vh; }
body.presenter .equation { font-size: 1.25em; }
.gradio-container { overflow: clip !important; }   /* Gradio's 'hidden' would make it the sticky's scroller */
@media (max-width: 700px) {
  #lesson-link { flex: 1 1 100% !important; }   /* the link takes its own line: the presenter switch stays whole */
  .result-sticky { order: -1; position: sticky; top: 0; z-index: 1000; isolation: isolate;
                   background: var(--body-background-fill, #fff); box-shadow: 0 2px 6px rgba(0, 0, 0, 0.15); }
  .result-sticky img { max-height: 30vh; width: auto; object-fit: contain; }
  .result-sticky .result-pair { flex-wrap: nowrap !important; }  /* what the result is made of: small, side by side */
  .result-sticky .result-pair > .block { min-width: 0 !important; }
  .result-sticky .result-pair img { max-height: 14vh; }
  .result-sticky .equation { display: none; }
}
"""

# Contrast for a projector and for axe-core's WCAG AA check: a darker primary and darker secondary text
# than Gradio's defaults (whose orange buttons and grey slider limits fall below 4.5:1 on white).
THEME = gr.themes.Default(primary_hue="indigo").set(
    body_text_color_subdued="*neutral_600", body_text_color_subdued_dark="*neutral_300",
    button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
    button_primary_background_fill_dark="*primary_600", button_primary_text_color="white",
    slider_color="*primary_700", checkbox_background_color_selected="*primary_700",
    link_text_color="*primary_700", link_text_color_visited="*primary_800",
    color_accent="*primary_600")                    # a selected tab's name: 4.46:1 at primary_500

# Plotly draws a figure's title and its panels' titles on one line, whatever the width: on a phone (a
# screen up to 700 px wide) a long title ran off the figure and side-by-side panels' titles ran into each
# other. Once a figure is drawn and displayed, a title wider than its room is set smaller and wrapped at
# words (the figure's top margin grows by the lines added; the title's first line stays where it was), and
# plotly's default 80 px side margins, where a figure leaves them, become 40 and 16. Each figure once per
# width (its layout is marked: __phoneFit when begun, __phoneFitDone when drawn); a wider screen is left
# alone. It runs at most every 300 ms, after a change to the page.
PHONE_PLOTS = r"""
() => {
  const phone = window.matchMedia('(max-width: 700px)');
  const BR = /<br\s*\/?>/i, shown = (s) => s.replace(/<[^>]*>/g, '');
  const wrap = (text, chars) => text.split(BR).map(line => {
    const out = [];
    let cur = '';
    for (const w of line.split(' ')) {
      if (cur && shown(cur + ' ' + w).length > chars) { out.push(cur); cur = w; } else { cur = cur ? cur + ' ' + w : w; }
    }
    out.push(cur);
    return out.join('<br>');
  }).join('<br>');
  const lines = (t) => t.split(BR).length;
  // the text wrapped into lines of at most `room` px once drawn at font size `size` (it is drawn at `was`)
  const fitText = (el, text, room, was, size) => {
    if (!el || !text) return null;
    const longest = Math.max(...text.split(BR).map(l => shown(l).length));
    const w = el.getBBox().width;
    if (w <= room) return null;                                             // it fits as it is
    return wrap(text, Math.max(6, Math.floor(room / (w / Math.max(1, longest) * size / was))));
  };
  const top = (gd, e) => e.getBoundingClientRect().top - gd.getBoundingClientRect().top;
  const fit = (gd) => {
    const L = gd._fullLayout, lay = gd.layout;        // Gradio draws each new figure with a new layout object
    if (!L || !lay || !window.Plotly || !gd.offsetWidth || lay.__phoneFit === L.width) return;   // drawn, displayed
    lay.__phoneFit = L.width;                          // once per figure and width (a failed relayout is not retried)
    const done = () => { lay.__phoneFitDone = L.width; };
    const upd = {}, set = lay.margin || {};
    // plotly's default side margins (80 px each) took half of a phone's plot: narrower, where a figure left them
    if (set.l === undefined && L.margin.l > 40) upd['margin.l'] = 40;
    if (set.r === undefined && L.margin.r > 16) upd['margin.r'] = 16;
    const w = L._size.w + (L.margin.l - (upd['margin.l'] ?? L.margin.l)) + (L.margin.r - (upd['margin.r'] ?? L.margin.r));
    const title = L.title && L.title.text, tel = title ? gd.querySelector('.g-gtitle .gtitle') : null;
    const tsize = L.title.font.size || 17, tnew = Math.min(tsize, 14);
    const t = fitText(tel, title, L.width - 16, tsize, tnew);
    let grow = 0, sub = 0;
    if (t) {
      Object.assign(upd, {'title.text': t, 'title.font.size': tnew});
      grow += lines(t) * 1.3 * tnew - lines(title) * 1.3 * tsize;
    }
    (L.annotations || []).forEach((a, i) => {         // panel titles: above the top of the figure's panels
      if (a.xref !== 'paper' || a.yref !== 'paper' || a.y < 0.98 || a.showarrow) return;
      const d = Object.keys(L).filter(k => /^xaxis\d*$/.test(k)).map(k => L[k].domain)
        .find(d => d[0] - 0.02 <= a.x && a.x <= d[1] + 0.02);
      const size = (a.font && a.font.size) || 12, snew = Math.min(size, 11);
      const at = fitText(gd.querySelector(`.annotation[data-index="${i}"] .annotation-text`), a.text,
                         (d ? d[1] - d[0] : 1) * w * 0.95, size, snew);
      if (at) {
        upd[`annotations[${i}].text`] = at;
        upd[`annotations[${i}].font.size`] = snew;
        sub = Math.max(sub, lines(at) * 1.3 * snew - lines(a.text) * 1.3 * size);
      }
    });
    grow += Math.max(0, sub);
    if (grow > 0) upd['margin.t'] = Math.round(L.margin.t + grow);
    if (!Object.keys(upd).length) { done(); return; }
    const before = tel && top(gd, tel);
    if (tel && upd['margin.t']) {                      // a taller top margin: the title's first line stays where it was
      Object.assign(upd, {'title.yref': 'container', 'title.yanchor': 'top', 'title.y': 1 - Math.max(0, before) / L.height});
    }
    window.Plotly.relayout(gd, upd).then(() => {
      const now = tel && upd['margin.t'] && gd.layout === lay && gd.querySelector('.g-gtitle .gtitle');
      const off = now ? top(gd, now) - before : 0;    // plotly's 'top' anchor is approximate: put the top back
      return Math.abs(off) > 1 ? window.Plotly.relayout(gd, {'title.y': gd._fullLayout.title.y + off / L.height}) : null;
    }).catch(() => {}).then(done);
  };
  let timer = null;
  const fitAll = () => {
    timer = null;
    if (phone.matches) document.querySelectorAll('.js-plotly-plot').forEach(gd => { try { fit(gd); } catch (e) { /* next */ } });
  };
  return () => { if (!timer && phone.matches) timer = setTimeout(fitAll, 300); };   // a wide screen: nothing
}
"""

# Repairs of Gradio's own markup, for screen readers (and axe-core): an empty image box carries an
# aria-label without a role; a gallery thumbnail is labelled "Thumbnail i of n" while it shows a
# caption; the upload area's button is labelled otherwise than its visible text. Applied on load and
# whenever the page changes.
PAGE_JS = r"""
() => {
  const fix = () => {
    document.querySelectorAll('.empty[aria-label]:not([role])').forEach(e => e.setAttribute('role', 'img'));
    document.querySelectorAll('.thumbnail-item[aria-label]').forEach(e => {
      const cap = (e.innerText || '').trim();
      if (cap && !e.getAttribute('aria-label').includes(cap)) e.setAttribute('aria-label', cap);
    });
    document.querySelectorAll('button[aria-label="Click to upload or drop files"], [aria-dropeffect][aria-label]').forEach(e => {
      const t = (e.innerText || '').replace(/\s+/g, ' ').trim();
      if (t) e.setAttribute('aria-label', t);
    });
  };
  const fitPlots = (PHONE_PLOTS)();
  fix();
  fitPlots();
  new MutationObserver(() => { fix(); fitPlots(); }).observe(document.body, {subtree: true, childList: true, attributes: false});
}
""".replace("PHONE_PLOTS", PHONE_PLOTS.strip())

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
# A generated picture, sent as PNG (Gradio's default WebP took 25 ms to encode a Diffusion forward row).
PNG = dict(type="pil", format="png", interactive=False)
# Small generated images (28-32 px) shown large with crisp pixels (CSS .big-image; presenter mode enlarges them).
IMAGE = dict(PNG, elem_classes=["big-image"])


LAUNCH = dict(css=CSS, theme=THEME, js=PAGE_JS)     # every launch of the app: app.py, standalone, tests

device.notify = gr.Warning     # a GPU call that fell back to the bundled model says so in a toast


def _plain_progress(gr_progress):
    """A gr.Progress seen by a service as a plain callable progress(frac, desc=None)."""
    def report(frac: float, desc: str | None = None) -> None:
        gr_progress(float(frac), desc=desc)
    return report


def handler(fn: Callable, render: Callable[[Any], Any] | None = None) -> Callable:
    """Wrap a service call for a Gradio event (see the module docstring)."""
    sig = inspect.signature(fn)
    has_progress = "progress" in sig.parameters

    def call(args, kwargs):
        device.request_threads()                 # this worker thread's torch threads (settings.threads)
        if not has_progress:
            return fn(*args, **kwargs)
        bound = sig.bind(*args, **kwargs)
        tracker = bound.arguments.get("progress")
        bound.arguments["progress"] = _plain_progress(tracker if isinstance(tracker, gr.Progress) else gr.Progress())
        return fn(*bound.args, **bound.kwargs)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                steps = call(args, kwargs)
                while True:
                    with fair.job():                 # each step, in the thread Gradio runs it in
                        try:
                            value = next(steps)
                        except StopIteration:
                            return
                        shown = render(value) if render else value
                    yield shown
            except PlaygroundError as e:
                raise gr.Error(str(e), print_exception=False) from None
    else:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with fair.job():
                try:
                    value = call(args, kwargs)
                except PlaygroundError as e:
                    raise gr.Error(str(e), print_exception=False) from None
                return render(value) if render else value

    if has_progress:  # Gradio injects a tracker into a parameter whose default is a gr.Progress
        params = [p.replace(default=gr.Progress()) if p.name == "progress" else p for p in sig.parameters.values()]
        wrapped.__signature__ = sig.replace(parameters=params)
    return wrapped


class SelectData(gr.SelectData):
    """gr.SelectData that also takes an API call with no click: Gradio then passes no event data, and
    gr.SelectData itself fails (TypeError) before the service can say what to do (`index` is None)."""

    def __init__(self, target, data):
        gr.EventData.__init__(self, target, data)
        self.index = (data or {}).get("index")


class Blocks(gr.Blocks):
    """The app's Blocks (see the module docstring)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except ValidationError:
            for block, value in zip(block_fn.inputs, inputs):
                model = getattr(block, "data_model", None)
                try:
                    if model is not None and value is not None:
                        model.model_validate(value, context={"validate_meta": True})
                except ValidationError:
                    name = getattr(block, "label", None) or type(block).__name__
                    files = (gr.Image, gr.File, gr.Gallery, gr.ImageEditor, gr.Audio, gr.Video)
                    want = ('an uploaded file ({"path": ...} from the upload endpoint)' if isinstance(block, files)
                            else "a table {\"headers\": [...], \"data\": [[...], ...]}" if isinstance(block, gr.Dataframe)
                            else f"a value of a {type(block).__name__}")
                    raise gr.Error(f"{name}: expected {want}, not {str(value)[:40]!r}.",
                                   print_exception=False) from None
            raise


# A long job (an evaluation, a structured answer, two chains in lockstep, a GIF, text-to-image) runs at
# most PLAYGROUND_LONG_JOBS at once (default 1) across every lab and user; the others wait in the queue and see
# their place in it. Each already uses every core (torch's intra-op threads), so a second one at once only
# halves both and takes the CPU from the sliders. Events whose concurrent calls a service merges into one
# batch (decodes, chain steps, whole-chain samples, grids) are not in this group: merging needs them together.
LONG = dict(concurrency_id="long-jobs", concurrency_limit=max(1, int(os.environ.get("PLAYGROUND_LONG_JOBS") or 1)))
# The Prompt lab's side-by-side runs: students who press Ask together share one decode loop (engine.Gang), so
# they run together, up to PLAYGROUND_LLM_JOBS (default 8). With float32 weights a row more costs little; with
# int8 each student's rows are their own matrix call (their answers must not depend on each other), so the
# shared loop saves the per-token Python work but not the weight reads. 8 is not yet set from a measurement.
LLM = dict(concurrency_id="llm-jobs", concurrency_limit=max(1, int(os.environ.get("PLAYGROUND_LLM_JOBS") or 8)))


def launch(demo, tries: int = 3, **kw):
    """demo.launch(**kw), tried again when Gradio's start-up check of its own local URL failed: that check
    waits 3 s for one HEAD request, which a busy 2-core machine (a class's server starting beside other
    work, a test run) can miss, and Gradio then refuses to start unless share=True."""
    for i in range(tries):
        try:
            return demo.launch(**kw)
        except ValueError as e:
            if "localhost is not accessible" not in str(e) or i == tries - 1:
                raise
            demo.close()


def shown(value) -> dict:
    """An output box that is shown only when it has something in it (no empty boxes on the page)."""
    return gr.update(value=value, visible=value is not None)


def raw_payloads(blocks: gr.Blocks) -> gr.Blocks:
    """Turn Gradio's preprocessing off for every event with a Python function (see the docstring)."""
    for fn in blocks.fns.values():
        if fn.fn is not None:
            fn.preprocess = False
    return blocks


def standalone(lab_key: str, port: int | None = None) -> None:
    """Serve one lab alone: `python -m playground.<lab>.tab` (settings from the environment)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playground import labs
    from playground.core import cache, device, hub, settings

    cfg = settings.from_env()
    hub.decide(cfg.offline)
    device.configure(cfg.device, cfg.threads)
    cache.serve()                               # what loads once leaves the collector's view (core.cache)
    lab = labs.by_key(lab_key)
    tours = {lab_key: lesson.load_tour(lesson.tour_path(lab_key))} if lesson.tour_path(lab_key).exists() else {}
    with Blocks(title=f"GenAI Playground: {lab.title}", analytics_enabled=False) as demo:
        room = Classroom(tours, default_lab=lab_key)        # links, tours and the first result, as in the app
        with gr.Tabs() as main:
            with gr.Tab(lab.title, id=lab_key) as item:
                room.add(lab_key, item, labs.tab(lab).build(labs.service(lab, cfg)))
        room.wire(demo, main)
    raw_payloads(demo)
    launch(demo.queue(default_concurrency_limit=4), server_name=cfg.host, server_port=port or cfg.port, share=False,
           **LAUNCH)


# --- the classroom layer: lesson links, exports, presenter mode, tours ------------------------------
# The plain half (parsing, checking, tours as data) is core/lesson.py; this is its Gradio wiring.

def param_of(name: str, comp) -> lesson.Param:
    """How a control's value travels in a link, read from the control itself (range, choices, cap)."""
    def options(c):
        return tuple(v for _, v in (c.choices or []))
    if isinstance(comp, gr.Slider):
        whole = float(comp.step or 1).is_integer() and float(comp.minimum).is_integer()
        return lesson.Param(name, "int" if whole else "number", comp.minimum, comp.maximum)
    if isinstance(comp, gr.Number):
        return lesson.Param(name, "int" if comp.precision == 0 else "number", comp.minimum, comp.maximum)
    if isinstance(comp, gr.Checkbox):
        return lesson.Param(name, "flag")
    if isinstance(comp, gr.CheckboxGroup) or (isinstance(comp, gr.Dropdown) and comp.multiselect):
        return lesson.Param(name, "choices", options=options(comp))
    if isinstance(comp, (gr.Dropdown, gr.Radio)):
        return lesson.Param(name, "choice", options=options(comp))
    if isinstance(comp, gr.Textbox):
        return lesson.Param(name, "text", max_chars=min(comp.max_length or lesson.MAX_TEXT, lesson.MAX_TEXT))
    raise TypeError(f"{name}: a {type(comp).__name__} cannot be part of a lesson link")


def _unique(comps: list) -> list:
    out = []
    for c in comps:
        if all(c is not o for o in out):
            out.append(c)
    return out


def _merge(comps: list, values: list, into: dict | None = None) -> dict[int, Any]:
    """{id(component): value}, later values merged into earlier updates of the same component (a
    show may update a control's choices or label while the link sets its value)."""
    upd = {} if into is None else into
    for comp, value in zip(comps, values):
        old = upd.get(id(comp))
        upd[id(comp)] = {**old, **value} if isinstance(old, dict) and isinstance(value, dict) else value
    return upd


class LessonLink:
    """A lab's part of the classroom layer, made by its tab.py and returned from `build`:

        link = ui.LessonLink("vae")
        link.control("dataset", dataset)                       # every control a learner sets
        link.views(tabs, {"sliders": sliders_tab, ...})        # its sub-tabs, by short names
        link.shows(fn, inputs, outputs)                        # what the state shows: fn(view, *values)
        link.checks(svc.tour_check)                            # tour reveals: (check, args, values) -> Reveal
    """

    def __init__(self, lab: str):
        self.lab = lab
        self.controls: dict[str, Any] = {}
        self.params: dict[str, lesson.Param] = {}
        self.tabs = None
        self.view_tabs: dict[str, Any] = {}
        self.show_fn, self.show_inputs, self.show_outputs = None, [], []
        self.check_fn = None

    def control(self, name: str, comp, param: lesson.Param | None = None):
        if name in lesson.RESERVED:
            raise ValueError(f"{name!r} is a link word of the page ({', '.join(lesson.RESERVED)}); name the control otherwise")
        self.controls[name], self.params[name] = comp, param or param_of(name, comp)
        return comp

    def views(self, tabs, named: dict[str, Any]) -> None:
        self.tabs, self.view_tabs = tabs, dict(named)

    def shows(self, fn: Callable, inputs: list, outputs: list) -> None:
        self.show_fn, self.show_inputs, self.show_outputs = fn, list(inputs), list(outputs)

    def checks(self, fn: Callable) -> None:
        self.check_fn = fn


PRESENT_JS = """
(on) => {
  document.body.classList.toggle('presenter', !!on);
  const u = new URL(window.location.href);
  if (on) { u.searchParams.set('present', '1'); } else { u.searchParams.delete('present'); }
  history.replaceState(null, '', u);
  if (!window.__tourKeys) {
    window.__tourKeys = true;
    document.addEventListener('keydown', (e) => {
      if (!document.body.classList.contains('presenter')) return;
      const t = e.target, tag = (t && t.tagName || '').toLowerCase();
      if ((tag === 'input' && t.type !== 'radio') || tag === 'textarea' || (t && t.isContentEditable)) return;
      const click = (id) => { const b = document.querySelector('#' + id); if (b) { b.click(); e.preventDefault(); } };
      if (e.key === 'ArrowRight' || e.key === 'PageDown') click('tour-next');
      else if (e.key === 'ArrowLeft' || e.key === 'PageUp') click('tour-prev');
      else if (e.key === 'Enter' || e.key === 'r' || e.key === 'R') click('tour-reveal');
      else if (/^[1-9]$/.test(e.key)) {
        const opts = document.querySelectorAll('#tour-choice input[type=radio]');
        const o = opts[Number(e.key) - 1];
        if (o) { o.click(); e.preventDefault(); }
      }
    });
  }
  return on;
}
"""
LINK_JS = """
(qs) => {
  if (!qs) return '';
  const u = window.location.origin + window.location.pathname + '?' + qs;
  history.replaceState(null, '', u);
  if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(u).catch(() => {}); }
  return u;
}
"""


class Classroom:
    """The page's classroom bar (create it above the lab tabs), then `add` each lab, then `wire`."""

    def __init__(self, tours: dict[str, lesson.Tour], default_lab: str = "home"):
        self.tours, self.default_lab = tours, default_lab
        self.labs: dict[str, tuple[Any, LessonLink]] = {}
        with gr.Row(elem_id="classroom-bar", equal_height=True):
            self.copy = gr.Button("🔗 Copy link to this view", size="sm", scale=0, min_width=200, elem_id="copy-link")
            self.link = gr.Textbox(label="Lesson link", show_label=False, interactive=False, buttons=["copy"],
                                   placeholder="press Copy link: the address of what you see", scale=4,
                                   elem_id="lesson-link")
            self.present = gr.Checkbox(label="Presenter mode", value=False, scale=0, min_width=160,
                                       elem_id="presenter-toggle")
        self.notice = gr.Markdown(visible=False, elem_id="lesson-notice")
        with gr.Accordion("Make an exercise · export · open saved parameters", open=False, elem_id="lesson-tools",
                          elem_classes=["advanced"]):
            with gr.Row():
                self.hide = gr.CheckboxGroup([], label="Hide these controls in the link", elem_id="lesson-hide")
                self.lock = gr.CheckboxGroup([], label="Lock these controls (shown, not changeable)",
                                             elem_id="lesson-lock")
            with gr.Row():
                self.export = gr.Button("Export parameters (JSON)", size="sm", elem_id="lesson-export")
                self.exported = gr.File(label="Parameters file", interactive=False, elem_id="lesson-json")
                self.opened = gr.File(label="Open a parameters file (.json)", file_types=[".json"],
                                      elem_id="lesson-open")
        with gr.Accordion("Guided tour: predict, then see what the model does", open=False,
                          elem_id="tour") as self.tour_box:
            with gr.Row():
                first = next(iter(tours), None)
                self.tour = gr.Dropdown([(t.title, k) for k, t in tours.items()], value=first,
                                        label="Tour", elem_id="tour-select", scale=3)
                self.prev = gr.Button("◀ Previous", size="sm", elem_id="tour-prev", scale=0, min_width=110)
                self.next = gr.Button("Next ▶", size="sm", variant="primary", elem_id="tour-next", scale=0,
                                      min_width=110)
            self.question = gr.Markdown("Pick a tour and press **Next** (in presenter mode: → next, ← back, "
                                        "1-9 to answer, Enter to reveal).", elem_id="tour-question",
                                        latex_delimiters=LATEX)
            self.choice = gr.Radio([], label="Your answer", elem_id="tour-choice")
            self.reveal = gr.Button("Reveal what the model does", elem_id="tour-reveal")
            self.answer = gr.Markdown(elem_id="tour-answer", latex_delimiters=LATEX)
        self.query = gr.Textbox(visible=False)
        self.current = gr.State("home")
        self.view = gr.State({})
        self.step = gr.State(-1)
        self.seen = gr.State([])

    def add(self, key: str, item, link: LessonLink | None) -> None:
        if link is not None:
            self.labs[key] = (item, link)

    # -- applying a lesson -----------------------------------------------------------------------
    def _controls(self) -> list:
        return [c for _, ln in self.labs.values() for c in ln.controls.values()]

    def _extras(self) -> list:
        """Show inputs that are not controls (per-user state): passed in so a show can use them."""
        ctrl = {id(c) for c in self._controls()}
        out = []
        for _, ln in self.labs.values():
            out += [c for c in ln.show_inputs if id(c) not in ctrl and all(c is not o for o in out)]
        return out

    def _outputs(self) -> list:
        """Every component a lesson can change, each once: the page's, then per lab its sub-tabs, its
        controls and what its show returns (which may update a control too, e.g. a dropdown's choices)."""
        outs = [self.main, self.current, self.view, self.seen, self.notice, self.present, self.hide, self.lock,
                self.tour, self.tour_box]
        for _, ln in self.labs.values():
            outs += ([ln.tabs] if ln.tabs is not None else []) + list(ln.controls.values()) + ln.show_outputs
        return _unique(outs)

    def _split(self, values) -> tuple[dict[str, dict], dict[int, Any]]:
        """Flat input values -> {lab: {control: value}} and {id(extra component): value}."""
        values, per_lab, i = list(values), {}, 0
        for key, (_, ln) in self.labs.items():
            per_lab[key] = dict(zip(ln.controls, values[i:i + len(ln.controls)]))
            i += len(ln.controls)
        return per_lab, {id(c): v for c, v in zip(self._extras(), values[i:])}

    def _show(self, ln: LessonLink, view, current: dict, extras: dict) -> list:
        if ln.show_fn is None:
            return []
        by_comp = {id(c): current[n] for n, c in ln.controls.items()}
        args = [by_comp.get(id(c), extras.get(id(c))) for c in ln.show_inputs]
        try:
            out = ln.show_fn(view, *args)
        except gr.Error as e:                     # a show that cannot run (a missing model) says why
            gr.Warning(str(e.message))
            return [gr.skip()] * len(ln.show_outputs)
        return list(out) if isinstance(out, (list, tuple)) else [out]

    def _apply(self, les: lesson.Lesson, views: dict, seen: list, values) -> list:
        per_lab, extras = self._split(values)
        views, seen = dict(views or {}), list(seen or [])
        upd: dict[int, Any] = {}

        def put(comp, value):                 # a show's update of a control merges into the control's
            _merge([comp], [value], upd)

        if les.lab in self.labs:
            ln = self.labs[les.lab][1]
            if ln.tabs is not None and les.view:
                put(ln.tabs, gr.Tabs(selected=ln.view_tabs[les.view].id))
            # a lesson is a whole state: what the link does not name is at its default (not the page's)
            current = {n: c.value for n, c in ln.controls.items()} | les.values
            for name, comp in ln.controls.items():
                put(comp, gr.update(value=current[name], visible=name not in les.hide,
                                    interactive=name not in les.lock))
            view = les.view or views.get(les.lab)
            views[les.lab] = view
            seen = sorted(set(seen) | {les.lab})
            for comp, value in zip(ln.show_outputs, self._show(ln, view, current, extras)):
                put(comp, value)
        names = list(self.labs[les.lab][1].controls) if les.lab in self.labs else []
        notice = "**Link:** " + " ".join(les.notices) if les.notices else ""
        tour = les.tour if les.tour in self.tours else None          # a link can open a tour: press Next
        # a link can switch presenter mode on (present=1), never off: a tour step keeps the projector view
        # an address without lab= leaves the tab alone (a student may have opened one while the page loaded)
        head = [gr.Tabs(selected=les.lab) if les.chosen else gr.skip(), les.lab if les.chosen else gr.skip(), views, seen, gr.update(value=notice, visible=bool(notice)),
                True if les.present else gr.skip(), gr.update(choices=names, value=les.hide), gr.update(choices=names, value=les.lock),
                tour or gr.skip(), gr.Accordion(open=True) if tour else gr.skip()]
        return head + [upd.get(id(c), gr.skip()) for c in self._outputs()[len(head):]]

    def _params(self) -> dict[str, dict[str, lesson.Param]]:
        params = {k: ln.params for k, (_, ln) in self.labs.items()}
        params.setdefault(self.default_lab, {})              # Home has no controls
        return params

    def _view_names(self) -> dict[str, tuple[str, ...]]:
        return {k: tuple(ln.view_tabs) for k, (_, ln) in self.labs.items()}

    # -- the events --------------------------------------------------------------------------------
    def wire(self, demo, main) -> None:
        self.main = main
        controls, extras, outputs = self._controls(), self._extras(), self._outputs()
        params, view_names = self._params(), self._view_names()
        state_in = [self.view, self.seen]

        def on_load(query, views, seen, *values):
            les = lesson.parse(query or "", params, view_names, default_lab=self.default_lab)
            if self.default_lab != "home":              # a lab served alone: its state shows at once
                les.chosen = True
            return self._apply(les, views, seen, values)

        demo.load(on_load, [self.query, *state_in, *controls, *extras], outputs, show_progress="hidden",
                         js="(q, ...rest) => [window.location.search, ...rest]", api_name=False)
        self.present.change(None, self.present, None, js=PRESENT_JS, api_name=False)

        for key, (item, ln) in self.labs.items():
            item.select(lambda k=key: k, None, self.current, api_name=False, show_progress="hidden")
            first, outs = self._first_show(key, ln)
            item.select(first, [self.seen, *ln.show_inputs], [self.seen, *outs], api_name=False,
                        show_progress="minimal")             # a lab whose model loads now shows it is busy
            for name, tab in ln.view_tabs.items():
                tab.select(lambda views, k=key, n=name: {**(views or {}), k: n}, self.view, self.view,
                           api_name=False, show_progress="hidden")
        main.select(self._names, self.current, [self.hide, self.lock], api_name=False, show_progress="hidden")

        def link_query(current, views, hide, lock, *values):
            defaults = {n: c.value for n, c in self.labs[current][1].controls.items()} if current in self.labs else {}
            return self._lesson_now(current, views, hide, lock, values).query(params.get(current, {}), defaults)

        self.copy.click(link_query, [self.current, self.view, self.hide, self.lock, *controls], self.query,
                        api_name="lesson_link").then(None, self.query, self.link, js=LINK_JS, api_name=False)

        def export(current, views, hide, lock, *values):
            les = self._lesson_now(current, views, hide, lock, values)
            path = Path(tempfile.mkdtemp(prefix="lesson-")) / f"{current}-parameters.json"
            path.write_text(les.as_json(), encoding="utf-8")
            return str(path)

        self.export.click(export, [self.current, self.view, self.hide, self.lock, *controls], self.exported,
                          api_name="lesson_export")

        def open_file(file, views, seen, *values):
            if not file:
                return [gr.skip()] * len(outputs)
            path = file if isinstance(file, str) else file.get("path") if isinstance(file, dict) else None
            if not path or not Path(path).is_file():
                raise gr.Error("Parameters file: upload a .json file exported by this app.", print_exception=False)
            raw = Path(path).read_bytes()[: lesson.MAX_JSON_BYTES + 1]
            try:
                les = lesson.from_json(raw, params, view_names)
            except PlaygroundError as e:
                raise gr.Error(str(e), print_exception=False) from None
            return self._apply(les, views, seen, values)

        self.opened.upload(open_file, [self.opened, *state_in, *controls, *extras], outputs, api_name="lesson_open")
        self._wire_tour(controls, extras, outputs, params, view_names, state_in)

    def _first_show(self, key: str, ln: LessonLink):
        """A lab shows its first result when its tab is first opened in a session."""
        outs = _unique(ln.show_outputs)

        def first(seen, *values):
            if key in (seen or []) or ln.show_fn is None:
                return [gr.skip()] * (1 + len(outs))
            by_comp = {id(c): v for c, v in zip(ln.show_inputs, values)}
            current = {n: by_comp.get(id(c), c.value) for n, c in ln.controls.items()}
            merged = _merge(ln.show_outputs, self._show(ln, None, current, by_comp))
            return [sorted(set(seen or []) | {key}), *(merged.get(id(c), gr.skip()) for c in outs)]
        return first, outs

    def _names(self, current):
        names = list(self.labs[current][1].controls) if current in self.labs else []
        return gr.update(choices=names, value=[]), gr.update(choices=names, value=[])

    def _lesson_now(self, current, views, hide, lock, values) -> lesson.Lesson:
        if current not in self.labs:
            return lesson.Lesson(lab=current or "home")
        per_lab, _ = self._split(list(values) + [None] * len(self._extras()))
        ln = self.labs[current][1]
        vals = {}
        for name, v in per_lab[current].items():
            try:
                vals[name] = ln.params[name].check(v)
            except PlaygroundError:
                pass                                  # a control in an odd state is left out of the link
        names = set(ln.controls)
        return lesson.Lesson(lab=current, view=(views or {}).get(current), values=vals,
                             hide=[n for n in hide or [] if n in names], lock=[n for n in lock or [] if n in names])

    def _wire_tour(self, controls, extras, outputs, params, view_names, state_in) -> None:
        tour_out = [self.step, self.question, self.choice, self.answer, *outputs]

        def go(tour_key, step, delta, views, seen, *values):
            t = self.tours.get(tour_key) if isinstance(tour_key, str) else None
            if t is None:
                raise gr.Error("Tour: pick one of the listed tours.", print_exception=False)
            n = len(t.steps)
            k = max(0, min(n - 1, int(step if isinstance(step, int) else -1) + delta))
            s = t.steps[k]
            les = lesson.parse(f"lab={t.lab}&{s.link.lstrip('?')}", params, view_names)
            head = (f"**{t.title}: step {k + 1} of {n}. {s.title}**\n\n{s.question}"
                    + ("" if k < n - 1 else "\n\n*Last step of this tour.*"))
            return [k, head, gr.update(choices=list(s.choices), value=None), "", *self._apply(les, views, seen, values)]

        for btn, delta in ((self.next, 1), (self.prev, -1)):
            btn.click(lambda t, k, views, seen, *v, d=delta: go(t, k, d, views, seen, *v),
                      [self.tour, self.step, *state_in, *controls, *extras], tour_out, api_name=False)
        self.tour.change(lambda: [-1, "Press **Next** to begin.", gr.update(choices=[], value=None), ""], None,
                         [self.step, self.question, self.choice, self.answer], api_name=False)

        def reveal(tour_key, step, picked, *values):
            t = self.tours.get(tour_key) if isinstance(tour_key, str) else None
            if t is None or not isinstance(step, int) or not 0 <= step < len(t.steps):
                raise gr.Error("Tour: press Next to open a step first.", print_exception=False)
            s = t.steps[step]
            if not isinstance(picked, str) or picked not in s.choices:
                raise gr.Error("Your answer: choose one of the answers first (predict, then look).",
                               print_exception=False)
            ln = self.labs[t.lab][1]
            per_lab, _ = self._split(list(values) + [None] * len(extras))
            checked = {}
            for name, value in per_lab[t.lab].items():     # the page's values, checked before any model runs
                # (None, a choice not made yet, goes to the lab's check as it is)
                try:
                    checked[name] = ln.params[name].check(value) if value is not None and name in ln.params else value
                except PlaygroundError as e:
                    raise gr.Error(f"{getattr(ln.controls[name], 'label', None) or name}: {e}",
                                   print_exception=False) from None
            try:
                r = ln.check_fn(s.check, s.args, checked)
            except PlaygroundError as e:
                raise gr.Error(str(e), print_exception=False) from None
            verdict = "✅ You predicted it." if picked == r.answer else f"❌ You said *{picked}*."
            return f"{verdict} **The model: {r.answer}.**\n\n{r.shown}\n\n{s.explain}"

        self.reveal.click(reveal, [self.tour, self.step, self.choice, *controls], self.answer, api_name="tour_reveal")
