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

import time
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
INDEX_CAP = 1023           # the largest layer or head a lesson link may name (the model's own counts clamp it)
# Where a tour check's measurement changes its answer (tour_check)
ROPE_SAME = 1e-3           # a score that moves by less than this (relative) under a shift is "the same"
HALVED = 0.5               # p(answer) with a head off below this share of the intact p: "falls by more than half"
STEADY = 0.05              # p(answer) within this relative change: "hardly changes"
FEW = 4                    # query heads per key/value head counted as "a few"
THIRDS = (1 / 3, 2 / 3)    # the share of the layers run that separates early, middle and late
# The first view: a prompt whose answer one head of SmolLM2 fetches (layer 23, head 4 reads "France" from
# "is"; switching it off takes most of the probability from "Paris": tests/test_transformer_real.py).
DEFAULT_PROMPT = "The capital of France is"
DEFAULT = dict(layer=23, head=4, shift=100, ablation="this head", temperature=1.0, top_k=0, top_p=1.0)
BENCH_PROMPT = ("The Eiffel Tower is located in the city of Paris, the capital of France. It was built for "
                "the World's Fair of 1889 and was at first criticised by artists. Today it is one of the most "
                "visited monuments in the world, and every year millions of people climb it to see Paris from")
# (64 tokens for SmolLM2's tokenizer: the benchmark's prompt, and the text the previous-token head is measured on)


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
class LensRun:
    """The logit lens of one token, layer by layer (the animation's frames)."""
    model: str
    tokens: list[str]
    lens: Lens


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


def _hub_on_gpu(self, *args, **kwargs) -> bool:
    """device.routed's test: the Prompt lab's default model, when it is a hub model on the GPU."""
    lab = self._prompt_lab
    return lab.on_gpu(lab.model_choices()[0])


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
    def _traces() -> cache.Recent:
        return cache.once(("transformer", "traces"), lambda: cache.Recent(CACHED_PROMPTS))

    @staticmethod
    def _ablations() -> cache.Recent:
        return cache.once(("transformer", "ablations"), lambda: cache.Recent(CACHED_ABLATIONS))

    def forget(self) -> None:
        """Drop the cached passes (benchmarks: time a prompt as if it were new)."""
        self._traces().clear()
        self._ablations().clear()

    def _trace(self, backend, ids) -> tuple[tm.Trace, bool]:
        lru = self._traces()
        made = []
        tr = lru.make((backend.name, str(backend.device), tuple(ids)),
                      lambda: made.append(1) or tm.trace(backend.model, ids))
        return tr, not made

    def _ablated_logits(self, backend, tr: tm.Trace, layer: int, heads: list[int]) -> torch.Tensor:
        """Layers layer..L-1 rerun with `heads` of `layer` zeroed (model.resume), cached."""
        return self._ablations().make((backend.name, str(backend.device), tr.ids, layer, tuple(heads)),
                                      lambda: tm.resume(backend.model, tr, layer, {layer: heads}))

    # ---- the actions --------------------------------------------------------------------------

    @device.routed(_hub_on_gpu, duration=60)
    def inspect_prompt(self, prompt, layer, head, shift, ablation, temperature, top_k, top_p) -> Inspection:
        """A new prompt: the query is its last token, the key the one that query attends to most."""
        return self._inspect(prompt, layer, head, MAX_TOKENS, None, shift, ablation, temperature, top_k, top_p)

    @device.routed(_hub_on_gpu, duration=60)
    def inspect(self, prompt, layer, head, query, key, shift, ablation, temperature, top_k, top_p) -> Inspection:
        """Everything the tab shows for one prompt and one choice of layer, head and query token
        (key None: the key the query attends to most)."""
        return self._inspect(prompt, layer, head, query, key, shift, ablation, temperature, top_k, top_p)

    @device.routed(_hub_on_gpu, duration=60)
    def lens_run(self, prompt, query) -> LensRun:
        """The logit lens at one token (past the end: the last), for the layer-by-layer animation."""
        prompt = validate.text("Prompt", prompt, max_chars=MAX_CHARS)
        backend = self._backend()
        ids = self._ids(backend, prompt)
        query = validate.integer("Query token", query, 0, len(ids) - 1)
        tr, _ = self._trace(backend, ids)
        return LensRun(backend.name, [show(backend.tokenizer, i) for i in ids], self._lens(backend, tr, query))

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

    # ---- the guided tour (assets/tours/transformer.json) -----------------------------------------

    def tour_check(self, check: str, args: dict, values: dict):
        """A tour step's answer, measured on the live model in the state on screen (`values`: the lab's
        controls by link name); `args["answers"]` maps what was measured to the step's wording."""
        from playground.core.lesson import Reveal

        checks = {"strongest_key": self._check_strongest_key, "lens_first": self._check_lens_first,
                  "switch_off": self._check_switch_off, "rope_shift": self._check_rope_shift,
                  "kv_groups": self._check_kv_groups}
        if check not in checks:
            raise InputError(f"Tour: this lab has no check called {str(check)[:40]!r}.")
        v = dict(values)
        mode = v.get("ablation", "nothing")
        if check != "switch_off":
            mode = "nothing"                                   # only that check needs the switched-off pass
        elif mode == "nothing":
            mode = "this head"
        r = self._inspect(v.get("prompt"), v.get("layer"), v.get("head"), v.get("query", MAX_TOKENS),
                          v.get("key"), v.get("shift", DEFAULT["shift"]), mode, v.get("temperature", 1.0),
                          v.get("top_k", 0), v.get("top_p", 1.0))
        outcome, shown = checks[check](r)
        answers = args.get("answers") or {}
        if outcome not in answers:
            raise InputError(f"Tour: the step names no answer for what was measured ({outcome!r}).")
        return Reveal(answers[outcome], shown)

    def _check_strongest_key(self, r: Inspection) -> tuple[str, str]:
        """Which key gets the chosen head's largest weight, query by query (from position 2 on, where the
        previous token and the first token differ); and the whole model's strongest previous-token head."""
        a = r.attention
        w = a.weights[a.head]                                                  # (T, T)
        if len(w) < 3:
            raise InputError("Tour: this step needs a prompt of three tokens or more.")
        kinds = {"previous": 0, "first": 0, "self": 0, "other": 0}
        for i, j in enumerate(w.argmax(-1)[2:], start=2):
            kinds["previous" if j == i - 1 else "first" if j == 0 else "self" if j == i else "other"] += 1
        outcome = max(kinds, key=kinds.get)
        backend = self._backend()
        tr, _ = self._trace(backend, r.ids)
        s = r.info.shape
        prev = torch.stack([tm.prev_token_share(tm.weights(tm.scores(tr.q_rot(l), tr.k_rot(l), s.scaling)))
                            for l in range(s.layers)])                        # (L, H)
        best = int(prev.argmax())
        return outcome, (f"Layer {a.layer}, head {a.head}, over the {len(w) - 2} queries from position 2 on: the "
                         f"largest weight goes to the token just before for {kinds['previous']}, to the first "
                         f"token for {kinds['first']}, to the query itself for {kinds['self']} and elsewhere for "
                         f"{kinds['other']}. Its mean weight on the previous token is {a.prev[a.head]:.0%}. The "
                         f"head with the most of it in the whole model, on this prompt: layer {best // s.heads}, "
                         f"head {best % s.heads} ({float(prev.max()):.0%}).")

    @staticmethod
    def _check_lens_first(r: Inspection) -> tuple[str, str]:
        """From which layer on the model's own next token leads the logit lens (by thirds of the depth)."""
        lens, layers = r.lens, r.info.shape.layers
        top = next((row for row, rank in enumerate(lens.answer_ranks) if rank <= LENS_TOP), None)
        if lens.first is None:
            outcome = "never"
        else:
            done = lens.first / layers                                         # row l: l layers have run
            outcome = "early" if done <= THIRDS[0] else "middle" if done <= THIRDS[1] else "late"
        half = layers // 2
        lead = f"leads from **{lens.labels[lens.first]}** on" if lens.first is not None else "never leads"
        enters = lens.labels[top] if top is not None else "no layer"
        return outcome, (f"The model's next token after `{r.tokens[lens.position]}` is `{lens.answer}` "
                         f"(p = {lens.answer_probs[-1]:.2f}). In the logit lens it {lead} ({layers} layers in "
                         f"all); it first enters the top {LENS_TOP} after {enters}; after {lens.labels[half]}, "
                         f"halfway, its rank is {lens.answer_ranks[half]:,}.")

    @staticmethod
    def _check_switch_off(r: Inspection) -> tuple[str, str]:
        """What switching off the chosen head (or layer) does to the intact model's top token."""
        ab = r.ablation
        p0, p1 = ab.intact[0], ab.ablated[0]                                 # the intact top token first
        ratio = p1 / p0 if p0 > 0 else 1.0
        outcome = ("collapses" if ratio < HALVED else "steady" if abs(ratio - 1) <= STEADY else
                   "rises" if ratio > 1 else "drops")
        tok = ab.tokens[0].rsplit(" #", 1)[0]
        what = (f"head {ab.heads[0]} of layer {ab.layer}" if len(ab.heads) == 1 else
                f"all {len(ab.heads)} heads of layer {ab.layer}")
        return outcome, (f"With {what} switched off, p(`{tok}`) goes from {p0:.3f} to {p1:.3f} (×{ratio:.2f}); "
                         f"the top token is then `{ab.top_after[0]}` (p = {ab.top_after[1]:.3f}); "
                         f"KL(intact ‖ off) = {ab.kl:.4f} nats.")

    @staticmethod
    def _check_rope_shift(r: Inspection) -> tuple[str, str]:
        """The chosen query and key's score with both positions moved by s, against s = 0."""
        p = r.rope
        s0, s1, alone, added = p.both[0], *p.at_shift
        same = abs(s1 - s0) <= ROPE_SAME * max(1.0, abs(s0))
        return ("same" if same else "changes"), (
            f"Query {p.query} and key {p.key} of layer {r.attention.layer}, head {r.attention.head}: the score is "
            f"{s0:.4f} where they stand and {s1:.4f} with both moved {p.shift} positions on (change "
            f"{s1 - s0:+.1e}). Moving only the query gives {alone:.4f}; adding the sinusoidal code instead of "
            f"rotating gives {added:.4f}.")

    def _check_kv_groups(self, r: Inspection) -> tuple[str, str]:
        """How many query heads read one key/value head, counted in the recorded pass (q and k tensors)."""
        tr, _ = self._trace(self._backend(), r.ids)
        heads, kv, layers, d = tr.q.shape[1], tr.k.shape[1], tr.q.shape[0], tr.q.shape[-1]
        g = heads // kv
        outcome = "own" if g == 1 else "all" if kv == 1 else "few" if g <= FEW else "many"
        groups = "; ".join(f"heads {g * i}–{g * i + g - 1} read key/value head {i}" for i in range(kv)) \
            if g > 1 else "each head reads its own"
        return outcome, (f"The recorded pass holds queries of {heads} heads and keys and values of {kv} heads per "
                         f"layer: {g} query heads per key/value head ({groups}). A token leaves 2 × {kv} × {d} × "
                         f"{layers} = {2 * kv * d * layers:,} numbers in the cache instead of "
                         f"{2 * heads * d * layers:,}.")

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
