"""Transformer lab's guided tour, headless: each check's answer is what a direct measurement says (our own
measurement from the model's forward pass, not the service's view), on the Prompt lab's tiny random Llama
(quick) and, for the bundled tour file step by step, on the real offline model (slow); the logit-lens
animation has a frame per layer and a text alternative that names what it shows."""
from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from urllib.parse import parse_qsl

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import pytest
import torch
from PIL import Image

from playground.core import cache, hub, lesson, settings
from playground.core.errors import InputError
from playground.prompting import models, tiny
from playground.transformer import model as tm
from playground.transformer import views
from playground.transformer.service import (FEW, HALVED, LENS_TOP, MAX_TOKENS, ROPE_SAME, STEADY, THIRDS,
                                            Service)

hub.decide("yes")
PROMPT = "Roger has 5 tennis balls. The answer is"
STATE = dict(prompt=PROMPT, layer=1, head=3, query=MAX_TOKENS, key=2, shift=300, ablation="this head", temp=1.0,
             top_k=0, top_p=1.0)
OUTCOMES = {"strongest_key": ("previous", "first", "self", "other"), "lens_first": ("early", "middle", "late", "never"),
            "switch_off": ("collapses", "drops", "steady", "rises"), "rope_shift": ("same", "changes"),
            "kv_groups": ("own", "few", "many", "all")}

SHOWN = {"strongest_key": "Layer 1, head 3, over the", "lens_first": "The model's next token after",
         "switch_off": "With head 3 of layer 1 switched off", "rope_shift": "of layer 1, head 3: the score is",
         "kv_groups": "2 query heads per key/value head"}


def said(check: str) -> dict:
    """A step's answers, each outcome named as itself."""
    return {"answers": {o: o for o in OUTCOMES[check]}}


@pytest.fixture()
def svc(tmp_path):
    return Service(replace(settings.from_env(), cache_dir=tmp_path / "cache"))


@pytest.fixture()
def llama(monkeypatch):
    b = tiny.backend()
    b.model.set_attn_implementation("eager")
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: b)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    cache.clear("transformer")
    return b


# ---- direct measurements: the model's own forward pass, without the service --------------------------

def direct(backend, check: str, v: dict) -> str:
    model, ids = backend.model, backend.tokenizer(v["prompt"])["input_ids"]
    c = model.config
    layers, heads, kv = c.num_hidden_layers, c.num_attention_heads, c.num_key_value_heads
    layer, head = min(int(v["layer"]), layers - 1), min(int(v["head"]), heads - 1)
    x = torch.tensor([ids])
    if check == "strongest_key":                                  # the model's own eager attention weights
        with torch.inference_mode():
            a = model(input_ids=x, output_attentions=True).attentions[layer][0, head]      # (T, T)
        best = a.argmax(-1).tolist()
        kinds = [("previous" if j == i - 1 else "first" if j == 0 else "self" if j == i else "other")
                 for i, j in enumerate(best) if i >= 2]
        return max(OUTCOMES[check], key=kinds.count)
    if check == "lens_first":                                     # hidden states through the final norm + head
        with torch.inference_mode():
            out = model(input_ids=x, output_hidden_states=True)
            hs = torch.stack(out.hidden_states[:layers])[:, 0, -1]      # (L, d): embeddings, after layers 0..L-2
            top = model.lm_head(model.model.norm(hs)).argmax(-1).tolist() + [int(out.logits[0, -1].argmax())]
        answer, first = top[-1], None
        for row in range(len(top) - 1, -1, -1):
            if top[row] != answer:
                break
            first = row
        return "never" if first is None else ("early" if first / layers <= THIRDS[0] else
                                              "middle" if first / layers <= THIRDS[1] else "late")
    if check == "switch_off":                                     # a whole forward pass with the head zeroed
        mode = v["ablation"] if v["ablation"] != "nothing" else "this head"
        off = [head] if mode == "this head" else list(range(heads))
        p = tm.trace(model, ids).logits.softmax(-1)
        q = tm.trace(model, ids, {layer: off}).logits.softmax(-1)
        ratio = float(q[p.argmax()] / p.max())
        return ("collapses" if ratio < HALVED else "steady" if abs(ratio - 1) <= STEADY else
                "rises" if ratio > 1 else "drops")
    if check == "rope_shift":                                     # transformers' own rotary embedding, by hand
        from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

        tr = tm.trace(model, ids)
        qi = min(int(v["query"]), len(ids) - 1)
        kj = min(int(v["key"]), qi)
        q, k = tr.q[layer, head, qi], tr.k[layer, head // (heads // kv), kj]
        s = int(v["shift"])

        def score(m, n):
            cm, sm = model.model.rotary_emb(q[None], torch.tensor([[m]]))
            cn, sn = model.model.rotary_emb(k[None], torch.tensor([[n]]))
            rq, _ = apply_rotary_pos_emb(q[None, None, None], q[None, None, None], cm, sm)
            rk, _ = apply_rotary_pos_emb(k[None, None, None], k[None, None, None], cn, sn)
            return float((rq * rk).sum()) * tm.shape_of(model).scaling
        s0, s1 = score(qi, kj), score(qi + s, kj + s)
        return "same" if abs(s1 - s0) <= ROPE_SAME * max(1.0, abs(s0)) else "changes"
    if check == "kv_groups":                                      # the projections' sizes
        attn = model.model.layers[0].self_attn
        g = attn.q_proj.out_features // attn.k_proj.out_features
        return "own" if g == 1 else "all" if g == heads else "few" if g <= FEW else "many"
    raise AssertionError(check)


@pytest.mark.parametrize("check", list(OUTCOMES))
def test_each_check_agrees_with_a_direct_measurement(svc, llama, check):
    r = svc.tour_check(check, said(check), STATE)
    assert r.answer in OUTCOMES[check] and r.answer == direct(llama, check, STATE)
    assert SHOWN[check] in r.shown                                # the reveal says what it measured, and where


def test_checks_read_the_state_on_screen(svc, llama):
    """The same check on another layer, head or shift measures that one (what the learner sees)."""
    both = svc.tour_check("switch_off", said("switch_off"), dict(STATE, ablation="all heads of this layer"))
    assert "all 4 heads of layer 1" in both.shown
    zero = svc.tour_check("rope_shift", said("rope_shift"), dict(STATE, shift=0))
    assert zero.answer == "same" and "moved 0 positions" in zero.shown
    gqa = svc.tour_check("kv_groups", said("kv_groups"), STATE)
    assert gqa.answer == "few" and "heads 0–1 read key/value head 0; heads 2–3 read key/value head 1" in gqa.shown


def test_a_bad_check_or_a_step_without_the_answer_is_refused(svc, llama):
    with pytest.raises(InputError, match="no check called 'nope'"):
        svc.tour_check("nope", {}, STATE)
    with pytest.raises(InputError, match="names no answer for what was measured"):
        svc.tour_check("kv_groups", {"answers": {"own": "x"}}, STATE)
    with pytest.raises(InputError, match="three tokens or more"):
        svc.tour_check("strongest_key", said("strongest_key"), dict(STATE, prompt="7"))


def test_the_lens_animation_has_a_frame_per_layer_and_says_what_it_shows(svc, llama):
    run = svc.lens_run(PROMPT, 10_000)                            # past the end: the last token
    frames = views.lens_frames(run)
    assert len(frames) == llama.model.config.num_hidden_layers + 1 and frames[0].size == views.GIF_SIZE
    assert frames[0].tobytes() != frames[-1].tobytes()
    path, alt = views.lens_gif(run)
    with Image.open(path) as gif:
        assert gif.n_frames == len(frames) and gif.info["duration"] == views.GIF_MS
        gif.seek(gif.n_frames - 1)                                # the held last layer: one frame, shown longer
        assert gif.info["duration"] == views.GIF_MS * (1 + views.GIF_HOLD)
    lens = run.lens
    assert lens.position == len(run.tokens) - 1
    assert alt.startswith(f"Animated logit lens of {run.model}, {len(frames)} frames: the top {LENS_TOP}")
    assert f"at token {lens.position} {run.tokens[-1]}" in alt and lens.answer in alt


# ---- the bundled tour on the real offline model ------------------------------------------------------

def tour_state(step) -> dict:
    """The state a step's link sets: the lab's defaults, then the link's values (as the page applies them)."""
    from playground.transformer.service import DEFAULT, DEFAULT_PROMPT

    v = dict(prompt=DEFAULT_PROMPT, layer=DEFAULT["layer"], head=DEFAULT["head"], query=MAX_TOKENS - 1, key=0,
             shift=DEFAULT["shift"], ablation=DEFAULT["ablation"], temp=1.0, top_k=0, top_p=1.0)
    v.update((k, x) for k, x in parse_qsl(step.link) if k != "view")
    return v


def bundled_answers() -> list[str]:
    svc = Service(settings.from_env())
    return [svc.tour_check(s.check, s.args, tour_state(s)).answer for s in lesson.load_tour(
        lesson.tour_path("transformer")).steps]


# regenerate: python tests/test_transformer_tour.py
GOLDEN_ANSWERS = ["the token just before the query", "only in the last third", "it falls by more than half",
                  "it hardly changes", "stays the same", "a few (2 to 4)"]


@pytest.mark.slow
def test_the_bundled_tour_on_the_real_model():
    svc = Service(settings.from_env())
    if svc.status().problem:
        pytest.fail(svc.status().problem)
    from transformers import AutoModelForCausalLM

    path = models.resolve_path(models.OFFLINE_REF, svc.settings.cache_dir)      # a separate eager copy
    eager = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="eager").eval()
    backend = SimpleNamespace(model=eager, tokenizer=svc._backend().tokenizer)
    tour = lesson.load_tour(lesson.tour_path("transformer"))
    got = []
    for step in tour.steps:
        v = tour_state(step)
        r = svc.tour_check(step.check, step.args, v)
        assert r.answer in step.choices
        assert r.answer == step.args["answers"][direct(backend, step.check, v)], step.title
        got.append(r.answer)
    assert got == GOLDEN_ANSWERS


if __name__ == "__main__":
    print(bundled_answers())
