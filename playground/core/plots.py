"""Plotly figures from plain dicts, without plotly's checks on the way in.

Built through plotly's objects (add_scatter, update_layout, make_subplots), a figure checks every
property of every trace against plotly's schema, in Python: 33 ms for the Few-shot lab's 14-trace
curves, holding the interpreter lock (every other request's Python waits), on every slider move of
every student. `figure(data, layout)` takes the same properties as plain dicts and checks nothing
(about 1.5 ms). The checks still run, in the tests: `checked(fig)` builds the figure again through
plotly's validation, which raises on an unknown property or a bad value, and must give the same JSON.
"""
from __future__ import annotations

import plotly.graph_objects as go


def figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure of traces `data` (each a dict with its "type") and `layout`, unchecked."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def checked(fig: go.Figure) -> go.Figure:
    """The same figure built through plotly's validation (tests: it raises where `fig` is not valid)."""
    return go.Figure(fig.to_plotly_json())


def each_axis(layout: dict, prefix: str, **props) -> None:
    """Set props on every axis of the layout named prefix, prefix2, ... (update_xaxes / update_yaxes)."""
    for key, axis in layout.items():
        if key == prefix or (key.startswith(prefix) and key[len(prefix):].isdigit()):
            axis.update(props)
