"""CLIP tab in a real Chromium: search by text (and click a result), upload images, classify zero-shot.

Each test's page opens at the lab's link (?lab=clip, PAGE_QUERY), as a shared link would."""
from __future__ import annotations

from pathlib import Path

import pytest
from conftest import screenshot
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.browser


PAGE_QUERY = "?lab=clip"        # the page fixture opens the lab by its link


def _open_clip(page) -> None:
    page.locator("#clip-query").wait_for(state="visible", timeout=60_000)


def _result_captions(page) -> list[str]:
    return page.locator("#clip-results .caption-label, #clip-results figcaption").all_inner_texts()


def test_clip_search_and_click_a_result(page):
    _open_clip(page)
    # the lab shows a first search when it opens; a person reads it, then searches
    page.wait_for_function("document.querySelector('#clip-results-status')?.innerText.includes('the text “a red apple”')",
                           timeout=180_000)
    box = page.locator("#clip-query input, #clip-query textarea").first
    box.fill("grinning face")
    page.locator("#clip-search-btn").click()
    page.wait_for_function("document.querySelector('#clip-results-status')?.innerText.includes('grinning face')",
                           timeout=180_000)
    page.wait_for_function("document.querySelectorAll('#clip-results img').length >= 12")
    status = page.locator("#clip-results-status").inner_text()
    assert "the text “grinning face”" in status
    screenshot(page, "clip_search")
    # a click on the third result searches with that image
    page.locator("#clip-results img").nth(2).click()
    page.wait_for_function("document.querySelector('#clip-results-status')?.innerText.includes('the image')")
    assert "the image “" in page.locator("#clip-results-status").inner_text()


def test_clip_upload_adds_to_the_gallery(page, tmp_path):
    img = tmp_path / "red_square.png"
    Image.new("RGB", (64, 64), (220, 30, 30)).save(img)
    _open_clip(page)
    page.locator("#clip-upload input[type=file]").set_input_files(str(img))
    page.wait_for_function("document.querySelector('#clip-upload-status')?.innerText.includes('of yours')",
                           timeout=180_000)
    assert "1 image(s) of yours" in page.locator("#clip-upload-status").inner_text()
    # search by the same picture: the upload itself comes first
    page.locator("#clip-query-image input[type=file]").set_input_files(str(img))
    page.locator("#clip-search-image-btn").click()
    page.wait_for_function("document.querySelector('#clip-results-status')?.innerText.includes('your image')",
                           timeout=180_000)
    page.wait_for_function("document.querySelectorAll('#clip-results img').length > 0")
    assert "upload 1" in page.locator("#clip-results").inner_text()
    screenshot(page, "clip_upload")


def test_clip_zero_shot_classification(page):
    _open_clip(page)
    page.get_by_role("tab", name="Zero-shot classification").click()
    # the view opens on a gallery image, classified; the learner replaces it by an upload of their own
    page.wait_for_function("document.querySelector('#clip-zs-label')?.innerText.includes('%')", timeout=180_000)
    assert page.locator("#clip-zs-label h2, #clip-zs-label .output-class").first.inner_text().strip() == "trousers"
    page.locator("#clip-zs-image").get_by_role("button", name="Remove Image").click()
    sneaker = ROOT / "assets" / "clip" / "examples" / "fashion_sneaker.png"
    page.locator("#clip-zs-image input[type=file]").set_input_files(str(sneaker))
    page.wait_for_selector("#clip-zs-image img")
    page.wait_for_function("document.querySelector('#clip-zs-pick input').value === ''")   # an upload is no pick
    page.locator("#clip-zs-btn").click()
    page.wait_for_function("document.querySelector('#clip-zs-label h2, #clip-zs-label .output-class')"
                           "?.innerText.trim() === 'sneaker'", timeout=180_000)
    assert "%" in page.locator("#clip-zs-label").inner_text()
    screenshot(page, "clip_zero_shot")


def test_clip_matrix_view(page):
    _open_clip(page)
    page.get_by_role("tab", name="Contrastive matrix").click()
    page.locator("#clip-matrix-btn").click()
    page.wait_for_function("document.querySelector('#clip-matrix-loss')?.innerText.includes('InfoNCE')",
                           timeout=180_000)
    page.wait_for_selector(".js-plotly-plot")
    screenshot(page, "clip_matrix")


def test_clip_embedding_map(page):
    _open_clip(page)
    page.get_by_role("tab", name="Embedding map").click()
    page.locator("#clip-map-btn").click()
    page.wait_for_function("document.querySelector('#clip-map-gap')?.innerText.includes('Modality gap')",
                           timeout=180_000)
    page.wait_for_selector(".js-plotly-plot")
    screenshot(page, "clip_map")
