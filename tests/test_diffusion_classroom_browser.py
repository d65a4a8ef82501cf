"""The Diffusion lab in the classroom layer, in a real Chromium: its first result on opening, a state set as a
person would and carried by a copied link into a fresh browser, hidden and locked controls, a link with
garbage, the text-to-image view opened by a link, the guided tour walked with the keyboard in presenter
mode, the step scrub on a phone, and axe-core on every view.

Serve only this lab while iterating: PLAYGROUND_TABS=home,diffusion pytest tests/test_diffusion_classroom_browser.py"""
from __future__ import annotations

import re

import pytest
from conftest import axe_serious, image_src, new_page, screenshot

from playground.core import lesson

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SLOW = 240_000      # a reveal or a chain on a busy 2-core machine


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """The app runs in this process: one torch thread, as the 2-core machine is shared with Chromium."""


def wait_text(page, sel: str, pattern: str, timeout: int = SLOW) -> None:
    try:
        page.wait_for_function("([sel, pat]) => new RegExp(pat).test(document.querySelector(sel)?.innerText || '')",
                               arg=[sel, pattern], timeout=timeout)
    except Exception:
        raise AssertionError(f"{sel} never matched {pattern!r}; it reads: {page.locator(sel).inner_text()!r}") from None


def number(page, sel: str) -> float:
    return float(page.locator(f"{sel} input[type=number]").first.input_value())


def set_number(page, sel: str, value) -> None:
    box = page.locator(f"{sel} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")


def copy_link(page) -> str:
    page.click("#copy-link")
    page.wait_for_function("() => document.querySelector('#lesson-link textarea, #lesson-link input').value.includes('?')")
    return page.locator("#lesson-link textarea, #lesson-link input").first.input_value()


def test_first_result_then_a_state_set_by_hand_round_trips_through_a_copied_link(browser, app_url):
    pg = new_page(browser, app_url + "?lab=diffusion")
    wait_text(pg, "#diff-status", r"Step 50 / 50 \(taken: 50\)[\s\S]*Finished")   # opened with a finished chain
    for sel in ("#diff-xt", "#diff-x0", "#diff-eps", "#diff-next", "#diff-eps-u", "#diff-eps-c", "#diff-eps-g",
                "#diff-once-img"):
        assert image_src(pg, sel), f"{sel} is empty in the first view"
    assert pg.locator("#diff-tradeoff .js-plotly-plot").count() == 1
    pg.locator("#diff-class input").click()                                      # as a person: another class,
    pg.get_by_role("option", name="Trouser").click()
    set_number(pg, "#diff-steps", 20)                                            # fewer steps,
    for k in (1, 2, 3):                                                          # three steps taken,
        pg.click("#diff-step")
        wait_text(pg, "#diff-status", rf"Step {k} / 20 \(taken: {k}\)[\s\S]*Trouser")
    thumb = pg.locator("#diff-scrub input[type=range]")                        # and one scrubbed back
    thumb.focus()
    thumb.press("ArrowLeft")
    wait_text(pg, "#diff-status", r"Step 2 / 20 \(taken: 3\)")
    xt, x0 = image_src(pg, "#diff-xt"), image_src(pg, "#diff-x0")
    url = copy_link(pg)
    assert url.startswith(app_url) and "lab=diffusion" in url
    assert "class=Trouser" in url and "steps=20" in url and re.search(r"[?&]k=2(&|$)", url), url
    pg.context.close()
    fresh = new_page(browser, url)                                               # another browser: nothing shared
    wait_text(fresh, "#diff-status", r"Step 2 / 20 \(taken: 2\)[\s\S]*Trouser")  # no click
    assert fresh.locator("#diff-class input").first.input_value() == "Trouser"
    assert number(fresh, "#diff-steps") == 20 and number(fresh, "#diff-scrub") == 2
    fresh.wait_for_function("([a, b]) => document.querySelector('#diff-xt img')?.getAttribute('src') === a && "
                            "document.querySelector('#diff-x0 img')?.getAttribute('src') === b", arg=[xt, x0])
    fresh.context.close()


def test_hidden_and_locked_controls_a_garbage_link_and_the_prompt_cap(browser, app_url):
    pg = new_page(browser, app_url + "?lab=diffusion&hide=eta,seed&lock=class,s&steps=10&k=10")
    wait_text(pg, "#diff-status", r"Step 10 / 10 \(taken: 10\)")
    assert not pg.locator("#diff-eta").is_visible() and not pg.locator("#diff-seed").is_visible()
    assert pg.locator("#diff-class input").first.is_disabled()
    assert pg.locator("#diff-scale input[type=range]").first.is_disabled()
    assert pg.locator("#diff-steps input[type=range]").first.is_enabled()
    pg.context.close()
    long = "a" * (lesson.MAX_TEXT + 1)
    bad = new_page(browser, app_url + f"?lab=diffusion&view=nope&s=banana&k=5000&bogus=1&sampler=Euler&prompt={long}")
    notice = bad.locator("#lesson-notice")
    notice.wait_for(state="visible")
    text = notice.inner_text()
    for needle in ("No view 'nope'", "Ignored s", "'bogus'", "k = 5000 is out of range: set to", "Ignored sampler",
                   f"shorten it to at most {lesson.MAX_TEXT}"):
        assert needle in text, (needle, text)
    wait_text(bad, "#diff-status", r"Step 50 / 50")                             # the rest of the state, shown
    bad.context.close()


def test_a_link_opens_the_text_to_image_view_with_its_result(browser, app_url):
    """No Stable Diffusion here: the bundled model stands in, the class read from the linked prompt."""
    pg = new_page(browser, app_url + "?lab=diffusion&view=sd&prompt=a%20dress%20for%20summer&sd_steps=6&sd_k=4")
    wait_text(pg, "#sd-status", r"Step 4 / 6 \(taken: 4\)[\s\S]*Dress")
    assert pg.locator("#sd-prompt textarea").input_value() == "a dress for summer"
    assert image_src(pg, "#sd-xt") and image_src(pg, "#sd-x0")
    assert number(pg, "#sd-scrub") == 4
    pg.locator("button[role=tab][data-tab-id=diff-step-tab]:visible").first.click()   # it fills when opened
    wait_text(pg, "#diff-status", r"Step 50 / 50")
    pg.context.close()


def test_tour_with_the_keyboard_alone_in_presenter_mode(browser, app_url):
    tour = lesson.load_tour(lesson.tour_path("diffusion"))
    pg = new_page(browser, app_url + "?present=1&tour=diffusion")
    pg.wait_for_function("() => document.body.classList.contains('presenter')")
    pg.locator("body").click(position={"x": 5, "y": 5})
    said = []
    for k, step in enumerate(tour.steps):
        pg.keyboard.press("ArrowRight")
        wait_text(pg, "#tour-question", f"step {k + 1} of {len(tour.steps)}")
        pg.locator("#tour-choice label").first.wait_for()
        pg.keyboard.press(str(len(step.choices)))                               # predict: the last choice
        pg.keyboard.press("Enter")
        wait_text(pg, "#tour-answer", "The model:")
        answer = pg.locator("#tour-answer").inner_text()
        said.append(re.search(r"The model: (.+?)\.\s", answer)[1])
        assert said[-1] in step.choices, (step.title, answer)                   # computed at reveal time
        assert ("You predicted it" in answer) == (said[-1] == step.choices[-1])
    assert "Last step" in pg.locator("#tour-question").inner_text()
    assert pg.locator("#diff-compare-status").inner_text().startswith("Step 20 / 20")   # the last link, shown
    screenshot(pg, "diffusion-presenter-tour")
    pg.context.close()


def test_phone_scrub_keeps_x_t_and_x0_in_view(browser, app_url):
    pg = new_page(browser, app_url + "?lab=diffusion", width=390, height=844, is_mobile=True, has_touch=True)
    wait_text(pg, "#diff-status", r"Step 50 / 50")
    track = pg.locator("#diff-scrub input[type=range]").first
    track.scroll_into_view_if_needed()
    below = pg.evaluate("() => document.querySelector('#diff-x0').closest('.result-sticky').getBoundingClientRect().bottom")
    pg.evaluate("(dy) => window.scrollBy(0, dy)", track.bounding_box()["y"] - below - 60)   # just under the result
    old = image_src(pg, "#diff-x0")
    track.focus()
    for _ in range(10):
        track.press("ArrowLeft")
    wait_text(pg, "#diff-status", r"Step 40 / 50")
    pg.wait_for_function("(o) => { const i = document.querySelector('#diff-x0 img'); "
                         "return i && i.getAttribute('src') !== o && i.complete; }", arg=old)
    for sel in ("#diff-xt img", "#diff-x0 img"):
        box = pg.locator(sel).bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 844 and box["width"] >= 100, (sel, box)
    bb = track.bounding_box()
    hit = pg.evaluate("([x, y]) => document.elementFromPoint(x, y)?.closest('#diff-scrub') !== null",
                      [bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2])
    assert 0 <= bb["y"] < 844 and hit, "the scrub slider is hidden under the result"
    screenshot(pg, "diffusion-phone-scrub")
    pg.context.close()


def test_axe_finds_no_serious_violation_in_any_view(browser, app_url):
    pg = new_page(browser, app_url + "?lab=diffusion&view=lockstep&cmp_steps=4")
    wait_text(pg, "#diff-compare-status", r"Step 4 / 4")
    found = {}
    for view in ("lockstep", "sd", "forward", "card", "step"):
        pg.locator(f"button[role=tab][data-tab-id=diff-{view}-tab]:visible").first.click()
        pg.wait_for_timeout(1500)
        pg.wait_for_function("() => !document.querySelector('.progress-text, .eta-bar')", timeout=SLOW)
        if view == "step":
            wait_text(pg, "#diff-status", r"Step 50 / 50")
        bad = axe_serious(pg, "#tab-diffusion")
        if bad:
            found[view] = bad
    assert not found, found
    pg.context.close()
