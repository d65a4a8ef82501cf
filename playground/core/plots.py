"""Plotly figures from plain dicts, without plotly's checks on the way in or its copies on the way out.

Built through plotly's objects (add_scatter, update_layout, make_subplots), a figure checks every
property of every trace against plotly's schema, in Python: 33 ms for the Few-shot lab's 14-trace
curves, holding the interpreter lock (every other request's Python waits), on every slider move of
every student. `figure(data, layout)` takes the same properties as plain dicts, checks nothing, and
writes the same JSON as plotly would (`Figure.to_json`, which Gradio sends). The checks still run, in
the tests: `valid(fig)` builds the figure again through plotly's validation (`checked`), which raises
on an unknown property or a bad value, and compares the JSON. `panels` is make_subplots' layout, made
once per arguments; `on` puts a trace on one of its panels; `colorscale` spells a named scale out;
`vline` and `hline` are add_vline's and add_hline's shapes.
"""
from __future__ import annotations

import copy
import functools

import plotly.graph_objects as go


def figure(data: list[dict], layout: dict) -> Figure:
    """A figure of traces `data` (each a dict with its "type") and `layout`, unchecked."""
    return Figure(data, layout)


class Figure:
    """A figure kept as the plain dicts it was built from. Gradio's Plot sends whatever its `to_json()`
    writes; here that is what go.Figure(...).to_json() writes (numpy arrays as plotly's typed arrays), but
    without copying the figure into plotly's objects and deep-copying it back out (2-4 ms a figure, holding
    the interpreter lock; 0.1-0.3 ms here). Anything else (`data`, `layout`, `to_dict()`: the tests read
    them) comes from the plotly figure, built from the same dicts on first use. Build it complete: a change
    made through the plotly figure would not reach `to_json()`."""

    def __init__(self, data: list[dict], layout: dict):
        self._spec = {"data": data, "layout": layout}

    def to_json(self) -> str:
        from plotly.io.json import to_json_plotly

        spec = _typed(self._spec)
        if spec["layout"].get("template") is None:             # plotly's default look, as go.Figure adds it
            spec["layout"]["template"] = _default_template()
        return to_json_plotly(spec)

    def to_plotly_json(self) -> dict:
        return self._plotly.to_plotly_json()

    @functools.cached_property
    def _plotly(self) -> go.Figure:
        return go.Figure(self._spec, _validate=False)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._plotly, name)


def _default_template() -> dict:
    import plotly.io as pio

    return _template(str(pio.templates.default))


@functools.lru_cache(maxsize=4)
def _template(name: str) -> dict:
    return go.Figure().to_dict()["layout"].get("template")


def _typed(obj):
    """`obj` with each numpy array (a dict's value) written as plotly's typed array, as go.Figure.to_dict
    does in its deep copy (convert_to_base64); only the containers on the way are new."""
    from _plotly_utils.utils import is_homogeneous_array, is_skipped_key, to_typed_array_spec

    if isinstance(obj, dict):
        return {k: v if is_skipped_key(k) else to_typed_array_spec(v) if is_homogeneous_array(v) else _typed(v)
                for k, v in obj.items()}
    if isinstance(obj, (list, tuple)) and any(isinstance(v, (dict, list, tuple)) for v in obj):
        return [_typed(v) for v in obj]
    return obj


def checked(fig) -> go.Figure:
    """The same figure built through plotly's validation (tests: it raises where `fig` is not valid)."""
    return go.Figure(fig.to_plotly_json())


def valid(fig) -> bool:
    """True when plotly's checks accept the figure and change nothing in what is sent (tests)."""
    import json

    return json.loads(fig.to_json()) == json.loads(checked(fig).to_json())


def each_axis(layout: dict, prefix: str, **props) -> None:
    """Set props on every axis of the layout named prefix, prefix2, ... (update_xaxes / update_yaxes)."""
    for key, axis in layout.items():
        if key == prefix or (key.startswith(prefix) and key[len(prefix):].isdigit()):
            axis.update(props)


def vline(x: float, **line) -> dict:
    """A vertical line at x across the plot, as a layout shape (what add_vline adds)."""
    return dict(type="line", x0=x, x1=x, xref="x", y0=0, y1=1, yref="y domain", line=line)


def hline(y: float, **line) -> dict:
    """A horizontal line at y across the plot, as a layout shape (what add_hline adds)."""
    return dict(type="line", x0=0, x1=1, xref="x domain", y0=y, y1=y, yref="y", line=line)


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
