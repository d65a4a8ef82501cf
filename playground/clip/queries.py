"""The paraphrase query set: everyday queries ("a puppy") and the gallery titles that answer them.

`assets/clip/paraphrase_queries.csv` holds each query with the title words that count as a hit
("dog|poodle|puppy") and the words that rule a title out ("hot dog"). The card's `paraphrase` figures
(demos/eval_clip.py) and the lab's tour ("does 'a puppy' find a dog?") read it through this module.
No gradio here.
"""
from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from playground.core import paths

QUERIES = paths.assets("clip", "paraphrase_queries.csv")


@dataclass(frozen=True)
class Query:
    text: str
    hits: tuple[str, ...]     # words or phrases; a title containing one of them is a hit...
    nots: tuple[str, ...]     # ...unless it also contains one of these


def read_queries(path: Path = QUERIES) -> list[Query]:
    with open(path, newline="") as f:
        return [Query(r["query"], tuple(w for w in r["hits"].split("|") if w),
                      tuple(w for w in (r.get("not") or "").split("|") if w)) for r in csv.DictReader(f)]


def _has(title: str, phrase: str) -> bool:
    """`phrase` occurs in `title` as whole words (a hyphen joins words: "t-rex" is one)."""
    return re.search(r"(?<![\w-])" + re.escape(phrase.lower()) + r"(?![\w-])", title.lower()) is not None


def is_hit(title: str, q: Query) -> bool:
    return any(_has(title, w) for w in q.hits) and not any(_has(title, w) for w in q.nots)
