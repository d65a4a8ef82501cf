"""Card reproduction: the bundled evaluation of the offline model (assets/prompting/eval_smollm2.json,
written by `python -m demos.eval_prompt`, the recipe recorded in it) re-measured on a small slice with
the same code path: `models.load` of the offline model from the settings' cache folder, then
`evaluate.run` with the recipe's own settings (parsed back from the recipe the file records)."""
from __future__ import annotations

import json

import pytest

from demos import eval_prompt
from playground.core import settings
from playground.prompting import answers, evaluate, models, prompts

SLICE = 10                 # the first items of a set; greedy zero-shot reads each once
TECHNIQUE = "zero-shot"    # greedy decoding: deterministic, so each item's answer can be compared
MAX_DIFFERENT = 1          # items of the slice whose answer may differ from the file's (see the docstring)


@pytest.mark.slow
@pytest.mark.parametrize("set_name", list(evaluate.SETS))
def test_greedy_slice_reproduces_the_bundled_evaluation(set_name):
    """Greedy decoding has no sampling error: on the same model and prompts it gives the same tokens.
    What can change is the batch: the file's run put every item of a set in one left-padded batch, this
    slice is a smaller one, so the padding width and the order of float32 sums differ, and an item whose
    two best next tokens are nearly tied can flip. We therefore allow MAX_DIFFERENT item of the SLICE
    to differ, and the slice's accuracy to move by at most that many items (1/SLICE). On the machine that
    wrote the file every answer and every completion of both slices matched."""
    card = json.loads(evaluate.BUNDLED.read_text(encoding="utf-8"))
    recipe = eval_prompt.recipe_args(card["recipe"])
    recorded = card["results"][set_name][TECHNIQUE]
    rows = evaluate.load_set(set_name)[:SLICE]
    assert [it["question"] for it in recorded["items"][:SLICE]] == [r["question"] for r in rows]
    task = prompts.TASKS[set_name]

    backend = models.load(card["model"], settings.from_env().cache_dir, "cpu")
    *_, result = evaluate.run(backend, task, rows, TECHNIQUE, n=recipe.n, temperature=recipe.temperature,
                              top_p=recipe.top_p, seed=recipe.seed, max_rows_per_call=recipe.rows_per_call)
    assert result["max_new_tokens"] == recorded["max_new_tokens"] and result["temperature"] == 0.0

    got = [it["answers"][0] for it in result["items"]]
    want = [it["answers"][0] for it in recorded["items"][:SLICE]]
    different = [i for i, (g, w) in enumerate(zip(got, want)) if g != w]
    assert len(different) <= MAX_DIFFERENT, f"items {different}: measured {got}, file {want}"
    card_slice_accuracy = sum(answers.matches(w, r["answer"], task.kind) for w, r in zip(want, rows)) / SLICE
    assert abs(result["accuracy"] - card_slice_accuracy) <= MAX_DIFFERENT / SLICE + 1e-9
