"""Few-shot lab through the public API (gradio_client against the whole app, so every test here is
marked slow): each endpoint answers what the service computes, the session keeps the task for the
scrub and the play, and bad input gets a message that says what to change while the app keeps serving."""
from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
from gradio_client.exceptions import AppError

from playground.core import settings
from playground.fewshot import service as S
from playground.fewshot import views

pytestmark = pytest.mark.slow
SVC = S.Service(settings.from_env())


def traces(value) -> dict[str, dict]:
    """A gr.Plot value through the API ({"type": "plotly", "plot": "<figure JSON>"}): its traces by name
    (the first of each name: the side-by-side panels repeat the true wave and the points)."""
    out = {}
    for t in json.loads(value["plot"])["data"]:
        out.setdefault(t["name"], t)
    return out


def ys(trace) -> np.ndarray:
    """A trace's y: a JSON list, or plotly's typed array {"dtype", "bdata": base64} for numpy data."""
    y = trace["y"]
    return np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]) if isinstance(y, dict) else np.array(y)


def test_sine_task_scrub_and_play(client):
    curves, losses, md, rows, seed = client.predict(2.5, 0.7, 10, 3, 1, api_name="/fewshot_sine")
    want = SVC.sine_task(2.5, 0.7, 10, 3, 1)
    got = traces(curves)
    np.testing.assert_allclose(ys(got["true wave"]), want.truth, atol=1e-5)
    for r in want.runs:
        np.testing.assert_allclose(ys(got[f"{r.label}: step 1"]), r.curves[1], atol=1e-5)
        assert traces(losses)[f"{r.label}: query MSE"]["y"] == pytest.approx(r.query_loss, abs=1e-6)
    assert rows["data"] == views.points_rows(want) and seed == 3
    assert md == views.step_table(want)

    curves, losses, md = client.predict(7, api_name="/fewshot_scrub")           # the session's task, step 7
    assert md.startswith(f"**Step 7 of {S.STEPS}**") and "A = 2.50" in md
    np.testing.assert_allclose(ys(traces(curves)[f"{want.runs[0].label}: step 7"]), want.runs[0].curves[7], atol=1e-5)
    *_, slider, timer = client.predict(api_name="/fewshot_play")
    assert slider["value"] == 0 and timer["active"] is True


def test_other_points_and_typed_points(client):
    *_, rows, seed = client.predict(2.5, 0.7, 10, 3, 1, api_name="/fewshot_new_points")
    assert seed == 4 and rows["data"] == views.points_rows(SVC.sine_task(2.5, 0.7, 10, 4, 1))
    table = {"headers": ["x", "y"], "data": [[-3, 1], [0, -2], [None, None], [8, 2]], "metadata": None}
    curves, losses, md, rows = client.predict(table, 5, api_name="/fewshot_points")
    want = SVC.points_task(table, 5)
    assert rows["data"] == [[-3, 1], [0, -2], [5, 2]]                  # blank row skipped, x clamped into range
    assert "3 typed points (no true wave)" in md and "true wave" not in traces(curves)
    np.testing.assert_allclose(ys(traces(curves)[f"{want.runs[1].label}: step 5"]), want.runs[1].curves[5], atol=1e-5)


@pytest.mark.parametrize("api, args, message", [
    ("/fewshot_sine", ("abc", 1, 5, 0, 1), "Amplitude must be a number from 0.1 to 5, not 'abc'."),
    ("/fewshot_sine", (3, 1, 5, 0, None), "Step shown must be a whole number from 0 to 10."),
    ("/fewshot_new_points", (3, 1, 5, "x", 1), "Seed must be a whole number from 0 to 2.14748e+09, not 'x'."),
    ("/fewshot_points", ({"headers": ["x", "y"], "data": [[0, 1]] * (S.MAX_POINTS + 1)}, 1),
     f"Too many points: type at most {S.MAX_POINTS} rows."),
    ("/fewshot_points", ({"headers": ["x", "y"], "data": [["a", 1]]}, 1),
     "Points row 1: x must be a number from -5 to 5, not 'a'."),
    ("/fewshot_points", ({"headers": ["x", "y"], "data": []}, 1), "Points: type at least one row with an x and a y."),
    ("/fewshot_scrub", ("last",), "Step shown must be a whole number from 0 to 10, not 'last'."),
])
def test_bad_input_gets_a_clear_error_and_the_app_keeps_serving(client, api, args, message):
    with pytest.raises(AppError, match=re.escape(message)):
        client.predict(*args, api_name=api)
    assert client.predict(3, 1, 5, 0, 1, api_name="/fewshot_sine")[-1] == 0


def test_scrub_and_play_without_a_task_say_what_to_do(app_url):
    from gradio_client import Client

    fresh = Client(app_url, verbose=False)                           # a new session: no task in its state
    for api, args in (("/fewshot_scrub", (3,)), ("/fewshot_play", ())):
        with pytest.raises(AppError, match=re.escape("No task yet: set the amplitude and phase")):
            fresh.predict(*args, api_name=api)


def test_load_calls_run(client):
    """The calls the load benchmark makes (demos/load.py) are valid through the API."""
    for api, args, *_weight in SVC.load_calls():
        assert client.predict(*args, api_name=f"/{api}")
