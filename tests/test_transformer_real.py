"""Transformer lab on the real offline model (SmolLM2-135M-Instruct, the Prompt lab's copy): our attention
against the model's own eager attention, the logit lens against its logits, RoPE on a real head, and the
three things the closing note tells a teacher to show, re-measured through the service (the same code
path as the tab). Slow: the model loads (once per process) and reads a few prompts.

The golden figures are deterministic float32 CPU arithmetic; the tolerance (0.01 on probabilities and
attention shares) only absorbs the summation order of another BLAS or thread count."""
from __future__ import annotations

from dataclasses import replace

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import numpy as np
import pytest
import torch

from playground.core import hub, settings
from playground.prompting import models
from playground.transformer import model as tm
from playground.transformer.service import BENCH_PROMPT, DEFAULT, DEFAULT_PROMPT, MAX_TOKENS, Service

pytestmark = pytest.mark.slow
hub.decide("yes")
EIFFEL = "The Eiffel Tower is located in the city of"
TOL = 0.01

# regenerate: python tests/test_transformer_real.py
GOLDEN_PREV_HEAD = (16, 0, 0.738)           # (layer, head, mean attention to the previous token) on BENCH_PROMPT
GOLDEN_FETCH = (0.90, 0.773, 0.141)         # layer 23 head 4: "is" -> "France"; p(Paris) intact; that head off
GOLDEN_LENS_FIRST = {DEFAULT_PROMPT: "layer 29", EIFFEL: "layer 27"}   # from where " Paris" leads the lens


@pytest.fixture(scope="module")
def svc():
    s = Service(settings.from_env())
    if s.status().problem:
        pytest.fail(s.status().problem)
    return s


def view(svc, prompt, layer=0, head=0, ablation="nothing"):
    return svc.inspect_prompt(prompt, layer, head, DEFAULT["shift"], ablation, 1.0, 0, 1.0)


def test_our_weights_equal_the_real_models_eager_attention(svc):
    """Every head of every layer, to 1e-5, against a separate eager copy of the same weights."""
    from transformers import AutoModelForCausalLM

    path = models.resolve_path(models.OFFLINE_REF, svc.settings.cache_dir)
    eager = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    ids = svc._backend().tokenizer(BENCH_PROMPT)["input_ids"]
    assert len(ids) == MAX_TOKENS and svc.bench_prompt() == BENCH_PROMPT      # the benchmark's prompt, whole
    with torch.inference_mode():
        out = eager(input_ids=torch.tensor([ids]), output_attentions=True)
    tr, s = tm.trace(eager, ids), tm.shape_of(eager)
    assert (s.layers, s.heads, s.kv_heads) == (30, 9, 3)
    for layer in range(s.layers):
        a = tm.weights(tm.scores(tr.q_rot(layer), tr.k_rot(layer), s.scaling))
        assert torch.allclose(a, out.attentions[layer][0], atol=1e-5, rtol=0), layer
        assert torch.allclose(a.sum(-1), torch.ones(s.heads, len(ids)), atol=1e-5)
    lens = tm.logit_lens(eager, tr.resid[-1])                                 # every position
    with torch.inference_mode():
        logits = eager(input_ids=torch.tensor([ids])).logits[0]
    assert torch.allclose(lens, logits, atol=1e-4, rtol=0)


def test_the_shared_model_checks_itself_and_rope_keeps_the_score(svc):
    r = view(svc, BENCH_PROMPT, layer=12, head=5)
    assert r.info.name == models.OFFLINE_REF and len(r.ids) == MAX_TOKENS
    assert r.attention.check < 1e-5                                           # ours through W_O = the model's
    assert np.allclose(r.rope.both, r.rope.both[0], atol=1e-3)               # shifts up to 1000 positions
    assert np.ptp(r.rope.query_only) > 0.1                                   # one side moved: it changes


def measure(svc) -> dict:
    s = svc.info().shape
    r = view(svc, BENCH_PROMPT)
    tr, _ = svc._trace(svc._backend(), r.ids)
    prev = torch.stack([tm.prev_token_share(tm.weights(tm.scores(tr.q_rot(l), tr.k_rot(l), s.scaling)))
                        for l in range(s.layers)])                            # (L, H)
    best = int(prev.argmax())
    fetch = view(svc, DEFAULT_PROMPT, DEFAULT["layer"], DEFAULT["head"], "this head")
    france = fetch.tokens.index("␣France")
    first = {p: (lambda lens: lens.labels[lens.first] if lens.first is not None else None)(view(svc, p).lens)
             for p in GOLDEN_LENS_FIRST}
    return {"prev": (best // s.heads, best % s.heads, round(float(prev.max()), 3)),
            "fetch": (round(float(fetch.attention.weights[DEFAULT["head"], -1, france]), 2),
                      round(fetch.ablation.intact[0], 3), round(fetch.ablation.ablated[0], 3)),
            "answer": (fetch.ablation.tokens[0], fetch.lens.answer), "first": first}


def test_three_things_a_teacher_can_show(svc):
    m = measure(svc)
    layer, head, share = m["prev"]
    assert (layer, head) == GOLDEN_PREV_HEAD[:2] and share == pytest.approx(GOLDEN_PREV_HEAD[2], abs=TOL)
    assert m["answer"] == ("␣Paris #7042", "␣Paris")
    assert m["fetch"] == pytest.approx(GOLDEN_FETCH, abs=TOL)
    assert m["first"] == GOLDEN_LENS_FIRST


if __name__ == "__main__":
    print(measure(Service(replace(settings.from_env()))))
