"""What the Transformer lab does, with no UI: read one prompt through the Prompt lab's language model
(the same copy, loaded once through its loader) and return what happens inside, as plain data: the
tokens, one head's attention and the whole layer's, the scores before the softmax, the key/value head
each query head shares, RoPE against the sinusoidal encoding, the logit lens, a head or a layer switched
off, and the next-token distribution (the Prompt lab's own sampling view).

One prompt costs one recorded forward pass (model.trace); it is kept in a small LRU (per model and
token ids, made once through `core.cache`), so moving a slider recomputes only the cheap parts.
Counts of layers and heads come from the model's config, so a hub model works the same way.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch

from playground.core import cache, device, timing, validate
from playground.core.errors import InputError, Unavailable
from playground.core.settings import Settings
from playground.prompting import service as prompting
from playground.prompting.service import NextToken
from playground.transformer import model as tm

MAX_CHARS = 400            # characters in the prompt
MAX_TOKENS = 64            # tokens in the prompt (the heatmaps stay readable; one pass stays well under 1 s)
LENS_TOP = 5               # tokens shown per layer in the logit lens
BARS = 10                  # tokens in the switched-off comparison
SHIFT = (0, 1000)          # the RoPE example's shift s
SHIFT_POINTS = 41          # points on the RoPE curves
SINUSOID_BASE = 10000.0    # the base of the original transformer's sinusoidal encoding
CACHED_PROMPTS = 4         # traces kept per process (each a few MB)
CACHED_ABLATIONS = 32      # next-token logits of switched-off runs kept
ABLATIONS = ("nothing", "this head", "all heads of this layer")
# The first view: a prompt whose answer one head of SmolLM2 fetches (layer 23, head 4 reads "France" from
# "is"; switching it off takes most of the probability from "Paris": tests/test_transformer_real.py).
DEFAULT_PROMPT = "The capital of France is"
DEFAULT = dict(layer=23, head=4, shift=100, ablation="this head", temperature=1.0, top_k=0, top_p=1.0)
BENCH_PROMPT = ("The Eiffel Tower is located in the city of Paris, the capital of France. It was built for "
                "the World's Fair of 1889 and was at first criticised by artists. Today it is one of the most "
                "visited monuments in the world, and every year millions of people climb it to see Paris from")
# (64 tokens for SmolLM2's tokenizer: the benchmark's prompt, and the text the previous-token head is measured on)


class LRU:
    """A bounded, thread-safe least-recently-used map (one per process, made through core.cache)."""

    def __init__(self, size: int):
        self.size, self._d, self._lock = size, OrderedDict(), threading.Lock()

    def get(self, key, make):
        with self._lock:
            if key in self._d:
                self._d.move_to_end(key)
                return self._d[key]
        value = make()
        with self._lock:
            self._d[key] = value
            while len(self._d) > self.size:
                self._d.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._d.clear()


# ---- plain results ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Info:
    name: str
    shape: tm.Shape
    norm: str                  # the norm's class name, e.g. LlamaRMSNorm


@dataclass(frozen=True)
class Attention:
    layer: int
    head: int
    query: int
    kv_of: list[int]           # the key/value head of each query head
    weights: np.ndarray        # (H, T, T) every head of the layer, zero above the diagonal
    scores: np.ndarray         # (T,) s_qj = q . k_j / sqrt(d_k) of the chosen head's query row (future: -inf)
    dots: np.ndarray           # (T,) q . k_j, before the scaling
    prev: np.ndarray           # (H,) mean attention to the previous token, per head
    check: float               # max |ours through W_O - the model's attention output| for this layer


@dataclass(frozen=True)
class Rope:
    query: int                 # m
    key: int                   # n
    shift: int                 # the chosen s
    shifts: list[int]          # s along the curves
    both: list[float]          # (R_{m+s} q) . (R_{n+s} k) / sqrt(d_k): constant
    query_only: list[float]    # (R_{m+s} q) . (R_n k) / sqrt(d_k): the offset grows
    added: list[float]         # (q + PE(m+s)) . (k + PE(n+s)) / sqrt(d_k): the sinusoidal code added instead
    at_shift: tuple[float, float, float]   # the three at the chosen s
    sinusoid: np.ndarray       # (P, d_k) PE(p, i)
    rotary_cos: np.ndarray     # (P, r/2) cos(p theta_i) of the model's RoPE
    thetas: list[float]        # theta_i of the model's RoPE


@dataclass(frozen=True)
class Lens:
    position: int
    labels: list[str]          # "embeddings", "layer 0", ...
    top: list[list[str]]       # (L + 1, LENS_TOP) token texts
    probs: np.ndarray          # (L + 1, LENS_TOP)
    answer: str                # the model's own top token at this position
    answer_probs: list[float]  # its probability after each layer
    answer_ranks: list[int]    # its rank after each layer (1 = top)
    first: int | None          # the row from which on the answer stays the top token


@dataclass(frozen=True)
class Ablation:
    mode: str
    layer: int
    heads: list[int]
    tokens: list[str]
    intact: list[float]
    ablated: list[float]
    kl: float                  # KL(intact || ablated), nats
    top_before: tuple[str, float]
    top_after: tuple[str, float]


@dataclass(frozen=True)
class Inspection:
    info: Info
    tokens: list[str]
    ids: list[int]
    notes: list[str]           # what was clamped into range
    attention: Attention
    rope: Rope
    lens: Lens
    ablation: Ablation | None
    next_token: NextToken
    seconds: float
    cached: bool               # the forward pass came from the LRU


@dataclass(frozen=True)
class Status:
    model: str
    problem: str = ""          # why no local model can run here


def show(tokenizer, i: int) -> str:
    """One token as text, its spaces visible (␣) and line breaks escaped."""
    return repr(tokenizer.decode([i]))[1:-1].replace(" ", "␣") or "(empty)"


class Service:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._prompt_lab = prompting.Service(settings)

    # ---- the model ----------------------------------------------------------------------------

    def status(self) -> Status:
        ref = self._prompt_lab.model_choices()[0]
        return Status(ref, self._prompt_lab.status().problem)

    def _backend(self):
        backend = self._prompt_lab.default_backend()      # the Prompt lab's copy, loaded once
        try:
            tm.layers_of(backend.model)
        except ValueError as e:
            raise Unavailable(f"{e}: set PLAYGROUND_LLM to a Llama-family model (SmolLM2, Llama, Qwen2, "
                              "Mistral).") from None
        return backend

    def info(self) -> Info:
        """The model's name and architecture (loads the model)."""
        return self._info(self._backend())

    @staticmethod
    def _info(backend) -> Info:
        return Info(backend.name, tm.shape_of(backend.model), type(backend.model.model.norm).__name__)

    # ---- validation ---------------------------------------------------------------------------

    def _ids(self, backend, prompt: str) -> list[int]:
        """The prompt's token ids (the tokenizer's own special tokens included), at most MAX_TOKENS."""
        ids = backend.tokenizer(prompt)["input_ids"]
        if len(ids) > MAX_TOKENS:
            raise InputError(f"The prompt is {len(ids)} tokens; shorten it to at most {MAX_TOKENS} tokens.")
        return ids

    @staticmethod
    def _index(name: str, value, hi: int, what: str, notes: list[str]) -> int:
        """A whole number clamped into [0, hi]; a note says so when it was out of range."""
        got = validate.integer(name, value, -2**31, 2**31)
        shown = validate.integer(name, value, 0, hi)
        if got != shown:
            notes.append(f"{name} {got} is out of range ({what} 0–{hi}): showing {shown}.")
        return shown

    # ---- cached passes ------------------------------------------------------------------------

    @staticmethod
    def _traces() -> LRU:
        return cache.once(("transformer", "traces"), lambda: LRU(CACHED_PROMPTS))

    @staticmethod
    def _ablations() -> LRU:
        return cache.once(("transformer", "ablations"), lambda: LRU(CACHED_ABLATIONS))

    def forget(self) -> None:
        """Drop the cached passes (benchmarks: time a prompt as if it were new)."""
        self._traces().clear()
        self._ablations().clear()

    def _trace(self, backend, ids) -> tuple[tm.Trace, bool]:
        lru = self._traces()
        made = []
        tr = lru.get((backend.name, str(backend.device), tuple(ids)),
                     lambda: made.append(1) or tm.trace(backend.model, ids))
        return tr, not made

    def _ablated_logits(self, backend, tr: tm.Trace, layer: int, heads: list[int]) -> torch.Tensor:
        """Layers layer..L-1 rerun with `heads` of `layer` zeroed (model.resume), cached."""
        return self._ablations().get((backend.name, str(backend.device), tr.ids, layer, tuple(heads)),
                                     lambda: tm.resume(backend.model, tr, layer, {layer: heads}))

    # ---- the actions --------------------------------------------------------------------------

    @device.gpu(duration=60)
    def inspect_prompt(self, prompt, layer, head, shift, ablation, temperature, top_k, top_p) -> Inspection:
        """A new prompt: the query is its last token, the key the one that query attends to most."""
        return self._inspect(prompt, layer, head, MAX_TOKENS, None, shift, ablation, temperature, top_k, top_p)

    @device.gpu(duration=60)
    def inspect(self, prompt, layer, head, query, key, shift, ablation, temperature, top_k, top_p) -> Inspection:
        """Everything the tab shows for one prompt and one choice of layer, head and query token
        (key None: the key the query attends to most)."""
        return self._inspect(prompt, layer, head, query, key, shift, ablation, temperature, top_k, top_p)

    def _inspect(self, prompt, layer, head, query, key, shift, ablation, temperature, top_k, top_p) -> Inspection:
        t0 = time.perf_counter()
        prompt = validate.text("Prompt", prompt, max_chars=MAX_CHARS)       # what needs no model, first
        shift = validate.integer("Shift", shift, *SHIFT)
        ablation = validate.choice("Switch off", ablation, ABLATIONS)
        backend = self._backend()
        ids = self._ids(backend, prompt)
        shape = tm.shape_of(backend.model)
        notes: list[str] = []
        layer = self._index("Layer", layer, shape.layers - 1, "layers", notes)
        head = self._index("Head", head, shape.heads - 1, "heads", notes)
        query = validate.integer("Query token", query, 0, len(ids) - 1)   # past the end: the last token
        tr, cached = self._trace(backend, ids)

        att = self._attention(backend.model, tr, shape, layer, head, query)
        if key is None:
            key = int(np.argmax(att.weights[head, query]))
        key = validate.integer("Key token", key, 0, query)
        return Inspection(
            self._info(backend), [show(backend.tokenizer, i) for i in ids], list(ids), notes, att,
            self._rope(backend.model, tr, shape, layer, head, query, key, shift),
            self._lens(backend, tr, query), self._ablation(backend, tr, ablation, layer, head),
            prompting.distribution(tr.logits, backend.tokenizer, temperature, top_k, top_p),
            time.perf_counter() - t0, cached)

    # ---- the parts ----------------------------------------------------------------------------

    @staticmethod
    def _attention(model, tr: tm.Trace, shape: tm.Shape, layer: int, head: int, query: int) -> Attention:
        s = tm.scores(tr.q_rot(layer), tr.k_rot(layer), shape.scaling)         # (H, T, T)
        a = tm.weights(s)                                                       # (H, T, T)
        ours = tm.through_o_proj(model, layer, tm.heads_output(a, tr.v[layer]))  # (T, d_model)
        row = s[head, query].masked_fill(tm.causal_mask(s.shape[-1])[query], float("-inf"))
        return Attention(layer, head, query, tm.kv_map(shape.heads, shape.kv_heads), a.numpy(), row.numpy(),
                         (row / shape.scaling).numpy(), tm.prev_token_share(a).numpy(),
                         float((ours - tr.attn_out[layer]).abs().max()))

    @staticmethod
    def _rope(model, tr: tm.Trace, shape: tm.Shape, layer, head, query, key, shift) -> Rope:
        q = tr.q[layer, head, query]                                           # (d_k,) before RoPE
        k = tr.k[layer, tm.kv_map(shape.heads, shape.kv_heads)[head], key]
        s = torch.unique(torch.cat([torch.linspace(*SHIFT, SHIFT_POINTS).round().long(), torch.tensor([shift])]))
        both = tm.rope_score(model, q, k, query + s, key + s, shape.scaling)
        alone = tm.rope_score(model, q, k, query + s, torch.full_like(s, key), shape.scaling)
        pe_q, pe_k = tm.sinusoidal(query + s, shape.head_dim, SINUSOID_BASE), tm.sinusoidal(key + s, shape.head_dim,
                                                                                              SINUSOID_BASE)
        added = ((q + pe_q) * (k + pe_k)).sum(-1) * shape.scaling
        at = int((s == shift).nonzero()[0, 0])
        positions = torch.arange(MAX_TOKENS)
        thetas = model.model.rotary_emb.inv_freq.float().cpu().tolist()
        return Rope(query, key, shift, s.tolist(), both.tolist(), alone.tolist(), added.tolist(),
                    (float(both[at]), float(alone[at]), float(added[at])),
                    tm.sinusoidal(positions, shape.head_dim, SINUSOID_BASE).numpy(),
                    tm.angle_table(model, positions).numpy(), thetas)

    @staticmethod
    def _lens(backend, tr: tm.Trace, position: int) -> Lens:
        p = torch.softmax(tm.logit_lens(backend.model, tr.resid[:, position]), dim=-1)   # (L + 1, V)
        top_p, top_i = p.topk(LENS_TOP, dim=-1)
        answer = int(p[-1].argmax())
        ranks = (p > p[:, answer:answer + 1]).sum(-1) + 1                      # (L + 1,)
        first = None
        for row in range(len(ranks) - 1, -1, -1):                              # from the top down while it leads
            if int(ranks[row]) != 1:
                break
            first = row
        tok = backend.tokenizer
        labels = ["embeddings"] + [f"layer {l}" for l in range(len(ranks) - 1)]
        return Lens(position, labels, [[show(tok, int(i)) for i in r] for r in top_i], top_p.numpy(),
                    show(tok, answer), p[:, answer].tolist(), ranks.tolist(), first)

    def _ablation(self, backend, tr: tm.Trace, mode: str, layer: int, head: int) -> Ablation | None:
        if mode == "nothing":
            return None
        heads = [head] if mode == "this head" else list(range(tm.shape_of(backend.model).heads))
        p = torch.softmax(tr.logits, -1)
        q = torch.softmax(self._ablated_logits(backend, tr, layer, heads), -1)
        order = [int(i) for i in p.topk(BARS).indices]
        order += [int(i) for i in q.topk(3).indices if int(i) not in order]
        tok = backend.tokenizer
        top = int(p.argmax()), int(q.argmax())
        return Ablation(mode, layer, heads, [f"{show(tok, i)} #{i}" for i in order], [float(p[i]) for i in order],
                        [float(q[i]) for i in order], tm.kl(p, q), (show(tok, top[0]), float(p[top[0]])),
                        (show(tok, top[1]), float(q[top[1]])))

    # ---- the benchmarks -----------------------------------------------------------------------

    def bench_prompt(self) -> str:
        """BENCH_PROMPT, cut at a word so that this model's tokenizer reads at most MAX_TOKENS tokens."""
        tok, words = self._backend().tokenizer, BENCH_PROMPT.split(" ")
        while len(tok(" ".join(words))["input_ids"]) > MAX_TOKENS:
            words.pop()
        return " ".join(words)

    def speed_probe(self) -> dict:
        """The whole view for the benchmark prompt, its forward pass not cached (median seconds)."""
        backend, text, d = self._backend(), self.bench_prompt(), DEFAULT

        def fresh():
            self.forget()
            return self.inspect_prompt(text, d["layer"], d["head"], d["shift"], d["ablation"], d["temperature"],
                                       d["top_k"], d["top_p"])

        return {"family": "Transformer", "what": f"whole view, {len(self._ids(backend, text))} tokens, "
                f"{backend.name}", "seconds": timing.median_seconds(fresh)}

    def load_calls(self) -> list:
        d = DEFAULT
        return [("transformer_prompt", [DEFAULT_PROMPT, d["layer"], d["head"], d["shift"], d["ablation"],
                                        d["temperature"], d["top_k"], d["top_p"]])]
