"""Lesson links and tours, headless: parsing, the policy on bad values, the round trip, tour files."""
from __future__ import annotations

import json

import pytest

from playground.core import lesson
from playground.core.errors import InputError
from playground.core.lesson import Param

from conftest import ROOT

LABS = {
    "diffusion": {
        "class": Param("class", "choice", options=("Sneaker", "Bag", "Dress")),
        "s": Param("s", "number", 0.0, 10.0),
        "steps": Param("steps", "int", 1, 1000),
        "layers": Param("layers", "choices", options=("0", "1", "2")),
        "noise": Param("noise", "flag"),
        "prompt": Param("prompt", "text", max_chars=20),
    },
    "home": {},
}
VIEWS = {"diffusion": ("step", "compare")}


def test_parse_checks_every_value_and_says_what_it_dropped():
    les = lesson.parse("?lab=diffusion&view=compare&class=Bag&s=99&steps=12.6&layers=2,0&noise=yes"
                       "&prompt=%00hi&bogus=1&hide=s,nope&lock=class&present=1", LABS, VIEWS)
    assert (les.lab, les.view, les.present) == ("diffusion", "compare", True)
    assert les.values == {"class": "Bag", "s": 10.0, "steps": 13, "layers": ["0", "2"], "noise": True, "prompt": "hi"}
    assert les.hide == ["s"] and les.lock == ["class"]
    text = " ".join(les.notices)
    assert "s = 99 is out of range: set to 10" in text and "'bogus': not a control" in text
    assert "hide: ignored names" in text and "steps" not in text      # rounding is not out of range


@pytest.mark.parametrize("query, notice", [
    ("lab=nowhere", "No lab called 'nowhere'"),
    ("lab=diffusion&class=Cat", "Ignored class: class must be one of"),
    ("lab=diffusion&s=lots", "Ignored s: s must be a number"),
    ("lab=diffusion&s=nan", "Ignored s"),
    ("lab=diffusion&view=../../etc", "No view"),
    ("lab=diffusion&prompt=" + "x" * 50, "Ignored prompt: prompt is 50 characters"),
    ("lab=diffusion&tour=diffusion&step=abc", "step: not a number"),
])
def test_garbage_is_dropped_with_a_notice_never_an_error(query, notice):
    les = lesson.parse(query, LABS, VIEWS)
    assert any(notice in n for n in les.notices), les.notices


def test_query_round_trip_and_defaults_left_out():
    les = lesson.Lesson("diffusion", "step", {"class": "Dress", "s": 3.25, "steps": 50, "layers": ["1"],
                                              "noise": False, "prompt": "a red & blue dress"}, hide=["s"])
    q = les.query(LABS["diffusion"], defaults={"steps": 50})
    assert "steps=" not in q and "s=3.25" in q and "noise=0" in q
    back = lesson.parse(q, LABS, VIEWS)
    assert back.values == {k: v for k, v in les.values.items() if k != "steps"} and back.hide == ["s"]
    assert not back.notices


def test_json_export_opens_into_the_same_lesson(tmp_path):
    les = lesson.Lesson("diffusion", "compare", {"class": "Bag", "s": 1.5}, lock=["s"])
    again = lesson.from_json(les.as_json(), LABS, VIEWS)
    assert (again.lab, again.view, again.values, again.lock) == ("diffusion", "compare", les.values, ["s"])
    with pytest.raises(InputError, match="not JSON"):
        lesson.from_json("{nope", LABS)
    with pytest.raises(InputError, match='"lab" key'):
        lesson.from_json("[1, 2]", LABS)
    with pytest.raises(InputError, match="under"):
        lesson.from_json("x" * (lesson.MAX_JSON_BYTES + 1), LABS)


def test_every_bundled_tour_is_well_formed():
    """Each tour file: 5-8 steps, each a link to its own lab, a question with 2+ choices, a check."""
    from playground import labs

    keys = {lab.key for lab in labs.LABS}
    files = sorted((ROOT / "assets" / "tours").glob("*.json"))
    assert files, "no tours"
    for f in files:
        t = lesson.load_tour(f)
        assert t.lab == f.stem and t.lab in keys and 5 <= len(t.steps) <= 8, (f.name, len(t.steps))
        for s in t.steps:
            assert "lab=" not in s.link and s.check and len(s.choices) >= 2
            assert json.dumps(s.args)          # plain data


def test_a_tour_file_missing_a_field_is_refused(tmp_path):
    f = tmp_path / "x.json"
    f.write_text(json.dumps({"lab": "vae", "title": "t", "steps": [{"title": "a", "link": "", "question": "?",
                                                                      "choices": ["only one"], "check": "c",
                                                                      "explain": ""}]}))
    with pytest.raises(ValueError, match="two or more choices"):
        lesson.load_tour(f)
