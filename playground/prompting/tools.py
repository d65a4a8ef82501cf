"""The tools a ReAct agent can call (agents.py): a calculator and a lookup over a small fact table.

A model writes `Action: calculator[5 + 2 * 3]`; the program, not the model, does the arithmetic and
answers with an Observation. The calculator never calls `eval`: the expression is parsed with `ast` and
only an allow-list of nodes is evaluated (numbers; + - * / // % **; unary + -; parentheses), each step
bounded in size, so a name, a call, an attribute or a huge power is refused with an observation that
says what is allowed. The lookup tool reads `assets/prompting/facts.csv` (key, value) and matches the
asked key by its words.
"""
from __future__ import annotations

import ast
import csv
import difflib
import math
import operator
import re
from dataclasses import dataclass
from functools import lru_cache

from playground.core import paths

MAX_EXPRESSION = 200       # characters
MAX_NODES = 60             # ast nodes in one expression
MAX_EXPONENT = 64          # |b| in a ** b
MAX_MAGNITUDE = 1e15       # |value| of every intermediate result
FACTS = paths.assets("prompting") / "facts.csv"

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
           ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_SYMBOLS = {"×": "*", "÷": "/", "−": "-", "^": "**"}      # what people (and models) write for * / - **


class ToolError(ValueError):
    """A tool refused its input; the message is the Observation the model reads."""


def _number(value: float | int) -> float | int:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise ToolError("the result is not a finite number")
    if abs(value) > MAX_MAGNITUDE:
        raise ToolError(f"a number in the calculation is larger than {MAX_MAGNITUDE:.0e}")
    return value


def _eval(node: ast.AST) -> float | int:
    """Evaluate one allowed node: numbers and arithmetic, nothing else."""
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ToolError(f"only numbers are allowed, not {node.value!r}")
        return _number(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _number(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        a, b = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(b) > MAX_EXPONENT:
            raise ToolError(f"powers are limited to exponents of at most {MAX_EXPONENT}")
        if isinstance(node.op, (ast.Div, ast.FloorDiv, ast.Mod)) and b == 0:
            raise ToolError("division by zero")
        try:
            return _number(_BINARY[type(node.op)](a, b))
        except (OverflowError, ZeroDivisionError) as e:       # e.g. 0.0 ** -1, (-8) ** 0.5 gives complex
            raise ToolError(f"cannot compute this: {e}") from None
    what = {ast.Name: "a name", ast.Call: "a function call", ast.Attribute: "an attribute",
            ast.Subscript: "an index", ast.Compare: "a comparison", ast.BoolOp: "and/or"}.get(type(node))
    raise ToolError(f"{what or type(node).__name__} is not arithmetic; "
                    "use numbers with + - * / // % ** and parentheses")


def calculate(expression: str) -> str:
    """The value of an arithmetic expression, as text (integers without '.0'). Raises ToolError."""
    text = str(expression).strip().rstrip("=").strip()
    for sym, py in _SYMBOLS.items():
        text = text.replace(sym, py)
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)          # 1,000 -> 1000
    if not text:
        raise ToolError("the expression is empty; write e.g. calculator[5 + 2 * 3]")
    if len(text) > MAX_EXPRESSION:
        raise ToolError(f"the expression is {len(text)} characters; keep it under {MAX_EXPRESSION}")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise ToolError(f"cannot read {text!r} as arithmetic; write e.g. calculator[5 + 2 * 3]") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError(f"the expression has more than {MAX_NODES} parts; split it into steps")
    value = _eval(tree)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.6g}"
    return str(value)


def _words(text: str) -> set[str]:
    return {w.rstrip("s") for w in re.findall(r"[a-z]+", text.lower())} - {"a", "an", "the", "of", "in", "on", "how", "many"}


@lru_cache(maxsize=1)
def facts() -> dict[str, str]:
    """The fact table: key -> value, from facts.csv."""
    with FACTS.open(encoding="utf-8", newline="") as f:
        return {row["key"].strip(): row["value"].strip() for row in csv.DictReader(f)}


def lookup(query: str) -> str:
    """The fact whose key shares the most words with the query (ties: the closest spelling), as
    'key: value'. Raises ToolError naming a few keys when nothing matches."""
    q = _words(str(query))
    table = facts()
    if not q:
        raise ToolError("ask for a fact, e.g. lookup[days in a week]")
    scored = [(len(q & _words(k)) / len(q | _words(k)), difflib.SequenceMatcher(None, str(query).lower(), k).ratio(), k)
              for k in table]
    best = max(scored)
    if best[0] < 0.5:
        near = [k for *_, k in sorted(scored, reverse=True)[:3]]
        raise ToolError(f"no fact for {str(query)[:60]!r}; the table has e.g. " + "; ".join(near))
    return f"{best[2]}: {table[best[2]]}"


TOOLS = {"calculator": calculate, "lookup": lookup}
FINISH = "finish"
_ACTION = re.compile(r"Action\s*:\s*([A-Za-z_]+)\s*[\[(]\s*(.*?)\s*[\])]\s*$", re.M)


@dataclass(frozen=True)
class Action:
    tool: str          # a key of TOOLS, or FINISH
    argument: str


_ANY_ACTION = re.compile(r"^\s*Action\s*:\s*(.+)$", re.M)
_ARITHMETIC = re.compile(r"[\d(][\d\s.,+\-*/×÷^()]*[+\-*/×÷^][\d\s.,+\-*/×÷^()]*[\d)]")


def parse_action(turn: str) -> Action | None:
    """The first action line of a model's turn: `Action: tool[argument]` (round brackets also read), or
    an action line that is an equation, such as `Action: 30 + 5 = 35`, read as calculator[30 + 5] (small
    models write the sum instead of calling the tool; the tool then computes it). None when there is no
    action line, or it names no tool and holds no arithmetic."""
    m = _ACTION.search(turn)
    if m:
        return Action(m.group(1).lower(), m.group(2))
    m = _ANY_ACTION.search(turn)
    expr = _ARITHMETIC.search(m.group(1).split("=")[0]) if m else None
    return Action("calculator", expr.group(0).strip()) if expr else None


def observe(action: Action | None) -> str:
    """What the program answers to an action: the tool's result, or why it cannot run."""
    if action is None:
        return ("No action found. End your turn with one line: Action: calculator[expression], "
                "Action: lookup[fact] or Action: finish[answer].")
    if action.tool not in TOOLS:
        return f"There is no tool {action.tool!r}; the tools are " + ", ".join(TOOLS) + f" (and {FINISH} to answer)."
    try:
        return TOOLS[action.tool](action.argument)
    except ToolError as e:
        return f"{action.tool} error: {e}"
