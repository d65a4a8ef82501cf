"""Transformer lab's classroom layer in a real Chromium, with the real offline model: a state set as a
person would (a typed prompt, a layer and a head, the lens view), its link opened in a fresh browser with
the same heatmap and no click; a link that hides and locks controls, names a layer the model lacks and
carries garbage; the tour walked with the keyboard alone, each reveal the live check's answer; a phone
using the layer slider with the heatmap in view; the lens animation with its text alternative, the plots'
PNG button, and axe-core on the tab."""
from __future__ import annotations

import re

import pytest
from conftest import axe_serious, drag, new_page, screenshot
from test_transformer_tour import tour_state

from playground.core import lesson, settings
from playground.prompting.service import MAX_TOP_K
from playground.transformer.service import DEFAULT, DEFAULT_PROMPT, Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SVC = Service(settings.from_env())
PROMPT = "The Eiffel Tower is located in the city of"
SLOW = 180_000                          # ms: the first view loads the model (seconds on a busy CPU)


def _set_number(page, sel: str, value: int) -> None:
    """Type into a slider's number box and leave it, as a person would (the slider's release event)."""
    box = page.locator(f"{sel} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def _value(page, sel: str) -> float:
    return float(page.locator(f"{sel} input[type=number]").first.input_value())


def _wait_text(page, sel: str, text: str, timeout: int = SLOW) -> None:
    page.wait_for_function("([s, t]) => { const e = document.querySelector(s); return e && e.innerText.includes(t); }",
                           arg=[sel, text], timeout=timeout)


def _heatmap(page) -> dict:
    """The attention heatmap as the page's plotly holds it: its title and its weights."""
    page.wait_for_function("() => { const p = document.querySelector('#transformer-attn .js-plotly-plot');"
                           " return p && p._fullLayout; }")
    return page.evaluate("""() => { const p = document.querySelector('#transformer-attn .js-plotly-plot');
        return {title: p._fullLayout.title.text.replace(/<br>/g, ' '),   // a phone wraps a long title
                z: JSON.stringify(Array.from(p._fullData[1].z,
                                             r => Array.from(r, v => Number.isNaN(v) ? null : v)))}; }""")


def _tokens(prompt: str) -> str:
    return f"{len(SVC._backend().tokenizer(prompt)['input_ids'])} tokens"


def test_link_round_trip_in_a_fresh_browser(browser, app_url):
    pg = new_page(browser, app_url + "?lab=transformer")
    _wait_text(pg, "#transformer-tokens", _tokens(DEFAULT_PROMPT))               # the first view, no click
    pg.locator("#transformer-prompt textarea").first.fill(PROMPT)
    pg.click("#transformer-run")
    _wait_text(pg, "#transformer-tokens", _tokens(PROMPT))
    _set_number(pg, "#transformer-layer", 16)
    _wait_text(pg, "#transformer-notes", "layer 16, head")
    _set_number(pg, "#transformer-head", 0)
    _wait_text(pg, "#transformer-notes", "layer 16, head 0 ")
    pg.get_by_role("tab", name="Layers (logit lens)").click()
    _wait_text(pg, "#transformer-lens-md", "Paris")
    shown = _heatmap(pg)
    assert shown["title"].startswith("Layer 16, head 0:")
    pg.click("#copy-link")
    pg.wait_for_function("() => document.querySelector('#lesson-link textarea, #lesson-link input')"
                         ".value.includes('?')")
    url = pg.locator("#lesson-link textarea, #lesson-link input").first.input_value()
    assert url.startswith(app_url) and "lab=transformer" in url and "view=lens" in url
    assert "layer=16" in url and "head=0" in url and "prompt=The+Eiffel+Tower" in url
    pg.context.close()

    fresh = new_page(browser, url)                                                # another browser, no state
    _wait_text(fresh, "#transformer-notes", "layer 16, head 0 ")
    assert (_value(fresh, "#transformer-layer"), _value(fresh, "#transformer-head")) == (16, 0)
    assert fresh.locator("#transformer-prompt textarea").first.input_value() == PROMPT
    assert fresh.locator("#transformer-lens-md").is_visible()                     # the lens view, open
    _wait_text(fresh, "#transformer-lens-md", "Paris")
    assert _heatmap(fresh) == shown                                               # the same heatmap, no click
    fresh.context.close()


def test_hidden_locked_and_garbage_links(browser, app_url):
    layers = SVC.info().shape.layers
    pg = new_page(browser, app_url + f"?lab=transformer&view=rope&hide=head,shift&lock=prompt&layer=99"
                  f"&top_k=999&query=banana&bogus=1")
    notice = pg.locator("#lesson-notice")
    notice.wait_for(state="visible")
    text = notice.inner_text()
    assert "Ignored query" in text and "'bogus'" in text and f"top_k = 999 is out of range: set to {MAX_TOP_K}" in text
    _wait_text(pg, "#transformer-notes", f"Layer 99 is out of range (layers 0–{layers - 1}): showing {layers - 1}.")
    assert _value(pg, "#transformer-layer") == layers - 1                        # clamped to the model's
    _wait_text(pg, "#transformer-rope-md", "At shift")                           # the rope view, no click
    assert pg.locator("#transformer-prompt textarea").first.is_disabled()       # locked
    assert not pg.locator("#transformer-head").is_visible() and not pg.locator("#transformer-shift").is_visible()
    assert pg.locator("#transformer-key").is_visible()
    pg.context.close()

    bad = new_page(browser, app_url + "?lab=transformer&view=..%2F..&layer=%3Cscript%3E")
    bad.locator("#lesson-notice").wait_for(state="visible")
    text = bad.locator("#lesson-notice").inner_text()
    assert "No view '../..' in this lab" in text and "Ignored layer" in text
    _wait_text(bad, "#transformer-notes", f"layer {DEFAULT['layer']}, head {DEFAULT['head']} ")   # the defaults
    bad.context.close()


def test_the_tour_with_the_keyboard_alone(browser, app_url):
    tour = lesson.load_tour(lesson.tour_path("transformer"))
    pg = new_page(browser, app_url + "?present=1&tour=transformer")
    pg.wait_for_function("() => document.body.classList.contains('presenter')")
    pg.locator("body").click(position={"x": 5, "y": 5})
    for k, step in enumerate(tour.steps):
        pg.keyboard.press("ArrowRight")
        _wait_text(pg, "#tour-question", f"step {k + 1} of {len(tour.steps)}")
        v = tour_state(step)
        _wait_text(pg, "#transformer-notes", f"layer {v['layer']}, head {v['head']} ")   # the step's state
        pg.locator("#tour-choice label").first.wait_for()
        pg.keyboard.press("2")                                                   # predict: the second choice
        pg.keyboard.press("Enter")
        _wait_text(pg, "#tour-answer", "The model:")
        answer = pg.locator("#tour-answer").inner_text()
        said = re.search(r"The model: (.+?)\.\n", answer)[1]
        assert said == SVC.tour_check(step.check, step.args, v).answer and said in step.choices
        assert ("You predicted it" in answer) == (said == step.choices[1])
    assert "Last step" in pg.locator("#tour-question").inner_text()
    screenshot(pg, "transformer-tour")
    pg.context.close()


def test_phone_layer_slider_keeps_the_heatmap_in_view(browser, app_url):
    pg = new_page(browser, app_url + "?lab=transformer", width=390, height=844, is_mobile=True, has_touch=True)
    _wait_text(pg, "#transformer-notes", f"layer {DEFAULT['layer']}, head")
    before = _heatmap(pg)["title"]
    drag(pg, "#transformer-layer", 0.5, 0.2)
    pg.wait_for_function("(t) => { const p = document.querySelector('#transformer-attn .js-plotly-plot');"
                         " return p && p._fullLayout.title.text.replace(/<br>/g, ' ') !== t; }", arg=before, timeout=SLOW)
    layer = int(_value(pg, "#transformer-layer"))
    assert layer < DEFAULT["layer"] and _heatmap(pg)["title"].startswith(f"Layer {layer}, head")
    plot = pg.locator("#transformer-attn .js-plotly-plot").bounding_box()
    track = pg.locator("#transformer-layer input[type=range]").first.bounding_box()
    assert plot["y"] >= 0 and plot["y"] + plot["height"] <= 844                  # the heatmap, whole, in view
    assert 0 <= track["y"] and track["y"] + track["height"] <= 844               # with the slider in use
    screenshot(pg, "transformer-phone")
    pg.context.close()


def test_lens_animation_png_buttons_and_axe(browser, app_url):
    pg = new_page(browser, app_url + "?lab=transformer&view=lens")
    _wait_text(pg, "#transformer-lens-md", "Paris")
    assert not pg.locator("#transformer-lens-gif").is_visible()                  # no empty box before it is made
    pg.click("#transformer-lens-gif-go")
    img = pg.locator("#transformer-lens-gif img").first
    img.wait_for(state="visible", timeout=SLOW)
    run = SVC.lens_run(DEFAULT_PROMPT, 10_000)
    alt = img.get_attribute("alt") or ""
    lens = run.lens
    assert alt.startswith("Animated logit lens") and f"{lens.answer} leads from {lens.labels[lens.first]}" in alt
    assert pg.locator("#transformer-lens-gif-file a").first.get_attribute("href").endswith(".gif")
    pg.locator("#transformer-attn .js-plotly-plot").hover()
    png = pg.locator("#transformer-attn .modebar-btn[data-title='Download plot as a PNG']")
    assert png.count() == 1                                                     # the heatmap's PNG export
    found = axe_serious(pg)
    assert not found, found
    pg.context.close()
