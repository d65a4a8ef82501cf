"""Few-shot lab in the classroom layer, in a real Chromium: a task set as a person would and its lesson
link opened in a fresh browser (the same controls, the same curves, no click), typed points carried by
a link, hidden and locked controls and a link with garbage, the guided tour walked with the keyboard in
presenter mode (each reveal the answer the live models give), the step slider on a phone with the curves
in view, the GIF of the steps downloaded, and axe-core on the tab."""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from conftest import BUSY, axe_serious, drag, new_page, screenshot, settled_text
from PIL import Image

from playground.core import lesson, settings
from playground.fewshot import service as S
from playground.fewshot import tasks

pytestmark = [pytest.mark.browser, pytest.mark.slow]
MAML = "MAML (second order)"


def _trace(page, name: str, plot: str = "#fewshot-curves"):
    return page.evaluate("""([plot, name]) => { const g = document.querySelector(plot + ' .js-plotly-plot');
                                                const t = g && g.data && g.data.find(t => t.name === name);
                                                return t ? Array.from(t.y) : null; }""", [plot, name])


def _names(page) -> list[str]:
    return page.evaluate("""() => { const g = document.querySelector('#fewshot-curves .js-plotly-plot');
                                    return g && g.data ? g.data.map(t => t.name) : []; }""")


def _table(page) -> str:
    return page.locator("#fewshot-step-table").inner_text()


def _wait_table(page, text: str) -> None:
    """Wait for the table to show `text` and for the page to settle (an output being refreshed shows a timer)."""
    page.wait_for_function("(t) => document.querySelector('#fewshot-step-table').innerText.includes(t)", arg=text,
                           timeout=60_000)
    page.wait_for_function(BUSY, timeout=60_000)


def _number(page, sel: str) -> float:
    return float(page.locator(f"{sel} input[type=number]").first.input_value())


def _copy_link(page) -> str:
    page.click("#copy-link")
    page.wait_for_function("() => document.querySelector('#lesson-link textarea, #lesson-link input').value.includes('?')")
    return page.locator("#lesson-link textarea, #lesson-link input").first.input_value()


def _opened(browser, url: str, **kw):
    pg = new_page(browser, url, **kw)
    pg.locator("#fewshot-curves .js-plotly-plot").wait_for(state="visible", timeout=60_000)
    _wait_table(pg, "Step ")
    return pg


def test_link_round_trip_in_a_fresh_browser(browser, app_url):
    pg = _opened(browser, app_url + "?lab=fewshot")
    start = _table(pg)
    drag(pg, "#fewshot-amplitude", 0.6, 0.2)                     # a smaller wave (on release)
    pg.wait_for_function("(t) => document.querySelector('#fewshot-step-table').innerText !== t", arg=start)
    amp = _number(pg, "#fewshot-amplitude")
    _wait_table(pg, f"A = {amp:.2f}")
    drag(pg, "#fewshot-step", 0.1, 0.75)                         # scrub to a later step
    at = int(_number(pg, "#fewshot-step"))
    assert amp < S.DEFAULT["amplitude"] and at > S.DEFAULT["step"]
    _wait_table(pg, f"Step {at} of")
    curve, table = _trace(pg, f"{MAML}: step {at}"), _table(pg)
    url = _copy_link(pg)
    q = parse_qs(urlsplit(url).query)
    assert q["lab"] == ["fewshot"] and float(q["amp"][0]) == amp and q["at"] == [str(at)] and "pts" not in q
    pg.context.close()

    fresh = _opened(browser, url)                                # another browser: nothing shared, no click
    _wait_table(fresh, f"Step {at} of")
    assert _number(fresh, "#fewshot-amplitude") == amp and _number(fresh, "#fewshot-step") == at
    assert _trace(fresh, f"{MAML}: step {at}") == curve and _table(fresh) == table
    fresh.context.close()


def test_typed_points_travel_in_the_link(browser, app_url):
    pg = _opened(browser, app_url + "?lab=fewshot")
    pg.get_by_text("or type your own points").click()
    box = pg.locator("#fewshot-points-text textarea, #fewshot-points-text input").first
    box.fill("-4:2, 0:-3.5 ,3:1")
    box.press("Enter")
    _wait_table(pg, "3 typed points")
    pg.wait_for_function("() => document.querySelector('#fewshot-points-text textarea, #fewshot-points-text input')"
                         ".value === '-4:2,0:-3.5,3:1'")                  # written back in its checked form
    curve = _trace(pg, f"{MAML}: step {S.DEFAULT['step']}")
    url = _copy_link(pg)
    assert parse_qs(urlsplit(url).query)["pts"] == ["-4:2,0:-3.5,3:1"]
    pg.context.close()
    fresh = _opened(browser, url)
    _wait_table(fresh, "3 typed points")
    assert _trace(fresh, f"{MAML}: step {S.DEFAULT['step']}") == curve and "true wave" not in _names(fresh)
    fresh.context.close()


def test_hidden_and_locked_controls_and_a_garbage_link(browser, app_url):
    pg = new_page(browser, app_url + "?lab=fewshot&hide=seed,pts&lock=amp&k=99&at=banana&pts=1:2,oops&bogus=1")
    notice = pg.locator("#lesson-notice")
    notice.wait_for(state="visible")
    text = notice.inner_text()
    assert f"k = 99 is out of range: set to {S.K_RANGE[1]}" in text and "Ignored at" in text
    assert "Ignored pts: Points text: point 2" in text and "'bogus'" in text
    _wait_table(pg, f"K = {S.K_RANGE[1]} points")                   # the clamped state, shown without a click
    assert not pg.locator("#fewshot-seed").is_visible()
    assert pg.locator("#fewshot-amplitude input[type=range]").first.is_disabled()
    assert not pg.locator("#fewshot-k input[type=range]").first.is_disabled()
    pg.context.close()


def test_tour_walked_with_the_keyboard_in_presenter_mode(browser, app_url):
    tour = lesson.load_tour(lesson.tour_path("fewshot"))
    svc = S.Service(settings.from_env())
    pg = new_page(browser, app_url + "?present=1&tour=fewshot")
    pg.wait_for_function("() => document.body.classList.contains('presenter')")
    pg.locator("body").click(position={"x": 5, "y": 5})
    for n, step in enumerate(tour.steps):
        pg.keyboard.press("ArrowRight")
        pg.wait_for_function("(t) => document.querySelector('#tour-question').innerText.includes(t)",
                             arg=f"step {n + 1} of {len(tour.steps)}")
        pg.locator("#tour-choice label").first.wait_for()
        if step.check == "clamped":                               # the link's own notice says what happened
            assert "amp = 8 is out of range" in pg.locator("#lesson-notice").inner_text()
            _wait_table(pg, f"A = {tasks.AMPLITUDE[1]:.2f}")
        pg.keyboard.press("2")
        pg.keyboard.press("Enter")
        pg.wait_for_function("() => document.querySelector('#tour-answer').innerText.includes('The model:')",
                             timeout=60_000)
        said = re.search(r"The model: (.+?)\.\n", pg.locator("#tour-answer").inner_text())[1]
        expected = svc.tour_check(step.check, step.args, _step_values(step)).answer
        assert said == expected and said in step.choices, step.title
    assert "Last step" in pg.locator("#tour-question").inner_text()
    screenshot(pg, "fewshot-presenter-tour")
    pg.context.close()


def _step_values(step) -> dict:
    """A tour step's control values, the link's over the defaults (as the page applies them)."""
    raw = dict(p.split("=", 1) for p in step.link.split("&"))
    values = {name: S.DEFAULT[key] for name, key in S.CONTROLS.items()} | {S.POINTS: ""}
    values.update({k: (v if k == S.POINTS else float(v)) for k, v in raw.items()})
    return values


def test_phone_step_slider_keeps_the_curves_in_view(browser, app_url):
    pg = _opened(browser, app_url + "?lab=fewshot", width=390, height=844, is_mobile=True, has_touch=True)

    def in_view(sel):           # read once the page is settled (a plot being redrawn has no box for a moment)
        settled_text(pg, "body")
        b = pg.locator(sel).first.bounding_box(timeout=30_000)
        return b["y"] >= 0 and b["y"] + b["height"] <= 844

    def uncovered(sel):          # what is drawn at the middle of the control is the control itself
        return pg.evaluate("""(sel) => { const e = document.querySelector(sel), b = e.getBoundingClientRect();
                                         return e.contains(document.elementFromPoint(b.x + b.width / 2, b.y + b.height / 2)); }""",
                           sel)

    before = _trace(pg, f"{MAML}: step {S.DEFAULT['step']}")
    drag(pg, "#fewshot-step", 0.05, 0.98)                          # the main control, to the last step
    _wait_table(pg, f"Step {S.STEPS} of")
    assert _trace(pg, f"{MAML}: step {S.STEPS}") != before
    assert in_view("#fewshot-curves .js-plotly-plot") and in_view("#fewshot-step input[type=range]")

    # a control further down, used while the result stays on top (and does not cover it)
    pg.locator("#fewshot-k input[type=range]").first.scroll_into_view_if_needed()
    assert pg.evaluate("window.scrollY") > 0 and uncovered("#fewshot-k input[type=range]")
    table = _table(pg)
    drag(pg, "#fewshot-k", 0.2, 0.6)
    pg.wait_for_function("(t) => document.querySelector('#fewshot-step-table').innerText !== t", arg=table)
    assert in_view("#fewshot-curves .js-plotly-plot") and in_view("#fewshot-step input[type=range]")
    assert uncovered("#fewshot-curves .js-plotly-plot")
    screenshot(pg, "fewshot-phone")
    pg.context.close()


def test_gif_of_the_steps_downloads(browser, app_url):
    pg = _opened(browser, app_url + "?lab=fewshot&at=4")
    pg.click("#fewshot-gif-go")
    link = pg.locator("#fewshot-gif a").first
    link.wait_for(timeout=60_000)
    with pg.expect_download() as dl:
        link.click()
    gif = Image.open(dl.value.path())
    assert gif.format == "GIF" and gif.n_frames == S.STEPS + 1
    pg.context.close()


def test_no_serious_or_critical_violation_on_the_tab(browser, app_url):
    pg = _opened(browser, app_url + "?lab=fewshot")
    pg.get_by_text("or type your own points").click()                # the folded controls too
    pg.click("#fewshot-gif-go")
    pg.locator("#fewshot-gif a").first.wait_for(timeout=60_000)
    found = axe_serious(pg, "#tab-fewshot")
    assert not found, found
    pg.context.close()
