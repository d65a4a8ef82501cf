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

The loop over the layers (`blocks`) is compiled with TorchScript where this torch can (core/jit.py):
a token's 30 layers are about 1,300 small operations, and run from Python each costs more in the
interpreter than in its kernel. Compiled, the same operations in the same order give the same
numbers, bit for bit (tested); where compiling fails, the same function runs as Python.
"""
from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import List, Optional

import torch
import torch.nn.functional as F

from playground.core import jit


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


def linear(x: torch.Tensor, weight: Optional[torch.Tensor], bias: Optional[torch.Tensor],
           packed: Optional[torch.classes.quantized.LinearPackedParamsBase], reduce_range: bool,
           sizes: List[int]) -> torch.Tensor:
    """y = x W^T + b: float32 `weight`, or int8 `packed` (bias inside), each group of rows in `sizes`
    quantised alone (see Linear)."""
    if packed is None:
        assert weight is not None
        return F.linear(x, weight, bias)
    if len(sizes) > 1:
        return torch.cat([torch.ops.quantized.linear_dynamic(part, packed, reduce_range) for part in x.split(sizes)])
    return torch.ops.quantized.linear_dynamic(x, packed, reduce_range)


def rms(x: torch.Tensor, g: Optional[torch.Tensor], d: int, eps: float) -> torch.Tensor:
    """RMSNorm, g * x / sqrt(mean(x^2) + eps), in plain operations (faster here than torch's fused
    one, which converts dtypes for one row); g None: the gain is folded into the next matrix."""
    ss = torch.linalg.vector_norm(x, 2.0, [-1], True).square_()                  # sum(x^2), one kernel
    x = x * torch.rsqrt(ss.mul_(1.0 / d).add_(eps))
    return x if g is None else x * g


def blocks(x: torch.Tensor, t: int, cos: torch.Tensor, sin: torch.Tensor, bias: Optional[torch.Tensor],
           K: List[torch.Tensor], V: List[torch.Tensor], weights: List[Optional[torch.Tensor]],
           biases: List[Optional[torch.Tensor]], packs: List[Optional[torch.classes.quantized.LinearPackedParamsBase]],
           gains: List[Optional[torch.Tensor]], reduce_range: bool, sizes: List[int],
           heads: int, kv: int, hd: int, d: int, eps: float) -> torch.Tensor:
    """Every layer for one new token per row: x (A, d) -> (A, d); writes column t of the caches K, V.
    Layer i's matrices are 4i..4i+3 of weights / biases / packs (qkv, o, gate_up, down), its gains 2i, 2i+1."""
    a, h = x.shape[0], heads
    for i in range(len(K)):
        j = 4 * i
        qkv = linear(rms(x, gains[2 * i], d, eps), weights[j], biases[j], packs[j], reduce_range, sizes)
        qk = qkv[:, :(h + kv) * hd].view(a, h + kv, hd)                              # (A, q + k heads, hd)
        qk = torch.addcmul(qk * cos, qk.roll(hd // 2, -1), sin)                      # RoPE on q and k at once
        q = qk[:, :h].view(a, kv, h // kv, hd)                                       # the query heads of a kv head
        Ki, Vi = K[i], V[i]
        Ki[:, :, t] = qk[:, h:]
        Vi[:, :, t] = qkv[:, (h + kv) * hd:].view(a, kv, hd)
        s = torch.matmul(q, Ki[:, :, :t + 1].transpose(-1, -2))                     # (A, kv, g, t+1), q scaled
        if bias is not None:
            s = s.add_(bias)
        att = torch.matmul(s.softmax(-1), Vi[:, :, :t + 1])                         # (A, kv, g, hd)
        x = x + linear(att.reshape(a, h * hd), weights[j + 1], biases[j + 1], packs[j + 1], reduce_range, sizes)
        gate, up = linear(rms(x, gains[2 * i + 1], d, eps), weights[j + 2], biases[j + 2], packs[j + 2],
                          reduce_range, sizes).chunk(2, -1)
        x = x + linear(F.silu(gate) * up, weights[j + 3], biases[j + 3], packs[j + 3], reduce_range, sizes)
    return x


@functools.cache
def compiled_blocks():
    """`blocks` compiled by TorchScript once per process (core/jit.py), or `blocks` itself."""
    return jit.script(blocks)


class Linear:
    """y = x W^T + b, float32 or int8 per-channel weights (fbgemm's dynamic-quantised linear).

    fbgemm quantises the activations of a call with one range for all its rows, so with int8 weights a
    row's result depends on the rows beside it. `sizes` splits the rows into groups that must not affect
    one another (different students' requests merged into one decode loop); each group is then its own
    call, quantised as it would be alone. (Float32 rows never affect one another.)"""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, int8: bool):
        weight = weight.detach().float().contiguous()
        self.bias = None if bias is None else bias.detach().float().contiguous()
        if int8:
            scale = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0                    # s_i, (out,)
            with warnings.catch_warnings():     # torch marks its quantised tensors deprecated; they still work
                warnings.simplefilter("ignore")
                wq = torch.quantize_per_channel(weight, scale.double(), torch.zeros_like(scale, dtype=torch.long),
                                                0, torch.qint8)
                self.packed = torch.ops.quantized.linear_prepack(wq, self.bias)
            self.weight, self.reduce_range = None, not full_range()
        else:
            self.weight, self.packed, self.reduce_range = weight, None, False

    def __call__(self, x: torch.Tensor, sizes: list[int] | None = None) -> torch.Tensor:
        return linear(x, self.weight, self.bias, self.packed, self.reduce_range, sizes or [])


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
        mats = [m for L in self.layers for m in (L.qkv, L.o, L.gate_up, L.down)]      # as `blocks` reads them
        self.weights = [m.weight for m in mats]
        self.biases = [m.bias for m in mats]
        self.packs = [m.packed for m in mats]
        self.gains = [g for L in self.layers for g in (L.g1, L.g2)]
        self.reduce_range = self.head.reduce_range
        self.blocks = compiled_blocks()

    def start(self, past, mask: torch.Tensor, max_new: int, owners: torch.Tensor | None = None) -> "Run":
        """owners (R,): which independent request each row belongs to (rows of one request are
        consecutive), or None when the rows may share int8 ranges (one request)."""
        return Run(self, past, mask, max_new, owners)


class Run:
    """One decoding run: the static key/value cache (rows, kv heads, prompt + max_new, head dim) per layer
    and the mask of the columns each row may attend to (False: its left padding; None when no row is padded)."""

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
        self.mask = None                                         # None: no row has padding
        if not bool(mask.bool().all()):
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
        if self.mask is not None:
            self.mask = self.mask.index_select(0, rows)
        if self.owners is not None:
            self.owners = self.owners[rows]
            self.sizes = self._sizes()

    @torch.inference_mode()
    def step(self, ids: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """ids (A,) the tokens just written, pos (A, 1) their positions -> logits of the next token (A, V)."""
        dec, t = self.dec, self.t
        a, h, kv, hd = ids.shape[0], dec.heads, dec.kv, dec.hd
        bias = None                                                                  # no padding: nothing to hide
        if self.mask is not None:
            self.mask[:, t] = True
            bias = torch.zeros(self.mask[:, :t + 1].shape).masked_fill_(~self.mask[:, :t + 1], float("-inf"))
            bias = bias[:, None, None, :]                                            # (A, 1, 1, t+1): 0 or -inf
        ang = pos.float() * dec.inv_freq                                             # (A, hd/2)
        ang = torch.cat((ang, ang), -1)[:, None, :]                                  # (A, 1, hd)
        cos = ang.cos() * dec.rope_scale
        sin = ang.sin() * dec.rope_scale
        sin[..., :hd // 2] *= -1                                                     # [-sin, sin]
        x = F.embedding(ids, dec.embed)                                              # (A, d)
        x = dec.blocks(x, t, cos, sin, bias, self.k, self.v, dec.weights, dec.biases, dec.packs, dec.gains,
                       dec.reduce_range, self.sizes or [], h, kv, hd, dec.d, dec.eps)
        self.t = t + 1
        return dec.head(rms(x, dec.g, dec.d, dec.eps), self.sizes)                   # (A, V)
