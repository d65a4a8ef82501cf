"""Diffusion tab in a real Chromium: its first result, then step, play / pause, scrub back, as a person would."""
from __future__ import annotations

import re

import pytest
from conftest import open_tab, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def shown_step(page) -> tuple[int, int, int]:
    """(step shown, steps in the chain, steps taken) read from the status line."""
    text = page.locator("#diff-status").inner_text()
    m = re.search(r"Step (\d+) / (\d+) \(taken: (\d+)\)", text)
    assert m, text
    return int(m[1]), int(m[2]), int(m[3])


def wait_status(page, pattern: str, timeout: int = 120_000) -> None:
    """Wait until the status line matches; the first call also waits for the model to load."""
    try:
        page.wait_for_function(
            "([sel, pat]) => new RegExp(pat).test(document.querySelector(sel)?.innerText || '')",
            arg=["#diff-status", pattern], timeout=timeout)
    except Exception:
        raise AssertionError(f"status never matched {pattern!r}; it reads: "
                             f"{page.locator('#diff-status').inner_text()!r}") from None


def open_lab(page) -> None:
    """Open the tab as a person would and wait for its first result (a finished chain at the default
    settings). A click made while the page's own load event is still running is undone by it (that
    event selects the tab its link names, Home without one): then the tab is clicked again."""
    open_tab(page, "Diffusion")
    wait_status(page, r"Step 50 / 50 \(taken: 50\)[\s\S]*Finished")
    if not page.locator("#diff-step").is_visible():
        open_tab(page, "Diffusion")
        page.locator("#diff-step").wait_for(state="visible")


def set_steps(page, n: int) -> None:
    box = page.locator("#diff-steps input[type=number]")
    box.fill(str(n))
    box.press("Enter")


def test_step_and_scrub_back(page):
    open_lab(page)
    page.locator("#diff-step").click()                 # after the finished first chain: the next one's first step
    wait_status(page, r"Step 1 / 50 \(taken: 1\)")
    src1 = page.locator("#diff-xt img").get_attribute("src")
    page.locator("#diff-step").click()
    wait_status(page, r"Step 2 / 50 \(taken: 2\)")
    page.locator("#diff-step").click()
    wait_status(page, r"Step 3 / 50 \(taken: 3\)")
    assert page.locator("#diff-xt img").get_attribute("src") != src1
    for sel in ("#diff-x0 img", "#diff-eps img", "#diff-eps-u img", "#diff-eps-c img", "#diff-eps-g img"):
        assert page.locator(sel).count() == 1, sel
    # scrub back with the keyboard on the slider, as a person would
    thumb = page.locator("#diff-scrub input[type=range]")
    thumb.focus()
    thumb.press("ArrowLeft")
    wait_status(page, r"Step 2 / 50 \(taken: 3\)")
    thumb.press("ArrowLeft")
    wait_status(page, r"Step 1 / 50 \(taken: 3\)")
    page.wait_for_function("([sel, src]) => document.querySelector(sel)?.src === src",
                           arg=["#diff-xt img", src1], timeout=20_000)
    screenshot(page, "diffusion_step_scrub")


def test_play_pause_and_play_to_the_end(page):
    open_lab(page)
    set_steps(page, 20)
    page.locator("#diff-play").click()
    wait_status(page, r"Step ([3-9]|1\d) / 20")
    page.locator("#diff-pause").click()
    page.wait_for_function("() => !document.querySelector('#diff-status .pending, #diff-status .progress-text')")
    page.wait_for_timeout(1500)            # let a tick already in flight land (its request left before the Pause)
    k1, n, taken1 = shown_step(page)
    assert n == 20 and 3 <= taken1 < 20
    page.wait_for_timeout(2000)
    k2, _, taken2 = shown_step(page)
    assert taken2 == taken1, "the chain kept going after Pause"
    page.locator("#diff-play").click()     # resumes the same chain
    wait_status(page, r"Finished", timeout=120_000)
    k, n, taken = shown_step(page)
    assert (k, n, taken) == (20, 20, 20)
    screenshot(page, "diffusion_played")


def test_forward_process_plot_moves_with_t(page):
    open_lab(page)
    page.get_by_role("tab", name="Forward process").click()
    page.wait_for_selector("#diff-forward-img img")
    box = page.locator("#diff-forward-t input[type=number]")
    box.fill("800")
    box.press("Enter")
    page.wait_for_function("() => /t=800/.test(document.body.innerText)", timeout=30_000)
    screenshot(page, "diffusion_forward")
