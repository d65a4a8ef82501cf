"""Reading the answer out of a completion, and the self-consistency vote.

Self-consistency (Wang et al. 2023, "Self-Consistency Improves Chain of Thought Reasoning in
Language Models"): sample N reasoning paths r_i at temperature T > 0, extract each answer a_i,
and return the most frequent one,

    a* = argmax_a sum_{i=1..N} 1[a_i = a]          agreement = max_a count(a) / N

Ties go to the answer that was sampled first (a fixed, documented rule, so a re-run with the
same seed gives the same vote). Paths with no readable answer count in N but never win.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass

_NUM = r"-?\$?\d[\d,]*(?:\.\d+)?"
_MARKED = [
    re.compile(r"answer\s*(?:is|:|=)\s*[:\s]*\**\s*(" + _NUM + ")", re.I),
    re.compile(r"####\s*(" + _NUM + ")"),
    re.compile(r"\\boxed\{\s*(" + _NUM + r")\s*\}"),
]


def normalise_number(text: str) -> str | None:
    """'$1,200.00' -> '1200', '3.50' -> '3.5', '-4' -> '-4'."""
    t = text.replace("$", "").replace(",", "").strip().rstrip(".")
    try:
        v = float(t)
    except ValueError:
        return None
    if v == int(v):
        return str(int(v))
    return f"{v:.6f}".rstrip("0").rstrip(".")


def extract_number(completion: str) -> str | None:
    """The final numeric answer: a marked one ('The answer is 12', '#### 12', boxed) if present
    (the last such mark), else the last number in the text."""
    for pattern in _MARKED:
        hits = pattern.findall(completion)
        if hits:
            return normalise_number(hits[-1])
    hits = re.findall(_NUM, completion)
    return normalise_number(hits[-1]) if hits else None


def is_marked(completion: str) -> bool:
    """Does the completion state its answer ('The answer is ...', '#### ...', boxed), not just mention numbers?"""
    return any(p.search(completion) for p in _MARKED) or re.search(r"answer\s*(?:is|:)", completion, re.I) is not None


def extract_label(completion: str, labels: list[str] | tuple[str, ...]) -> str | None:
    """The label named in the completion; when several are named, a marked one ('answer: X',
    'sentiment: X') wins, else the first one mentioned."""
    low = completion.lower()
    names = [lab.lower() for lab in labels]
    marked = re.findall(r"(?:answer|sentiment|label|classification)\s*(?:is|:)\s*\**\s*([a-z]+)", low)
    for word in reversed(marked):
        if word in names:
            return labels[names.index(word)]
    best, where = None, len(low) + 1
    for lab, name in zip(labels, names):
        m = re.search(r"\b" + re.escape(name) + r"\b", low)
        if m and m.start() < where:
            best, where = lab, m.start()
    return best


def extract(completion: str, kind: str, labels: list[str] | tuple[str, ...] = ()) -> str | None:
    return extract_label(completion, labels) if kind == "label" else extract_number(completion)


def matches(answer: str | None, gold: str, kind: str) -> bool:
    if answer is None:
        return False
    if kind == "label":
        return answer.strip().lower() == gold.strip().lower()
    return answer == normalise_number(gold)


@dataclass(frozen=True)
class Vote:
    winner: str | None
    counts: dict[str, int]      # answer -> votes, in order of first appearance
    agreement: float            # votes of the winner / N
    n: int
    unreadable: int             # paths with no answer


def vote(answers: list[str | None]) -> Vote:
    """Majority vote; ties broken by first appearance; None never wins."""
    readable = [a for a in answers if a is not None]
    counts = Counter(readable)
    ordered = {a: counts[a] for a in dict.fromkeys(readable)}
    if not ordered:
        return Vote(None, {}, 0.0, len(answers), len(answers))
    top = max(ordered.values())
    winner = next(a for a, c in ordered.items() if c == top)   # first to reach the top count
    return Vote(winner, ordered, top / len(answers), len(answers), len(answers) - len(readable))


@dataclass(frozen=True)
class JsonCheck:
    ok: bool
    value: dict | None
    error: str


def first_json_object(completion: str) -> tuple[dict | None, str]:
    """The first JSON object in the completion: each '{' is tried in turn with the standard decoder
    (`json.JSONDecoder.raw_decode`, which stops at the end of the value). Returns (object, "") or
    (None, what went wrong at the first '{'). A '{' whose object runs past the end of the text is
    reported as not closed (every later '{' lies inside it)."""
    decoder = json.JSONDecoder()
    first_error = None
    start = completion.find("{")
    if start < 0:
        return None, "no '{' in the answer: the model did not write a JSON object"
    while start >= 0:
        try:
            return decoder.raw_decode(completion, start)[0], ""
        except json.JSONDecodeError as e:
            if e.pos >= len(completion.rstrip()):
                if first_error is None:
                    return None, "the JSON object is not closed (a '}' is missing; raise max new tokens?)"
                break
            first_error = first_error or e
        start = completion.find("{", start + 1)
    return None, f"not valid JSON: {first_error.msg} at line {first_error.lineno} column {first_error.colno}"


def parse_json(completion: str, schema: dict[str, str]) -> JsonCheck:
    """Find the first {...} object in the completion, parse it, and check the keys and types in
    `schema` (key -> 'str' | 'int' | 'number' | 'bool'). The error says what went wrong."""
    value, error = first_json_object(completion)
    if value is None:
        return JsonCheck(False, None, error)
    types = {"str": (str,), "int": (int,), "number": (int, float), "bool": (bool,)}
    problems = []
    for key, typ in schema.items():
        if key not in value:
            problems.append(f"missing key '{key}'")
        elif isinstance(value[key], bool) and typ != "bool" or not isinstance(value[key], types[typ]):
            problems.append(f"'{key}' should be {typ}, got {type(value[key]).__name__}")
    if problems:
        return JsonCheck(False, value, "; ".join(problems))
    return JsonCheck(True, value, "valid: every key present with the right type")
