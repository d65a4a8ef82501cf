"""VAE lab in a real Chromium: every control used as a person would (mouse drags on sliders, clicks,
an upload, a drawing on the sketchpad, dropdowns), asserting on what appears on screen."""
from __future__ import annotations

import pytest
from conftest import drag, image_src, new_page, open_tab, screenshot, wait_new_src
from PIL import Image, ImageDraw

from playground.core import settings
from playground.vae.service import Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]
N = Service(settings.from_env()).n_sliders      # one slider per latent dimension of the bundled models


def _number(page, sel: str) -> float:
    return float(page.locator(f"{sel} input[type=number]").first.input_value())


def _choose(page, sel: str, option: str) -> None:
    page.locator(f"{sel} input").first.click()
    page.locator(f'li[role=option][aria-label="{option}"]:visible').first.click()


def _vae(page):
    open_tab(page, "VAE")
    page.wait_for_selector("#vae-z0 input[type=range]")


def test_sliders_reset_sample_and_data_set(page):
    _vae(page)
    old = image_src(page, "#vae-decoded")
    drag(page, "#vae-z0", 0.5, 0.9)
    new = wait_new_src(page, "#vae-decoded", old)
    assert new.startswith("data:image/png")
    assert _number(page, "#vae-z0") > 1.0
    drag(page, "#vae-z7", 0.5, 0.15)
    wait_new_src(page, "#vae-decoded", new)
    assert _number(page, "#vae-z7") < -1.0

    page.click("#vae-reset")
    page.wait_for_function("() => document.querySelector('#vae-z0 input[type=number]').value == '0'")
    assert _number(page, "#vae-z7") == 0

    seed = page.locator("#vae-prior-seed input").first
    seed.fill("41")
    old = image_src(page, "#vae-decoded")
    page.click("#vae-sample")
    wait_new_src(page, "#vae-decoded", old)
    page.wait_for_function("() => document.querySelector('#vae-prior-seed input').value == '42'")
    assert any(_number(page, f"#vae-z{i}") != 0 for i in range(N))

    label_before = page.locator("#vae-z0 label, #vae-z0 [data-testid=block-info]").first.inner_text()
    old = image_src(page, "#vae-decoded")
    _choose(page, "#vae-dataset", "Digits (opencv, 5,000)")
    wait_new_src(page, "#vae-decoded", old)
    page.wait_for_function(
        "(before) => !document.querySelector('#vae-z0').innerText.includes(before)", arg=label_before.strip())
    assert "nats" in page.locator("#vae-z0").inner_text()

    page.get_by_text("Held-out figures: ours against").click()
    page.wait_for_selector("#vae-figures table")
    assert "peer: MLP VAE 784-400-20" in page.locator("#vae-figures").inner_text()
    screenshot(page, "vae_sliders")


def test_encode_pick_upload_draw_resample_and_to_sliders(page, tmp_path):
    _vae(page)
    page.get_by_role("tab", name="Encode an image").click()
    _choose(page, "#vae-pick", "test #9: Sneaker")
    page.wait_for_selector("#vae-recon img")
    page.wait_for_selector("#vae-musig .js-plotly-plot")
    assert "ELBO" in page.locator("#vae-terms").inner_text()
    old = image_src(page, "#vae-samples")
    page.click("#vae-resample")
    wait_new_src(page, "#vae-samples", old)

    old_live = image_src(page, "#vae-decoded")
    page.click("#vae-to-sliders")
    page.get_by_role("tab", name="Latent sliders").click()
    wait_new_src(page, "#vae-decoded", old_live)
    assert any(_number(page, f"#vae-z{i}") != 0 for i in range(N))

    page.get_by_role("tab", name="Encode an image").click()
    png = tmp_path / "ring.png"
    img = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(img).ellipse([20, 15, 100, 105], outline=0, width=10)
    img.save(png)
    old = image_src(page, "#vae-seen")
    page.locator("#vae-upload input[type=file]").set_input_files(str(png))
    wait_new_src(page, "#vae-seen", old)

    # draw a stroke with the brush, then encode it
    page.locator("#vae-sketch button[aria-label=Brush]").click()
    canvas = page.locator("#vae-sketch canvas").last
    bb = canvas.bounding_box()
    cx, cy = bb["x"] + bb["width"] / 2, bb["y"] + bb["height"] / 2
    page.mouse.move(cx, cy - bb["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(cx, cy + bb["height"] * 0.3, steps=12)
    page.mouse.up()
    old = image_src(page, "#vae-seen")
    page.click("#vae-encode-draw")
    wait_new_src(page, "#vae-seen", old)
    screenshot(page, "vae_encode")


def test_latent_map_sliders_grid_and_mark(page):
    _vae(page)
    page.get_by_role("tab", name="Encode an image").click()
    _choose(page, "#vae-pick", "test #2: Trouser")
    page.wait_for_selector("#vae-recon img")
    page.get_by_role("tab", name="Latent map (2-D model)").click()
    page.wait_for_selector("#vae-map .js-plotly-plot", timeout=90_000)
    page.wait_for_selector("#vae-grid img")
    old = image_src(page, "#vae-map-decoded")
    drag(page, "#vae-map-z1", 0.5, 0.8)
    old = wait_new_src(page, "#vae-map-decoded", old)
    drag(page, "#vae-map-z2", 0.5, 0.2)
    wait_new_src(page, "#vae-map-decoded", old)
    old_grid = image_src(page, "#vae-grid")
    drag(page, "#vae-grid-n", 0.5, 0.1)
    wait_new_src(page, "#vae-grid", old_grid)
    page.click("#vae-map-mark")
    page.wait_for_function("() => document.querySelector('#vae-map').innerText.includes('encoded image')")
    screenshot(page, "vae_map")


def test_interpolation_and_beta_comparison(page):
    _vae(page)
    page.get_by_role("tab", name="Interpolate").click()
    _choose(page, "#vae-interp-a", "test #2: Trouser")
    _choose(page, "#vae-interp-b", "test #1: Pullover")
    drag(page, "#vae-interp-steps", 0.5, 0.9)
    page.locator("#vae-interp-mode").get_by_text("linear").click()
    page.click("#vae-interp-go")
    page.wait_for_selector("#vae-interp-strip img")
    page.wait_for_selector("#vae-interp-file a")
    assert ".gif" in page.locator("#vae-interp-file").inner_text()
    screenshot(page, "vae_interp")

    page.get_by_role("tab", name="beta = 1 vs beta = 4").click()
    page.locator("#vae-beta-seed input").first.fill("7")
    page.click("#vae-beta-go")
    page.wait_for_selector("#vae-beta-grid img")
    page.wait_for_selector("#vae-beta-kl .js-plotly-plot")
    assert "beta = 4" in page.locator("#vae-beta-kl").inner_text()
    screenshot(page, "vae_beta")


def test_vq_vae_edit_a_code_and_see_the_decode_change(page, browser):
    _vae(page)
    page.get_by_role("tab", name="VQ-VAE: a grid of codes").click()
    _choose(page, "#vae-vq-pick", "test #9: Sneaker")
    page.wait_for_selector("#vae-vq-edited img")
    page.wait_for_selector("#vae-vq-grid .js-plotly-plot")
    assert "0 edited" in page.locator("#vae-vq-grid").inner_text()
    assert "perplexity" in page.locator("#vae-vq-usage").inner_text()
    assert "VAE:" in page.locator("#vae-vq-compare").inner_text()
    old = image_src(page, "#vae-vq-edited")
    drag(page, "#vae-vq-code", 0.0, 0.9)
    page.click("#vae-vq-edit")
    wait_new_src(page, "#vae-vq-edited", old)
    page.wait_for_function("() => document.querySelector('#vae-vq-grid').innerText.includes('1 edited')")
    # the decoded pixels changed: the edited grid's decode differs from the decode of the encoder's codes
    pixels = page.evaluate("""async () => {
        const px = async (sel) => { const i = document.querySelector(sel + ' img'); await i.decode();
            const c = document.createElement('canvas'); c.width = i.naturalWidth; c.height = i.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(i, 0, 0);
            return Array.from(g.getImageData(0, 0, c.width, c.height).data); };
        return [await px('#vae-vq-recon'), await px('#vae-vq-edited')]; }""")
    assert len(pixels[0]) == len(pixels[1]) and pixels[0] != pixels[1]
    screenshot(page, "vae_vq")

    code = int(_number(page, "#vae-vq-code"))                 # the lesson link carries the image and the edit
    page.click("#copy-link")
    box = "#lesson-link textarea, #lesson-link input"
    page.wait_for_function("(box) => document.querySelector(box).value.includes('?')", arg=box)
    url = page.locator(box).first.input_value()
    assert "view=vq" in url and f"vq_code={code}" in url and "vq_pick=" in url
    fresh = new_page(browser, url)
    fresh.wait_for_selector("#vae-vq-edited img", timeout=120_000)
    assert int(_number(fresh, "#vae-vq-code")) == code
    assert "Sneaker" in fresh.locator("#vae-vq-pick input").first.input_value()
    fresh.wait_for_function("() => document.querySelector('#vae-vq-grid').innerText.includes('1 edited')")
    fresh.context.close()
