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
- ReAct: Thought / Action / Observation turns with a calculator and a lookup tool, after solved
  examples in the same shape (Yao et al. 2023); the loop itself is in agents.py.
- prompt chain: decompose, solve, combine, each stage's output pasted into the next stage's prompt.
"""
from __future__ import annotations

from dataclasses import dataclass

SYSTEM = "You are a careful assistant. Answer briefly."
COT_CUE = "Let's think step by step."
TECHNIQUES = ("zero-shot", "few-shot", "CoT (zero-shot)", "CoT (few-shot)", "self-consistency", "ReAct",
              "prompt chain")
SINGLE_CALL = TECHNIQUES[:5]        # one prompt, one call (N paths for self-consistency)
MULTI_CALL = TECHNIQUES[5:]         # a loop or a pipeline of calls (agents.py)
CHAIN_STAGES = ("Decompose", "Solve", "Combine")
REACT_RULES = ("Solve the task in steps. In each turn write one line 'Thought: ...' and then one line 'Action: ...'. "
               "The actions are calculator[arithmetic expression], which computes a number; lookup[fact], which "
               "finds a fact such as the days in a week; and finish[answer], which gives your final answer. "
               "After calculator or lookup you receive an Observation.")


@dataclass(frozen=True)
class Task:
    key: str
    kind: str                                   # "number" or "label"
    instruction: str                            # what the model is asked to do with the input
    examples: tuple[tuple[str, str], ...]       # few-shot (input, answer)
    cot_examples: tuple[tuple[str, str], ...]   # few-shot CoT (input, reasoning ending in the answer)
    labels: tuple[str, ...] = ()
    react_examples: tuple[tuple[str, tuple[str, ...]], ...] = ()   # (input, turns: model, observation, model...)
    chain: tuple[str, str, str] = ("", "", "")                       # the instruction of each CHAIN_STAGES


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
    react_examples=(
        ("Roger has 5 tennis balls. He buys 2 more cans of tennis balls. Each can has 3 tennis balls. "
         "How many tennis balls does he have now?",
         ("Thought: 2 cans of 3 balls each is 2 * 3 balls.\nAction: calculator[2 * 3]", "6",
          "Thought: He had 5 balls and gets 6 more.\nAction: calculator[5 + 6]", "11",
          "Thought: He has 11 tennis balls now.\nAction: finish[11]")),
        ("A baker sells 2 dozen rolls in the morning and 9 rolls in the afternoon. How many rolls does she sell?",
         ("Thought: I need to know how many are in a dozen.\nAction: lookup[items in a dozen]", "items in a dozen: 12",
          "Thought: 2 dozen is 2 * 12 rolls, and then 9 more.\nAction: calculator[2 * 12 + 9]", "33",
          "Thought: She sells 33 rolls.\nAction: finish[33]")),
    ),
    chain=("Break the word problem into the smaller questions that must be answered to solve it. List them, "
           "one per line. Do not compute anything yet.",
           "Answer each smaller question of the plan in turn, writing out the arithmetic.",
           "Using the work below, give the final answer to the word problem as 'The answer is N.'"),
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
    react_examples=(
        ("Amazing film!", ("Thought: 'Amazing' is strong praise, so the reviewer liked it.\nAction: finish[positive]",)),
        ("It was okay.", ("Thought: 'Okay' is neither praise nor complaint.\nAction: finish[neutral]",)),
        ("Terrible waste of time.",
         ("Thought: 'Terrible' and 'waste of time' are complaints.\nAction: finish[negative]",)),
    ),
    chain=("List the words or phrases in the review that show how the reviewer feels.",
           "For each word or phrase in the list, say whether it is positive, negative or neutral.",
           "Using the judgements below, is the review positive, negative or neutral? Answer with one word."),
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
    elif technique == "ReAct":
        return react_chat(task, question, system)
    elif technique == "prompt chain":
        return chain_chat(task, question, 0, [], system)
    else:
        raise ValueError(f"unknown technique {technique!r}; choose from {TECHNIQUES}")
    for x, y in shots:
        chat += [{"role": "user", "content": _ask(task, x)}, {"role": "assistant", "content": y}]
    return chat + [{"role": "user", "content": _ask(task, question)}]


def react_chat(task: Task, question: str, system: str = SYSTEM) -> list[dict]:
    """ReAct's first request: the rules, solved examples as turns (each observation a user turn), then
    the question. agents.ReAct appends the question's own turns."""
    rules = f"{system.strip()}\n\n{REACT_RULES}" if system.strip() else REACT_RULES
    chat = [{"role": "system", "content": rules}]
    for x, turns in task.react_examples:
        chat.append({"role": "user", "content": _ask(task, x)})
        for i, t in enumerate(turns):
            chat.append({"role": "assistant", "content": t} if i % 2 == 0 else
                        {"role": "user", "content": f"Observation: {t}"})
    return chat + [{"role": "user", "content": _ask(task, question)}]


def chain_chat(task: Task, question: str, stage: int, outputs: list[str], system: str = SYSTEM) -> list[dict]:
    """Stage `stage` of the chain: its instruction and the question, with the previous stage's output."""
    chat = [{"role": "system", "content": system}] if system.strip() else []
    text = f"{task.chain[stage]}\n\n{'Problem' if task.kind == 'number' else 'Review'}: {question.strip()}"
    if stage > 0:
        names = ("Plan", "Work") if task.kind == "number" else ("Words", "Judgements")
        text += f"\n\n{names[stage - 1]}:\n{outputs[stage - 1].strip()}"
    return chat + [{"role": "user", "content": text}]


def needs_tokens(technique: str, task: Task) -> int:
    """A sensible cap on new tokens: short for direct answers, longer for reasoning (per call for ReAct's
    turns and the chain's stages)."""
    if technique in ("zero-shot", "few-shot"):
        return 32 if task.kind == "number" else 16
    if technique == "ReAct":
        return 48
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
