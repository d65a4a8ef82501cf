"""Prompt lab, classroom layer, headless: what opening the lab shows (the exact prompts, counted in the
model's tokens, and no model run), a link that asks for answers (one run shared by a class), the exports,
and the guided tour: every step's link is a valid state of the lab, every check's answer is one of its
step's choices and agrees with a direct measurement. The check logic runs on a tiny random Llama (its
answers are gibberish, which is fine: the logic is what is tested); one slow test runs every check on the
real offline model."""
from __future__ import annotations

import json
from dataclasses import replace

import gradio as gr
import pytest

from playground.core import cache, hub, lesson, settings, ui
from playground.core.errors import InputError
from playground.prompting import answers, evaluate, models, prompts, sampling, service, tab, tiny, views
from playground.prompting.engine import GenConfig
from playground.prompting.service import SERVER, Service

hub.decide("yes")   # tests never wait for the hub: the default model is the offline one
TOUR = lesson.load_tour(lesson.tour_path("prompt"))


def _clear():
    for prefix in ("prompt-answer", "prompt-tour", "prompt-evaluation", "prompt-eval"):
        cache.clear(prefix)


@pytest.fixture(scope="module")
def tiny_backend():
    return tiny.backend()          # a tokenizer trained here: seconds, so once per module


@pytest.fixture()
def tiny_model(tiny_backend, monkeypatch):
    b = tiny_backend
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: b)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    _clear()
    yield b
    _clear()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The service and the lab's lesson link, built once (building the tab takes a second)."""
    svc = Service(replace(settings.from_env(), cache_dir=tmp_path_factory.mktemp("cache")))
    with ui.Blocks():
        return svc, tab.build(svc)


@pytest.fixture()
def svc(lab):
    return lab[0]


@pytest.fixture()
def link(lab):
    return lab[1]


def count_calls(backend, monkeypatch) -> list:
    """Every decoding call the backend is asked for: a decode loop (`steps`: what generate, stream and the
    shared Gang all run) or next-token logits."""
    calls = []
    for name in ("steps", "next_token_logits"):
        real = getattr(backend, name)
        monkeypatch.setattr(backend, name, lambda *a, _r=real, _n=name, **k: calls.append(_n) or _r(*a, **k))
    return calls


def step_values(link, step) -> dict:
    """The lab's values once a step's link is applied: the link's, the rest at their defaults."""
    les = lesson.parse(f"lab=prompt&{step.link}", {"prompt": link.params, "home": {}},
                       {"prompt": tuple(link.view_tabs)})
    assert not les.notices, (step.title, les.notices)
    return {n: c.value for n, c in link.controls.items()} | les.values


# ---- what the lab shows when it is opened ------------------------------------------------------

def test_first_view_shows_the_exact_prompts_without_running_the_model(svc, link, tiny_model, monkeypatch):
    calls = count_calls(tiny_model, monkeypatch)
    values = {n: c.value for n, c in link.controls.items()}
    out = link.show_fn(None, *values.values())
    assert calls == [], "opening the lab must not run the model"
    table, details, summary, votes, file = out[:5]
    assert table == svc.task_examples(values["task"])
    assert details.startswith("**Not run yet:**") and tab.ASK in details
    assert values["techniques"] == list(prompts.SINGLE_CALL)     # the multi-call ones are a tick away
    for tech in prompts.SINGLE_CALL:                  # every technique's exact text, chat template included
        text = tiny_model.render(prompts.build(tech, prompts.TASKS[values["task"]], values["question"],
                                               system=values["system"]))
        assert f"### {tech}\n" in details and f"```text\n{text}\n```" in details
    assert list(summary.columns) == views.PREVIEW_HEADERS and list(summary["technique"]) == list(prompts.SINGLE_CALL)
    lengths = [len(tiny_model.tokenizer(tiny_model.render(prompts.build(t, prompts.ARITHMETIC, values["question"],
                                                                        system=values["system"])),
                                        add_special_tokens=False)["input_ids"]) for t in prompts.SINGLE_CALL]
    assert list(summary["prompt tokens"]) == lengths and lengths[0] < lengths[1]   # examples make it longer
    assert list(summary["decoding"])[-1] == f"{values['n']} paths at T = {values['temperature']:g}, " \
                                             f"top-p = {values['top_p']:g}"
    assert votes["visible"] is False and file["visible"] is False              # no empty boxes
    assert all(o == gr.skip() for o in out[5:])                                # other views untouched


def test_every_view_without_run_leaves_the_model_alone(svc, link, tiny_model, monkeypatch):
    calls = count_calls(tiny_model, monkeypatch)
    values = {n: c.value for n, c in link.controls.items()}
    for view in link.view_tabs:
        out = link.show_fn(view, *values.values())
        assert len(out) == len(link.show_outputs)
    assert calls == []
    json_prompt = link.show_fn("json", *values.values())[5]
    assert json_prompt == tiny_model.render(prompts.json_chat(values["json_text"], system=values["system"]))
    bars, line, rows, note = link.show_fn("eval", *values.values())[9:13]     # the bundled evaluation
    want = views.bundled_view(svc.bundled_evaluation())
    assert [list(t.y) for t in bars.data] == [list(t.y) for t in want[0].data] and len(bars.data) == 2
    assert rows == want[2] and note.startswith("Bundled figures")


def test_preview_follows_the_edits_of_the_few_shot_table_and_a_blank_question(svc, tiny_model, monkeypatch):
    """The live preview (every edit of the side-by-side controls): the table a person edited is what
    few-shot would send; a question being typed may be blank; nothing runs the model."""
    calls = count_calls(tiny_model, monkeypatch)
    table = {"headers": ["input", "output"], "data": [["3 + 4?", "The answer is 7."]]}
    p = svc.preview(svc.model_choices()[0], "", "", "arithmetic", "", "", table, ["few-shot"], 1, 0.7, 0.95, 16, 0)
    assert p.prompts[0].text == tiny_model.render(prompts.build("few-shot", prompts.ARITHMETIC, "", system="",
                                                                examples=[("3 + 4?", "The answer is 7.")]))
    assert p.prompts[0].tokens == len(tiny_model.tokenizer(p.prompts[0].text, add_special_tokens=False)["input_ids"])
    assert calls == []
    with pytest.raises(InputError, match="An example has an input but no output"):
        svc.preview(svc.model_choices()[0], "", "", "arithmetic", "q", "", {"data": [["x", ""]]}, ["few-shot"], 1,
                    0.7, 0.95, 16, 0)


def test_preview_for_a_server_sends_nothing(svc, tiny_model):
    p = svc.preview(SERVER, "", "", "arithmetic", "2 + 2?", prompts.SYSTEM, None, ["zero-shot"], 3, 0.7, 0.95, 32, 0)
    assert "Type the server's base URL" in p.problem and p.prompts[0].tokens is None
    assert json.loads(p.prompts[0].text)["messages"][-1]["content"].endswith("2 + 2?")


def test_a_link_that_asks_for_answers_runs_once_for_a_class(svc, link, tiny_model, monkeypatch):
    values = {n: c.value for n, c in link.controls.items()} | {"run": True, "techniques": ["zero-shot", "self-consistency"],
                                                               "n": 3, "max_tokens": 8}
    calls = count_calls(tiny_model, monkeypatch)
    first = link.show_fn(None, *values.values())
    assert calls == ["steps", "steps"]
    details, summary, votes, file = first[1:5]
    assert [r[0] for r in summary] == ["zero-shot", "self-consistency"] and votes["visible"] is True
    record = json.loads(open(file["value"], encoding="utf-8").read())          # the export: every prompt and path
    assert [a["technique"] for a in record["answers"]] == ["zero-shot", "self-consistency"]
    assert len(record["answers"][1]["completions"]) == 3 and record["question"] == values["question"]
    assert record["answers"][0]["prompt"] == tiny_model.render(prompts.build("zero-shot", prompts.ARITHMETIC,
                                                                             values["question"]))
    again = link.show_fn(None, *values.values())                               # the next student: shared
    assert calls == ["steps", "steps"] and again[2] == summary
    steps = list(svc.compare(values["model"], "", "", values["task"], values["question"], values["gold"],
                             values["system"], None, values["techniques"], 3, values["temperature"], values["top_p"],
                             8, values["seed"]))                               # then Ask: shown at once
    assert calls == ["steps", "steps"] and len(steps) == 1 and steps[0].finished


def test_compare_marks_its_last_snapshot_finished(svc, tiny_model):
    steps = list(svc.compare(svc.model_choices()[0], "", "", "arithmetic", "2 + 2?", "4", "", None,
                             ["zero-shot", "few-shot"], 2, 0.7, 0.95, 4, 0))
    assert steps[-1].finished and not any(s.finished for s in steps[:-1])
    assert views.comparison_file(steps[0]) is None and views.comparison_file(steps[-1]).endswith(".json")


def test_evaluation_export_holds_every_completion(svc, tiny_model):
    csv = "question,answer\nGreat!,positive\nAwful.,negative"
    done = svc.evaluation(svc.model_choices()[0], "", "", "my CSV (sentiment)", csv, ["zero-shot"], 3, 0.7, 0)
    data = json.loads(open(views.eval_file(done.results), encoding="utf-8").read())
    items = data["my CSV (sentiment)"]["zero-shot"]["items"]
    assert [it["question"] for it in items] == ["Great!", "Awful."] and all(it["completions"] for it in items)


# ---- the guided tour --------------------------------------------------------------------------

def test_tour_is_well_formed_and_each_link_is_a_state_of_the_lab(link):
    assert TOUR.lab == "prompt" and 5 <= len(TOUR.steps) <= 8
    for step in TOUR.steps:
        step_values(link, step)
        assert step.check in service.TOUR_CHECKS and step.args["choices"] == list(step.choices)


def direct(backend, step, v, args) -> str:
    """The step's answer measured without the check: the backend called as a person's buttons call it."""
    ch, task = step.choices, prompts.TASKS[v["task"]]

    def greedy(tech, tokens):
        chat = prompts.build(tech, task, v["question"], system=v["system"])
        return backend.generate([chat], GenConfig(max_new_tokens=tokens)).texts[0][0]

    if step.check == "techniques_right":
        right = {t for t in args["techniques"]
                 if answers.matches(answers.extract(greedy(t, v["max_tokens"]), task.kind, task.labels), v["gold"],
                                    task.kind)}
        d, r = bool(right & set(service.DIRECT)), bool(right & set(service.REASONED))
        return ch[2] if d and r else ch[0] if r else ch[1] if d else ch[3]
    if step.check == "format":
        rows, t2 = evaluate.load_set(args["set"])[:args["items"]], prompts.TASKS[args["set"]]
        read = []
        for tech in args["techniques"]:           # the rows in one call, as the Evaluate button sends them
            texts = [t[0] for t in backend.generate([prompts.build(tech, t2, r["question"]) for r in rows],
                                                    GenConfig(max_new_tokens=prompts.needs_tokens(tech, t2))).texts]
            read.append(sum(answers.extract(x, t2.kind, t2.labels) is not None for x in texts))
        return ch[0] if read[1] > read[0] else ch[1] if read[1] == read[0] else ch[2]
    if step.check == "vote":
        g = answers.extract(greedy(service.GREEDY_TWIN, v["max_tokens"]), task.kind, task.labels)
        chat = prompts.build(service.GREEDY_TWIN, task, v["question"], system=v["system"])
        paths = backend.generate([chat], GenConfig(n=v["n"], temperature=v["temperature"], top_p=v["top_p"],
                                                   max_new_tokens=v["max_tokens"], seed=v["seed"])).texts[0]
        return ch[0] if answers.vote([answers.extract(p, task.kind, task.labels) for p in paths]).winner == g else ch[1]
    if step.check == "twice":
        chat = prompts.build(v["s_tech"], task, v["question"], system=v["system"])
        a, b = (backend.generate([chat], GenConfig(temperature=v["s_temp"], top_k=v["s_topk"], top_p=v["s_topp"],
                                                   max_new_tokens=v["s_tokens"], seed=s)).texts[0][0]
                for s in args["seeds"])
        return ch[0] if a == b else ch[1]
    if step.check == "kept":
        logits = backend.next_token_logits(backend.render(prompts.build(v["s_tech"], task, v["question"],
                                                                        system=v["system"])))[None]
        lo, hi = (int((sampling.filtered_probs(logits, t, v["s_topk"], v["s_topp"]) > 0).sum())
                  for t in (args["low"], args["high"]))
        return ch[0] if hi > lo else ch[1] if hi == lo else ch[2]
    if step.check == "json":
        raw = backend.generate([prompts.json_chat(v["json_text"], system=v["system"])],
                               GenConfig(max_new_tokens=v["json_tokens"], seed=v["seed"])).texts[0][0]
        c = answers.parse_json(raw, prompts.JSON_SCHEMA)
        return ch[0] if c.ok else ch[1] if c.value is not None else ch[2]
    raise AssertionError(step.check)


SHORT = {"max_tokens": 8, "n": 3, "s_tokens": 4, "json_tokens": 16}   # the tiny model: fewer tokens, same logic


@pytest.mark.slow
@pytest.mark.parametrize("k", range(len(TOUR.steps)), ids=[s.check for s in TOUR.steps])
def test_each_check_answers_a_choice_that_a_direct_measurement_agrees_with(svc, link, tiny_model, k):
    step = TOUR.steps[k]
    v = step_values(link, step) | SHORT
    args = step.args | ({"items": 3} if step.check == "format" else {})
    r = svc.tour_check(step.check, args, v)
    assert r.answer in step.choices and r.shown
    assert r.answer == direct(tiny_model, step, v, args)


@pytest.mark.slow
def test_a_check_revealed_by_a_class_runs_once(svc, link, tiny_model, monkeypatch):
    step = TOUR.steps[0]
    v = step_values(link, step) | SHORT
    calls = count_calls(tiny_model, monkeypatch)
    first = svc.tour_check(step.check, step.args, v)
    n = len(calls)
    assert n == len(step.args["techniques"])                    # one greedy answer per technique
    assert svc.tour_check(step.check, step.args, dict(v)) == first and len(calls) == n


def test_checks_refuse_what_they_cannot_answer(svc, link, tiny_model):
    with pytest.raises(InputError, match="no check called 'telepathy'"):
        svc.tour_check("telepathy", {}, {})
    step = TOUR.steps[0]
    with pytest.raises(InputError, match="needs an expected answer"):
        svc.tour_check(step.check, step.args, step_values(link, step) | {"gold": ""})
    with pytest.raises(InputError, match="N \\(paths\\) must be a whole number"):
        svc.tour_check("vote", TOUR.steps[2].args, step_values(link, TOUR.steps[2]) | {"n": "many"})


@pytest.mark.slow
def test_every_check_on_the_real_model():
    """The bundled SmolLM2-135M-Instruct, every step: the reveal is one of the choices and agrees with a
    direct measurement (the same model called as the buttons call it; greedy decoding and seeded sampling
    are deterministic on one machine). The answer-format step is also held against the bundled evaluation
    (assets/prompting/eval_smollm2.json): its first items' answers, read from the reveal's counts."""
    _clear()
    svc = Service(settings.from_env())                 # the real cache folder: the converted model is reused
    with ui.Blocks():
        link = tab.build(svc)
    backend = models.load(svc.model_choices()[0], svc.settings.cache_dir)
    card = json.loads(evaluate.BUNDLED.read_text(encoding="utf-8"))
    for step in TOUR.steps:
        v = step_values(link, step)
        r = svc.tour_check(step.check, step.args, v)
        assert r.answer in step.choices, (step.title, r)
        assert r.answer == direct(backend, step, v, step.args), (step.title, r.shown)
        if step.check == "format":
            k = step.args["items"]
            for tech in step.args["techniques"]:
                filed = card["results"][step.args["set"]][tech]["items"][:k]
                readable = sum(it["answers"][0] is not None for it in filed)
                assert f"**{tech}**: an answer can be read in {readable} of {k}" in r.shown, r.shown
    _clear()


if __name__ == "__main__":                             # what the real model answers at each step now
    s = Service(settings.from_env())
    with ui.Blocks():
        lk = tab.build(s)
    for st in TOUR.steps:
        rv = s.tour_check(st.check, st.args, step_values(lk, st))
        print(f"{st.title}: {rv.answer}\n{rv.shown}\n")
