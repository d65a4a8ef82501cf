"""Few-shot lab, headless: its lesson link (every control registered, the typed points carried as text
and checked like the table, the show a link triggers) and its guided tour (every step's link opens
cleanly, every check's answer is one of the step's choices and agrees with a measurement made here by
another path than the check's own), and the GIF of the adaptation steps."""
from __future__ import annotations

import re

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image

from playground.core import lesson, settings
from playground.core.errors import InputError
from playground.fewshot import service as S
from playground.fewshot import tab, tasks, views

TOUR = lesson.load_tour(lesson.tour_path("fewshot"))
STEPS_BY_CHECK = {s.check: s for s in TOUR.steps}


@pytest.fixture(scope="module")
def svc():
    return S.Service(settings.from_env())


@pytest.fixture(scope="module")
def link(svc):
    with gr.Blocks():
        return tab.build(svc)


def _values(link, step: lesson.Step) -> dict:
    """The control values a tour step's link sets (what the page holds when the step is revealed)."""
    les = lesson.parse(f"lab=fewshot&{step.link}", {"fewshot": link.params})
    return {n: c.value for n, c in link.controls.items()} | les.values


def _numbers(text: str) -> list[float]:
    return [float(v) for v in re.findall(r"\*\*(-?[0-9.]+)%?\*\*", text)]


# --- the lesson link -------------------------------------------------------------------------------

def test_every_control_is_registered_with_its_range(link):
    assert list(link.params) == [*S.CONTROLS, S.POINTS]
    p = link.params
    assert (p["amp"].kind, p["amp"].lo, p["amp"].hi) == ("number", *tasks.AMPLITUDE)
    assert (p["k"].kind, p["k"].lo, p["k"].hi) == ("int", *S.K_RANGE)
    assert (p["at"].kind, p["at"].lo, p["at"].hi) == ("int", 0, S.STEPS)
    assert not set(p) & set(lesson.RESERVED)                  # a reserved key would be read as the link's own
    assert (p["seed"].kind, p["seed"].lo, p["seed"].hi) == ("int", 0, 2**31 - 1)
    assert isinstance(p["pts"], S.PointsParam) and link.check_fn is not None and link.tabs is None


def test_typed_points_travel_as_text_checked_like_the_table():
    param = S.POINTS_PARAM
    assert param.check("") == "" and param.check("  ") == ""
    assert param.check(" -4:1.50, 9:-50 ,0.5:2") == "-4:1.5,5:-10,0.5:2"          # clamped like a table row
    with pytest.raises(InputError, match=re.escape("Points text: point 1 ('banana') must be written x:y")):
        param.check("banana")
    with pytest.raises(InputError, match=re.escape("Points row 1: y must be a number from -10 to 10, not 'y'")):
        param.check("1:y")
    with pytest.raises(InputError, match=f"Too many points: type at most {S.MAX_POINTS} rows"):
        param.check(",".join(["0:1"] * (S.MAX_POINTS + 1)))
    les = lesson.parse("lab=fewshot&pts=1:2,banana&k=99", {"fewshot": {"pts": param, "k": lesson.Param("k", "int", 1, 20)}})
    assert "pts" not in les.values and les.values["k"] == 20
    assert any(n.startswith("Ignored pts: Points text: point 2") for n in les.notices), les.notices


def test_points_text_task_equals_the_table_and_round_trips(svc):
    a = svc.points_task([[-4, 1.5], [0.5, -2], [3, 2.25]], 4)
    b = svc.points_text_task(views.points_as_text(a), 4)
    assert views.points_as_text(a) == "-4:1.5,0.5:-2,3:2.25"
    assert np.array_equal(a.runs[0].curves, b.runs[0].curves) and b.step == 4
    with pytest.raises(InputError, match="type at least one row"):
        svc.points_text_task("", 1)


def test_a_link_round_trips_and_shows_its_state(svc, link):
    values = {"amp": 4.25, "phase": 2.1, "k": 8, "seed": 7, "at": 6, "pts": ""}
    q = lesson.Lesson("fewshot", values=values).query(link.params, {n: c.value for n, c in link.controls.items()})
    assert "pts=" not in q and "amp=4.25" in q and "at=6" in q
    back = lesson.parse(q, {"fewshot": link.params})
    assert not back.notices and back.values == {k: v for k, v in values.items() if k != "pts"}
    state, curves, losses, table, rows = link.show_fn(None, *(values[n] for n in link.controls))
    direct = svc.sine_task(4.25, 2.1, 8, 7, 6)
    assert state.step == 6 and np.array_equal(state.runs[0].curves, direct.runs[0].curves)
    assert rows == views.points_rows(direct) and "Step 6 of" in table and "K = 8 points (seed 7)" in table
    typed = link.show_fn(None, *(values[n] for n in S.CONTROLS), "-4:1,2:-3")
    assert typed[0].truth is None and typed[0].task.x == [-4.0, 2.0] and typed[-1] == [[-4.0, 1.0], [2.0, -3.0]]


# --- the tour --------------------------------------------------------------------------------------

def test_each_step_link_opens_cleanly_and_names_its_check(link):
    assert {s.check for s in TOUR.steps} == {"best_after", "catch_up", "first_order", "more_points", "clamped",
                                             "outside"}
    for s in TOUR.steps:
        les = lesson.parse(f"lab=fewshot&{s.link}", {"fewshot": link.params})
        assert set(s.args["choices"].values()) == set(s.choices), s.title
        if s.check == "clamped":          # the step is about exactly this notice
            assert les.notices == [f"amp = {s.args['amplitude']} is out of range: set to {tasks.AMPLITUDE[1]:g}."]
        else:
            assert not les.notices, (s.title, les.notices)


def test_outside_step_shows_the_points_of_the_wave_it_measures(link):
    s = STEPS_BY_CHECK["outside"]
    pts = _values(link, s)["pts"]
    a = s.args
    wave = S.Service._wave(a["amplitude"], a["phase"], a["k"], a["seed"])
    assert a["amplitude"] > tasks.AMPLITUDE[1]
    assert pts == S.points_text([round(v, 2) for v in wave.x], [round(v, 2) for v in wave.y])


@pytest.mark.slow
def test_best_after_and_catch_up_agree_with_the_table_on_screen(svc, link):
    for check in ("best_after", "catch_up"):
        s = STEPS_BY_CHECK[check]
        v = _values(link, s)
        r = svc.tour_check(check, s.args, v)
        assert r.answer in s.choices
        shown = svc.sine_task(v["amp"], v["phase"], v["k"], v["seed"], v["at"])
        q = {run.role: run.query_loss for run in shown.runs}
        step = s.args["step"]
        if check == "best_after":
            best = min(q, key=lambda role: q[role][step])
            assert r.answer == s.args["choices"][best]
            assert _numbers(r.shown) == pytest.approx([round(q[role][step], 3) for role in S.ROLES], abs=1e-3)
        else:
            caught = q["pretrained"][s.args["late"]] <= q["maml"][step]
            assert r.answer == s.args["choices"]["yes" if caught else "no"]


@pytest.mark.slow
def test_first_order_check_agrees_with_tasks_adapted_one_by_one(svc, link):
    """The check adapts DRAWS waves in one batch; here each wave is adapted alone through the lab's own
    single-task path, and the means (and so the outcome) agree."""
    s = STEPS_BY_CHECK["first_order"]
    v = _values(link, s)
    r = svc.tour_check("first_order", s.args, v)
    step = s.args["step"]
    means = {}
    for role, i in (("fomaml", 1), ("maml", 0)):
        errs = [svc._adapt(w, step).runs[i].query_loss[step] for w in svc._family(v["k"])]
        means[role] = float(np.mean(errs))
    assert _numbers(r.shown)[:2] == pytest.approx([means["fomaml"], means["maml"]], abs=1.5e-3)
    ratio = means["fomaml"] / means["maml"]
    outcome = "same" if max(ratio, 1 / ratio) <= 1 + S.CLOSE else "worse" if ratio > 1 else "better"
    assert r.answer == s.args["choices"][outcome] and r.answer in s.choices


@pytest.mark.slow
def test_more_points_check_agrees_with_the_seed_control(svc, link):
    """K = 5 against K = 10 on the wave shown: the mean over the draws the seed control makes."""
    s = STEPS_BY_CHECK["more_points"]
    v = _values(link, s)
    r = svc.tour_check("more_points", s.args, v)
    step = s.args["step"]
    means = [float(np.mean([svc.sine_task(v["amp"], v["phase"], k, d, step).runs[0].query_loss[step]
                            for d in range(S.DRAWS)])) for k in s.args["ks"]]
    assert _numbers(r.shown) == pytest.approx(means, abs=1.5e-3)
    ratio = means[1] / means[0]
    outcome = "drops" if ratio < 1 / (1 + S.CLOSE) else "grows" if ratio > 1 + S.CLOSE else "same"
    assert r.answer == s.args["choices"][outcome] and r.answer in s.choices


@pytest.mark.slow
def test_clamped_and_outside_checks(svc, link):
    s = STEPS_BY_CHECK["clamped"]
    r = svc.tour_check("clamped", s.args, _values(link, s))
    assert r.answer == s.args["choices"]["clamped"] and f"the lab ran A = **{tasks.AMPLITUDE[1]:g}**" in r.shown

    s = STEPS_BY_CHECK["outside"]
    v = _values(link, s)
    r = svc.tour_check("outside", s.args, v)
    step, a = s.args["step"], s.args
    # measured here from the typed points on screen (rounded) against the wave they were drawn from
    typed = svc.points_text_task(v["pts"], step)
    g = tasks.grid()
    truth = tasks.sine(torch.tensor([float(a["amplitude"])]), torch.tensor([float(a["phase"])]), g)[0].numpy()
    far = float(np.mean((typed.runs[0].curves[step] - truth) ** 2) / np.mean(truth ** 2))
    edge = svc.sine_task(tasks.AMPLITUDE[1], a["phase"], a["k"], a["seed"], step)
    near = edge.runs[0].query_loss[step] / float(np.mean(edge.truth ** 2))
    assert _numbers(r.shown)[:2] == pytest.approx([100 * far, 100 * near], rel=0.05)
    assert r.answer == s.args["choices"]["worse" if far / near >= S.WORSE else "same"] and r.answer in s.choices


def test_a_check_that_does_not_exist_or_lacks_its_choice_says_so(svc):
    with pytest.raises(InputError, match="no check called 'nope'"):
        svc.tour_check("nope", {}, {})
    with pytest.raises(InputError, match="names no answer for the outcome 'clamped'"):
        svc.tour_check("clamped", {"amplitude": 8, "choices": {}}, {})


# --- the GIF of the steps -------------------------------------------------------------------------

@pytest.mark.slow
def test_gif_has_one_frame_per_step_and_holds_the_last(svc):
    a = svc.sine_task(step=3)
    frames = views.steps_frames(a)
    assert len(frames) == S.STEPS + 1
    assert frames[0].size == (views.GIF_PANEL[0] * len(S.ROLES), views.GIF_PANEL[1])
    diffs = [np.abs(np.asarray(f, dtype=int) - np.asarray(g, dtype=int)).sum() for f, g in zip(frames, frames[1:])]
    assert all(d > 0 for d in diffs)                      # every step moves a curve
    gif = Image.open(views.steps_gif(a))
    assert gif.n_frames == S.STEPS + 1                    # the held copies merge into the last frame's duration
    gif.seek(gif.n_frames - 1)
    assert gif.info["duration"] == views.GIF_MS * (1 + views.GIF_HOLD)
    with pytest.raises(InputError, match="No task yet"):
        svc.current(None)


if __name__ == "__main__":          # what each step reveals on the bundled models now
    _svc = S.Service(settings.from_env())
    with gr.Blocks():
        _link = tab.build(_svc)
    for _s in TOUR.steps:
        _r = _svc.tour_check(_s.check, _s.args, _values(_link, _s))
        print(f"{_s.title}: {_r.answer}\n    {_r.shown}")
