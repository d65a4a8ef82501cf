"""Few-shot lab, headless: the bundled cards, every action of the service, its one validation policy
(numbers clamped, NaN/inf and non-numbers refused, the points table capped), missing checkpoints, and
the views' figures and tables checked against the data they were made from."""
from __future__ import annotations

import re

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import numpy as np
import pytest
import torch

from playground.core import checkpoint, settings
from playground.core.errors import InputError, Unavailable
from playground.fewshot import model as M
from playground.fewshot import service as S
from playground.fewshot import tasks, views

# the default task (A = 3, phase 1, K = 5, seed 0): each initialisation's query MSE after 0, 1 and 10 steps
GOLDEN_DEFAULT = {"maml": (1.9842, 0.49, 0.2521), "fomaml": (2.5668, 0.3885, 0.1253),
                  "pretrained": (1.9437, 1.474, 0.9772)}   # regenerate: python tests/test_fewshot_service.py


@pytest.fixture(scope="module")
def svc():
    return S.Service(settings.from_env())


def _card(svc, role):
    return checkpoint.read_card(svc.assets / role)


# --- the bundled checkpoints and their cards --------------------------------------------------------

@pytest.mark.parametrize("role", S.ROLES)
def test_each_bundled_model_has_its_card(svc, role):
    card = _card(svc, role)
    assert (svc.assets / f"{role}.safetensors").stat().st_size < checkpoint.MAX_FILE_BYTES
    assert card["model"] == "playground.fewshot.model:SineMLP" and card["config"]["hidden"] == [40, 40]
    assert card["steps"] == card["recipe"]["iterations"] > 0 and isinstance(card["seed"], int)
    assert f"--only {role}" in card["recipe"]["command"] and "sin" in card["data"]
    h = card["metrics"]["heldout"]
    for k in (5, 10):
        assert len(h[f"k{k}"]["mse"]) == len(h[f"k{k}"]["se"]) == h["steps"] + 1
    assert h["k5"]["mse"][0] == h["k10"]["mse"][0]          # before adapting, K does not matter
    assert card["adapt"]["inner_lr"] == h["inner_lr"]
    model, _ = checkpoint.load(svc.assets / role)            # sha256 checked, strict load
    assert isinstance(model, M.SineMLP)


def test_maml_cards_adapt_with_their_training_step_and_the_baseline_with_its_tuned_one(svc):
    for role in ("maml", "fomaml"):
        c = _card(svc, role)
        assert c["adapt"]["inner_lr"] == c["recipe"]["inner_lr"] and c["adapt"]["alpha_sweep"] is None
    sweep = _card(svc, "pretrained")["adapt"]["alpha_sweep"]
    mean = {float(al): sum(v.values()) / len(v) for al, v in sweep["mse_after_steps"].items() if None not in v.values()}
    best = min(mean, key=mean.get)                 # the rule the card states: the lowest mean over K, diverging out
    assert len(mean) < len(sweep["mse_after_steps"])           # the largest step sizes diverged and were left out
    assert sweep["chosen"] == best == _card(svc, "pretrained")["adapt"]["inner_lr"]


# --- a wave of the family -------------------------------------------------------------------------

def test_default_task_golden_and_its_curves(svc):
    a = svc.sine_task()
    assert (a.task.amplitude, a.task.phase, len(a.task.x), a.task.seed, a.step) == (
        S.DEFAULT["amplitude"], S.DEFAULT["phase"], S.DEFAULT["k"], S.DEFAULT["seed"], S.DEFAULT["step"])
    assert [r.role for r in a.runs] == list(S.ROLES) and a.steps == S.STEPS
    truth = S.DEFAULT["amplitude"] * np.sin(tasks.grid().numpy() - S.DEFAULT["phase"])
    np.testing.assert_allclose(a.truth, truth, atol=1e-5)
    np.testing.assert_allclose(a.task.y, S.DEFAULT["amplitude"] * np.sin(np.array(a.task.x) - S.DEFAULT["phase"]),
                               atol=1e-5)
    for r in a.runs:
        assert r.curves.shape == (S.STEPS + 1, tasks.GRID_POINTS)
        np.testing.assert_allclose(r.query_loss, ((r.curves - truth) ** 2).mean(1), rtol=1e-4)
        got = (r.query_loss[0], r.query_loss[1], r.query_loss[-1])
        assert got == pytest.approx(GOLDEN_DEFAULT[r.role], abs=1e-3)


def test_step_one_is_the_inner_step_of_the_loaded_model(svc):
    """The curve after one step is f at theta - alpha grad L(theta; S) with the card's alpha."""
    a = svc.sine_task(2.0, 0.5, 10, 3, 0)
    m = svc.loaded("maml")
    x = torch.tensor(a.task.x).view(-1, 1)
    y = torch.tensor(a.task.y).view(-1, 1)
    params = {k: v.detach().clone().requires_grad_() for k, v in m.model.params().items()}
    stepped = M.inner_step(params, M.mse(M.functional(params, x), y), m.alpha)
    with torch.no_grad():
        curve = M.functional(stepped, tasks.grid().view(-1, 1))[:, 0].numpy()
    np.testing.assert_allclose(a.runs[0].curves[1], curve, atol=1e-5)
    assert a.runs[0].support_loss[1] < a.runs[0].support_loss[0]


def test_numbers_are_clamped_like_the_sliders(svc):
    edge = svc.sine_task(tasks.AMPLITUDE[1], tasks.PHASE[0], S.K_RANGE[1], 0, S.STEPS)
    far = svc.sine_task(99, -3, 1000, -5, 77)
    assert (far.task.amplitude, far.task.phase, len(far.task.x), far.task.seed, far.step) == (
        tasks.AMPLITUDE[1], tasks.PHASE[0], S.K_RANGE[1], 0, S.STEPS)
    assert far.task.x == edge.task.x and np.array_equal(far.runs[0].curves, edge.runs[0].curves)
    assert len(svc.sine_task(3, 1, 0, 0, 0).task.x) == S.K_RANGE[0]
    assert svc.sine_task(3, 1, 5, 0, 0).task.x != svc.sine_task(3, 1, 5, 1, 0).task.x   # the seed draws the points


@pytest.mark.parametrize("args, message", [
    ((float("nan"), 1, 5, 0, 1), re.escape("Amplitude must be a number from 0.1 to 5 (got nan)")),
    ((3, float("inf"), 5, 0, 1), re.escape("Phase must be a number from 0 to 3.14159 (got inf)")),
    ((3, 1, "ten", 0, 1), re.escape("K (support points) must be a whole number from 1 to 20, not 'ten'")),
    ((3, 1, 5, None, 1), re.escape("Seed must be a whole number")),
    ((3, 1, 5, 0, True), re.escape("Step shown must be a whole number from 0 to 10")),
])
def test_non_numbers_are_refused_with_the_field_named(svc, args, message):
    with pytest.raises(InputError, match=message):
        svc.sine_task(*args)


def test_new_points_is_the_next_seed(svc):
    a = svc.new_points(3, 1, 5, 41, 2)
    b = svc.sine_task(3, 1, 5, 42, 2)
    assert a.task.seed == 42 and a.task.x == b.task.x
    assert svc.new_points(3, 1, 5, 2**31 - 1, 0).task.seed == 0      # wraps, never leaves the seed range


# --- typed points ---------------------------------------------------------------------------------

def test_typed_points_from_a_table_payload_or_rows(svc):
    payload = {"headers": ["x", "y"], "data": [[-4, 1.5], [None, None], ["", ""], [0.5, "-2"], [9, -50]]}
    a = svc.points_task(payload, 4)
    assert a.task.x == [-4.0, 0.5, tasks.X_RANGE[1]] and a.task.y == [1.5, -2.0, -S.Y_LIMIT]   # blank rows skipped, clamped
    assert a.truth is None and a.task.amplitude is None and a.step == 4
    assert all(r.query_loss is None for r in a.runs)
    b = svc.points_task([[-4, 1.5], [0.5, -2], [5, -10]], 4)
    assert np.array_equal(a.runs[2].curves, b.runs[2].curves)
    assert views.points_rows(a) == [[-4.0, 1.5], [0.5, -2.0], [5.0, -10.0]]
    assert all(r.support_loss[-1] < r.support_loss[0] for r in a.runs)


def test_diverging_steps_are_cut_and_said(svc):
    """Two typed points far outside the family: the card's step overshoots for MAML and the loss blows up.
    From the first step over DIVERGED times the start the run holds NaN, and the table says so."""
    a = svc.points_task([[-5, -10], [5, 10]], S.STEPS)
    maml = a.runs[0]
    assert maml.diverged is not None and 0 < maml.diverged <= S.STEPS
    before = maml.support_loss[maml.diverged - 1]
    assert before <= S.DIVERGED * max(maml.support_loss[0], 1.0)
    assert np.isnan(maml.curves[maml.diverged:]).all() and np.isfinite(maml.curves[:maml.diverged]).all()
    assert all(np.isnan(maml.support_loss[maml.diverged:]))
    table = views.step_table(a)
    assert f"| {maml.label} | {maml.alpha:g} | diverged at step {maml.diverged} | — |" in table
    assert f"{maml.label} diverged at step {maml.diverged}" in table and f"more than {S.DIVERGED:g}-fold" in table
    (shown,) = [t for t in views.curves_figure(a).data if t.name == f"{maml.label}: step {S.STEPS}"]
    assert np.isnan(np.array(shown.y, dtype=float)).all()                   # a gap in the plot, not a wild curve
    assert all(r.diverged is None for r in svc.sine_task().runs)            # waves of the family never diverge
    assert "diverged" not in views.step_table(svc.sine_task())


@pytest.mark.parametrize("points, message", [
    ([[0, 1]] * (S.MAX_POINTS + 1), f"Too many points: type at most {S.MAX_POINTS} rows"),
    ([[None, None]], "type at least one row with an x and a y"),
    ([], "type at least one row"),
    ([[1, 2, 3]], "Points row 1 must have two cells, x and y"),
    ([[0, 1], [1, None]], re.escape("Points row 2: y must be a number from -10 to 10")),
    ([[float("nan"), 1]], re.escape("Points row 1: x must be a number from -5 to 5 (got nan)")),
    ("0,1;2,3", "Points must be a table of rows"),
    ({"data": None}, "Points must be a table of rows"),
])
def test_bad_tables_are_refused(svc, points, message):
    with pytest.raises(InputError, match=message):
        svc.points_task(points, 1)


# --- scrubbing and playing --------------------------------------------------------------------------

def test_scrub_play_and_advance_move_only_the_step(svc):
    a = svc.sine_task()
    s = svc.scrub(a, 7)
    assert s.step == 7 and s.task is a.task and a.step == S.DEFAULT["step"]
    assert svc.scrub(a, 99).step == S.STEPS and svc.scrub(a, -1).step == 0
    p = svc.play(s)
    assert p.step == 0
    steps = [p.step]
    for _ in range(S.STEPS + 2):
        p = svc.advance(p)
        steps.append(p.step)
    assert steps == [*range(S.STEPS + 1), S.STEPS, S.STEPS]
    for call in (lambda: svc.scrub(None, 1), lambda: svc.play(None), lambda: svc.advance({"step": 1})):
        with pytest.raises(InputError, match="No task yet"):
            call()
    with pytest.raises(InputError, match="Step shown must be a whole number"):
        svc.scrub(a, "last")


# --- missing checkpoints ------------------------------------------------------------------------------

def test_a_folder_without_checkpoints_says_what_to_run(tmp_path):
    empty = S.Service(settings.from_env(), assets=tmp_path)
    info = empty.info()
    assert info.models == [] and info.missing == list(S.ROLES)
    assert "run `python -m demos.train_fewshot`" in views.heldout_table(info)
    assert "python -m demos.train_fewshot" in views.algorithm(info) and "none found" in views.intro(info)
    with pytest.raises(Unavailable, match=re.escape("train it with `python -m demos.train_fewshot --only maml`")):
        empty.sine_task()


# --- views --------------------------------------------------------------------------------------------

def test_curves_figure_shows_each_model_at_the_step(svc):
    a = svc.scrub(svc.sine_task(), 3)
    fig = views.curves_figure(a)
    assert "after 3 gradient steps on K = 5 points of the wave" in fig.layout.title.text
    for r in a.runs:
        now = [t for t in fig.data if t.name == f"{r.label}: step 3"]
        start = [t for t in fig.data if t.name == f"{r.label}: step 0"]
        assert len(now) == len(start) == 1
        np.testing.assert_allclose(now[0].y, r.curves[3])
        np.testing.assert_allclose(start[0].y, r.curves[0])
    pts = [t for t in fig.data if t.name == "K = 5 support points"]
    assert len(pts) == len(a.runs) and list(pts[0].x) == a.task.x
    assert sum(t.name == "true wave" for t in fig.data) == len(a.runs)
    assert [ann.text for ann in fig.layout.annotations] == [f"{r.label}<br>α = {r.alpha:g}" for r in a.runs]


def test_the_redrawn_figures_are_valid_plotly(svc):
    """curves and loss are built from dicts, unchecked (core/plots.py): through plotly's validation they
    give the same JSON, for a wave and for typed points."""
    from playground.core import plots

    for a in (svc.scrub(svc.sine_task(), 2), svc.points_task([[0, 1], [1, 2]], 0)):
        for fig in (views.curves_figure(a), views.loss_figure(a)):
            assert plots.valid(fig)


def test_loss_figure_and_step_table(svc):
    a = svc.scrub(svc.sine_task(), 2)
    fig = views.loss_figure(a)
    for r in a.runs:
        (q,) = [t for t in fig.data if t.name == f"{r.label}: query MSE"]
        assert list(q.y) == r.query_loss and list(q.x) == list(range(S.STEPS + 1))
    assert fig.layout.shapes[0].x0 == 2
    table = views.step_table(a)
    assert table.startswith(f"**Step 2 of {S.STEPS}**") and f"**{a.runs[0].query_loss[2]:.3f}**" in table
    typed = views.loss_figure(svc.points_task([[0, 1], [1, 2]], 0))
    assert all("support MSE" in t.name for t in typed.data) and "no query loss" in typed.layout.title.text
    state, curves, losses, md, rows, seed = views.shown_task(a)
    assert state is a and seed == a.task.seed and rows == views.points_rows(a) and md == table


def test_heldout_table_figure_and_ordering_read_the_cards(svc):
    info = svc.info()
    assert [m.role for m in info.models] == list(S.ROLES) and info.missing == []
    table = views.heldout_table(info)
    for m in info.models:
        h = m.card["metrics"]["heldout"]
        for k in (5, 10):
            row = f"| {m.label} | {k} | {m.alpha:g} | " + " | ".join(
                f"{h[f'k{k}']['mse'][s]:.3f} ± {h[f'k{k}']['se'][s]:.3f}" for s in (0, 1, h["steps"]))
            assert row in table
    maml, pre = (_card(svc, r)["metrics"]["heldout"] for r in ("maml", "pretrained"))
    holds = maml["k10"]["mse"][1] < pre["k10"]["mse"][-1]
    assert ("K = 10: MAML (second order) after 1 step" in table) and (
        ("holds" in views.ordering(info).split("K = 10")[1]) == holds)
    fig = views.heldout_figure(info)
    (trace,) = [t for t in fig.data if t.name == info.models[0].label and t.xaxis == "x2"]
    assert list(trace.y) == info.models[0].card["metrics"]["heldout"]["k10"]["mse"]
    r = info.models[0].card["recipe"]
    assert f"{r['iterations']:,} meta-iterations here" in views.algorithm(info)


def test_speed_probe_and_load_calls(svc):
    probe = svc.speed_probe()
    assert probe["family"] == "MAML" and probe["seconds"] > 0
    calls = svc.load_calls()
    assert [c[0] for c in calls] == ["fewshot_sine", "fewshot_points"]
    assert svc.sine_task(*calls[0][1]).step == S.DEFAULT["step"] and svc.points_task(*calls[1][1]).truth is None


if __name__ == "__main__":
    a = S.Service(settings.from_env()).sine_task()
    print("GOLDEN_DEFAULT =", {r.role: tuple(round(v, 4) for v in (r.query_loss[0], r.query_loss[1], r.query_loss[-1]))
                               for r in a.runs})
