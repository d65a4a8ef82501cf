"""ReAct and the prompt chain (playground/prompting/agents.py, tools.py): the calculator against Python's
own arithmetic and its refusals, the lookup table, action parsing, and both loops driven by a scripted
model, so every observation can be checked against what the tool must compute."""
from __future__ import annotations

import pytest

from playground.prompting import agents, answers, evaluate, prompts, tools
from playground.prompting.engine import GenConfig, Generation


@pytest.mark.parametrize("expr, want", [
    ("5 + 2 * 3", 5 + 2 * 3), ("(5 + 2) * 3", (5 + 2) * 3), ("7 / 2", 7 / 2), ("7 // 2", 7 // 2), ("7 % 3", 7 % 3),
    ("2 ** 10", 2 ** 10), ("-3 - -4", -3 - -4), ("2^5", 2 ** 5), ("6 × 7", 6 * 7), ("9 ÷ 3", 9 / 3),
    ("1,200 / 4", 1200 / 4), ("0.1 + 0.2", 0.1 + 0.2), ("12 - 4 =", 12 - 4),
])
def test_calculator_agrees_with_python_arithmetic(expr, want):
    got = tools.calculate(expr)
    assert float(got) == pytest.approx(want, rel=1e-6)
    assert "." not in got or not float(got).is_integer()          # whole numbers without '.0'


@pytest.mark.parametrize("expr, says", [
    ("__import__('os').system('ls')", "function call"), ("x + 1", "name"), ("(2).real", "attribute"),
    ("[1, 2][0]", "not arithmetic"), ("1 < 2", "comparison"), ("True + 1", "only numbers"), ("'a' * 3", "only numbers"),
    ("9 ** 9 ** 9", "exponents"), ("10 ** 16", "larger than"), ("1e300 * 1e300", "larger than"), ("1 / 0", "zero"),
    ("", "empty"), ("1 +", "cannot read"), ("+".join(["1"] * 40), "parts"), ("1" * 300, "characters"),
    ("lambda: 1", "not arithmetic"),
])
def test_calculator_refuses_what_is_not_bounded_arithmetic(expr, says):
    with pytest.raises(tools.ToolError, match=says):
        tools.calculate(expr)


def test_lookup_finds_facts_by_their_words_and_names_some_when_it_cannot():
    assert tools.lookup("days in a week") == "days in a week: 7"
    assert tools.lookup("How many legs does a spider have?") == "legs of a spider: 8"
    with pytest.raises(tools.ToolError, match="the table has e.g."):
        tools.lookup("the speed of light")
    assert all(k and v for k, v in tools.facts().items())


@pytest.mark.parametrize("turn, want", [
    ("Thought: two cans.\nAction: calculator[2 * 3]", tools.Action("calculator", "2 * 3")),
    ("Action: Lookup(days in a week)", tools.Action("lookup", "days in a week")),
    ("Thought: done.\nAction: finish[11]\nObservation: made up", tools.Action("finish", "11")),
    ("Action: 30 + 5 = 35 apples.", tools.Action("calculator", "30 + 5")),     # an equation: computed by the tool
    ("Action: 8 boxes is 8 * 4 boxes = 24", tools.Action("calculator", "8 * 4")),
    ("Thought: no action here. 2 + 2 = 4", None),
    ("Action: think harder", None),
])
def test_parse_action(turn, want):
    assert tools.parse_action(turn) == want


def test_observations_name_the_tools_when_an_action_cannot_run():
    assert "calculator" in tools.observe(None) and "finish" in tools.observe(None)
    assert "no tool 'search'" in tools.observe(tools.Action("search", "x"))
    assert tools.observe(tools.Action("calculator", "abs(-1)")).startswith("calculator error: a function call")


class Scripted:
    """A model that answers each request with the next scripted turn (per question), recording the chats."""

    def __init__(self, scripts: dict[str, list[str]]):
        self.scripts = {q: list(s) for q, s in scripts.items()}
        self.chats: list[list[dict]] = []

    def _reply(self, chat):
        self.chats.append(chat)
        question = next(q for q in self.scripts if any(q in m["content"] for m in chat))
        return self.scripts[question].pop(0)

    def generate(self, chats, cfg):
        return Generation([[self._reply(c)] for c in chats], 5 * len(chats), 0.01)

    def stream(self, chat, cfg):
        text = self._reply(chat)
        yield text[: len(text) // 2]
        yield Generation([[text]], 5, 0.01)


Q1 = "A box holds 8 crayons. How many crayons are in 4 boxes?"
Q2 = "How many legs do 3 spiders have?"


def test_react_observations_come_from_the_tools_and_finish_ends_the_loop():
    model = Scripted({Q1: ["Thought: 4 boxes of 8.\nAction: calculator[4 * 8]\nObservation: 30",   # its own
                           "Thought: that is the total.\nAction: finish[32]"]})                    # observation is cut
    agent = agents.make("ReAct", prompts.ARITHMETIC, Q1)
    tokens, _ = agents.run_batch(model, [agent], GenConfig())
    assert agent.done and agent.answer == "32" and tokens == 10
    second = model.chats[1]
    assert second[-2] == {"role": "assistant", "content": "Thought: 4 boxes of 8.\nAction: calculator[4 * 8]"}
    assert second[-1] == {"role": "user", "content": "Observation: 32"}                  # computed, not the model's 30
    assert second[:len(model.chats[0])] == model.chats[0]                                 # the first request, then turns
    assert agents.answer_part("ReAct", agent.trace()) == "The answer is 32."
    assert answers.extract_number(agents.answer_part("ReAct", agent.trace())) == "32"


def test_react_uses_lookup_then_calculator_and_stops_at_its_budget_or_a_repeat():
    model = Scripted({Q2: ["Action: lookup[legs of a spider]", "Action: calculator[3 * 8]", "The answer is 24."]})
    agent = agents.make("ReAct", prompts.ARITHMETIC, Q2)
    agents.run_batch(model, [agent], GenConfig())
    obs = [e.text for e in agent.events if e.kind == "observation"]
    assert obs == ["legs of a spider: 8", "24"] and agent.answer == "24"                 # a stated answer finishes

    looping = Scripted({Q1: ["Thought: hmm.\nAction: calculator[1 + 1]"] * (agents.MAX_STEPS + 2)})
    agent = agents.make("ReAct", prompts.ARITHMETIC, Q1)
    agents.run_batch(looping, [agent], GenConfig())
    assert agent.stuck and len(looping.chats) == 2 and "repeated" in agent.final()

    wandering = Scripted({Q1: [f"Action: calculator[{i} + 1]" for i in range(agents.MAX_STEPS + 2)]})
    agent = agents.make("ReAct", prompts.ARITHMETIC, Q1)
    agents.run_batch(wandering, [agent], GenConfig())
    assert len(wandering.chats) == agents.MAX_STEPS and agent.answer is None
    assert f"no finish within {agents.MAX_STEPS} steps" in agent.final()


def test_chain_pastes_each_stage_output_into_the_next_prompt():
    model = Scripted({Q1: ["How many crayons in all?", "4 * 8 = 32", "The answer is 32."]})
    agent = agents.make("prompt chain", prompts.ARITHMETIC, Q1)
    agents.run_batch(model, [agent], GenConfig())
    assert len(model.chats) == len(prompts.CHAIN_STAGES) and agent.done
    for stage, chat in enumerate(model.chats):
        assert chat[-1]["content"].startswith(prompts.ARITHMETIC.chain[stage]) and Q1 in chat[-1]["content"]
    assert "Plan:\nHow many crayons in all?" in model.chats[1][-1]["content"]
    assert "Work:\n4 * 8 = 32" in model.chats[2][-1]["content"]
    assert agents.answer_part("prompt chain", agent.trace()) == "The answer is 32."


def test_evaluation_reads_the_answer_from_the_last_line_not_the_steps():
    rows = [{"question": Q1, "answer": "32"}, {"question": Q2, "answer": "24"}]
    model = Scripted({Q1: ["Action: calculator[4 * 8]", "Action: finish[32]"],
                      Q2: ["Action: calculator[3 * 8]", "Action: finish[25]"]})
    *progress, result = evaluate.run(model, prompts.ARITHMETIC, rows, "ReAct", max_rows_per_call=2)
    assert result["accuracy"] == 0.5 and [it["answers"][0] for it in result["items"]] == ["32", "25"]
    assert result["items"][1]["completions"][0].endswith("=> The answer is 25.")         # 24 was observed, 25 said


def test_side_by_side_streams_the_trace_and_reads_the_finish(monkeypatch, tmp_path):
    """Through the service: each call of the loop is streamed, the observation appears once the tool has
    run, and the answer is finish's (the summary's 'correct?' against the expected answer)."""
    from dataclasses import replace

    from playground.core import hub, settings
    from playground.prompting import models, service, tiny

    hub.decide("yes")
    backend = tiny.backend()
    monkeypatch.setattr(models, "load", lambda ref, cache_dir, device=None, int8=None: backend)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    model = Scripted({Q1: ["Thought: 4 boxes of 8.\nAction: calculator[4 * 8]", "Thought: done.\nAction: finish[32]"]})
    monkeypatch.setattr(service.Service, "_writer", staticmethod(lambda b: model))
    svc = service.Service(replace(settings.from_env(), cache_dir=tmp_path))
    steps = list(svc.compare(svc.model_choices()[0], "", "", "arithmetic", Q1, "32", prompts.SYSTEM, None, ["ReAct"],
                             1, 0.7, 0.95, 48, 0))
    traces = [s.writing[2] for s in steps if s.writing]
    assert traces[0] == "Thought: 4 boxes of 8.\nA"                      # the first turn as it is written, before any tool
    assert any(t.endswith("Observation: 32") for t in traces)
    (done,) = steps[-1].done
    assert done.vote.winner == "32" and done.correct == "yes" and done.generation.tokens == 10
    assert done.prompt_text == backend.render(prompts.react_chat(prompts.ARITHMETIC, Q1))


def test_the_chain_is_shown_as_a_pipeline_of_its_stages_prompts():
    from playground.prompting import views
    from playground.prompting.service import Comparison

    c = Comparison("scripted", 1, 0.7, writing=("prompt chain", "first prompt", "[Decompose] How many?"),
                   task="arithmetic")
    md = views.compare_details(c)
    assert "**Pipeline:**" in md and all(instr in md for instr in prompts.ARITHMETIC.chain)
    assert md.index("Decompose") < md.index("Solve") < md.index("Combine") and "[Decompose] How many?" in md
