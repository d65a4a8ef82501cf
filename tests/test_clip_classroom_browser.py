"""The CLIP lab in the classroom layer, in a real Chromium: opening the lab shows a search at once; a state
set by hand (a query, top k, a gallery image, labels, a temperature) travels in a copied link to a fresh
browser and shows the same result with no click; hidden and locked controls; a link with garbage; the
lab's tour walked with the keyboard alone in presenter mode, each reveal naming the answer the bundled
model gives; and a phone, where the temperature slider moves p(label | image) without losing it from view.

Run with PLAYGROUND_TABS=home,clip to serve only this lab."""
from __future__ import annotations

import re

import pytest
from conftest import axe_serious, drag, image_src, new_page, screenshot, settled_text

from playground.clip import service as cs
from playground.core import hub, lesson, settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LABELS = "sandal, sneaker, ankle boot, dress"
PICK = "high-heeled shoe"


@pytest.fixture(scope="module")
def svc():
    hub.decide("yes")
    return cs.Service(settings.from_env())


def _field(page, sel: str):
    return page.locator(f"{sel} textarea, {sel} input").first


def _number(page, sel: str):
    return page.locator(f"{sel} input[type=number]").first


def _label(page) -> str:
    return page.locator("#clip-zs-label").inner_text()


def _choose_pick(page, title: str) -> None:
    box = page.locator("#clip-zs-pick input").first
    box.click()
    box.fill("")
    box.press_sequentially(title[:11], delay=20)                      # the list filters as one types
    page.locator(f'li[role=option][aria-label="{title}"]:visible').first.click()


def _wait_label(page, *needles: str, without: str | None = None) -> None:
    page.wait_for_function("([ns, w]) => { const t = document.querySelector('#clip-zs-label')?.innerText || '';"
                           " return ns.every(n => t.includes(n)) && !(w && t.includes(w)); }",
                           arg=[list(needles), without], timeout=120_000)


def _top_percent(text: str) -> int:
    return int(re.search(r"(\d+)%", text)[1])


def test_opening_the_lab_shows_a_search_and_a_link_reopens_a_state_set_by_hand(browser, app_url):
    pg = new_page(browser, app_url + "?lab=clip")
    pg.wait_for_function("document.querySelectorAll('#clip-results img').length >= 12", timeout=180_000)
    assert f"the text “{cs.DEFAULT_QUERY}”" in pg.locator("#clip-results-status").inner_text()   # no click
    _field(pg, "#clip-query").fill("a rocket ship")
    _number(pg, "#clip-k").fill("5")
    _number(pg, "#clip-k").press("Enter")
    pg.click("#clip-search-btn")
    pg.wait_for_function("document.querySelector('#clip-results-status').innerText.includes('a rocket ship')")
    pg.get_by_role("tab", name="Zero-shot classification").click()
    _wait_label(pg, "%")                                               # the default pick, shown on opening
    _field(pg, "#clip-zs-labels").fill(LABELS)
    _choose_pick(pg, PICK)
    _wait_label(pg, "ankle boot", without="pullover")
    _number(pg, "#clip-zs-temp").fill("0.1")
    _number(pg, "#clip-zs-temp").press("Enter")
    pg.click("#clip-zs-btn")
    _wait_label(pg, "sandal", without="100%")
    # read once settled: the temperature's Enter and the click each classify, and while one is on its way the
    # label's text starts with Gradio's status ("processing | 1.3s"), which the fresh page never shows
    shown, src = settled_text(pg, "#clip-zs-label"), image_src(pg, "#clip-zs-image")
    pg.click("#copy-link")
    pg.wait_for_function("() => document.querySelector('#lesson-link textarea, #lesson-link input').value.includes('?')")
    url = _field(pg, "#lesson-link").input_value()
    for part in ("lab=clip", "view=zeroshot", "q=a+rocket+ship", "k=5", "img=high-heeled+shoe", "tau=0.1",
                 "labels=sandal,+sneaker,+ankle+boot,+dress"):
        assert part in url, (part, url)
    pg.context.close()
    fresh = new_page(browser, url)                                     # another browser: nothing shared
    fresh.wait_for_function("(s) => document.querySelector('#clip-zs-label')?.innerText === s", arg=shown,
                            timeout=180_000)                          # the same probabilities, no click
    assert _field(fresh, "#clip-zs-pick").input_value() == PICK
    assert _field(fresh, "#clip-zs-labels").input_value() == LABELS
    assert float(_number(fresh, "#clip-zs-temp").input_value()) == 0.1
    assert image_src(fresh, "#clip-zs-image") == src                  # the same picture (same bytes, same file)
    assert fresh.locator("#clip-zs-image img").first.get_attribute("alt") == f"Gallery image being classified: {PICK}"
    fresh.get_by_role("tab", name="Search").click()
    status = fresh.locator("#clip-results-status").inner_text()
    assert "Top 5 of" in status and "a rocket ship" in status        # computed when the link opened
    assert fresh.locator("#clip-results img").count() == 5
    fresh.context.close()


def test_hidden_and_locked_controls_and_a_garbage_link(browser, app_url):
    pg = new_page(browser, app_url + "?lab=clip&view=zeroshot&hide=templates,template&lock=labels"
                  "&img=no%20such%20picture&tau=7&bogus=1")
    notice = pg.locator("#lesson-notice")
    notice.wait_for(state="visible")
    text = notice.inner_text()
    assert "Ignored img: No gallery image is called “no such picture”" in text
    assert "'bogus'" in text and "tau = 7 is out of range: set to 1" in text
    _wait_label(pg, "trousers")                                        # the default pick, at tau = 1
    assert _field(pg, "#clip-zs-labels").is_disabled()                 # locked: shown, not changeable
    assert not pg.locator("#clip-zs-mode").is_visible() and not pg.locator("#clip-zs-template").is_visible()
    assert pg.locator("#clip-zs-temp").is_visible()
    pg.context.close()
    bad = new_page(browser, app_url + "?lab=clip&view=..%2F..&q=%00%01&k=many")
    bad.locator("#lesson-notice").wait_for(state="visible")
    text = bad.locator("#lesson-notice").inner_text()
    assert "No view '../..'" in text and "Ignored k" in text
    bad.wait_for_function("document.querySelector('#clip-results-status')?.innerText.includes('Query is empty')",
                          timeout=180_000)                            # said where the result goes, not a crash
    bad.context.close()


def test_the_tour_with_the_keyboard_alone_in_presenter_mode(browser, app_url, svc):
    tour = lesson.load_tour(lesson.tour_path("clip"))
    expected = [svc.tour_check(s.check, s.args, {}).answer for s in tour.steps]     # the model, asked directly
    pg = new_page(browser, app_url + "?present=1&tour=clip")
    pg.wait_for_function("() => document.body.classList.contains('presenter')")
    pg.locator("body").click(position={"x": 5, "y": 5})
    views = {"search": "Search", "zeroshot": "Zero-shot classification", "matrix": "Contrastive matrix",
             "map": "Embedding map"}
    for k, step in enumerate(tour.steps):
        pg.keyboard.press("ArrowRight")                                # next step: its state is applied
        pg.wait_for_function("(t) => document.querySelector('#tour-question').innerText.includes(t)",
                             arg=f"step {k + 1} of {len(tour.steps)}", timeout=120_000)
        view = re.search(r"view=(\w+)", step.link)[1]
        tab = pg.get_by_role("tab", name=views[view], exact=True)
        assert tab.get_attribute("aria-selected") == "true", step.title                 # the step's view
        pg.locator("#tour-choice label").first.wait_for()
        pg.keyboard.press("2")                                         # predict: the second choice
        pg.keyboard.press("Enter")                                     # reveal what the model does
        pg.wait_for_function("() => document.querySelector('#tour-answer').innerText.includes('The model:')",
                             timeout=120_000)
        answer = pg.locator("#tour-answer").inner_text()
        said = re.search(r"The model: (.+?)\.\n", answer + "\n")[1]
        assert said == expected[k] and said in step.choices, (step.title, said)
        assert ("You predicted it" in answer) == (said == step.choices[1])
    assert "Last step" in pg.locator("#tour-question").inner_text()
    screenshot(pg, "clip-presenter-tour")
    pg.context.close()


def test_phone_temperature_slider_keeps_the_probabilities_in_view(browser, app_url, svc):
    pg = new_page(browser, app_url + f"?lab=clip&view=zeroshot&img={PICK}&labels={LABELS}&tau=0.1", width=390,
                  height=844, is_mobile=True, has_touch=True)
    _wait_label(pg, "ankle boot", "sandal")
    old = _label(pg)
    drag(pg, "#clip-zs-temp", 0.1, 0.02)                               # lower tau, as a thumb would
    pg.wait_for_function("(o) => { const t = document.querySelector('#clip-zs-label').innerText;"
                         " return t !== o && t.includes('%'); }", arg=old, timeout=60_000)
    shown = settled_text(pg, "#clip-zs-label")                       # the last of the drag's updates
    tau = float(_number(pg, "#clip-zs-temp").input_value())
    want = svc.classify_pick(PICK, LABELS, cs.TEMPLATE_MODES[1], "", tau).probs.max()
    assert tau < 0.1 and abs(_top_percent(shown) - 100 * want) <= 1       # what the model gives at that tau
    box = pg.locator("#clip-zs-label").bounding_box()
    track = pg.locator("#clip-zs-temp input[type=range]").first.bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 844                    # the result in view...
    assert box["y"] + box["height"] <= track["y"] and track["y"] + track["height"] <= 844   # ...with the slider
    screenshot(pg, "clip-phone-temperature")
    pg.context.close()


def test_no_serious_or_critical_accessibility_violation_in_any_view(browser, app_url):
    """axe-core (tests/node_modules, pinned in tests/package.json) on each of the lab's views once its
    result is shown: the WCAG 2.x A/AA and best-practice rules the app-wide test applies to every tab."""
    pg = new_page(browser, app_url + "?lab=clip")
    pg.wait_for_function("document.querySelectorAll('#clip-results img').length >= 12", timeout=180_000)
    found = {}
    for tab, ready in (("Search", "#clip-results img"), ("Zero-shot classification", "#clip-zs-image img"),
                       ("Contrastive matrix", "#clip-matrix-plot .js-plotly-plot"),
                       ("Embedding map", "#clip-map-plot .js-plotly-plot")):
        pg.get_by_role("tab", name=tab, exact=True).click()
        pg.wait_for_selector(ready, timeout=120_000)
        violations = axe_serious(pg)
        if violations:
            found[tab] = violations
    pg.context.close()
    assert not found, found
