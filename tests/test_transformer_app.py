"""Transformer lab through the public API (gradio_client against the whole app, with the real offline
model: slow): a new prompt and a change of layer and head give the service's own figures; numbers out of
range are clamped and said; a blank or over-long prompt gets a message that says what to change."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from gradio_client.exceptions import AppError

from playground.core import settings
from playground.transformer import views
from playground.transformer.service import DEFAULT, DEFAULT_PROMPT, MAX_TOKENS, Service

pytestmark = pytest.mark.slow
SVC = Service(settings.from_env())
OUT = ["layer", "head", "query", "key", "info", "tokens", "notes", "attn", "heads", "scores", "scores_md", "gqa",
       "rope", "rope_md", "positions", "lens_md", "lens", "lens_table", "ablated", "ablation_md", "next"]
D = DEFAULT


def named(out) -> dict:
    assert len(out) == len(OUT)
    return dict(zip(OUT, out))


def figure(value) -> dict:
    return json.loads(value["plot"])


def values(a) -> np.ndarray:
    """A trace's array: a JSON list, or plotly's typed array {"dtype", "bdata", "shape"} for numpy data."""
    if isinstance(a, dict):
        flat = np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"])
        return flat.reshape([int(n) for n in str(a.get("shape", len(flat))).split(",")])
    return np.array(a, dtype=float)


def test_a_new_prompt_then_another_layer_and_head(client):
    out = named(client.predict(DEFAULT_PROMPT, D["layer"], D["head"], D["shift"], D["ablation"], D["temperature"],
                               D["top_k"], D["top_p"], api_name="/transformer_prompt"))
    want = SVC.inspect_prompt(DEFAULT_PROMPT, D["layer"], D["head"], D["shift"], D["ablation"], 1.0, 0, 1.0)
    t = len(want.ids)
    s = want.info.shape                                                      # sliders follow the config
    assert [out[k] for k in ("layer", "head", "query")] == [
        {"__type__": "update", "maximum": s.layers - 1, "value": D["layer"]},
        {"__type__": "update", "maximum": s.heads - 1, "value": D["head"]},
        {"__type__": "update", "maximum": t - 1, "value": t - 1}]
    z = values(figure(out["attn"])["data"][1]["z"])
    assert np.allclose(z[np.tril_indices(t)], want.attention.weights[D["head"]][np.tril_indices(t)], atol=1e-6)
    assert np.isnan(z[np.triu_indices(t, 1)]).all()
    assert out["lens_table"]["headers"] == views.LENS_HEADERS
    assert [r[0] for r in out["lens_table"]["data"]] == want.lens.labels
    assert "␣Paris" in out["lens_md"] and f"{want.info.shape.layers} layers" in out["info"]

    out = named(client.predict(DEFAULT_PROMPT, 2, 7, 3, 0, 10, "all heads of this layer", 0.7, 5, 0.9,
                               api_name="/transformer_inspect"))
    want = SVC.inspect(DEFAULT_PROMPT, 2, 7, 3, 0, 10, "all heads of this layer", 0.7, 5, 0.9)
    assert [out[k]["value"] for k in ("layer", "head", "query", "key")] == [2, 7, 3, 0]
    assert np.allclose(values(figure(out["scores"])["data"][1]["y"]), want.attention.weights[7, 3, :4], atol=1e-6)
    assert "all 9 heads of layer 2 off" in out["ablation_md"]
    bars = figure(out["next"])["data"][1]
    assert np.allclose(values(bars["y"]), want.next_token.filtered_probs, atol=1e-6)


def test_out_of_range_layer_and_head_are_clamped_and_said(client):
    out = named(client.predict(DEFAULT_PROMPT, 99, -1, 0, 0, 0, "nothing", 1.0, 0, 1.0,
                               api_name="/transformer_inspect"))
    layers, heads = SVC.info().shape.layers, SVC.info().shape.heads
    assert (out["layer"]["value"], out["head"]["value"]) == (layers - 1, 0)
    assert f"Layer 99 is out of range (layers 0–{layers - 1}): showing {layers - 1}." in out["notes"]
    assert f"Head -1 is out of range (heads 0–{heads - 1}): showing 0." in out["notes"]
    assert out["ablated"] is None and "Choose a head or a layer" in out["ablation_md"]


@pytest.mark.parametrize("prompt, message", [
    ("  ", "Prompt is empty; type something first."),
    ("word " * 80, f"tokens; shorten it to at most {MAX_TOKENS} tokens."),
])
def test_bad_prompts_say_what_to_change(client, prompt, message):
    with pytest.raises(AppError, match=message):
        client.predict(prompt, 0, 0, 0, "nothing", 1.0, 0, 1.0, api_name="/transformer_prompt")
