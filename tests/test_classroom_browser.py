"""The classroom layer in a real Chromium, as a teacher and a student use it: a lesson link copied and
opened in a fresh browser, hidden and locked controls, a link with garbage, the parameters file, a
guided tour walked with the keyboard alone in presenter mode, and a phone. The VAE lab is the one
exercised here; each lab's own browser tests check its link and tour."""
from __future__ import annotations

import json
import re

import pytest
from conftest import drag, image_src, new_page, screenshot, settled_text, wait_new_src

from playground.core import lesson

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _value(page, sel: str) -> float:
    return float(page.locator(f"{sel} input[type=number]").first.input_value())


def _wait_value(page, sel: str, value: float) -> None:
    page.wait_for_function("([sel, v]) => { const i = document.querySelector(sel + ' input[type=number]');"
                           " return i && Math.abs(Number(i.value) - v) < 1e-6; }", arg=[sel, value])


def test_link_round_trip_in_a_fresh_browser(browser, app_url):
    pg = new_page(browser, app_url + "?lab=vae")
    pg.wait_for_selector("#vae-decoded img")
    old = image_src(pg, "#vae-decoded")
    drag(pg, "#vae-z0", 0.5, 0.15)                               # slider 1 to about -2
    drag(pg, "#vae-z2", 0.5, 0.8)
    wait_new_src(pg, "#vae-decoded", old)
    settled_text(pg, "#vae-decoded")                             # the last decode of the two drags has landed
    shown = image_src(pg, "#vae-decoded")
    z0, z2 = _value(pg, "#vae-z0"), _value(pg, "#vae-z2")
    assert z0 < -1 and z2 > 1
    pg.click("#copy-link")
    pg.wait_for_function("() => document.querySelector('#lesson-link textarea, #lesson-link input').value.includes('?')")
    url = pg.locator("#lesson-link textarea, #lesson-link input").first.input_value()
    assert url.startswith(app_url) and f"z1={z0:g}" in url and f"z3={z2:g}" in url and "lab=vae" in url
    assert pg.evaluate("() => window.location.search").lstrip("?") == url.split("?", 1)[1]   # the address bar too
    pg.context.close()
    fresh = new_page(browser, url)                               # another browser: no state shared
    _wait_value(fresh, "#vae-z0", z0)
    assert _value(fresh, "#vae-z2") == z2
    fresh.wait_for_function("(s) => { const i = document.querySelector('#vae-decoded img');"
                            " return i && i.getAttribute('src') === s; }", arg=shown)   # the same picture, no click
    fresh.context.close()


def test_hidden_and_locked_controls_and_a_garbage_link(browser, app_url):
    pg = new_page(browser, app_url + "?lab=vae&view=encode&hide=z2,seed&lock=dataset&pick=test%20%239%3A%20Sneaker"
                  "&z1=banana&bogus=1&steps=999")
    notice = pg.locator("#lesson-notice")
    notice.wait_for(state="visible")
    text = notice.inner_text()
    assert "Ignored z1" in text and "'bogus'" in text and "steps = 999 is out of range: set to" in text
    pg.wait_for_selector("#vae-seen img")                          # the encode view, with its result, no click
    assert "Sneaker" in pg.locator("#vae-pick input").first.input_value()
    assert pg.locator("#vae-dataset input").first.is_disabled()   # locked: shown, not changeable
    pg.get_by_role("tab", name="Latent sliders").click()
    pg.wait_for_selector("#vae-z0", state="visible")
    assert not pg.locator("#vae-z1").is_visible()                 # hidden
    pg.context.close()
    bad = new_page(browser, app_url + "?lab=%3Cscript%3E&view=..%2F..&z9=%00")
    bad.locator("#lesson-notice").wait_for(state="visible")
    assert "No lab called" in bad.locator("#lesson-notice").inner_text()
    assert bad.locator("#tab-home").is_visible()
    bad.context.close()


def test_parameters_file_reopens_the_same_state(browser, app_url, tmp_path):
    pg = new_page(browser, app_url + "?lab=vae&view=interp&steps=5&path=linear&a=test%20%2312%3A%20Sneaker")
    pg.wait_for_selector("#vae-interp-strip img")
    pg.locator("#lesson-tools").get_by_text("Make an exercise", exact=False).click()
    pg.click("#lesson-export")
    link = pg.locator("#lesson-json a").first
    link.wait_for()
    with pg.expect_download() as dl:
        link.click()
    data = json.loads(open(dl.value.path()).read())
    assert data["lab"] == "vae" and data["view"] == "interp" and data["values"]["steps"] == 5
    f = tmp_path / "vae-parameters.json"
    f.write_text(json.dumps(data))
    pg.context.close()
    fresh = new_page(browser, app_url)
    fresh.locator("#lesson-tools").get_by_text("Make an exercise", exact=False).click()
    fresh.locator("#lesson-open input[type=file]").set_input_files(str(f))
    _wait_value(fresh, "#vae-interp-steps", 5)
    fresh.wait_for_selector("#vae-interp-strip img")
    assert "Sneaker" in fresh.locator("#vae-interp-a input").first.input_value()
    fresh.context.close()


def test_tour_with_the_keyboard_alone_in_presenter_mode(browser, app_url):
    tour = lesson.load_tour(lesson.tour_path("vae"))
    pg = new_page(browser, app_url + "?present=1&tour=vae")
    pg.wait_for_function("() => document.body.classList.contains('presenter')")
    assert not pg.locator("#lesson-tools").is_visible()             # advanced controls folded away
    pg.locator("body").click(position={"x": 5, "y": 5})
    for k, step in enumerate(tour.steps):
        pg.keyboard.press("ArrowRight")                             # next step: its state is applied
        pg.wait_for_function("(t) => document.querySelector('#tour-question').innerText.includes(t)",
                             arg=f"step {k + 1} of {len(tour.steps)}")
        pg.locator("#tour-choice label").first.wait_for()
        pg.keyboard.press("1")                                      # predict: the first choice
        pg.keyboard.press("Enter")                                  # reveal what the model does
        pg.wait_for_function("() => document.querySelector('#tour-answer').innerText.includes('The model:')")
        answer = pg.locator("#tour-answer").inner_text()
        said = re.search(r"The model: (.+?)\.", answer)[1]
        assert said in step.choices                                 # computed at reveal time, one of the choices
        assert ("You predicted it" in answer) == (said == step.choices[0])
    assert "Last step" in pg.locator("#tour-question").inner_text()
    screenshot(pg, "classroom-presenter-tour")
    pg.context.close()


def test_phone_slider_keeps_the_decoded_image_in_view(browser, app_url):
    pg = new_page(browser, app_url + "?lab=vae", width=390, height=844, is_mobile=True, has_touch=True)
    pg.wait_for_selector("#vae-decoded img")
    old = image_src(pg, "#vae-decoded")
    drag(pg, "#vae-z9", 0.5, 0.95)                                 # a slider far down the list
    wait_new_src(pg, "#vae-decoded", old)
    box = pg.locator("#vae-decoded img").bounding_box()
    track = pg.locator("#vae-z9 input[type=range]").first.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844 and track["y"] < 844    # both in view
    screenshot(pg, "classroom-phone-vae")
    pg.context.close()


def test_phone_classroom_bar_fits_the_screen(browser, app_url):
    """On a 390 px phone the bar's controls are whole and on screen (the link box took the row and cut the
    presenter switch's label to "Present mode"), and a tap on the switch turns presenter mode on."""
    pg = new_page(browser, app_url + "?lab=vae", width=390, height=844, is_mobile=True, has_touch=True)
    bar = pg.locator("#classroom-bar").bounding_box()
    for sel in ("#copy-link", "#lesson-link", "#presenter-toggle", "#presenter-toggle label",
                "#presenter-toggle label span"):
        box = pg.locator(sel).first.bounding_box()
        assert box and bar["x"] <= box["x"] and box["x"] + box["width"] <= bar["x"] + bar["width"], (sel, box, bar)
        assert pg.locator(sel).first.evaluate("(e) => e.scrollWidth <= e.clientWidth"), f"{sel}: its content is cut"
    label = pg.locator("#presenter-toggle label").first
    assert label.inner_text().strip() == "Presenter mode"
    assert label.bounding_box()["height"] < 30                                      # one line, not wrapped
    label.tap()
    pg.wait_for_function("() => document.body.classList.contains('presenter')")
    screenshot(pg, "classroom-phone-bar")
    pg.context.close()


FIGURE_TEXT = """(sel) => { const g = document.querySelector(sel + ' .js-plotly-plot'), G = g.getBoundingClientRect();
    const box = (e) => { const r = e.getBoundingClientRect(); return [r.left - G.left, r.right - G.left, r.top - G.top, r.bottom - G.top]; };
    return {width: G.width, title: g._fullLayout.title.text, fitted: g.layout.__phoneFit ?? null,
            texts: [g._fullLayout.title.text, ...(g._fullLayout.annotations || []).map(a => a.text)].join(' | '),
            boxes: [...g.querySelectorAll('.g-gtitle .gtitle, .annotation-text')].filter(e => e.textContent).map(box)}; }"""
DRAWN = """(sel) => { const g = document.querySelector(sel + ' .js-plotly-plot');
    return g && g._fullLayout && g.layout && g.querySelector('.g-gtitle .gtitle'); }"""
FITTED = """(sel) => { const g = document.querySelector(sel + ' .js-plotly-plot');
    return g && g._fullLayout && g.layout && g.layout.__phoneFitDone === g._fullLayout.width; }"""


def _figure_text(page, sel: str, phone: bool) -> dict:
    """A figure's title and its panels' titles as drawn: their boxes, relative to the figure. On a phone, once
    the page has fitted the figure now shown; on a wide screen, once it has been drawn for two seconds."""
    page.wait_for_function(FITTED if phone else DRAWN, arg=sel, timeout=120_000)
    if not phone:
        page.wait_for_timeout(2000)                              # time enough for a fit that should not happen
    return page.evaluate(FIGURE_TEXT, sel)


@pytest.mark.parametrize("link, sel", [("?lab=fewshot", "#fewshot-curves"),
                                       ("?lab=clip&view=matrix", "#clip-matrix-plot")])
def test_phone_figure_titles_fit_and_a_wide_screen_is_left_alone(browser, app_url, link, sel):
    """On a 390 px phone a figure's title and its panels' titles are drawn inside the figure and none runs into
    another (the title was one line wider than the phone, panel titles overlapped); on a projector the same
    figure keeps its one-line title."""
    pg = new_page(browser, app_url + link, width=390, height=844, is_mobile=True, has_touch=True)
    pg.locator(sel).scroll_into_view_if_needed()
    phone = _figure_text(pg, sel, phone=True)
    for left, right, top, bottom in phone["boxes"]:
        assert -1 <= left and right <= phone["width"] + 1 and top >= -1, phone
    boxes = sorted(phone["boxes"])
    for a in boxes:
        for b in boxes:
            apart = a[1] <= b[0] + 1 or b[1] <= a[0] + 1 or a[3] <= b[2] + 1 or b[3] <= a[2] + 1
            assert a is b or apart, (a, b, phone["texts"])
    screenshot(pg, "classroom-phone-figure-" + sel.strip("#"))
    pg.context.close()
    wide = new_page(browser, app_url + link)
    fig = _figure_text(wide, sel, phone=False)
    assert "<br>" not in fig["title"] and fig["fitted"] is None, fig
    assert phone["texts"].count("<br>") > fig["texts"].count("<br>"), (phone["texts"], fig["texts"])  # wrapped there
    assert phone["texts"].replace("<br>", " ") == fig["texts"].replace("<br>", " ")   # the same words, in order
    wide.context.close()
