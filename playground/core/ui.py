"""The only Gradio helpers (with the tabs, the only place that imports gradio).

- `handler(fn, render)`: how every tab wires a service call to an event. It keeps `fn`'s signature
  (Gradio reads it to count inputs), turns the user-facing errors of `core.errors` into a gr.Error with
  the same message, applies `render` (plain data -> component values) to the result or to each value a
  generator yields, keeps generator functions generators (Gradio streams only those), and injects a
  gr.Progress when `fn` has a `progress` parameter (the service sees a plain `progress(frac, desc)`).
- `LATEX`, `IMAGE`: the settings every tab uses for equations and for pictures of small images.
- `standalone(lab_key)`: serve one lab alone, `python -m playground.<lab>.tab`.
"""
from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from typing import Any

import gradio as gr

from playground.core.errors import PlaygroundError

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
                raise gr.Error(str(e)) from None
    else:
        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            try:
                value = call(args, kwargs)
            except PlaygroundError as e:
                raise gr.Error(str(e)) from None
            return render(value) if render else value

    if has_progress:  # Gradio injects a tracker into a parameter whose default is a gr.Progress
        params = [p.replace(default=gr.Progress()) if p.name == "progress" else p for p in sig.parameters.values()]
        wrapped.__signature__ = sig.replace(parameters=params)
    return wrapped


def standalone(lab_key: str, port: int | None = None) -> None:
    """Serve one lab alone: `python -m playground.<lab>.tab` (settings from the environment)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playground import labs
    from playground.core import device, hub, settings

    cfg = settings.from_env()
    hub.decide(cfg.offline)
    device.configure(cfg.device)
    lab = labs.by_key(lab_key)
    with gr.Blocks(title=f"GenAI Playground: {lab.title}", analytics_enabled=False) as demo:
        labs.tab(lab).build(labs.service(lab, cfg))
    demo.queue(default_concurrency_limit=4).launch(server_name=cfg.host, server_port=port or cfg.port, share=False)
