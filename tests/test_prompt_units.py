"""Prompt lab: answer extraction, voting, JSON checks, prompt assembly, sampling filters, CSV parsing.

`python tests/test_prompt_units.py` prints the golden values below as they are now."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # also run as a script (it prints the goldens)

from playground.prompting import answers, evaluate, prompts, sampling  # noqa: E402
from playground.prompting.engine import plain_format, render  # noqa: E402

# Items in each bundled set, and the sentiment labels they use (assets/prompting/*.csv).
# regenerate: python tests/test_prompt_units.py
SET_SIZES = {"arithmetic": 30, "sentiment": 30}
SENTIMENT_LABELS = ["negative", "neutral", "positive"]


@pytest.mark.parametrize("text, want", [
    ("8 - 4 = 4. The answer is 4.", "4"),
    ("The answer is $1,200.00", "1200"),
    ("First 3 + 4 = 7, then 7 * 2 = 14", "14"),
    ("Answer: -3.50", "-3.5"),
    ("#### 42\nsome trailing words 7", "42"),
    ("The answer is 5. Wait, 2 + 2 = 4. So the answer is 9.", "9"),   # the last marked answer wins
    ("\\boxed{12}", "12"),
    ("no digits here", None),
])
def test_extract_number(text, want):
    assert answers.extract_number(text) == want


@pytest.mark.parametrize("text, want", [
    ("positive", "positive"),
    ("Negative.", "negative"),
    ("It is not positive; the answer is negative", "negative"),   # a marked label beats the first mention
    ("Sentiment: NEUTRAL", "neutral"),
    ("neutral-ish, then positive", "neutral"),
    ("I cannot tell", None),
    ("positively", None),                                          # whole words only
])
def test_extract_label(text, want):
    assert answers.extract_label(text, ("positive", "negative", "neutral")) == want


def test_matches_normalises_numbers_and_case():
    assert answers.matches("12", "12.0", "number")
    assert not answers.matches(None, "12", "number")
    assert answers.matches("Positive", "positive", "label")


def test_vote_majority_and_agreement():
    v = answers.vote(["4", "8", "4", None, "4"])
    assert v.winner == "4" and v.counts == {"4": 3, "8": 1}
    assert v.agreement == pytest.approx(3 / 5) and v.unreadable == 1 and v.n == 5


def test_vote_tie_goes_to_first_sampled():
    assert answers.vote(["8", "4", "4", "8"]).winner == "8"
    assert answers.vote(["4", "8", "8", "4"]).winner == "4"
    v = answers.vote(["a", "b", "c"])
    assert v.winner == "a" and v.agreement == pytest.approx(1 / 3)


def test_vote_all_unreadable():
    v = answers.vote([None, None])
    assert v.winner is None and v.agreement == 0.0 and v.counts == {}


def test_parse_json_ok_and_errors():
    schema = {"name": "str", "age": "int"}
    ok = answers.parse_json('Sure! {"name": "Ann {B}", "age": 30} done', schema)
    assert ok.ok and ok.value == {"name": "Ann {B}", "age": 30}
    assert "missing key 'age'" in answers.parse_json('{"name": "Ann"}', schema).error
    assert "should be int" in answers.parse_json('{"name": "Ann", "age": "30"}', schema).error
    assert "should be int" in answers.parse_json('{"name": "Ann", "age": true}', schema).error
    assert "not closed" in answers.parse_json('{"name": "Ann", "age": 3', schema).error
    assert "not closed" in answers.parse_json('{"name": {"first": "Ann"}, "age": 3', schema).error   # nested, cut off
    assert "no '{'" in answers.parse_json("none", schema).error
    assert answers.parse_json("{'name': 'Ann'}", schema).error == (
        "not valid JSON: Expecting property name enclosed in double quotes at line 1 column 2")
    # a '{' that starts no JSON is skipped, and the object after it is read
    later = answers.parse_json('Use {braces} like this: {"name": "Ann", "age": 30}', schema)
    assert later.ok and later.value == {"name": "Ann", "age": 30}


def test_few_shot_assembly_alternates_turns():
    chat = prompts.build("few-shot", prompts.SENTIMENT, "Loved it")
    roles = [m["role"] for m in chat]
    assert roles == ["system"] + ["user", "assistant"] * 3 + ["user"]
    assert chat[2]["content"] == "positive" and chat[-1]["content"].endswith("Loved it")
    custom = prompts.build("few-shot", prompts.SENTIMENT, "x", examples=[("a", "b")], system="")
    assert [m["role"] for m in custom] == ["user", "assistant", "user"] and custom[1]["content"] == "b"


def test_cot_assembly():
    zs = prompts.build("CoT (zero-shot)", prompts.ARITHMETIC, "2 + 2?")
    assert prompts.COT_CUE in zs[-1]["content"] and len(zs) == 2
    fs = prompts.build("CoT (few-shot)", prompts.ARITHMETIC, "2 + 2?")
    assert "The answer is 11." in fs[2]["content"] and len(fs) == 8
    assert prompts.build("self-consistency", prompts.ARITHMETIC, "2 + 2?") == fs
    with pytest.raises(ValueError, match="unknown technique 'telepathy'"):
        prompts.build("telepathy", prompts.ARITHMETIC, "2 + 2?")


class _NoTemplate:
    chat_template = None


class _Template:
    chat_template = "x"

    def apply_chat_template(self, chat, tokenize, add_generation_prompt):
        assert tokenize is False and add_generation_prompt is True
        return "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in chat) + "<assistant>"


def test_render_with_and_without_template():
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]
    assert render(_Template(), chat) == "<system>S</system><user>Q</user><assistant>"
    text = render(_NoTemplate(), chat)
    assert text == plain_format(chat) == "### System:\nS\n\n### User:\nQ\n\n### Assistant:\n"


def test_filtered_probs_closed_forms():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.allclose(sampling.filtered_probs(logits, 1.0), torch.tensor([[0.5, 0.3, 0.15, 0.05]]), atol=1e-6)
    assert sampling.filtered_probs(logits, 0.0).tolist() == [[1.0, 0.0, 0.0, 0.0]]
    # T = 0.5 squares the probabilities before renormalising
    sq = torch.tensor([0.25, 0.09, 0.0225, 0.0025])
    assert torch.allclose(sampling.filtered_probs(logits, 0.5)[0], sq / sq.sum(), atol=1e-6)
    # top-k = 2 keeps 0.5 and 0.3
    assert torch.allclose(sampling.filtered_probs(logits, 1.0, top_k=2)[0], torch.tensor([0.625, 0.375, 0, 0]),
                          atol=1e-6)
    # top-p = 0.8 needs 0.5 + 0.3 = 0.8 -> two tokens; top-p = 0.81 needs three
    assert (sampling.filtered_probs(logits, 1.0, top_p=0.8)[0] > 0).sum() == 2
    assert (sampling.filtered_probs(logits, 1.0, top_p=0.81)[0] > 0).sum() == 3
    # tiny top-p still keeps the most likely token
    assert sampling.filtered_probs(logits, 1.0, top_p=1e-6)[0].tolist() == [1.0, 0.0, 0.0, 0.0]


def test_draw_is_seeded():
    logits = torch.zeros(4, 50)
    a = sampling.draw(logits, 1.0, 0, 1.0, torch.Generator().manual_seed(3))
    b = sampling.draw(logits, 1.0, 0, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)


def test_bundled_sets_and_csv_parsing():
    assert {name: len(evaluate.load_set(name)) for name in evaluate.SETS} == SET_SIZES
    assert all(r["question"] and r["answer"] for name in evaluate.SETS for r in evaluate.load_set(name))
    assert sorted({r["answer"] for r in evaluate.load_set("sentiment")}) == SENTIMENT_LABELS
    assert all(answers.normalise_number(r["answer"]) for r in evaluate.load_set("arithmetic"))
    assert evaluate.parse_csv("answer,question\n4,2+2?\n") == [{"question": "2+2?", "answer": "4"}]
    for bad, msg in [("", "empty"), ("q,a\n1,2", "header"), ("question,answer\n", "no rows"),
                     ("question,answer\nonly", "cells")]:
        with pytest.raises(ValueError, match=msg):
            evaluate.parse_csv(bad)


if __name__ == "__main__":
    print("SET_SIZES =", {name: len(evaluate.load_set(name)) for name in evaluate.SETS})
    print("SENTIMENT_LABELS =", sorted({r["answer"] for r in evaluate.load_set("sentiment")}))
