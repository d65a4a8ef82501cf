"""Prompt assembly: the same question under each technique, as a chat (list of messages).

- zero-shot: an instruction and the question (Radford et al. 2019; Brown et al. 2020, "Language
  Models are Few-Shot Learners").
- few-shot: k solved examples as earlier user/assistant turns, then the question (in-context
  learning, Brown et al. 2020): p(y | x, (x_1, y_1), ..., (x_k, y_k)).
- chain-of-thought, zero-shot: the cue "Let's think step by step" (Kojima et al. 2022, "Large
  Language Models are Zero-Shot Reasoners").
- chain-of-thought, few-shot: examples whose answers show the reasoning (Wei et al. 2022,
  "Chain-of-Thought Prompting Elicits Reasoning in Large Language Models").
- self-consistency: the few-shot CoT prompt, sampled N times, answers voted (see answers.py).
- structured output: an instruction naming the JSON keys, checked by answers.parse_json.
"""
from __future__ import annotations

from dataclasses import dataclass

SYSTEM = "You are a careful assistant. Answer briefly."
COT_CUE = "Let's think step by step."
TECHNIQUES = ("zero-shot", "few-shot", "CoT (zero-shot)", "CoT (few-shot)", "self-consistency")


@dataclass(frozen=True)
class Task:
    key: str
    kind: str                                   # "number" or "label"
    instruction: str                            # what the model is asked to do with the input
    examples: tuple[tuple[str, str], ...]       # few-shot (input, answer)
    cot_examples: tuple[tuple[str, str], ...]   # few-shot CoT (input, reasoning ending in the answer)
    labels: tuple[str, ...] = ()


ARITHMETIC = Task(
    key="arithmetic",
    kind="number",
    instruction="Solve the word problem. Give the final answer as a number.",
    examples=(
        ("Roger has 5 tennis balls. He buys 2 more cans of tennis balls. Each can has 3 tennis balls. "
         "How many tennis balls does he have now?", "The answer is 11."),
        ("A baker makes 4 trays of 6 rolls and sells 9 rolls. How many rolls are left?", "The answer is 15."),
        ("Tom reads 12 pages a day for 3 days, then 5 pages on the fourth day. How many pages did he read?",
         "The answer is 41."),
    ),
    cot_examples=(
        ("Roger has 5 tennis balls. He buys 2 more cans of tennis balls. Each can has 3 tennis balls. "
         "How many tennis balls does he have now?",
         "Roger starts with 5 balls. 2 cans of 3 balls each is 2 * 3 = 6 balls. 5 + 6 = 11. The answer is 11."),
        ("A baker makes 4 trays of 6 rolls and sells 9 rolls. How many rolls are left?",
         "4 trays of 6 rolls is 4 * 6 = 24 rolls. After selling 9, 24 - 9 = 15 are left. The answer is 15."),
        ("Tom reads 12 pages a day for 3 days, then 5 pages on the fourth day. How many pages did he read?",
         "In 3 days he reads 12 * 3 = 36 pages. Then 5 more: 36 + 5 = 41. The answer is 41."),
    ),
)

SENTIMENT = Task(
    key="sentiment",
    kind="label",
    labels=("positive", "negative", "neutral"),
    instruction="Classify the sentiment of the review as positive, negative or neutral. Answer with one word.",
    examples=(
        ("Amazing film!", "positive"),
        ("It was okay.", "neutral"),
        ("Terrible waste of time.", "negative"),
    ),
    cot_examples=(
        ("Amazing film!", "'Amazing' is strong praise, so the reviewer liked it. The answer is positive."),
        ("It was okay.", "'Okay' is neither praise nor complaint. The answer is neutral."),
        ("Terrible waste of time.", "'Terrible' and 'waste of time' are complaints. The answer is negative."),
    ),
)

TASKS = {t.key: t for t in (ARITHMETIC, SENTIMENT)}


def _ask(task: Task, question: str) -> str:
    return f"{task.instruction}\n\n{question.strip()}"


def build(technique: str, task: Task, question: str, *, system: str = SYSTEM,
          examples: list[tuple[str, str]] | None = None) -> list[dict]:
    """The chat for `technique`. `examples` replaces the task's own few-shot (or CoT) examples."""
    chat = [{"role": "system", "content": system}] if system.strip() else []
    if technique == "zero-shot":
        return chat + [{"role": "user", "content": _ask(task, question)}]
    if technique == "few-shot":
        shots = task.examples if examples is None else examples
    elif technique == "CoT (zero-shot)":
        cue = f"{COT_CUE} Then finish with 'The answer is ...'."
        return chat + [{"role": "user", "content": f"{_ask(task, question)}\n\n{cue}"}]
    elif technique in ("CoT (few-shot)", "self-consistency"):
        shots = task.cot_examples if examples is None else examples
    else:
        raise ValueError(f"unknown technique {technique!r}; choose from {TECHNIQUES}")
    for x, y in shots:
        chat += [{"role": "user", "content": _ask(task, x)}, {"role": "assistant", "content": y}]
    return chat + [{"role": "user", "content": _ask(task, question)}]


def needs_tokens(technique: str, task: Task) -> int:
    """A sensible cap on new tokens: short for direct answers, longer for reasoning."""
    if technique in ("zero-shot", "few-shot"):
        return 32 if task.kind == "number" else 16
    return 80 if task.kind == "number" else 48


JSON_SCHEMA = {"name": "str", "age": "int", "occupation": "str", "company": "str"}


def json_chat(text: str, schema: dict[str, str] = JSON_SCHEMA, system: str = SYSTEM) -> list[dict]:
    keys = ", ".join(f'"{k}" ({v})' for k, v in schema.items())
    shape = "{" + ", ".join(f'"{k}": ...' for k in schema) + "}"
    chat = [{"role": "system", "content": system}] if system.strip() else []
    return chat + [{"role": "user", "content": f"Extract the facts from the text as one JSON object with the keys "
                                               f"{keys}. Output only the JSON, like {shape}.\n\nText: {text.strip()}"}]


# Presets from the teaching notes (worded for this app).
PRESETS = {
    "Tennis balls (chain-of-thought)": dict(
        task="arithmetic",
        question="Roger has 5 tennis balls. He buys 2 more cans of tennis balls. Each can has 3 tennis balls. "
                 "How many tennis balls does he have now?", gold="11"),
    "Juggler (chain-of-thought)": dict(
        task="arithmetic",
        question="A juggler has 16 balls. Half of the balls are golf balls. She loses 4 golf balls. "
                 "How many golf balls does she have now?", gold="4"),
    "Sentiment (few-shot)": dict(task="sentiment", question="Best movie I've seen in years.", gold="positive"),
    "JSON extraction (structured output)": dict(
        task="json", question="Maria Lopez, 42, has worked as a data analyst at Northwind Traders since 2015.",
        gold=""),
}
