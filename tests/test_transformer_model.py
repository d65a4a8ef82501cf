"""Transformer lab, the model side on the tiny random Llama of the Prompt lab (2 layers, 4 query heads on 2
key/value heads): closed forms against transformers' own eager attention, the residual stream, the logit
lens, head and layer ablation, RoPE, the sinusoidal encoding, and the hooks' isolation between threads.
Golden values at the end, with the command that regenerates them."""
from __future__ import annotations

import copy
import threading

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import pytest
import torch

from playground.prompting import tiny
from playground.transformer import model as tm

PROMPT = "Roger has 5 tennis balls. He buys 2 more cans. The answer is"
TOL = 1e-5


@pytest.fixture(scope="module")
def tok():
    return tiny.tokenizer()


def eager_model(tok, seed: int = 0):
    m = tiny.model(len(tok), seed)
    m.set_attn_implementation("eager")
    return m


@pytest.fixture(scope="module")
def setup(tok):
    m = eager_model(tok)
    ids = tok(PROMPT)["input_ids"]
    with torch.inference_mode():
        out = m(input_ids=torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
    return m, ids, tm.trace(m, ids), out


def test_our_attention_weights_equal_the_models_eager_attention(setup):
    m, ids, tr, out = setup
    s = tm.shape_of(m)
    assert (s.layers, s.heads, s.kv_heads, s.group) == (2, 4, 2, 2)          # read from the config
    for layer in range(s.layers):
        a = tm.weights(tm.scores(tr.q_rot(layer), tr.k_rot(layer), s.scaling))
        assert a.shape == (s.heads, len(ids), len(ids))
        assert torch.allclose(a, out.attentions[layer][0], atol=TOL, rtol=0)
        assert torch.allclose(a.sum(-1), torch.ones(s.heads, len(ids)), atol=TOL)      # rows sum to 1
        assert (a.masked_select(tm.causal_mask(len(ids))) == 0).all()                  # nothing from the future
        assert (a.diagonal(dim1=-2, dim2=-1) > 0).all()                                 # the present is visible


def test_our_attention_output_through_w_o_equals_the_recorded_block_output(setup):
    m, _, tr, _ = setup
    s = tm.shape_of(m)
    for layer in range(s.layers):
        a = tm.weights(tm.scores(tr.q_rot(layer), tr.k_rot(layer), s.scaling))
        ours = tm.through_o_proj(m, layer, tm.heads_output(a, tr.v[layer]))
        assert torch.allclose(ours, tr.attn_out[layer], atol=TOL, rtol=0)


def test_residual_stream_and_logits_are_the_models(setup):
    """h_0 = embeddings, h_{l+1} = h_l + a_l + MLP(RMSNorm(h_l + a_l)), and the recorded logits are the model's."""
    m, ids, tr, out = setup
    assert torch.equal(tr.resid[0], m.model.embed_tokens.weight[ids])
    for layer, block in enumerate(m.model.layers):
        mid = tr.resid[layer] + tr.attn_out[layer]
        with torch.inference_mode():
            want = mid + block.mlp(block.post_attention_layernorm(mid))
        assert torch.allclose(tr.resid[layer + 1], want, atol=TOL, rtol=0)
        assert torch.allclose(tr.resid[layer], out.hidden_states[layer][0], atol=TOL, rtol=0)
    assert torch.allclose(tr.logits, out.logits[0, -1], atol=TOL, rtol=0)


def test_logit_lens_after_the_last_layer_is_the_models_logits(setup):
    m, ids, tr, out = setup
    lens = tm.logit_lens(m, tr.resid[-1])                                   # every position, (T, V)
    assert torch.allclose(lens, out.logits[0], atol=TOL, rtol=0)
    assert tm.logit_lens(m, tr.resid[:, -1]).shape == (tm.shape_of(m).layers + 1, m.config.vocab_size)


def test_switching_off_every_head_of_a_layer_leaves_the_residual_only_forward(setup):
    """h_{l+1} = h_l + MLP(RMSNorm(h_l)), computed by hand from the intact h_l; earlier layers unchanged."""
    m, ids, tr, _ = setup
    s = tm.shape_of(m)
    for layer, block in enumerate(m.model.layers):
        off = tm.trace(m, ids, {layer: list(range(s.heads))})
        h = tr.resid[layer]
        with torch.inference_mode():
            hand = h + block.mlp(block.post_attention_layernorm(h))
        assert torch.allclose(off.resid[: layer + 1], tr.resid[: layer + 1], atol=0, rtol=0)
        assert torch.allclose(off.resid[layer + 1], hand, atol=TOL, rtol=0)
        assert off.attn_out[layer].abs().max() == 0                        # o_proj has no bias


def test_switching_off_a_head_equals_zeroing_its_columns_of_w_o(tok, setup):
    m, ids, tr, _ = setup
    d = tm.shape_of(m).head_dim
    layer, head = 1, 2
    cut = copy.deepcopy(m)
    with torch.no_grad():
        cut.model.layers[layer].self_attn.o_proj.weight[:, head * d:(head + 1) * d] = 0
    want = tm.trace(cut, ids).logits
    got = tm.trace(m, ids, {layer: [head]}).logits
    assert torch.allclose(got, want, atol=TOL, rtol=0)
    assert not torch.allclose(got, tr.logits, atol=1e-3)                   # the head mattered


@pytest.mark.parametrize("impl", ["eager", "sdpa"])
def test_resuming_from_the_recorded_layer_equals_a_full_ablated_pass(tok, impl):
    m = tiny.model(len(tok))
    m.set_attn_implementation(impl)
    ids = tok(PROMPT)["input_ids"]
    tr = tm.trace(m, ids)
    for layer, heads in ((0, [1]), (1, [0, 3]), (1, [0, 1, 2, 3])):
        full = tm.trace(m, ids, {layer: heads}).logits
        assert torch.allclose(tm.resume(m, tr, layer, {layer: heads}), full, atol=TOL, rtol=0)


def test_rope_is_transformers_rotation_and_depends_on_the_offset_only(setup):
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    m, ids, tr, _ = setup
    q, k = tr.q[0][None], tr.k[0][None]                                     # (1, H, T, d_k)
    want_q, want_k = apply_rotary_pos_emb(q, k, tr.cos[None], tr.sin[None])
    assert torch.allclose(tr.q_rot(0), want_q[0], atol=TOL) and torch.allclose(tr.k_rot(0), want_k[0], atol=TOL)

    s = tm.shape_of(m)
    qv, kv = tr.q[1, 3, -1], tr.k[1, tm.kv_map(s.heads, s.kv_heads)[3], 2]
    m0, n0 = torch.tensor([len(ids) - 1]), torch.tensor([2])
    base = tm.rope_score(m, qv, kv, m0, n0, s.scaling)
    shifts = torch.tensor([0, 1, 7, 100, 1000, 4000])
    both = tm.rope_score(m, qv, kv, m0 + shifts, n0 + shifts, s.scaling)
    assert torch.allclose(both, base.expand_as(both), atol=1e-4, rtol=1e-4)
    alone = tm.rope_score(m, qv, kv, m0 + shifts, n0.expand_as(shifts), s.scaling)
    assert (alone[1:] - base).abs().max() > 1e-2                           # moving one side changes the score
    # the recorded score of that pair is the same number
    a_scores = tm.scores(tr.q_rot(1), tr.k_rot(1), s.scaling)
    assert torch.allclose(a_scores[3, -1, 2], base[0], atol=TOL)


def test_sinusoidal_encoding_closed_form():
    pe = tm.sinusoidal(torch.arange(6), 8)
    assert torch.allclose(pe[0], torch.tensor([0.0, 1.0] * 4))             # sin 0, cos 0
    assert torch.allclose(pe[3, :2], torch.tensor([torch.sin(torch.tensor(3.0)), torch.cos(torch.tensor(3.0))]))
    assert abs(float(pe[2, 6]) - float(torch.sin(torch.tensor(2 / 10000 ** (6 / 8))))) < 1e-6
    dots = (pe[:-2] * pe[2:]).sum(-1)                                       # PE(p) . PE(p + 2) = sum_i cos(2 w_i)
    assert torch.allclose(dots, dots[0].expand_as(dots), atol=1e-5)


def test_kv_map_is_transformers_repeat_kv():
    from transformers.models.llama.modeling_llama import repeat_kv

    assert tm.kv_map(9, 3) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert tm.kv_map(4, 4) == [0, 1, 2, 3]
    kv = torch.arange(3.0)[None, :, None, None].expand(1, 3, 2, 1)          # key/value head g holds the number g
    assert repeat_kv(kv, 3)[0, :, 0, 0].long().tolist() == tm.kv_map(9, 3)


def test_hooks_leave_other_threads_alone(setup):
    """While one user's Recorder (recording and switching heads off) is open, another thread's forward
    pass through the same shared model is neither recorded nor changed."""
    m, ids, tr, _ = setup
    got = {}

    def other():
        with torch.inference_mode():
            got["logits"] = m(input_ids=torch.tensor([ids])).logits[0, -1]

    with tm.Recorder(m, {0: [0, 1, 2, 3], 1: [0, 1, 2, 3]}) as rec:
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert all(x is None for x in rec.q) and rec.resid[0] is None
    assert torch.allclose(got["logits"], tr.logits, atol=TOL, rtol=0)


def test_not_a_llama_family_model_is_named():
    from transformers import GPT2Config, GPT2LMHeadModel

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=20, n_positions=16))
    with pytest.raises(ValueError, match="GPT2LMHeadModel is not a Llama-family decoder"):
        tm.layers_of(gpt2)


# ---- golden values (the tiny model with seed 0; they change if its initialisation changes) ----------

GOLDEN_SCORES = [-0.005577, -0.01189, -0.008615, -0.001213]   # regenerate: python tests/test_transformer_model.py
GOLDEN_LOGITS = [0.0, -0.15731, 0.00487, 0.12668]   # regenerate: python tests/test_transformer_model.py
GOLDEN_LENS_TOP = [280, 280, 280]   # regenerate: python tests/test_transformer_model.py


def measured(tok) -> tuple[list, list, list]:
    """Layer 1, head 3: the last query's raw scores for keys 0-3; the first logits; the lens's top token per row."""
    m = eager_model(tok)
    tr = tm.trace(m, tok(PROMPT)["input_ids"])
    s = tm.scores(tr.q_rot(1), tr.k_rot(1), tm.shape_of(m).scaling)
    return ([round(float(x), 6) for x in s[3, -1, :4]], [round(float(x), 5) for x in tr.logits[:4]],
            tm.logit_lens(m, tr.resid[:, -1]).argmax(-1).tolist())


def test_golden_scores_logits_and_lens(tok):
    scores, logits, top = measured(tok)
    assert scores == pytest.approx(GOLDEN_SCORES, abs=2e-6)
    assert logits == pytest.approx(GOLDEN_LOGITS, abs=2e-5)
    assert top == GOLDEN_LENS_TOP


if __name__ == "__main__":
    sc, lg, tp = measured(tiny.tokenizer())
    print(f"GOLDEN_SCORES = {sc}\nGOLDEN_LOGITS = {lg}\nGOLDEN_LENS_TOP = {tp}")
