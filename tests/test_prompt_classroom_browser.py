"""Prompt lab in the classroom, in a real Chromium: a state set as a person sets it, copied as a link and
opened in a fresh browser (the same controls, the same prompts, no click); a link that asks for answers,
and the answers' download; hidden, locked and garbage links; the guided tour walked with the keyboard
alone in presenter mode; and a phone. The tiny random Llama stands in for the model (fast; its answers
are gibberish, which these tests do not read)."""
from __future__ import annotations

import json
import re

import pytest
from conftest import axe_serious, new_page, screenshot, settled_text

from playground.core import cache, lesson
from playground.prompting import models, tiny

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TOUR = lesson.load_tour(lesson.tour_path("prompt"))


@pytest.fixture(scope="module")
def tiny_backend():
    return tiny.backend()


@pytest.fixture()
def tiny_model(tiny_backend, monkeypatch):
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: tiny_backend)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    for prefix in ("prompt-answer", "prompt-tour"):
        cache.clear(prefix)
    return tiny_backend


def _text(page, sel: str) -> str:
    return page.locator(sel).inner_text()


def _wait_text(page, sel: str, needle: str, timeout: int = 60_000) -> None:
    page.wait_for_function("([sel, t]) => { const e = document.querySelector(sel); return e && e.innerText.includes(t); }",
                           arg=[sel, needle], timeout=timeout)


def _input(page, sel: str):
    return page.locator(f"{sel} textarea, {sel} input").first


def _type(page, sel: str, text: str) -> None:
    """Replace a field's text by typing it, key by key, as a person does (a fill sends no keystrokes)."""
    box = _input(page, sel)
    box.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(text)


def _checked(page, sel: str) -> list[str]:
    return page.eval_on_selector_all(f"{sel} input[type=checkbox]:checked",
                                     "els => els.map(e => e.closest('label').innerText.trim())")


def test_link_round_trip_in_a_fresh_browser(browser, app_url, tiny_model):
    pg = new_page(browser, app_url + "?lab=prompt")
    _wait_text(pg, "#prompt-details", "Not run yet")
    pg.locator("#prompt-preset input").click()                   # a preset, as a person picks it
    pg.get_by_role("option", name="Sentiment (few-shot)").click()
    _wait_text(pg, "#prompt-details", "Best movie")               # the prompts follow the question
    pg.locator("#prompt-techniques label", has_text="CoT (zero-shot)").click()   # untick one technique
    pg.wait_for_function("() => !document.querySelector('#prompt-summary').innerText.includes('CoT (zero-shot)')"
                         " && !document.querySelector('#prompt-details').innerText.includes(\"Let's think step by step\")")
    _type(pg, "#prompt-system", "You are a film critic. Answer in one word.")
    _wait_text(pg, "#prompt-details", "Answer in one word.")
    _type(pg, "#prompt-seed", "7")
    _input(pg, "#prompt-seed").blur()
    pg.wait_for_timeout(1000)
    details, summary = settled_text(pg, "#prompt-details"), settled_text(pg, "#prompt-summary")
    pg.click("#copy-link")
    pg.wait_for_function("() => document.querySelector('#lesson-link textarea, #lesson-link input').value.includes('?')")
    url = _input(pg, "#lesson-link").input_value()
    assert "lab=prompt" in url and "task=sentiment" in url and "seed=7" in url and "film+critic" in url
    screenshot(pg, "prompt-link-before")
    pg.context.close()

    fresh = new_page(browser, url)                                 # another browser, no click
    _wait_text(fresh, "#prompt-details", "You are a film critic")
    fresh_details, fresh_summary = settled_text(fresh, "#prompt-details"), settled_text(fresh, "#prompt-summary")
    assert _input(fresh, "#prompt-question").input_value() == "Best movie I've seen in years."
    assert _input(fresh, "#prompt-gold").input_value() == "positive"
    assert fresh.locator("#prompt-task input[value=sentiment]").is_checked()
    assert "CoT (zero-shot)" not in _checked(fresh, "#prompt-techniques") and len(_checked(fresh, "#prompt-techniques")) == 4
    assert _input(fresh, "#prompt-seed").input_value() == "7"
    assert fresh_details == details and fresh_summary == summary   # the same result
    fresh.context.close()


def test_a_link_that_asks_for_answers_shows_them_and_their_download(browser, app_url, tiny_model):
    base = app_url + "?lab=prompt&techniques=zero-shot,self-consistency&n=3&max_tokens=8"
    pg = new_page(browser, base)                                   # without run=1: the prompts, no answers
    _wait_text(pg, "#prompt-details", "Not run yet")
    assert "correct?" not in _text(pg, "#prompt-summary")
    pg.context.close()
    pg = new_page(browser, base + "&run=1")
    _wait_text(pg, "#prompt-summary", "correct?")                  # answered on opening
    assert pg.locator("#prompt-run-on-open input").is_checked()
    pg.locator("#prompt-votes .js-plotly-plot").wait_for()
    link = pg.locator("#prompt-answers-file a").first
    link.wait_for()
    with pg.expect_download() as dl:
        link.click()
    record = json.loads(open(dl.value.path(), encoding="utf-8").read())
    assert [a["technique"] for a in record["answers"]] == ["zero-shot", "self-consistency"]
    assert len(record["answers"][1]["completions"]) == 3 and "<|im_start|>assistant" in record["answers"][0]["prompt"]
    screenshot(pg, "prompt-link-run")
    pg.context.close()


def test_hidden_and_locked_controls_and_a_garbage_link(browser, app_url, tiny_model):
    pg = new_page(browser, app_url + "?lab=prompt&hide=system,seed&lock=question&n=999&techniques=telepathy"
                  "&bogus=1&view=nowhere&question=What%20is%206%20times%207%3F")
    notice = pg.locator("#lesson-notice")
    notice.wait_for(state="visible")
    text = notice.inner_text()
    assert "n = 999 is out of range: set to 16" in text and "Ignored techniques" in text and "'bogus'" in text
    assert "No view 'nowhere'" in text
    _wait_text(pg, "#prompt-details", "What is 6 times 7?")       # the link's state, shown without a click
    assert _input(pg, "#prompt-question").is_disabled()            # locked: shown, not changeable
    assert not pg.locator("#prompt-system").is_visible() and not pg.locator("#prompt-seed").is_visible()   # hidden
    assert pg.locator("#prompt-n input[type=number]").first.input_value() == "16"
    pg.context.close()
    bad = new_page(browser, app_url + "?lab=prompt&run=maybe&temperature=nan&task=%3Cscript%3E")
    bad.locator("#lesson-notice").wait_for(state="visible")
    t = bad.locator("#lesson-notice").inner_text()
    assert "Ignored run" in t and "Ignored temperature" in t and "Ignored task" in t
    _wait_text(bad, "#prompt-details", "Not run yet")              # defaults, and still no model run
    bad.context.close()


def test_tour_with_the_keyboard_alone_in_presenter_mode(browser, app_url, tiny_model):
    pg = new_page(browser, app_url + "?present=1&tour=prompt")
    pg.wait_for_function("() => document.body.classList.contains('presenter')")
    pg.locator("body").click(position={"x": 5, "y": 5})
    for k, step in enumerate(TOUR.steps):
        pg.keyboard.press("ArrowRight")
        _wait_text(pg, "#tour-question", f"step {k + 1} of {len(TOUR.steps)}")
        pg.locator("#tour-choice label").first.wait_for()
        pg.keyboard.press("2")                                      # predict: the second choice
        pg.keyboard.press("Enter")                                  # reveal: the model runs now
        _wait_text(pg, "#tour-answer", "The model:", timeout=180_000)
        answer = _text(pg, "#tour-answer")
        said = re.search(r"The model: (.+?)\.(?:\n|$)", answer)[1]
        assert said in step.choices, (step.title, answer)
        assert ("You predicted it" in answer) == (said == step.choices[1])
    assert "Last step" in _text(pg, "#tour-question")
    screenshot(pg, "prompt-presenter-tour")
    pg.context.close()


def test_phone_ask_keeps_the_answers_in_view(browser, app_url, tiny_model):
    pg = new_page(browser, app_url + "?lab=prompt&techniques=zero-shot,few-shot&max_tokens=8", width=390, height=844,
                  is_mobile=True, has_touch=True)
    _wait_text(pg, "#prompt-details", "Not run yet")
    ask = pg.locator("#prompt-run")
    ask.scroll_into_view_if_needed()
    ask.tap()
    _wait_text(pg, "#prompt-summary", "correct?")
    box, btn = pg.locator("#prompt-summary").bounding_box(), ask.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844, box   # the answers, in view
    assert 0 <= btn["y"] < 844 and not (box["y"] <= btn["y"] < box["y"] + box["height"]), (box, btn)  # the button too
    screenshot(pg, "prompt-phone")
    pg.context.close()


def test_no_serious_or_critical_accessibility_violation(browser, app_url, tiny_model):
    """axe-core on each view of the lab, first as it opens (the prompts), then with answers shown: no serious
    or critical violation (read through conftest.axe_serious, which waits out Gradio's fade of a pending output)."""
    found, run = {}, "?lab=prompt&techniques=zero-shot,self-consistency&n=3&max_tokens=8"
    for query, needle, views in ((run, "Not run yet", ("Side by side",)),
                                 (run + "&run=1", "correct?", ("Side by side", "Structured output", "Evaluate", "Sampling"))):
        pg = new_page(browser, app_url + query)
        _wait_text(pg, "#prompt-details" if needle == "Not run yet" else "#prompt-summary", needle)
        for view in views:
            pg.get_by_role("tab", name=view, exact=True).click()
            pg.wait_for_timeout(1000)
            found[(needle, view)] = axe_serious(pg, "#tab-prompt")
        pg.context.close()
    assert not any(found.values()), found
