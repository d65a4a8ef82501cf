"""Techniques that call the model more than once: ReAct (reason and act with tools) and a prompt chain.

ReAct (Yao et al. 2023, "ReAct: Synergizing Reasoning and Acting in Language Models"): the model
writes a Thought and an Action; the program runs the action's tool (tools.py) and answers with an
Observation; the model reads it and goes on, until it writes `Action: finish[answer]` or the step
budget runs out:

    trajectory_t = (q, thought_1, action_1, obs_1, ..., thought_t, action_t),
    obs_t = tool(action_t)  (computed by the program, not written by the model)

Each model turn is one assistant message and each observation one user message, so any chat model or
OpenAI-compatible server can run it. Solved examples in the same shape come first (few-shot ReAct).

A prompt chain (decompose, solve, combine): a fixed pipeline of prompts, each stage's output pasted
into the next stage's prompt; only the last stage is asked for the answer.

Both are state machines, `chat()` (the next request) and `feed(text)` (the model's reply), so one
agent can be streamed token by token (service.py) and many driven in one batch (evaluate.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from playground.prompting import answers, prompts, tools

MAX_STEPS = 6                  # ReAct: model turns before the loop stops without an answer


@dataclass
class Event:
    kind: str                  # "model" (a turn), "observation", "stage" (a chain stage's output), "answer"
    text: str
    title: str = ""            # a chain stage's name


@dataclass
class ReAct:
    task: prompts.Task
    question: str
    system: str = prompts.SYSTEM
    max_steps: int = MAX_STEPS
    events: list[Event] = field(default_factory=list)
    turns: list[dict] = field(default_factory=list)       # this question's messages after the first
    answer: str | None = None                             # finish's argument, once written
    done: bool = False
    stuck: bool = False                                   # stopped: a turn repeated the one before it

    technique = "ReAct"

    def chat(self) -> list[dict]:
        return prompts.react_chat(self.task, self.question, self.system) + self.turns

    def feed(self, text: str) -> None:
        """Read one model turn: keep it up to its action line, run the action, and stop on finish or
        when the step budget is spent."""
        turn = _cut_after_action(text)
        previous = [e.text for e in self.events if e.kind == "model"]
        self.events.append(Event("model", turn))
        self.turns.append({"role": "assistant", "content": turn})
        action = tools.parse_action(turn)
        said = answers.extract_number(turn) if self.task.kind == "number" else answers.extract_label(turn, self.task.labels)
        if action is None and said is not None and answers.is_marked(turn):
            action = tools.Action(tools.FINISH, said)       # "The answer is 12." without the finish action
        if action is not None and action.tool == tools.FINISH:
            self.answer, self.done = action.argument.strip(), True
        elif previous and turn == previous[-1]:          # the same turn again: the loop would not move
            self.done, self.stuck = True, True
        else:
            obs = tools.observe(action)
            self.events.append(Event("observation", obs))
            self.turns.append({"role": "user", "content": f"Observation: {obs}"})
            if len(previous) + 1 >= self.max_steps:
                self.done = True
        if self.done:
            self.events.append(Event("answer", self.final()))

    def final(self) -> str:
        """The line the answer is read from: finish's argument, else (no finish within the budget) the
        last turn, read the usual way."""
        if self.answer is not None:
            return f"The answer is {self.answer}."
        last = next((e.text for e in reversed(self.events) if e.kind == "model"), "")
        why = "the model repeated its last turn" if self.stuck else f"no finish within {self.max_steps} steps"
        return f"({why}) {last}"

    def trace(self, writing: str = "") -> str:
        """The trajectory as text: every turn, observation and the answer; `writing`, a turn in progress."""
        lines = []
        for e in self.events:
            lines.append(f"Observation: {e.text}" if e.kind == "observation" else
                         ANSWER_MARK + e.text if e.kind == "answer" else e.text.strip())
        if writing:
            lines.append(writing.strip())
        return "\n".join(lines)


def _cut_after_action(text: str) -> str:
    """A turn ends at its action line: anything after it (a model may write its own 'Observation:')
    is dropped, since the observation comes from the tool."""
    lines = text.strip().splitlines()
    for i, line in enumerate(lines):
        if tools.parse_action(line) is not None:
            return "\n".join(lines[:i + 1])
        if line.strip().lower().startswith("observation") and i > 0:
            return "\n".join(lines[:i])
    return text.strip()


@dataclass
class Chain:
    task: prompts.Task
    question: str
    system: str = prompts.SYSTEM
    events: list[Event] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    done: bool = False

    technique = "prompt chain"

    def chat(self) -> list[dict]:
        return prompts.chain_chat(self.task, self.question, len(self.outputs), self.outputs, self.system)

    def feed(self, text: str) -> None:
        stage = prompts.CHAIN_STAGES[len(self.outputs)]
        self.outputs.append(text.strip())
        self.events.append(Event("stage", text.strip(), stage))
        if len(self.outputs) == len(prompts.CHAIN_STAGES):
            self.done = True
            self.events.append(Event("answer", text.strip()))

    def final(self) -> str:
        return self.outputs[-1] if self.outputs else ""

    def trace(self, writing: str = "") -> str:
        parts = [f"[{e.title}] {e.text}" if e.kind == "stage" else ANSWER_MARK + " ".join(e.text.split())
                 for e in self.events]
        if writing and not self.done:
            parts.append(f"[{prompts.CHAIN_STAGES[len(self.outputs)]}] {writing.strip()}")
        return "\n\n".join(parts)


AGENTS = {ReAct.technique: ReAct, Chain.technique: Chain}
ANSWER_MARK = "=> "            # a finished trace's last line: what the answer is read from


def answer_part(technique: str, text: str) -> str:
    """The part of a completion its answer is read from: a multi-call technique's last line (its final
    answer, not the numbers of its steps), else the whole completion."""
    if technique in AGENTS and ("\n" + ANSWER_MARK) in "\n" + text:
        return ("\n" + text).rsplit("\n" + ANSWER_MARK, 1)[1]
    return text


def make(technique: str, task: prompts.Task, question: str, system: str = prompts.SYSTEM):
    return AGENTS[technique](task, question, system)


def run_batch(backend, agents: list, cfg) -> tuple[int, float]:
    """Drive every agent to its end, the ones still going in one batched call per round.
    Returns (new tokens, seconds) summed over the calls."""
    tokens, seconds = 0, 0.0
    while True:
        going = [a for a in agents if not a.done]
        if not going:
            return tokens, seconds
        out = backend.generate([a.chat() for a in going], cfg)
        tokens, seconds = tokens + out.tokens, seconds + out.seconds
        for a, texts in zip(going, out.texts):
            a.feed(texts[0])
