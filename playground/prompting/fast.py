"""The decoding step of a Llama-family model (SmolLM2, Llama, Qwen2) written out for a CPU:
one new token per row per call, keys and values in a preallocated (static) cache.

transformers' forward is general (any cache, any mask, hooks, optional outputs); for one token of a
30-layer model that generality costs more Python-level work than the arithmetic itself. Here a layer
is a dozen tensor operations:

    n(x) = g * x / sqrt(mean(x^2) + eps)                                      (RMSNorm)
    q, k, v = [W_q; W_k; W_v] n1(x)                                           (one fused matrix)
    q, k = RoPE(q), RoPE(k);  K[:, t], V[:, t] = k, v                         (static cache, column t)
    h   = x + W_o softmax(q K^T / sqrt(d) + mask) V                          (grouped-query attention)
    out = h + W_down (silu(W_gate n2(h)) * W_up n2(h))                        ([W_gate; W_up] fused)

RoPE (Su et al. 2021) rotates each pair (x_i, x_{i+d/2}) by the angle pos * theta^(-2i/d):
    RoPE(x) = x * cos + roll(x, d/2) * [-sin, sin]      (the roll swaps the halves; the sign does the rest)

Int8 weights (Jacob et al. 2018), the CPU default: each output row i of a matrix is stored as int8
with its own scale, W[i] ~ s_i * Wq[i] (per channel, symmetric); activations are quantised on the fly
(fbgemm's dynamic linear). A CPU writing one token reads every weight once, so four times fewer bytes
is most of the speed-up. The prompt is still read (prefilled) by the float32 transformers model, and
the lab's other views (next-token bars, the Transformer lab) use that exact model.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F


@functools.cache
def full_range() -> bool:
    """8-bit activations are safe only where the CPU sums int8 products in 32 bits (VNNI: avx512_vnni or
    avx_vnni). Without it fbgemm sums pairs in 16 bits, which 8-bit activations can overflow, so they
    are rounded to 7 bits there (reduce_range), at some cost in accuracy."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def supported(model) -> str | None:
    """None when `model` is a Llama-family causal LM this file can run, else why not."""
    cfg = getattr(model, "config", None)
    if getattr(cfg, "model_type", None) not in ("llama", "qwen2"):
        return f"model type {getattr(cfg, 'model_type', None)!r} is not Llama or Qwen2"
    if next(model.parameters()).device.type != "cpu":
        return "not on the CPU"
    return None


# the operator itself (its overload), not the packet that looks the overload up on every call
_LINEAR_INT8 = torch.ops.quantized.linear_dynamic.default


class Linear:
    """y = x W^T + b, float32 or int8 per-channel weights (fbgemm's dynamic-quantised linear).

    fbgemm quantises the activations of a call with one range for all its rows, so with int8 weights a
    row's result depends on the rows beside it. `sizes` splits the rows into groups that must not affect
    one another (different students' requests merged into one decode loop); each group is then its own
    call, quantised as it would be alone. (Float32 rows never affect one another.)"""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, int8: bool):
        weight = weight.detach().float().contiguous()
        self.bias = None if bias is None else bias.detach().float().contiguous()
        self.int8 = int8
        if int8:
            scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0                    # s_i, (out,)
            with warnings.catch_warnings():     # torch marks its quantised tensors deprecated; they still work
                warnings.simplefilter("ignore")
                wq = torch.quantize_per_channel(weight, scale.double(), torch.zeros_like(scale, dtype=torch.long),
                                                0, torch.qint8)
                self.packed = torch.ops.quantized.linear_prepack(wq, self.bias)
            self.reduce_range = not full_range()
        else:
            self.weight = weight

    def __call__(self, x: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
        if not self.int8:
            return F.linear(x, self.weight, self.bias)
        if sizes and len(sizes) > 1:
            return torch.cat([_LINEAR_INT8(part, self.packed, self.reduce_range) for part in x.split(sizes)])
        return _LINEAR_INT8(x, self.packed, self.reduce_range)


def _cat_bias(*mods) -> torch.Tensor | None:
    if all(m.bias is None for m in mods):
        return None
    return torch.cat([m.bias.detach().float() if m.bias is not None else torch.zeros(m.out_features) for m in mods])


class Layer:
    """One block's weights, rearranged. Exact rewrites that save an operation each: the attention scale
    1/sqrt(d) folds into W_q (RoPE is a rotation, so it commutes with a scale), and with float32 weights
    a norm's gain folds into the matrix after it, W (g * x_hat) = (W diag(g)) x_hat. With int8 weights the
    gain stays a multiply: folded in, it spreads a row's values and its int8 steps grow (measured: twice
    the divergence from float32)."""

    def __init__(self, layer, int8: bool, scale: float):
        a, m = layer.self_attn, layer.mlp
        g1 = layer.input_layernorm.weight.detach().float()
        g2 = layer.post_attention_layernorm.weight.detach().float()
        self.g1, self.g2 = (g1, g2) if int8 else (None, None)          # None: folded
        qkv = torch.cat([a.q_proj.weight * scale, a.k_proj.weight, a.v_proj.weight]).detach().float()
        b = _cat_bias(a.q_proj, a.k_proj, a.v_proj)
        if b is not None:
            b[:a.q_proj.out_features] *= scale
        gate_up = torch.cat([m.gate_proj.weight, m.up_proj.weight]).detach().float()
        self.qkv = Linear(qkv if int8 else qkv * g1, b, int8)
        self.o = Linear(a.o_proj.weight, a.o_proj.bias, int8)
        self.gate_up = Linear(gate_up if int8 else gate_up * g2, _cat_bias(m.gate_proj, m.up_proj), int8)
        self.down = Linear(m.down_proj.weight, m.down_proj.bias, int8)


class Decoder:
    """The model's weights, rearranged once (fused, optionally int8). `start` takes the cache a
    transformers prefill left and returns a Run that writes one token per row per `step`."""

    def __init__(self, model, int8: bool = True):
        cfg = model.config
        self.int8 = int8
        self.d = cfg.hidden_size
        self.heads, self.kv = cfg.num_attention_heads, cfg.num_key_value_heads
        self.hd = getattr(cfg, "head_dim", None) or self.d // self.heads
        self.eps = cfg.rms_norm_eps
        inner = model.model
        self.embed = inner.embed_tokens.weight.detach().float()
        self.layers = [Layer(layer, int8, self.hd ** -0.5) for layer in inner.layers]
        g = inner.norm.weight.detach().float()                                        # as in Layer
        self.g = g if int8 else None
        head = model.lm_head.weight.detach().float()
        self.head = Linear(head if int8 else head * g, getattr(model.lm_head, "bias", None), int8)
        rot = inner.rotary_emb
        self.inv_freq = rot.inv_freq.detach().float()                                  # (hd/2,)
        self.rope_scale = float(getattr(rot, "attention_scaling", 1.0))

    def rms(self, x: torch.Tensor, g=None) -> torch.Tensor:
        """RMSNorm, g * x / sqrt(mean(x^2) + eps), in plain operations (faster here than torch's fused
        one, which converts dtypes for one row); g None: the gain is folded into the next matrix."""
        ss = torch.linalg.vector_norm(x, dim=-1, keepdim=True).square_()        # sum(x^2), one kernel
        x = x * torch.rsqrt(ss.mul_(1.0 / self.d).add_(self.eps))
        return x if g is None else x * g

    def start(self, past, mask: torch.Tensor, max_new: int, owners: torch.Tensor | None = None) -> "Run":
        """owners (R,): which independent request each row belongs to (rows of one request are
        consecutive), or None when the rows may share int8 ranges (one request)."""
        return Run(self, past, mask, max_new, owners)


class Run:
    """One decoding run: the static key/value cache (rows, kv heads, prompt + max_new, head dim) per layer
    and the mask of the columns each row may attend to (False: its left padding)."""

    def __init__(self, dec: Decoder, past, mask: torch.Tensor, max_new: int, owners: torch.Tensor | None = None):
        self.dec = dec
        self.owners = owners if dec.int8 else None
        self.sizes = self._sizes()
        rows, length = mask.shape
        self.t = length                                          # the next column to write
        size = length + max_new
        self.k, self.v = [], []
        for i in range(len(dec.layers)):
            k, v = past.layers[i].keys, past.layers[i].values    # (R, KV, L, hd)
            K = k.new_zeros((rows, dec.kv, size, dec.hd))
            V = torch.zeros_like(K)
            K[:, :, :length], V[:, :, :length] = k, v
            self.k.append(K)
            self.v.append(V)
        self.mask = torch.zeros((rows, size), dtype=torch.bool)
        self.mask[:, :length] = mask.bool()

    def _sizes(self) -> list[int] | None:
        if self.owners is None:
            return None
        return torch.unique_consecutive(self.owners, return_counts=True)[1].tolist()

    def keep(self, rows: torch.Tensor) -> None:
        """Only these rows go on (the others wrote their end token)."""
        self.k = [K.index_select(0, rows) for K in self.k]
        self.v = [V.index_select(0, rows) for V in self.v]
        self.mask = self.mask.index_select(0, rows)
        if self.owners is not None:
            self.owners = self.owners[rows]
            self.sizes = self._sizes()

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """ids (A,) the tokens just written, pos (A, 1) their positions -> logits of the next token (A, V)."""
        dec, t = self.dec, self.t
        a, h, kv, hd = ids.shape[0], dec.heads, dec.kv, dec.hd
        self.mask[:, t] = True
        bias = torch.zeros(self.mask[:, :t + 1].shape).masked_fill_(~self.mask[:, :t + 1], float("-inf"))
        bias = bias[:, None, None, :]                                                # (A, 1, 1, t+1): 0 or -inf
        ang = pos.float() * dec.inv_freq                                             # (A, hd/2)
        ang = torch.cat((ang, ang), -1)[:, None, :]                                  # (A, 1, hd)
        cos = ang.cos() * dec.rope_scale
        sin = ang.sin() * dec.rope_scale
        sin[..., :hd // 2] *= -1                                                     # [-sin, sin]
        x = F.embedding(ids, dec.embed)                                              # (A, d)
        for i, L in enumerate(dec.layers):
            qkv = L.qkv(dec.rms(x, L.g1), self.sizes)                                # (A, (h + 2kv) hd)
            qk = qkv[:, :(h + kv) * hd].view(a, h + kv, hd)
            qk = torch.addcmul(qk * cos, qk.roll(hd // 2, -1), sin)                  # RoPE on q and k at once
            q = qk[:, :h].view(a, kv, h // kv, hd)                                   # the query heads of a kv head
            K, V = self.k[i], self.v[i]
            K[:, :, t] = qk[:, h:]
            V[:, :, t] = qkv[:, (h + kv) * hd:].view(a, kv, hd)
            s = torch.matmul(q, K[:, :, :t + 1].transpose(-1, -2)).add_(bias)  # (A, kv, g, t+1), q scaled
            att = torch.matmul(s.softmax(-1), V[:, :, :t + 1])                      # (A, kv, g, hd)
            x = x + L.o(att.reshape(a, h * hd), self.sizes)
            gate, up = L.gate_up(dec.rms(x, L.g2), self.sizes).chunk(2, -1)
            x = x + L.down(F.silu(gate) * up, self.sizes)
        self.t = t + 1
        return dec.head(dec.rms(x, dec.g), self.sizes)                               # (A, V)
