"""Prompt lab backends: the decoding loop on a tiny random Llama (tokenizer trained here), and the
OpenAI-compatible client against a stub server on loopback."""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from playground.prompting import evaluate, prompts, tiny
from playground.prompting.engine import GenConfig, Generation
from playground.prompting.remote import RemoteBackend, RemoteError


@pytest.fixture(scope="module")
def tiny_backend():
    return tiny.backend(chat_template=True)


def chat(q: str) -> list[dict]:
    return [{"role": "system", "content": "you are a careful assistant."}, {"role": "user", "content": q}]


def test_chat_template_applied(tiny_backend):
    text = tiny_backend.render(chat("2 + 2?"))
    assert text == ("<|im_start|>system\nyou are a careful assistant.<|im_end|>\n<|im_start|>user\n2 + 2?<|im_end|>\n"
                    "<|im_start|>assistant\n")
    plain = tiny.backend(chat_template=False).render(chat("2 + 2?"))
    assert plain.startswith("### System:\n") and plain.endswith("### Assistant:\n")


def test_generate_shapes_seeds_and_counts(tiny_backend):
    cfg = GenConfig(n=3, temperature=1.0, max_new_tokens=6, seed=7)
    a = tiny_backend.generate([chat("The answer is"), chat("Roger has 5 tennis balls and more")], cfg)
    assert len(a.texts) == 2 and all(len(t) == 3 for t in a.texts)
    assert a.tokens == sum(map(sum, a.token_counts)) and 0 < a.tokens <= 2 * 3 * 6
    assert a.seconds > 0 and a.tokens_per_s > 0 and "tokens/s" in a.stats()
    b = tiny_backend.generate([chat("The answer is"), chat("Roger has 5 tennis balls and more")], cfg)
    assert a.texts == b.texts                                   # same seed, same samples
    greedy = tiny_backend.generate([chat("The answer is")], GenConfig(n=4, max_new_tokens=6))
    assert len(set(greedy.texts[0])) == 1                       # greedy: every path identical


def test_matches_transformers_generate_greedy(tiny_backend):
    """Our loop (left padding, positions, KV cache) equals the reference greedy decoder."""
    text = tiny_backend.render(chat("Let's think step by step."))
    ids, mask = tiny_backend.encode([text])
    ref = tiny_backend.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=8, min_new_tokens=8,
                                      do_sample=False, pad_token_id=tiny_backend.pad_id)[0, ids.shape[1]:]
    ours = [int(t) for _, t, _ in tiny_backend.steps([text], GenConfig(max_new_tokens=8))]
    eos = set(tiny_backend.eos_ids)
    cut = next((i for i, t in enumerate(ours) if t in eos), len(ours))
    assert ours[:cut] == ref.tolist()[:cut]


def test_left_padding_does_not_change_the_answer(tiny_backend):
    short, long = chat("4 * 6"), chat("Roger has 5 tennis balls. He buys 2 more cans. The film was wonderful.")
    alone = tiny_backend.generate([short], GenConfig(max_new_tokens=8)).texts[0][0]
    batched = tiny_backend.generate([long, short], GenConfig(max_new_tokens=8)).texts[1][0]
    assert alone == batched
    la = tiny_backend.next_token_logits(tiny_backend.render(short))
    assert la.shape == (tiny_backend.model.config.vocab_size,) and torch.isfinite(la).all()


def test_an_equal_prompt_gets_the_kept_logits_bit_for_bit(tiny_backend, monkeypatch):
    """next_token_logits keeps recent prompts' logits: an equal prompt is not read again and gets the
    same numbers; a prompt that only starts alike is read whole; at most KEPT prompts are kept."""
    from playground.core import cache
    from playground.prompting import prompts

    b = tiny_backend
    monkeypatch.setattr(b, "_kept", cache.Recent(b.KEPT))                  # nothing kept yet
    texts = [b.render(prompts.build("few-shot", prompts.SENTIMENT, q)) for q in ("Loved it", "A dull, slow film")]
    whole = [b.next_token_logits(t, reuse=False) for t in texts]
    assert not b._kept.keys()                                             # reuse=False keeps nothing
    read = []
    real = b.model.forward
    monkeypatch.setattr(b.model, "forward", lambda *a, **k: read.append(k["input_ids"].shape[1]) or real(*a, **k))
    got = [b.next_token_logits(texts[0]), b.next_token_logits(texts[0]), b.next_token_logits(texts[1])]
    n = [len(b.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts]
    assert read == [n[0], n[1]]                                           # the equal prompt was not read
    assert all(torch.equal(g, w) for g, w in zip(got, [whole[0], whole[0], whole[1]]))
    with torch.inference_mode():
        got[1].add_(1.0)                                                  # a caller's copy, not the kept one
    assert torch.equal(b.next_token_logits(texts[0]), whole[0])
    monkeypatch.setattr(b._kept, "size", 1)                               # a new prompt: only it stays
    third = b.render(prompts.build("zero-shot", prompts.SENTIMENT, "Fine"))
    b.next_token_logits(third)
    assert b._kept.keys() == [tuple(b.tokenizer(third, add_special_tokens=False)["input_ids"])]


def test_stream_grows_then_reports(tiny_backend):
    parts = list(tiny_backend.stream(chat("The answer is"), GenConfig(max_new_tokens=5)))
    assert isinstance(parts[-1], Generation)
    texts = parts[:-1]
    assert all(texts[i + 1].startswith(texts[i]) for i in range(len(texts) - 1))
    assert parts[-1].texts[0][0] == tiny_backend.generate([chat("The answer is")],
                                                          GenConfig(max_new_tokens=5)).texts[0][0]


def test_evaluate_runs_and_reports_self_consistency_curve(tiny_backend):
    rows = [{"question": "2 + 2?", "answer": "4"}, {"question": "3 + 3?", "answer": "6"}]
    steps = list(evaluate.run(tiny_backend, prompts.ARITHMETIC, rows, "self-consistency", n=5, max_new_tokens=4,
                              max_rows_per_call=5))
    assert [s["done"] for s in steps[:-1]] == [1, 2]
    res = steps[-1]
    assert set(res["accuracy_by_n"]) == {"1", "3", "5"} and 0 <= res["accuracy"] <= 1
    assert all(len(it["answers"]) == 5 for it in res["items"])


# ---- OpenAI-compatible server stub ------------------------------------------------------------

class Stub(BaseHTTPRequestHandler):
    honour_n = True
    fail = False
    seen: list = []

    def log_message(self, *a):  # keep the test output quiet
        pass

    def _json(self, code, obj):
        raw = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self):
        if self.path == "/v1/models":
            self._json(200, {"data": [{"id": "stub-model"}]})
        else:
            self._json(404, {"error": "no"})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body)
        if type(self).fail:
            return self._json(500, {"error": "boom"})
        n = body["n"] if type(self).honour_n else 1
        question = body["messages"][-1]["content"]
        answers = [f"The answer is {len(question) + i}." for i in range(n)]
        if not body.get("stream"):
            return self._json(200, {"choices": [{"index": i, "message": {"role": "assistant", "content": a}}
                                                for i, a in enumerate(answers)],
                                    "usage": {"completion_tokens": 5 * n}})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for word in answers[0].split(" "):
            event = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            self.wfile.flush()
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture()
def stub_url():
    Stub.honour_n, Stub.fail, Stub.seen = True, False, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_remote_generate_with_n(stub_url):
    b = RemoteBackend(stub_url)
    assert b.model == "stub-model" and "stub-model" in b.describe()
    out = b.generate([chat("ab"), chat("abcd")], GenConfig(n=3, temperature=0.7, top_p=0.9, max_new_tokens=9, seed=1))
    assert out.texts == [[f"The answer is {2 + i}." for i in range(3)], [f"The answer is {4 + i}." for i in range(3)]]
    assert out.tokens == 30 and out.note == ""
    sent = Stub.seen[0]
    assert sent["n"] == 3 and sent["max_tokens"] == 9 and sent["temperature"] == 0.7 and sent["top_p"] == 0.9
    assert sent["messages"] == chat("ab") and json.loads(b.render(chat("ab")))["messages"] == chat("ab")


def test_remote_tops_up_when_server_ignores_n(stub_url):
    Stub.honour_n = False
    out = RemoteBackend(stub_url, model="m").generate([chat("ab")], GenConfig(n=3, temperature=1.0))
    assert len(out.texts[0]) == 3 and len(Stub.seen) == 3
    assert [b["seed"] for b in Stub.seen] == [0, 1, 2]


def test_remote_stream(stub_url):
    parts = list(RemoteBackend(stub_url, model="m").stream(chat("abc"), GenConfig()))
    assert parts[-1].texts[0][0].strip() == "The answer is 3."
    assert parts[0] == "The " and parts[-2].startswith("The answer")


def test_remote_errors_are_clear_and_quick(stub_url):
    Stub.fail = True
    with pytest.raises(RemoteError, match="500"):
        RemoteBackend(stub_url, model="m").generate([chat("x")], GenConfig())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    with pytest.raises(RemoteError, match="Is the server running"):
        RemoteBackend(f"http://127.0.0.1:{dead}/v1")


def test_shared_prefill_and_row_dropping_match_separate_calls(tiny_backend):
    """N sampled paths in one call (one prefill copied N times, finished rows dropped) give the same
    greedy text as N separate calls, and rows stop at an end token."""
    cfg = GenConfig(n=3, max_new_tokens=10)
    together = tiny_backend.generate([chat("4 * 6"), chat("The film was wonderful")], cfg)
    for i, q in enumerate(["4 * 6", "The film was wonderful"]):
        single = tiny_backend.generate([chat(q)], GenConfig(max_new_tokens=10)).texts[0][0]
        assert together.texts[i] == [single] * 3
    texts = [tiny_backend.render(chat("a")), tiny_backend.render(chat("The answer is 11."))]
    seen_rows = []
    for rows, _, ended in tiny_backend.steps(texts, GenConfig(n=2, temperature=1.0, max_new_tokens=12, seed=3)):
        seen_rows.append(rows.tolist())
        assert len(rows) == len(ended)
    assert seen_rows[0] == [0, 1, 2, 3] and all(set(b) <= set(a) for a, b in zip(seen_rows, seen_rows[1:]))


def test_prefix_caching_matches_reading_each_prompt_whole(tiny_backend, monkeypatch):
    """Prompts sharing a long start (system prompt, few-shot examples) read it once; the answers
    match reading every prompt on its own."""
    chats = [prompts.build("few-shot", prompts.SENTIMENT, q) for q in ("Loved it", "The app crashes and never works")]
    texts = [tiny_backend.render(c) for c in chats]
    ids = [tiny_backend.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    shared = next(i for i, (a, b) in enumerate(zip(*ids)) if a != b)
    assert shared >= tiny_backend.MIN_SHARED                   # the prefix path is the one exercised
    together = tiny_backend.generate(chats, GenConfig(max_new_tokens=8))
    alone = [tiny_backend.generate([c], GenConfig(max_new_tokens=8)).texts[0] for c in chats]
    assert together.texts == alone
    _, logits, mask, pos = tiny_backend.prefill(texts)
    assert mask.shape[1] - pos[:, -1].min() >= 1 and int(pos[0, -1]) == len(ids[0]) - 1
    for i, t in enumerate(texts):
        assert torch.allclose(logits[i], tiny_backend.next_token_logits(t), atol=1e-4)


def _pair(int8: bool):
    """The tiny model twice: written by transformers, and by fast.Decoder (int8 or float32 weights)."""
    from playground.prompting.engine import LocalBackend

    tok = tiny.tokenizer()
    plain = LocalBackend(tiny.model(len(tok)), tok, device="cpu")
    quick = LocalBackend(tiny.model(len(tok)), tok, device="cpu")
    quick.use_decoder(int8)
    return plain, quick


def test_the_fast_decoder_writes_what_transformers_writes():
    """float32 fast.Decoder (static cache, fused weights, RoPE by roll) against the transformers loop: the
    same logits at every step (left padding, a shared prefix, rows that end early) and the same samples."""
    plain, quick = _pair(int8=False)
    assert plain.decoder is None and quick.decoder is not None and not quick.decoder.int8
    chats = [chat("Roger has 5 tennis balls"), chat("The answer is 11 because 4 * 6 = 24 and 24 - 9 = 15")]
    texts = [plain.render(c) for c in chats]
    cfg = GenConfig(n=3, temperature=1.0, top_p=0.9, max_new_tokens=12, seed=3)
    steps = 0
    for (ra, ta, ea), (rb, tb, eb) in zip(plain.steps(texts, cfg), quick.steps(texts, cfg)):
        assert torch.equal(ra, rb) and torch.equal(ta, tb) and torch.equal(ea, eb)
        steps += 1
    assert steps == 12
    for c in (GenConfig(max_new_tokens=10), cfg):
        assert plain.generate(chats, c).texts == quick.generate(chats, c).texts
    # the logits themselves, step by step, teacher-forced
    with torch.inference_mode():
        past, logits, mask, pos = plain.prefill(texts)
        run = quick.decoder.start(past, mask, 8)
        pos, ids = pos[:, -1:], logits.argmax(-1)
        for _ in range(8):
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], -1)
            pos = pos + 1
            want = plain.model(input_ids=ids[:, None], attention_mask=mask, position_ids=pos, past_key_values=past,
                               use_cache=True)
            got = run.step(ids, pos)
            assert torch.allclose(got, want.logits[:, -1], atol=1e-5)
            past, ids = want.past_key_values, got.argmax(-1)


@pytest.mark.parametrize("int8", [False, True])
def test_the_compiled_layer_loop_is_the_python_one_bit_for_bit(int8):
    """fast.blocks compiled by TorchScript (as the app runs it) and run as Python: equal logits, bit for
    bit, with left padding, two students' rows (int8: their own ranges) and rows that leave."""
    import copy

    from playground.prompting import fast

    assert isinstance(fast.compiled_blocks(), torch.jit.ScriptFunction)      # this torch compiles it
    quick = _pair(int8)[1]
    python = copy.copy(quick.decoder)
    python.blocks = fast.blocks
    texts = [quick.render(chat("Roger has 5 tennis balls")), quick.render(chat("4 * 6 = 24, and 24 - 9"))]
    with torch.inference_mode():
        past, logits, mask, pos = quick.prefill(texts)
        owners = torch.tensor([0, 1])
        runs = [dec.start(copy.deepcopy(past), mask, 6, owners) for dec in (quick.decoder, python)]
        assert runs[0].mask is not None and runs[0].sizes == ([1, 1] if int8 else None)
        pos, ids = pos[:, -1:], logits.argmax(-1)
        for step in range(6):
            if step == 3:                                          # the first row wrote its end token
                for r in runs:
                    r.keep(torch.tensor([1]))
                pos, ids = pos[1:], ids[1:]
            pos = pos + 1
            a, b = (r.step(ids, pos) for r in runs)
            assert torch.equal(a, b)
            ids = a.argmax(-1)


def test_int8_weights_stay_close_to_float32():
    """Per-channel int8 weights: every step's next-token distribution close to float32's."""
    ref, q = _pair(int8=False)[1], _pair(int8=True)[1]
    assert q.decoder.int8 and "int8 weights when writing" in q.describe()
    text = ref.render(chat("4 * 6"))
    with torch.inference_mode():
        runs = []
        for b in (ref, q):
            past, logits, mask, pos = b.prefill([text])
            runs.append((b.decoder.start(past, mask, 6), pos[:, -1:]))
        ids = logits.argmax(-1)
        for _ in range(6):
            a, b = (r.step(ids, p + 1) for r, p in runs)
            runs = [(r, p + 1) for r, p in runs]
            assert torch.nn.functional.cosine_similarity(a, b, dim=-1).min() > 0.99
            ids = a.argmax(-1)
    assert len(q.generate([chat("4 * 6")], GenConfig(max_new_tokens=4)).texts[0]) == 1


def test_int8_rows_of_different_students_do_not_share_a_range():
    """fbgemm quantises a call's activations with one range: a row beside a row of far larger values is
    quantised more coarsely than alone. Split by request (sizes), each row is what it is alone."""
    from playground.prompting import fast

    torch.manual_seed(0)
    lin = fast.Linear(torch.randn(64, 32), None, int8=True)
    small, large = torch.randn(1, 32) * 0.1, torch.randn(1, 32) * 50
    alone = lin(small)
    assert not torch.equal(lin(torch.cat([small, large]))[:1], alone)          # shared range: it changes
    assert torch.equal(lin(torch.cat([small, large]), sizes=[1, 1])[:1], alone)
    assert torch.allclose(alone, small @ lin_weight(lin).T, rtol=0.05, atol=0.02)


def lin_weight(lin) -> torch.Tensor:
    """The int8 weights of a fast.Linear, dequantised."""
    return torch.ops.quantized.linear_unpack(lin.packed)[0].dequantize()


def test_int8_is_the_cpu_default_and_float32_the_way_back(monkeypatch):
    from playground.prompting import models

    monkeypatch.delenv("PLAYGROUND_LLM_FLOAT32", raising=False)
    assert models._device_and_int8("cpu", None) == (torch.device("cpu"), True)
    monkeypatch.setenv("PLAYGROUND_LLM_FLOAT32", "1")
    assert models._device_and_int8("cpu", None) == (torch.device("cpu"), False)
    assert models._device_and_int8("cpu", True)[1] and not models._device_and_int8("meta", True)[1]


def test_a_prompt_samples_the_same_whatever_its_batch_mates(tiny_backend):
    """Prompt i draws from its own seed: alone or beside other prompts, its samples are the same."""
    cfg = GenConfig(n=3, temperature=1.0, top_p=0.9, max_new_tokens=6, seed=7)
    alone = tiny_backend.generate([chat("The answer is")], cfg).texts[0]
    with_others = tiny_backend.generate([chat("Roger has 5 tennis balls and more"), chat("The answer is")], cfg)
    assert with_others.texts[1] == alone


@pytest.mark.parametrize("weights", [None, "float32", "int8"])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_gang_merges_concurrent_requests_and_each_gets_its_own_answer(tiny_backend, temperature, weights):
    """Students asking at once: their requests share one decode loop (the gang's group sizes show it),
    and each gets what it gets alone, streamed as it grows: with transformers writing the tokens (None)
    and with fast.Decoder's float32 and int8 weights (each student's rows keep their own int8 ranges)."""
    from playground.prompting.engine import Gang

    if weights:
        tiny_backend = _pair(int8=weights == "int8")[1]
    questions = [f"Question {i}: how many balls are left?" for i in range(6)]
    cfg = lambda i: GenConfig(n=2, temperature=temperature, max_new_tokens=8, seed=100 + i)   # noqa: E731
    alone = [tiny_backend.generate([chat(q)], cfg(i)).texts[0] for i, q in enumerate(questions)]
    gang = Gang(tiny_backend, wait=0.2)
    got, grew = [None] * len(questions), [0] * len(questions)
    start = threading.Barrier(len(questions))

    def student(i):
        start.wait()
        for part in gang.stream(chat(questions[i]), cfg(i)):
            if isinstance(part, Generation):
                got[i] = part.texts[0]
            else:
                grew[i] += 1

    threads = [threading.Thread(target=student, args=(i,)) for i in range(len(questions))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == alone
    assert max(gang.sizes) > 1 and sum(gang.sizes) == len(questions), gang.sizes
    assert all(g >= 1 for g in grew)


def test_gang_stops_writing_when_its_reader_stops(tiny_backend, monkeypatch):
    """Stop (the reader closes its stream): the shared loop ends instead of writing to max_new_tokens."""
    from playground.prompting.engine import Gang

    steps = []
    real = tiny_backend.steps

    def counted(*a, **k):
        for s in real(*a, **k):
            steps.append(1)
            yield s
    monkeypatch.setattr(tiny_backend, "steps", counted)
    gang = Gang(tiny_backend, wait=0.0)
    cfg = GenConfig(max_new_tokens=200, stop_at_eos=False)
    stream = gang.stream(chat("Roger has 5 tennis balls"), cfg)
    next(stream)                                       # the first token arrives, then the student presses Stop
    stream.close()
    for _ in range(100):
        if not gang._running:
            break
        threading.Event().wait(0.02)
    assert not gang._running and len(steps) < 200
