"""The text-to-image part of the Diffusion tab in a real Chromium, with the tiny Stable Diffusion of
sd_tiny.py as the configured model folder: type a prompt, Step, scrub back, drag the guidance scale,
switch the noise view, as a person would. And, in the whole app (no model here), the note that says why
there is none and how to enable it."""
from __future__ import annotations

import re

import pytest
import torch
from conftest import open_tab, screenshot
from test_sd_app import serve_sd

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SD_TAB = "Text-to-image (Stable Diffusion)"


@pytest.fixture(scope="module")
def sd_url(tmp_path_factory):
    from playground.diffusion import sd_tiny

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    demo, url = serve_sd(sd_tiny.save(tmp_path_factory.mktemp("tiny-sd")))
    yield url
    demo.close()
    torch.set_num_threads(n)


@pytest.fixture()
def sd_page(browser, sd_url):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1100})
    pg = ctx.new_page()
    pg.set_default_timeout(30_000)
    pg.goto(sd_url)
    pg.get_by_role("tab", name=SD_TAB).click()
    yield pg
    ctx.close()


def wait_text(page, sel: str, pattern: str, timeout: int = 90_000) -> None:
    """Wait until the element's text matches (rendered LaTeX spreads over lines: use [\\s\\S]*, not .*)."""
    try:
        page.wait_for_function("([sel, pat]) => new RegExp(pat).test(document.querySelector(sel)?.innerText || '')",
                               arg=[sel, pattern], timeout=timeout)
    except Exception:
        raise AssertionError(f"{sel} never matched {pattern!r}; it reads: {page.locator(sel).inner_text()!r}") from None


def src(page, sel: str) -> str | None:
    return page.locator(f"{sel} img").get_attribute("src")


def wait_src_change(page, sel: str, old: str | None) -> None:
    page.wait_for_function("([sel, old]) => { const i = document.querySelector(sel + ' img'); "
                           "return i && i.src !== old; }", arg=[sel, old], timeout=30_000)


def set_number(page, sel: str, value) -> None:
    box = page.locator(f"{sel} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_prompt_step_scrub_guidance_and_noise_views(sd_page):
    page = sd_page
    page.locator("#sd-prompt textarea").fill("a lighthouse, watercolor")
    set_number(page, "#sd-steps", 5)
    page.locator("#sd-step").click()
    wait_text(page, "#sd-status", r"Step 1 / 5 \(taken: 1\)")
    x1 = src(page, "#sd-xt")
    page.locator("#sd-step").click()
    wait_text(page, "#sd-status", r"Step 2 / 5 \(taken: 2\)[\s\S]*a lighthouse, watercolor")
    for sel in ("#sd-xt", "#sd-x0", "#sd-eps-u", "#sd-eps-c", "#sd-eps-g"):
        assert page.locator(f"{sel} img").count() == 1, sel
    assert src(page, "#sd-xt") != x1
    eps_u, eps_g, x0 = src(page, "#sd-eps-u"), src(page, "#sd-eps-g"), src(page, "#sd-x0")
    # the live guidance scale: the shown step's guided noise and x0_hat change, its two predictions do not
    set_number(page, "#sd-scale", 1)
    wait_text(page, "#sd-status", r"Shown at your[\s\S]*s=1\b")
    wait_src_change(page, "#sd-eps-g", eps_g)
    wait_src_change(page, "#sd-x0", x0)
    assert src(page, "#sd-eps-u") == eps_u
    screenshot(page, "sd_live_guidance")
    # scrub back with the keyboard on the slider
    thumb = page.locator("#sd-scrub input[type=range]")
    thumb.focus()
    thumb.press("ArrowLeft")
    wait_text(page, "#sd-status", r"Step 1 / 5 \(taken: 2\)")
    page.wait_for_function("([sel, src]) => document.querySelector(sel)?.src === src", arg=["#sd-xt img", x1],
                           timeout=20_000)
    # the noise as the decoder sees it
    latent = src(page, "#sd-eps-u")
    page.locator("#sd-eps").get_by_label("decoded (TAESD)").check()
    wait_src_change(page, "#sd-eps-u", latent)
    # Step goes on from the chain's end, at the new s
    page.locator("#sd-step").click()
    wait_text(page, "#sd-status", r"Step 3 / 5 \(taken: 3\)[\s\S]*s=1\b")
    screenshot(page, "sd_step_scrub")


def test_play_runs_the_chain_to_its_final_image(sd_page):
    page = sd_page
    set_number(page, "#sd-steps", 4)
    page.locator("#sd-play").click()
    wait_text(page, "#sd-status", r"Step 4 / 4 \(taken: 4\)[\s\S]*Finished")
    assert page.locator("#sd-final img").count() == 1
    status = page.locator("#sd-status").inner_text()
    assert re.search(r"\d+\.\d\d s per step", status), status


def test_without_a_model_the_tab_says_why(page):
    open_tab(page, "Diffusion")
    page.get_by_role("tab", name=SD_TAB).click()
    note = page.locator("#sd-info").inner_text()
    assert "not available here" in note and "PLAYGROUND_SD_MODEL" in note
