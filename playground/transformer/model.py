"""Inside a Llama-family decoder (SmolLM2, Llama, Qwen2, Mistral), recorded during one forward pass.

A decoder layer l maps the residual stream h_l (T, d_model) to h_{l+1}:

    a   = Attn(RMSNorm(h_l))              multi-head, grouped-query attention with rotary positions
    h'  = h_l + a                          residual
    h_{l+1} = h' + MLP(RMSNorm(h'))        SwiGLU MLP: W_down (SiLU(W_gate x) * W_up x)

and the head reads p(x_{T+1} | x_<=T) = softmax(W_U RMSNorm(h_L)[T]).

What this file computes itself, from what the hooks record (the model's own code does the rest):
- scaled dot-product attention (Vaswani et al. 2017, "Attention Is All You Need"), head by head:
      s_ij = q_i . k_j / sqrt(d_k),   a_ij = softmax_j(s_ij + M_ij),   M_ij = -inf for j > i (causal)
- rotary positions (Su et al. 2021, "RoFormer"): q and k are rotated by their position m, pair by pair
      R_m x = x cos(m theta) + rotate_half(x) sin(m theta),   theta_i = base^(-2i / d_k)
  so (R_m q) . (R_n k) = q . R_(n-m) k depends on the offset n - m only;
- grouped-query attention (Ainslie et al. 2023, "GQA"): query head h reads key/value head h // (H / H_kv);
- the sinusoidal encoding of the original transformer, for comparison:
      PE(p, 2i) = sin(p / 10000^(2i/d)),   PE(p, 2i + 1) = cos(p / 10000^(2i/d))    (added to x, not rotated)
- the logit lens (nostalgebraist 2020): softmax(W_U RMSNorm(h_l)) read after every layer l;
- head ablation (Michel et al. 2019, "Are Sixteen Heads Really Better than One?"): a head's output is
  zeroed before W_O, so o = W_O [z_0; ...; 0; ...; z_{H-1}].

Hooks record only the forward pass of the thread that opened the `Recorder` (a context variable), so a
shared model can keep serving other users while one of them is being inspected.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass

import torch

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar("transformer_recorder", default=None)


@dataclass(frozen=True)
class Shape:
    """The architecture, read from the model's config."""
    layers: int
    heads: int                 # query heads H
    kv_heads: int              # key/value heads H_kv (H_kv = H: plain multi-head attention)
    head_dim: int              # d_k
    hidden: int                # d_model
    vocab: int
    intermediate: int          # the MLP's hidden width
    scaling: float             # the factor on q . k (1 / sqrt(d_k) for Llama)
    act: str                   # the MLP's activation ("silu": SwiGLU)
    rope_theta: float | None   # RoPE base, when the config names one
    rope_type: str

    @property
    def group(self) -> int:
        """Query heads per key/value head."""
        return self.heads // self.kv_heads


def shape_of(model) -> Shape:
    c = model.config
    heads = c.num_attention_heads
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // heads
    rope = getattr(c, "rope_parameters", None) or getattr(c, "rope_scaling", None) or {}
    theta = rope.get("rope_theta", getattr(c, "rope_theta", None))
    attn = layers_of(model)[0].self_attn
    return Shape(c.num_hidden_layers, heads, getattr(c, "num_key_value_heads", None) or heads, head_dim,
                 c.hidden_size, c.vocab_size, getattr(c, "intermediate_size", 0),
                 float(getattr(attn, "scaling", head_dim ** -0.5)), str(getattr(c, "hidden_act", "?")),
                 float(theta) if theta is not None else None, str(rope.get("rope_type", "default")))


def layers_of(model):
    """The decoder layers; ValueError when the model is not a Llama-family decoder."""
    inner = getattr(model, "model", None)
    layers = getattr(inner, "layers", None)
    attn = getattr(layers[0], "self_attn", None) if layers else None
    if attn is None or not all(hasattr(attn, p) for p in ("q_proj", "k_proj", "v_proj", "o_proj")) \
            or not hasattr(inner, "rotary_emb"):
        raise ValueError(f"{type(model).__name__} is not a Llama-family decoder (model.layers[i].self_attn "
                         "with q_proj, k_proj, v_proj and o_proj, and a rotary embedding)")
    return layers


# ---- the math -----------------------------------------------------------------------------------

def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x_1, x_2) -> (-x_2, x_1) over the two halves of the last dimension: pairs (i, i + d/2) rotate."""
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """R_m x = x cos(m theta) + rotate_half(x) sin(m theta). x: (..., T, d_k); cos, sin: (T, r), r <= d_k
    (a partial rotary embedding rotates the first r dimensions and passes the rest)."""
    r = cos.shape[-1]
    rot, rest = x[..., :r], x[..., r:]
    return torch.cat((rot * cos + rotate_half(rot) * sin, rest), dim=-1)


def kv_map(heads: int, kv_heads: int) -> list[int]:
    """The key/value head each query head reads (grouped-query attention; transformers' repeat_kv)."""
    return [h // (heads // kv_heads) for h in range(heads)]


def causal_mask(t: int) -> torch.Tensor:
    """(T, T) True where key j lies in the future of query i (j > i): those scores are -inf."""
    return torch.ones(t, t, dtype=torch.bool).triu(1)


def scores(q: torch.Tensor, k: torch.Tensor, scaling: float) -> torch.Tensor:
    """s_ij = q_i . k_j * scaling. q: (H, T, d_k) and k: (H_kv, T, d_k) after RoPE -> (H, T, T), unmasked."""
    kv = torch.tensor(kv_map(q.shape[0], k.shape[0]))
    return q @ k[kv].transpose(-1, -2) * scaling                              # (H, T, T)


def weights(s: torch.Tensor) -> torch.Tensor:
    """a_ij = softmax_j(s_ij + M_ij): (H, T, T) -> (H, T, T), rows sum to 1, zero above the diagonal."""
    return torch.softmax(s.masked_fill(causal_mask(s.shape[-1]), float("-inf")), dim=-1)


def heads_output(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """z_h = a_h V_kv(h), heads side by side: a (H, T, T), v (H_kv, T, d_k) -> (T, H * d_k), the input of W_O."""
    kv = torch.tensor(kv_map(a.shape[0], v.shape[0]))
    return (a @ v[kv]).transpose(0, 1).reshape(a.shape[1], -1)


def sinusoidal(positions: torch.Tensor, d: int, base: float = 10000.0) -> torch.Tensor:
    """PE(p, 2i) = sin(p / base^(2i/d)), PE(p, 2i + 1) = cos(p / base^(2i/d)). positions (P,) -> (P, d)."""
    freq = base ** (-torch.arange(0, d, 2, dtype=torch.float64) / d)        # (d/2,)
    angle = positions.double()[:, None] * freq                              # (P, d/2)
    return torch.stack((angle.sin(), angle.cos()), dim=-1).reshape(len(positions), d).float()


def rope_tables(model, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (P, r) of the model's own rotary embedding at any positions (its base, scaling and type)."""
    rotary = model.model.rotary_emb
    like = torch.zeros(1, device=rotary.inv_freq.device, dtype=torch.float32)
    cos, sin = rotary(like, positions.to(rotary.inv_freq.device)[None])
    return cos[0].float().cpu(), sin[0].float().cpu()


def rope_score(model, q: torch.Tensor, k: torch.Tensor, m: torch.Tensor, n: torch.Tensor,
               scaling: float) -> torch.Tensor:
    """(R_m q) . (R_n k) * scaling for pairs of positions. q, k: (d_k,) before RoPE; m, n: (P,) -> (P,)."""
    cm, sm = rope_tables(model, m)
    cn, sn = rope_tables(model, n)
    qs, ks = q.expand(len(m), -1), k.expand(len(n), -1)                        # (P, d_k)
    return (apply_rope(qs, cm, sm) * apply_rope(ks, cn, sn)).sum(-1) * scaling


# ---- recording one forward pass -----------------------------------------------------------------

@dataclass
class Trace:
    """One forward pass of one prompt, on the CPU in float32 (L layers, T tokens)."""
    ids: tuple[int, ...]
    q: torch.Tensor            # (L, H, T, d_k)     queries before RoPE
    k: torch.Tensor            # (L, H_kv, T, d_k)  keys before RoPE
    v: torch.Tensor            # (L, H_kv, T, d_k)
    cos: torch.Tensor          # (T, r)             the rotary tables the model used
    sin: torch.Tensor          # (T, r)
    attn_out: torch.Tensor     # (L, T, d_model)    each attention block's output (after W_O)
    resid: torch.Tensor        # (L + 1, T, d_model) h_0 (embeddings) ... h_L (before the final norm)
    logits: torch.Tensor       # (V,)               the model's logits for the token after the prompt

    def q_rot(self, layer: int) -> torch.Tensor:
        return apply_rope(self.q[layer], self.cos, self.sin)                # (H, T, d_k)

    def k_rot(self, layer: int) -> torch.Tensor:
        return apply_rope(self.k[layer], self.cos, self.sin)                # (H_kv, T, d_k)


class Recorder:
    """Hooks that record q, k, v, the rotary tables, each attention output and the residual stream, and
    zero the heads in `ablate` ({layer: [heads]}) before W_O, for the opening thread's forward pass only."""

    def __init__(self, model, ablate: dict[int, list[int]] | None = None, record: bool = True):
        self.model, self.ablate, self.record = model, ablate or {}, record
        self.layers = layers_of(model)
        self.head_dim = shape_of(model).head_dim
        n = len(self.layers)
        self.q, self.k, self.v, self.attn_out = [None] * n, [None] * n, [None] * n, [None] * n
        self.resid = [None] * (n + 1)
        self.rope = None
        self._handles, self._token = [], None

    def _mine(self) -> bool:
        return _ACTIVE.get() is self

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """(1, T, H * d_k) or (1, T, H, d_k) -> (H, T, d_k) on the CPU, float32."""
        return t.detach().reshape(t.shape[1], -1, self.head_dim).transpose(0, 1).float().cpu()

    def _hook(self, module, store, index, heads=True):
        def hook(_m, _args, out):
            if self._mine():
                t = out[0] if isinstance(out, tuple) else out
                store[index] = self._heads(t) if heads else t.detach()[0].float().cpu()
        self._handles.append(module.register_forward_hook(hook))

    def __enter__(self) -> Recorder:
        self._token = _ACTIVE.set(self)
        for l, layer in enumerate(self.layers):
            attn = layer.self_attn
            if l in self.ablate:
                self._handles.append(attn.o_proj.register_forward_pre_hook(self._zero(self.ablate[l])))
            if self.record:
                self._hook(getattr(attn, "q_norm", None) or attn.q_proj, self.q, l)
                self._hook(getattr(attn, "k_norm", None) or attn.k_proj, self.k, l)
                self._hook(attn.v_proj, self.v, l)
                self._hook(attn, self.attn_out, l, heads=False)
                self._hook(layer, self.resid, l + 1, heads=False)
        if not self.record:
            return self

        def first(_m, args, kwargs):
            if self._mine():
                h = args[0] if args else kwargs["hidden_states"]
                self.resid[0] = h.detach()[0].float().cpu()

        def rope(_m, _args, kwargs):
            if self._mine() and self.rope is None:
                self.rope = tuple(t.detach()[0].float().cpu() for t in kwargs["position_embeddings"])

        self._handles.append(self.layers[0].register_forward_pre_hook(first, with_kwargs=True))
        self._handles.append(self.layers[0].self_attn.register_forward_pre_hook(rope, with_kwargs=True))
        return self

    def _zero(self, heads: list[int]):
        d = self.head_dim

        def pre(_m, args):
            if self._mine():
                z = args[0].clone()                                          # (1, T, H * d_k)
                for h in heads:
                    z[..., h * d:(h + 1) * d] = 0
                return (z, *args[1:])
        return pre

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        _ACTIVE.reset(self._token)


@torch.inference_mode()
def trace(model, ids: list[int], ablate: dict[int, list[int]] | None = None) -> Trace:
    """One forward pass of `ids` (no padding, positions 0..T-1), recorded; `ablate` zeroes heads."""
    dev = next(model.parameters()).device
    with Recorder(model, ablate) as rec:
        out = model(input_ids=torch.tensor([ids], device=dev), use_cache=False, logits_to_keep=1)
    return Trace(tuple(ids), torch.stack(rec.q), torch.stack(rec.k), torch.stack(rec.v), *rec.rope,
                 torch.stack(rec.attn_out), torch.stack(rec.resid), out.logits[0, -1].float().cpu())


@torch.inference_mode()
def resume(model, tr: Trace, layer: int, ablate: dict[int, list[int]]) -> torch.Tensor:
    """The next-token logits (V,) with heads of `layer` (and later) switched off, running only layers
    layer..L-1: the layers before it do not see the change, so their output h_layer is read from the
    recorded pass. The causal mask comes from transformers' own create_causal_mask (whatever form this
    model's attention implementation expects), the rotary tables from the recorded pass."""
    from transformers.masking_utils import create_causal_mask

    p = next(model.parameters())
    h = tr.resid[layer][None].to(p.device, p.dtype)                           # (1, T, d_model)
    pos = torch.arange(h.shape[1], device=p.device)[None]                      # (1, T)
    mask = create_causal_mask(config=model.config, inputs_embeds=h, attention_mask=None, past_key_values=None,
                              position_ids=pos)
    rope = (tr.cos[None].to(p.device, p.dtype), tr.sin[None].to(p.device, p.dtype))
    with Recorder(model, ablate, record=False):
        for block in layers_of(model)[layer:]:
            out = block(h, attention_mask=mask, position_ids=pos, position_embeddings=rope, use_cache=False)
            h = out[0] if isinstance(out, tuple) else out
    return logit_lens(model, h[0, -1:])[0]


@torch.inference_mode()
def logit_lens(model, h: torch.Tensor) -> torch.Tensor:
    """softmax-ready logits W_U RMSNorm(h) for residual vectors h (N, d_model) -> (N, V), with the
    model's own final norm and unembedding (so the last layer's row is the model's output)."""
    p = next(model.parameters())
    x = model.model.norm(h.to(p.device, p.dtype))
    return model.get_output_embeddings()(x).float().cpu()


@torch.inference_mode()
def through_o_proj(model, layer: int, z: torch.Tensor) -> torch.Tensor:
    """W_O z with layer `layer`'s output projection: (T, H * d_k) -> (T, d_model)."""
    o = layers_of(model)[layer].self_attn.o_proj
    p = next(model.parameters())
    return o(z.to(p.device, p.dtype)).float().cpu()


def kl(p: torch.Tensor, q: torch.Tensor) -> float:
    """KL(p || q) = sum_i p_i (log p_i - log q_i) in nats, for probability vectors (terms with p_i = 0 vanish)."""
    mask = p > 0
    return float((p[mask] * (p[mask].log() - q[mask].clamp_min(1e-30).log())).sum())


def prev_token_share(a: torch.Tensor) -> torch.Tensor:
    """Mean attention each head pays to the token just before the query, over queries 1..T-1: (H, T, T) -> (H,)."""
    t = a.shape[-1]
    if t < 2:
        return torch.zeros(a.shape[0])
    return a.diagonal(offset=-1, dim1=-2, dim2=-1).mean(-1)


def angle_table(model, positions: torch.Tensor) -> torch.Tensor:
    """cos(m theta_i) of the model's rotary embedding, one column per rotated pair: (P,) -> (P, r/2)."""
    cos, _ = rope_tables(model, positions)
    return cos[:, : cos.shape[-1] // 2]
