"""The CLIP lab's guided tour and lesson link, headless: the tour file agrees with itself (each step's args
with its link, its choices with the ones the check maps to), every check's answer is one of its step's
choices and agrees with a direct measurement on the bundled model (each computed here by other means than
tour_check's own), and the link's gallery-image control refuses what the gallery does not hold.

Current answers: `python tests/test_clip_tour.py` prints each step's answer and measurement."""
from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))   # also run as a script
from playground.clip import model as cm  # noqa: E402
from playground.clip import service as cs  # noqa: E402
from playground.clip.queries import is_hit, read_queries  # noqa: E402
from playground.core import hub, lesson, settings  # noqa: E402
from playground.core.errors import InputError  # noqa: E402

TOUR = lesson.load_tour(lesson.tour_path("clip"))
STEPS = {s.check: s for s in TOUR.steps}


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# --- the tour file, no model ------------------------------------------------------------------------------

def test_the_tour_covers_the_lab_and_its_args_agree_with_its_links():
    assert TOUR.lab == "clip" and 5 <= len(TOUR.steps) <= 8
    assert set(STEPS) == {"zero_shot_top", "ensemble_order", "temperature_effect", "infonce_temperature",
                          "modality_gap", "paraphrase"}
    for s in TOUR.steps:
        link = dict(parse_qsl(s.link, keep_blank_values=True))
        assert link.get("view") in ("search", "zeroshot", "matrix", "map"), s.title
        assert list(s.args["choices"]) == list(s.choices), s.title          # the check answers with these
        shared = set(link) & set(s.args)
        assert shared, f"{s.title}: args repeat none of the link's state"
        for key in shared:
            assert str(s.args[key]) == link[key], (s.title, key)
    zs = STEPS["zero_shot_top"]
    assert list(zs.choices) == [x.strip() for x in zs.args["labels"].split(",")]   # every label is a choice


def test_an_unknown_check_and_a_bad_argument_are_refused():
    svc = cs.Service(settings.Settings(cache_dir=Path("/nonexistent-never-written")))
    with pytest.raises(InputError, match="no check called 'nope'"):
        svc.tour_check("nope", {"choices": ["a", "b"]}, {})
    with pytest.raises(InputError, match="Temperature must be a number"):
        svc.tour_check("temperature_effect", {"tau": "hot", "choices": ["a", "b"]}, {})
    with pytest.raises(InputError, match="Gallery image is empty"):
        svc.classify_pick("", cs.FASHION_LABEL_TEXT, cs.TEMPLATE_MODES[1], "", 0.05)


# --- every check on the bundled model ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def svc():
    hub.decide("yes")
    return cs.Service(settings.from_env())


def _zs(svc, step, mode=None, tau=None):
    a = step.args
    return svc.classify_pick(a["img"], a["labels"], mode or cs.TEMPLATE_MODES[1], "", tau or a.get("tau", 0.05))


@pytest.mark.slow
def test_zero_shot_top_is_the_label_nearest_the_image(svc):
    s = STEPS["zero_shot_top"]
    r = svc.tour_check(s.check, s.args, {})
    g = svc.gallery()
    i = [it.title for it in g.items].index(s.args["img"])
    x = svc.runner().encode_pils([g.images[i]])[0]                           # the image, encoded here
    labels = list(s.choices)
    t = svc.runner().class_embeddings(labels, cm.ENSEMBLE_TEMPLATES)          # (L, D)
    assert r.answer in s.choices and r.answer == labels[int(np.argmax(t @ x))]
    assert f"“{s.args['img']}”" in r.shown


@pytest.mark.slow
def test_ensemble_order_compares_the_two_rankings(svc):
    s = STEPS["ensemble_order"]
    r = svc.tour_check(s.check, s.args, {})
    one = np.argsort(-_zs(svc, s, cs.TEMPLATE_MODES[0]).cosines)
    ens = np.argsort(-_zs(svc, s, cs.TEMPLATE_MODES[1]).cosines)
    want = s.choices[0] if one[0] != ens[0] else s.choices[1] if list(one) != list(ens) else s.choices[2]
    assert r.answer == want


@pytest.mark.slow
def test_a_lower_temperature_changes_the_spread_never_the_order(svc):
    """The closed form: softmax(c / tau) keeps the order of c for every tau > 0; its entropy falls as tau
    falls. The check must say so on the live model (spread, not order), and its figures must be these."""
    s = STEPS["temperature_effect"]
    r = svc.tour_check(s.check, s.args, {})
    cos = _zs(svc, s).cosines
    hi, lo = (cs._softmax(cos, t) for t in (s.args["tau"], s.args["tau_low"]))
    assert list(np.argsort(-hi, kind="stable")) == list(np.argsort(-cos, kind="stable"))
    assert np.all(np.diff(lo[np.argsort(-cos)]) <= 0)                        # lower tau: still in cosine order
    assert _entropy(hi) - _entropy(lo) > cs.TOUR_SPREAD_NATS
    assert r.answer == s.choices[1] and f"entropy {_entropy(lo):.3f} nats" in r.shown


@pytest.mark.slow
def test_infonce_temperature_is_the_loss_at_both_temperatures(svc):
    s = STEPS["infonce_temperature"]
    r = svc.tour_check(s.check, s.args, {})
    m = svc.matrix(cs.MATRIX_EXAMPLE, cs.MATRIX_EXAMPLE, s.args["mtau"], None)
    hi, lo = (cm.info_nce(m.sim, t) for t in (s.args["mtau"], s.args["tau_low"]))
    rel = (lo - hi) / hi
    want = s.choices[0] if rel < -cs.TOUR_LOSS_SAME else s.choices[1] if rel > cs.TOUR_LOSS_SAME else s.choices[2]
    assert r.answer == want and f"{hi:.4f} at τ = {s.args['mtau']:g}" in r.shown
    # the torch loss the model trained with gives the same figure (numpy twin against the original)
    import torch

    names = cs.MATRIX_EXAMPLE.splitlines()
    g = svc.gallery()
    ie = torch.from_numpy(svc.gallery_index()[[[it.title for it in g.items].index(n) for n in names]])
    te = torch.from_numpy(svc.runner().encode_texts(names))
    torch_loss = float(cm.contrastive_loss(ie, te, torch.tensor(np.log(1 / s.args["tau_low"]))))
    assert torch_loss == pytest.approx(lo, rel=1e-4, abs=1e-6)


@pytest.mark.slow
def test_modality_gap_is_the_centroid_distance_against_chance(svc):
    s = STEPS["modality_gap"]
    r = svc.tour_check(s.check, s.args, {})
    g = svc.embedding_map(s.args["pairs"], None)
    gap = float(np.linalg.norm(g.images.mean(0) - g.texts.mean(0)))         # measured here, not by modality_gap
    assert gap == pytest.approx(g.gap["centroid_distance"], abs=1e-6)
    assert r.answer == (s.choices[1] if gap > g.gap["chance_max"] else s.choices[0])
    assert f"{gap:.3f} apart" in r.shown


@pytest.mark.slow
def test_paraphrase_finds_the_first_matching_title(svc):
    s = STEPS["paraphrase"]
    r = svc.tour_check(s.check, s.args, {})
    q = next(x for x in read_queries() if x.text == s.args["q"])
    sim = svc.gallery_index() @ svc.runner().encode_texts([q.text])[0]       # (N,) the whole gallery
    titles = [svc.gallery().items[i].title for i in np.argsort(-sim)[: s.args["k"]]]
    first = next((k for k, t in enumerate(titles) if is_hit(t, q)), None)
    assert r.answer == (s.choices[2] if first is None else s.choices[0] if first == 0 else s.choices[1])
    assert f"1. {titles[0]} (" in r.shown


@pytest.mark.slow
def test_a_check_reads_what_its_args_leave_out_from_the_controls(svc):
    """args win over the learner's controls; a control the args leave out is read from them."""
    s = STEPS["zero_shot_top"]
    mine = svc.tour_check(s.check, {"choices": ["cat face", "rocket"]}, {"img": "cat face", "labels": "cat face, rocket"})
    assert mine.answer == "cat face" and "“cat face”" in mine.shown
    theirs = svc.tour_check(s.check, s.args, {"img": "cat face", "labels": "cat face, rocket"})
    assert f"“{s.args['img']}”" in theirs.shown


@pytest.mark.slow
def test_the_link_control_for_a_gallery_image_takes_titles_only(svc):
    assert svc.gallery_title(cs.DEFAULT_PICK) == cs.DEFAULT_PICK
    assert cs.DEFAULT_PICK in svc.gallery_titles() and len(svc.gallery_titles()) == len(svc.gallery())
    with pytest.raises(InputError, match="No gallery image is called “/etc/passwd”"):
        svc.gallery_title("/etc/passwd")
    c = svc.classify_pick(cs.DEFAULT_PICK, "trousers, dress", cs.TEMPLATE_MODES[0], "", 0.05)
    assert c.title == cs.DEFAULT_PICK and c.image is svc.gallery().images[svc.gallery_titles().index(cs.DEFAULT_PICK)]
    assert c.probs.sum() == pytest.approx(1.0, abs=1e-6)


if __name__ == "__main__":
    hub.decide("yes")
    s = cs.Service(settings.from_env())
    for step in TOUR.steps:
        rv = s.tour_check(step.check, step.args, {})
        print(f"{step.title}: {rv.answer}\n    {rv.shown}")


@pytest.mark.slow
def test_every_control_of_the_tab_is_in_the_lesson_link():
    """The tab built headless: each control a learner sets (text, slider, choice) is registered under a name,
    uploads are not (a link cannot carry a user's file), and every default survives the link's check."""
    import gradio as gr

    from playground.clip import tab

    with gr.Blocks() as demo:
        link = tab.build(cs.Service(settings.from_env()))
    settable = (gr.Textbox, gr.Slider, gr.Radio, gr.Dropdown, gr.Checkbox, gr.CheckboxGroup, gr.Number)
    controls = [b for b in demo.blocks.values() if isinstance(b, settable) and b.interactive is not False]
    registered = {id(c) for c in link.controls.values()}
    assert [c.label for c in controls if id(c) not in registered] == []
    assert set(link.controls) == {"q", "k", "img", "labels", "templates", "template", "tau", "texts", "images",
                                  "mtau", "pairs"}
    assert not any(isinstance(c, (gr.Image, gr.File)) for c in link.controls.values())
    assert list(link.view_tabs) == ["search", "zeroshot", "matrix", "map"]
    for name, comp in link.controls.items():
        assert link.params[name].check(comp.value) == comp.value, name
