"""Prompt lab in a real Chromium: a person picks a preset, asks, reads the table and the vote;
looks at the bundled evaluation; and looks at the real model's next-token distribution."""
from __future__ import annotations

import json

import pytest
from conftest import open_tab, screenshot, settled_text

from playground.prompting import evaluate, models, tiny


@pytest.fixture()
def tiny_model(monkeypatch):
    b = tiny.backend()
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: b)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    return b


@pytest.mark.browser
def test_preset_then_ask_shows_every_technique(page, tiny_model):
    open_tab(page, "Prompt lab")
    page.locator("#prompt-preset input").click()
    page.get_by_role("option", name="Sentiment (few-shot)").click()
    page.wait_for_function("document.querySelector('#prompt-question textarea').value.includes('Best movie')")
    assert "correct?" not in settled_text(page, "#prompt-summary")     # before a run: the prompts only
    page.locator("#prompt-run").click()
    page.locator("#prompt-votes .js-plotly-plot").wait_for(timeout=120_000)   # self-consistency, the last, voted
    page.wait_for_function("() => { const t = document.querySelector('#prompt-summary').innerText;"
                           " return t.includes('correct?') && !t.includes('processing'); }")
    table = page.locator("#prompt-summary").inner_text()
    assert all(t in table for t in ("zero-shot", "few-shot", "CoT (zero-shot)", "CoT (few-shot)", "self-consistency"))
    assert "Exact text the model receives" in page.locator("#prompt-details").inner_text()
    screenshot(page, "prompt_side_by_side_tiny")


@pytest.mark.browser
def test_bundled_evaluation_is_shown(page):
    open_tab(page, "Prompt lab")
    page.get_by_role("tab", name="Evaluate").click()
    page.locator("#prompt-eval-bars .js-plotly-plot").wait_for(timeout=30_000)
    assert "Bundled figures" in page.locator("#prompt-eval-note").inner_text()
    table = page.locator("#prompt-eval-table").inner_text()
    recorded = json.loads(evaluate.BUNDLED.read_text(encoding="utf-8"))["results"]
    for by_tech in recorded.values():                         # every recorded accuracy is on screen
        assert all(f"{r['accuracy']:.1%}" in table for r in by_tech.values())


@pytest.mark.browser
@pytest.mark.slow
def test_real_model_next_token_distribution(page):
    """The offline SmolLM2 answers in the browser (first use may convert the GGUF)."""
    open_tab(page, "Prompt lab")
    page.get_by_role("tab", name="Sampling").click()
    page.locator("#prompt-dist-run").click()
    page.locator("#prompt-dist .js-plotly-plot").wait_for(timeout=300_000)
    assert "Next token: top 20" in page.locator("#prompt-dist").inner_text()
    screenshot(page, "prompt_sampling_smollm2")
