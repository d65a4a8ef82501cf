"""Plotly figures from plain dicts, without plotly's checks on the way in.

Built through plotly's objects (add_scatter, update_layout, make_subplots), a figure checks every
property of every trace against plotly's schema, in Python: 33 ms for the Few-shot lab's 14-trace
curves, holding the interpreter lock (every other request's Python waits), on every slider move of
every student. `figure(data, layout)` takes the same properties as plain dicts and checks nothing
(about 1.5 ms). The checks still run, in the tests: `checked(fig)` builds the figure again through
plotly's validation, which raises on an unknown property or a bad value, and must give the same JSON.
"""
from __future__ import annotations

import copy
import functools

import plotly.graph_objects as go


def figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure of traces `data` (each a dict with its "type") and `layout`, unchecked."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def checked(fig: go.Figure) -> go.Figure:
    """The same figure built through plotly's validation (tests: it raises where `fig` is not valid)."""
    return go.Figure(fig.to_plotly_json())


def valid(fig: go.Figure) -> bool:
    """True when plotly's checks accept the figure and change nothing in what is sent (tests)."""
    import json

    return json.loads(fig.to_json()) == json.loads(checked(fig).to_json())


def each_axis(layout: dict, prefix: str, **props) -> None:
    """Set props on every axis of the layout named prefix, prefix2, ... (update_xaxes / update_yaxes)."""
    for key, axis in layout.items():
        if key == prefix or (key.startswith(prefix) and key[len(prefix):].isdigit()):
            axis.update(props)


def panels(rows: int, cols: int, **subplots) -> dict:
    """The layout of a grid of panels as make_subplots(rows, cols, **subplots) makes it (the axes' domains
    and anchors, subplot_titles as annotations), as a fresh dict to fill in: built once per arguments."""
    key = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in subplots.items()))
    return copy.deepcopy(_panels(rows, cols, key))


@functools.lru_cache(maxsize=64)
def _panels(rows: int, cols: int, subplots: tuple) -> dict:
    from plotly.subplots import make_subplots

    return make_subplots(rows=rows, cols=cols, **dict(subplots)).layout.to_plotly_json()


def on(trace: dict, n: int) -> dict:
    """The trace on panel n (1, 2, ...: make_subplots' order, row by row): axes x, y; x2, y2; ..."""
    return {**trace, "xaxis": f"x{n}" if n > 1 else "x", "yaxis": f"y{n}" if n > 1 else "y"}


@functools.lru_cache(maxsize=32)
def _colorscale(name: str) -> tuple:
    from _plotly_utils.basevalidators import ColorscaleValidator       # what a trace's colorscale check runs

    return tuple(tuple(step) for step in ColorscaleValidator("colorscale", "heatmap").validate_coerce(name))


def colorscale(name: str) -> list[list]:
    """A named colour scale ("Blues", "RdBu_r") as the [[position, colour], ...] list that plotly's checks
    turn the name into."""
    return [list(step) for step in _colorscale(name)]
