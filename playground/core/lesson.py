"""Lesson state as a link, and tours as data: the classroom layer's plain half (no gradio).

A lesson link is the page address with the lab's controls in its query string, as TensorFlow
Playground keeps its whole state in its URL:

    ?lab=diffusion&view=step&class=Sneaker&s=0&steps=50&seed=3&hide=sampler,eta&lock=class

- `lab` picks the tab and `view` its sub-tab; every other key is one registered control of that lab.
- `hide` and `lock` list controls to hide or to show read-only (a focused exercise).
- `present=1` opens presenter mode; `tour=<lab>&step=<n>` opens a guided tour at a step.
Nothing in a link is executed: each value is checked against its control (`Param`) by the same
policy as every request (core/validate.py): numbers clamped into the control's range, choices
refused unless listed, text capped. A bad or unknown key is dropped with a notice, never an error.
The same dict, as JSON, is the exported "parameters" file that opens back into the same state.

A tour (assets/tours/<lab>.json) is a list of steps; each step is a link (the state to set), a
question with choices, the name of a check the lab's service runs at reveal time to compute the
answer from the live model, and an explanation. A teacher writes a new tour without code.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from playground.core import paths, validate
from playground.core.errors import InputError

RESERVED = ("lab", "view", "hide", "lock", "present", "tour", "step")
MAX_QUERY = 4000          # characters of a link's query that are read
MAX_JSON_BYTES = 64_000   # an imported parameters file
MAX_TEXT = 500            # characters of a text control carried in a link


@dataclass(frozen=True)
class Param:
    """How one control's value travels in a link: its kind and limits, read from the control."""

    name: str
    kind: str                          # number | int | choice | choices | flag | text
    lo: float | None = None
    hi: float | None = None
    options: tuple = ()
    max_chars: int = MAX_TEXT

    def check(self, value: Any) -> Any:
        """The value as the control takes it (clamped / checked), or InputError."""
        if self.kind in ("number", "int"):
            lo = -math.inf if self.lo is None else self.lo
            hi = math.inf if self.hi is None else self.hi
            return validate.number(self.name, value, lo, hi, integer=self.kind == "int")
        if self.kind == "choice":
            for option in self.options:            # a link carries text: match "7" to 7 as well
                if value == option or str(value) == str(option):
                    return option
            return validate.choice(self.name, value, self.options)
        if self.kind == "choices":
            items = value.split(",") if isinstance(value, str) else value
            return validate.choices(self.name, [s.strip() if isinstance(s, str) else s for s in items or []],
                                    self.options)
        if self.kind == "flag":
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                return value.lower() in ("1", "true", "yes", "on")
            return validate.flag(self.name, value)
        return validate.text(self.name, value, max_chars=self.max_chars, allow_empty=True)

    def show(self, value: Any) -> str:
        """The value as it is written in a link."""
        if self.kind == "choices":
            return ",".join(map(str, value or []))
        if self.kind == "flag":
            return "1" if value else "0"
        if self.kind == "number":
            return f"{float(value):.6g}"
        return str(value)


@dataclass(frozen=True)
class Resolved(Param):
    """A link value checked by a function of the lab's (e.g. a gallery title looked up in the gallery, loaded
    only when a link names one): `resolve(value)` returns the value or raises InputError."""

    resolve: Any = None

    def check(self, value: Any) -> Any:
        return self.resolve(value)


@dataclass
class Lesson:
    """A link's content for one lab: values by control name, hidden and locked controls, and notices."""

    lab: str
    view: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    hide: list[str] = field(default_factory=list)
    lock: list[str] = field(default_factory=list)
    present: bool = False
    tour: str | None = None
    step: int = 0
    notices: list[str] = field(default_factory=list)
    chosen: bool = True               # False: the address named no lab (leave the page's tab as it is)

    def query(self, params: Mapping[str, Param], defaults: Mapping[str, Any] | None = None) -> str:
        """This lesson as a query string (without '?'), values in the order of `params`; values equal
        to the control's default are left out (the link opens them anyway), so links stay short."""
        items = [("lab", self.lab)] + ([("view", self.view)] if self.view else [])
        d = defaults or {}
        items += [(k, params[k].show(self.values[k])) for k in params
                  if k in self.values and not (k in d and params[k].show(d[k]) == params[k].show(self.values[k]))]
        items += [("hide", ",".join(self.hide))] if self.hide else []
        items += [("lock", ",".join(self.lock))] if self.lock else []
        items += [("present", "1")] if self.present else []
        items += [("tour", self.tour), ("step", str(self.step))] if self.tour else []
        return urlencode(items, safe=",:[]")

    def as_json(self) -> str:
        d = {"lab": self.lab, "view": self.view, "values": self.values, "hide": self.hide, "lock": self.lock}
        return json.dumps({k: v for k, v in d.items() if v not in (None, [], {})}, indent=2, ensure_ascii=False)


def parse(query: str | Mapping[str, Any], labs: Mapping[str, Mapping[str, Param]],
          views: Mapping[str, tuple[str, ...]] | None = None, default_lab: str = "home") -> Lesson:
    """A query string (or a dict: a parsed query or an imported JSON file) -> a checked Lesson.
    Unknown keys, bad values and unknown labs are dropped, each with a notice."""
    if isinstance(query, str):
        if len(query) > MAX_QUERY:
            query = query[:MAX_QUERY]
        pairs = parse_qsl(query.lstrip("?"), keep_blank_values=True)
        raw: dict[str, Any] = {}
        for k, v in pairs:
            raw.setdefault(k, v)
    else:
        raw = dict(query)
        raw.update(raw.pop("values", None) or {})
    notices: list[str] = []
    lab = str(raw.get("lab", default_lab))
    if lab not in labs:
        if "lab" in raw:
            notices.append(f"No lab called {lab[:30]!r}; opened {default_lab} instead.")
        lab = default_lab
    params = labs.get(lab, {})
    lesson = Lesson(lab=lab, notices=notices, chosen="lab" in raw)
    view = raw.get("view")
    if view is not None:
        options = (views or {}).get(lab, ())
        if str(view) in options:
            lesson.view = str(view)
        else:
            notices.append(f"No view {str(view)[:30]!r} in this lab; showing its first.")
    for key, value in raw.items():
        if key in RESERVED:
            continue
        if key not in params:
            notices.append(f"Ignored {str(key)[:30]!r}: not a control of this lab.")
            continue
        try:
            lesson.values[key] = params[key].check(value)
        except InputError as e:
            notices.append(f"Ignored {key}: {e}")
            continue
        if params[key].kind in ("number", "int"):
            lo, hi = params[key].lo, params[key].hi
            try:
                clamped = (lo is not None and float(value) < lo) or (hi is not None and float(value) > hi)
            except (TypeError, ValueError):
                clamped = False
            if clamped:
                notices.append(f"{key} = {str(value)[:20]} is out of range: set to {params[key].show(lesson.values[key])}.")
    for which in ("hide", "lock"):
        names = raw.get(which) or []
        names = names.split(",") if isinstance(names, str) else names
        known = [n for n in names if n in params]
        if len(known) < len([n for n in names if n]):
            notices.append(f"{which}: ignored names that are not controls of this lab.")
        setattr(lesson, which, known)
    lesson.present = str(raw.get("present", "")).lower() in ("1", "true", "yes", "on")
    if raw.get("tour"):
        tour = str(raw["tour"])
        if tour in labs:
            lesson.tour = tour
            try:
                lesson.step = int(validate.integer("step", raw.get("step", 0), 0, 99))
            except InputError:
                notices.append("step: not a number; the tour starts at its first step.")
        else:
            notices.append(f"No tour {tour[:30]!r}.")
    return lesson


def from_json(data: bytes | str, labs: Mapping[str, Mapping[str, Param]],
              views: Mapping[str, tuple[str, ...]] | None = None) -> Lesson:
    """An exported parameters file (the same content as a link) -> a checked Lesson."""
    if len(data) > MAX_JSON_BYTES:
        raise InputError(f"Parameters file: {len(data):,} bytes; a parameters file is under {MAX_JSON_BYTES:,}.")
    try:
        d = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise InputError("Parameters file: not JSON; export one with the lab's Export button.") from None
    if not isinstance(d, dict) or "lab" not in d:
        raise InputError("Parameters file: a JSON object with a \"lab\" key is expected.")
    return parse(d, labs, views)


# --- tours -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    title: str
    link: str                 # the state to set, as a query string (lab= is implied by the tour)
    question: str
    choices: tuple[str, ...]
    check: str                # the name of the check the lab's service runs at reveal time
    args: dict                # its arguments
    explain: str              # markdown, with the equation from the seeds


@dataclass(frozen=True)
class Tour:
    lab: str
    title: str
    steps: tuple[Step, ...]


def tour_path(lab: str) -> Path:
    return paths.assets("tours", f"{lab}.json")


def load_tour(path: Path) -> Tour:
    """A tour file, checked: each step has a title, a link, a question with 2+ choices, a check."""
    d = json.loads(Path(path).read_text(encoding="utf-8"))
    steps = []
    for i, s in enumerate(d["steps"]):
        missing = [k for k in ("title", "link", "question", "choices", "check", "explain") if k not in s]
        if missing or len(s["choices"]) < 2:
            raise ValueError(f"{path}: step {i + 1} needs {missing or 'two or more choices'}")
        steps.append(Step(s["title"], s["link"], s["question"], tuple(s["choices"]), s["check"],
                          dict(s.get("args", {})), s["explain"]))
    return Tour(d["lab"], d["title"], tuple(steps))


@dataclass(frozen=True)
class Reveal:
    """What a check found on the live model: the right choice, and what happened, in words."""

    answer: str               # one of the step's choices
    shown: str                # markdown: the measurement behind the answer
