"""One interface for every backend: N completions for a batch of chat prompts.

    backend.generate(prompts, GenConfig(n=8, temperature=0.7, top_p=0.95, max_new_tokens=128, seed=0))
        -> Generation(texts=[[str] * n] * len(prompts), tokens, seconds)
    backend.stream(prompt, cfg) -> yields the text so far, token by token, then the Generation

A prompt is a chat: a list of {"role": "system" | "user" | "assistant", "content": str}.

`LocalBackend` runs a causal LM (transformers) with its own decoding loop, written out so that
a learner can read it (and so that it stops at once when the user presses Stop):

    p(x_1..x_T | prompt) = prod_t p(x_t | prompt, x_<t)        (autoregressive factorisation)

Rows are left-padded so that every row's last prompt token sits in the same column; the
key/value cache keeps the attention of step t to O(t) work instead of re-reading the prompt.
N samples of one prompt are N rows of the same batch: one forward pass per step for all of
them, which is why self-consistency with N = 8 costs far less than 8 separate calls on a CPU.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Iterator

import torch

from playground.core import cache, device
from playground.prompting import sampling

Chat = list[dict]


@dataclass(frozen=True)
class GenConfig:
    n: int = 1                   # completions per prompt (self-consistency paths)
    temperature: float = 0.0     # 0 = greedy; 0.7 is a common choice for sampled reasoning paths
    top_p: float = 1.0           # nucleus: keep the smallest set of tokens holding this much mass
    top_k: int = 0               # 0 = off
    max_new_tokens: int = 64     # per completion
    seed: int = 0                # same seed, same batch -> same samples
    stop_at_eos: bool = True     # False: always write max_new_tokens (benchmarks: equal work per row)


@dataclass
class Generation:
    texts: list[list[str]]       # [prompt][sample]
    tokens: int                  # new tokens, summed over every row
    seconds: float
    prompt_tokens: int = 0
    note: str = ""               # e.g. "token counts estimated"
    token_counts: list[list[int]] = field(default_factory=list)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def stats(self) -> str:
        return f"{self.tokens} tokens in {self.seconds:.2f} s = {self.tokens_per_s:.1f} tokens/s{self.note}"


def plain_format(chat: Chat) -> str:
    """The fallback when a tokenizer has no chat template: labelled turns, then the assistant cue."""
    parts = [f"### {m['role'].capitalize()}:\n{m['content']}\n" for m in chat]
    return "\n".join(parts) + "\n### Assistant:\n"


def render(tokenizer, chat: Chat) -> str:
    """The exact text the model receives: the chat template applied, or the plain fallback."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    return plain_format(chat)


class LocalBackend:
    """A transformers causal LM and its tokenizer on one device."""

    kind = "local"

    def __init__(self, model, tokenizer, name: str = "model", device: str | torch.device = "cpu"):
        self.model = model.eval()
        self.parameters = sum(p.numel() for p in model.parameters())
        self.tokenizer = tokenizer
        self.name = name
        self.device = torch.device(device)
        self.model.to(self.device)
        eos = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
        for extra in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
            tid = tokenizer.convert_tokens_to_ids(extra) if extra in tokenizer.get_vocab() else None
            if tid is not None:
                eos.add(tid)
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos.update(gen_eos if isinstance(gen_eos, list) else ([gen_eos] if gen_eos is not None else []))
        self.eos_ids = sorted(eos)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.eos_ids or [0])[0]
        self.decoder = None          # fast.Decoder: the CPU's own decoding step (use_decoder)
        self._kept: cache.Recent[tuple, torch.Tensor] = cache.Recent(self.KEPT)   # next_token_logits

    def use_decoder(self, int8: bool) -> None:
        """Write tokens with fast.Decoder (a Llama-family model on the CPU): int8 weights, or float32
        (exact). Where this torch cannot pack int8 weights (no fbgemm / onednn), float32."""
        from playground.prompting import fast

        try:
            self.decoder = fast.Decoder(self.model, int8=int8)
        except RuntimeError:
            if not int8:
                raise
            self.decoder = fast.Decoder(self.model, int8=False)

    def describe(self) -> str:
        n = self.parameters
        size = f"{n / 1e6:,.1f} M" if n >= 10**6 else f"{n:,}"
        how = f", {'int8' if self.decoder.int8 else 'float32'} weights when writing" if self.decoder else ""
        return f"`{self.name}` (transformers, {self.device}{how}, {size} parameters)"

    def render(self, chat: Chat) -> str:
        return render(self.tokenizer, chat)

    def _left_pad(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Token rows left-padded to one width: ids and attention mask, both (B, L), on the device."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = 1
        return ids.to(self.device), mask.to(self.device)

    def encode(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ids and attention mask, both (B, L)."""
        return self._left_pad([self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts])

    KEPT = 64            # the next-token logits of this many recent prompts are kept (next_token_logits)

    @torch.inference_mode()
    def next_token_logits(self, text: str, reuse: bool = True) -> torch.Tensor:
        """The logits of the token after `text` (already rendered). (V,)

        A class reads the same prompts again and again (a preset, a lesson link): the logits of the last
        KEPT prompts are kept, and an equal prompt gets a copy of them, the same numbers bit for bit.
        Only equal prompts: a prompt that merely starts alike is read whole, because reading only its
        tail after a kept prefix changes the logits by float rounding (about 3e-5 here) and would make
        an answer depend on what the server read before. reuse=False reads and keeps nothing (a speed
        probe)."""
        row = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        key = tuple(row)
        kept = self._kept.get(key) if reuse else None
        if kept is not None:
            return kept.clone()
        ids, mask = self._left_pad([row])                                            # (1, L) each
        logits = self.model(input_ids=ids, attention_mask=mask).logits[0, -1].float()
        if reuse:
            self._kept.put(key, logits.clone())
        return logits

    MIN_SHARED = 16      # shared prompt tokens worth reading once (prefix caching)

    def prefill(self, texts: list[str]):
        """Read the prompts. Tokens that every prompt starts with (system prompt, few-shot examples)
        are read once and their key/value cache copied to each row (prefix caching); each row's own
        tail is left-padded after that prefix, with positions that skip the padding:

            [ shared prefix (c) | pad ... pad | own tail ]     position of a tail token = c + its index

        Returns (cache, last logits (P, V), attention mask (P, L), positions (P, L))."""
        rows = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        c = 0
        if len(rows) > 1:
            shortest = min(len(r) for r in rows)
            while c < shortest - 1 and all(r[c] == rows[0][c] for r in rows):
                c += 1
        if c < self.MIN_SHARED:
            c = 0
        past = None
        if c:
            head = torch.tensor([rows[0][:c]], device=self.device)                         # (1, c)
            past = self.model(input_ids=head, use_cache=True).past_key_values
            past.batch_repeat_interleave(len(rows))
        ids, tmask = self._left_pad([r[c:] for r in rows])                                 # (P, W)
        mask = torch.cat([torch.ones((len(rows), c), dtype=torch.long, device=self.device), tmask], -1)  # (P, c+W)
        pos = c + (tmask.cumsum(-1) - 1).clamp(min=0)                                      # (P, W)
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, past_key_values=past, use_cache=True)
        return out.past_key_values, out.logits[:, -1, :], mask, pos

    @torch.inference_mode()
    def steps(self, texts: list[str], cfg: GenConfig, seeds: list[int] | None = None,
              independent: bool = False) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The decoding loop. Each prompt is read once (one prefill), then its key/value cache is
        copied to cfg.n rows; a row leaves the batch as soon as it writes an end token, so the cost
        follows the tokens actually written. Yields (rows (A,), tokens (A,), ended (A,)) per step:
        the original row index (prompt i, sample j -> i * n + j) of each active row, its new token,
        and whether that token ends it (the end token itself is not part of the text).
        Prompt i samples from its own generator, seeded with seeds[i] (default: cfg.seed for every
        prompt), so its samples do not depend on the other prompts in the batch. independent=True (the
        Gang: each prompt another student's) keeps int8 weights' activation ranges per prompt too.
        The prompt is read by the transformers model; the tokens are written by fast.Decoder when the
        backend has one (a static cache, fused and int8 weights), else by the same model."""
        n = cfg.n
        past, logits, mask, pos = self.prefill(texts)                 # (P, V), (P, L), (P, L)
        if n > 1:                                                      # N paths share one prefill
            past.batch_repeat_interleave(n)
            logits, mask = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0)   # (R, V), (R, L)
            pos = pos.repeat_interleave(n, 0)
        pos = pos[:, -1:]                                              # (R, 1)
        owners = torch.arange(len(texts)).repeat_interleave(n) if independent else None
        run = self.decoder.start(past, mask, cfg.max_new_tokens, owners) if self.decoder else None
        if run:
            past = None                                                # copied into the run's static cache
        rows = torch.arange(len(texts) * n, device=self.device)        # (A,) which rows are still writing
        gens = [torch.Generator(device="cpu").manual_seed(int(sd)) for sd in (seeds or [cfg.seed] * len(texts))]
        eos = torch.tensor(self.eos_ids or [-1], device=self.device)
        for step in range(cfg.max_new_tokens):
            # x_t ~ p(x_t | x_<t) after temperature / top-k / top-p (sampling.py), each prompt's rows
            # from that prompt's generator
            flat = logits.float().cpu()
            if cfg.temperature <= 0 or len(gens) == 1:
                nxt = sampling.draw(flat, cfg.temperature, cfg.top_k, cfg.top_p, gens[0])
            else:
                owner = (rows // n).cpu()
                nxt = torch.empty(len(rows), dtype=torch.long)
                for i in owner.unique().tolist():
                    mine = (owner == i).nonzero().squeeze(-1)
                    nxt[mine] = sampling.draw(flat[mine], cfg.temperature, cfg.top_k, cfg.top_p, gens[i])
            nxt = nxt.to(self.device)
            ended = torch.isin(nxt, eos) if cfg.stop_at_eos else torch.zeros_like(nxt, dtype=torch.bool)  # (A,)
            yield rows, nxt, ended
            if step == cfg.max_new_tokens - 1 or bool(ended.all()):
                return
            if bool(ended.any()):                                      # drop finished rows from the batch
                keep = (~ended).nonzero().squeeze(-1)
                if run:
                    run.keep(keep)
                else:
                    past.batch_select_indices(keep)
                rows, nxt, pos = rows[keep], nxt[keep], pos[keep]
                if not run:
                    mask = mask[keep]
            pos = pos + 1                                              # (A, 1)
            if run:
                logits = run.step(nxt, pos)                            # (A, V)
                continue
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)   # (A, L+t)
            out = self.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=pos, past_key_values=past,
                             use_cache=True)
            past = out.past_key_values
            logits = out.logits[:, -1, :]                              # (A, V)

    def _collect(self, texts: list[str], cfg: GenConfig, kept: list[list[int]]) -> Iterator[None]:
        for rows, nxt, ended in self.steps(texts, cfg):
            for r, t, e in zip(rows.tolist(), nxt.tolist(), ended.tolist()):
                if not e:
                    kept[r].append(t)
            yield None

    def _finish(self, n_prompts: int, cfg: GenConfig, kept: list[list[int]], seconds: float) -> Generation:
        decoded = [self.tokenizer.decode(k, skip_special_tokens=True) for k in kept]
        counts = [len(k) for k in kept]
        n = cfg.n
        return Generation([decoded[i * n:(i + 1) * n] for i in range(n_prompts)], sum(counts), seconds,
                          token_counts=[counts[i * n:(i + 1) * n] for i in range(n_prompts)])

    def generate(self, chats: list[Chat], cfg: GenConfig) -> Generation:
        texts = [self.render(c) for c in chats]
        kept: list[list[int]] = [[] for _ in range(len(texts) * cfg.n)]
        t0 = time.perf_counter()
        for _ in self._collect(texts, cfg, kept):
            pass
        return self._finish(len(texts), cfg, kept, time.perf_counter() - t0)

    def stream(self, chat: Chat, cfg: GenConfig) -> Iterator[str | Generation]:
        """Yields the text of sample 0 as it grows, then the Generation (every sample)."""
        kept: list[list[int]] = [[] for _ in range(cfg.n)]
        t0 = time.perf_counter()
        for _ in self._collect([self.render(chat)], cfg, kept):
            yield self.tokenizer.decode(kept[0], skip_special_tokens=True)
        yield self._finish(1, cfg, kept, time.perf_counter() - t0)


class Gang:
    """Concurrent students' requests to one backend, merged into one decode loop.

    A request (one chat, a GenConfig) waits up to `wait` seconds for others with the same settings
    (all but the seed), then the group runs as one batch through `LocalBackend.steps`: one forward
    pass per token for every row, each prompt sampling from its own seed. Each request gets its own
    tokens as they come (`stream`) or at the end (`generate`), the same as if it had run alone (up to
    floating-point rounding of the batched matrix products; a near-tie can then flip a token). At
    most `max_rows` rows decode at once; later requests start the next group. A request whose reader
    has gone (Stop, a closed page) is no longer waited for: the loop ends when no one of its group reads.
    """

    def __init__(self, backend: LocalBackend, wait: float = 0.03, max_rows: int = 64):
        import threading

        self.backend, self.wait, self.max_rows = backend, wait, max_rows
        self._lock = threading.Lock()
        self._pending: dict[tuple, list] = {}
        self._running: set[tuple] = set()
        self.sizes: list[int] = []               # prompts per group run (the benchmark reads it)

    def stream(self, chat: Chat, cfg: GenConfig) -> Iterator[str | Generation]:
        """Yields the text of sample 0 as it grows, then the Generation (every sample)."""
        import queue
        import threading

        key = tuple(v for k, v in cfg.__dict__.items() if k != "seed")
        box: queue.SimpleQueue = queue.SimpleQueue()
        gone = threading.Event()                         # set when this request's reader stops reading
        with self._lock:
            self._pending.setdefault(key, []).append((self.backend.render(chat), cfg, box, gone))
            start = key not in self._running
            if start:
                self._running.add(key)
        if start:
            threading.Thread(target=self._run, args=(key,), name="llm gang", daemon=True).start()
        try:
            while True:
                item = box.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
                if isinstance(item, Generation):
                    return
        finally:
            gone.set()

    def generate(self, chats: list[Chat], cfg: GenConfig) -> Generation:
        if len(chats) != 1:
            return self.backend.generate(chats, cfg)
        out = None
        for out in self.stream(chats[0], cfg):
            pass
        return out

    def _run(self, key: tuple) -> None:
        import time as _time

        device.request_threads(device.cores())          # writing an answer is one long job: every core
        while True:
            _time.sleep(self.wait)                       # let the others who pressed the button arrive
            with self._lock:
                waiting = self._pending.get(key, [])
                if not waiting:
                    self._running.discard(key)
                    self._pending.pop(key, None)
                    return
                cfg = waiting[0][1]
                take = max(1, self.max_rows // max(1, cfg.n))
                group, self._pending[key] = waiting[:take], waiting[take:]
            self.sizes.append(len(group))
            if len(self.sizes) > 10_000:                 # bounded, as core.batch.Batcher's
                del self.sizes[:5_000]
            self._decode(group, cfg)

    def _decode(self, group: list, cfg: GenConfig) -> None:
        texts, boxes, gone = [g[0] for g in group], [g[2] for g in group], [g[3] for g in group]
        n = cfg.n
        kept: list[list[int]] = [[] for _ in range(len(texts) * n)]
        t0 = time.perf_counter()
        try:
            for rows, nxt, ended in self.backend.steps(texts, cfg, seeds=[g[1].seed for g in group],
                                                           independent=True):
                touched = set()
                for r, t, e in zip(rows.tolist(), nxt.tolist(), ended.tolist()):
                    if not e:
                        kept[r].append(t)
                    touched.add(r // n)
                for i in touched:                    # sample 0 of each prompt, as it grows
                    boxes[i].put(self.backend.tokenizer.decode(kept[i * n], skip_special_tokens=True))
                if all(g.is_set() for g in gone):    # everyone pressed Stop: stop writing
                    return
            seconds = time.perf_counter() - t0
            for i, box in enumerate(boxes):
                box.put(self.backend._finish(1, cfg, kept[i * n:(i + 1) * n], seconds))
        except BaseException as e:  # noqa: BLE001 - every waiting request hears of the failure
            for box in boxes:
                box.put(e)

