"""Transformer lab in a real Chromium, with the real offline model: the first view on opening, then a typed
prompt, a chosen layer and head, the heatmap read back from the page (against the headless service), the
per-layer overview, and the logit-lens table."""
from __future__ import annotations

import numpy as np
import pytest
from conftest import open_tab, screenshot

from playground.core import settings
from playground.transformer.service import DEFAULT, DEFAULT_PROMPT, Service

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SVC = Service(settings.from_env())
PROMPT = "The Eiffel Tower is located in the city of"
LAYER, HEAD = 16, 0


def _set_number(page, sel: str, value: int) -> None:
    """Type into a slider's number box and leave it, as a person would (the slider's release event)."""
    box = page.locator(f"{sel} input[type=number]").first
    box.fill(str(value))
    box.press("Enter")
    box.blur()


def _z(page, sel: str, trace: int) -> np.ndarray:
    """A heatmap's values as the page's plotly holds them (typed arrays become lists; NaN comes back as null)."""
    z = page.evaluate(f"""() => {{
        const d = document.querySelector('{sel} .js-plotly-plot')._fullData[{trace}];
        return Array.from(d.z, row => Array.from(row, v => Number.isNaN(v) ? null : v)); }}""")
    return np.array([[np.nan if v is None else v for v in row] for row in z], dtype=float)


def test_type_a_prompt_pick_a_layer_and_head_read_the_heatmap_and_the_lens(page):
    open_tab(page, "Transformer")
    first = SVC.inspect_prompt(DEFAULT_PROMPT, DEFAULT["layer"], DEFAULT["head"], DEFAULT["shift"],
                               DEFAULT["ablation"], 1.0, 0, 1.0)
    page.wait_for_function("(n) => document.querySelector('#transformer-tokens').innerText.includes(n)",
                           arg=f"{len(first.ids)} tokens", timeout=180_000)           # the first view, on opening
    assert f"layer {DEFAULT['layer']}, head {DEFAULT['head']}" in page.locator("#transformer-notes").inner_text()

    want = SVC.inspect(PROMPT, LAYER, HEAD, 10_000, None, DEFAULT["shift"], "nothing", 1.0, 0, 1.0)
    box = page.locator("#transformer-prompt textarea").first
    box.fill(PROMPT)
    page.click("#transformer-run")
    page.wait_for_function("(n) => document.querySelector('#transformer-tokens').innerText.includes(n)",
                           arg=f"{len(want.ids)} tokens", timeout=60_000)
    chips = page.locator("#transformer-tokens").inner_text()
    assert all(t in chips for t in want.tokens) and str(want.ids[-1]) in chips

    _set_number(page, "#transformer-layer", LAYER)
    page.wait_for_function("(s) => document.querySelector('#transformer-notes').innerText.includes(s)",
                           arg=f"layer {LAYER}, head", timeout=60_000)
    _set_number(page, "#transformer-head", HEAD)
    page.wait_for_function("(s) => document.querySelector('#transformer-notes').innerText.includes(s)",
                           arg=f"layer {LAYER}, head {HEAD} ", timeout=60_000)
    page.wait_for_function("(s) => document.querySelector('#transformer-attn').innerText.includes(s)",
                           arg=f"Layer {LAYER}, head {HEAD}: attention weights", timeout=60_000)

    t = len(want.ids)
    z = _z(page, "#transformer-attn", 1)                                     # the heatmap as drawn
    low = np.tril_indices(t)
    assert np.allclose(z[low], want.attention.weights[HEAD][low], atol=1e-5)
    assert np.isnan(z[np.triu_indices(t, 1)]).all()                           # the causal mask, grey
    prev = f"head {HEAD} · kv {want.attention.kv_of[HEAD]} · prev-token {want.attention.prev[HEAD]:.0%}"
    assert prev in page.locator("#transformer-heads").inner_text()            # the layer overview
    screenshot(page, "transformer_attention")

    page.get_by_role("tab", name="Layers (logit lens)").click()
    table = page.locator("#transformer-lens-table")
    table.locator("table").first.wait_for()
    text = table.inner_text()
    lens = want.lens
    assert lens.answer == "␣Paris" and lens.first is not None
    assert f"{lens.top[lens.first][0]} ({lens.probs[lens.first][0]:.2f})" in text   # where the answer appears
    assert lens.labels[lens.first] in text and "embeddings" in text
    assert f"from {lens.labels[lens.first]} on" in page.locator("#transformer-lens-md").inner_text()
    screenshot(page, "transformer_lens")
