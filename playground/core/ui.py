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
"""
from __future__ import annotations

import functools
import inspect
import os
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any

import gradio as gr
from pydantic import ValidationError

from playground.core.errors import PlaygroundError

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

LATEX = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
# Small generated images (28-32 px) shown large with crisp pixels (CSS .big-image in app.py).
IMAGE = dict(type="pil", format="png", interactive=False, elem_classes=["big-image"])


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
                for value in call(args, kwargs):
                    yield render(value) if render else value
            except PlaygroundError as e:
                raise gr.Error(str(e), print_exception=False) from None
    else:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                value = call(args, kwargs)
            except PlaygroundError as e:
                raise gr.Error(str(e), print_exception=False) from None
            return render(value) if render else value

    if has_progress:  # Gradio injects a tracker into a parameter whose default is a gr.Progress
        params = [p.replace(default=gr.Progress()) if p.name == "progress" else p for p in sig.parameters.values()]
        wrapped.__signature__ = sig.replace(parameters=params)
    return wrapped


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
    from playground.core import device, hub, settings

    cfg = settings.from_env()
    hub.decide(cfg.offline)
    device.configure(cfg.device)
    lab = labs.by_key(lab_key)
    with Blocks(title=f"GenAI Playground: {lab.title}", analytics_enabled=False) as demo:
        labs.tab(lab).build(labs.service(lab, cfg))
    raw_payloads(demo)
    demo.queue(default_concurrency_limit=4).launch(server_name=cfg.host, server_port=port or cfg.port, share=False)
