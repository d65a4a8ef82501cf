"""GAN lab: the cards hold what their recipes say. The same-budget verdict in our card is what
`python -m demos.eval_gan --verdict` computes from the seed pairs in its trials."""
from __future__ import annotations

import statistics

import pytest

from demos import eval_gan
from playground.core import checkpoint, paths
from playground.gan.service import MODEL


def ours() -> dict:
    return checkpoint.read_card(paths.assets("gan", MODEL))


def test_the_cards_verdict_is_what_the_script_computes():
    card = ours()
    assert card["same_budget"] == eval_gan.same_budget(card)


def test_the_verdict_over_the_recorded_seed_pairs():
    """The three pairs of the round that trained the bundled pair: ours 0.29, 0.36, 0.30, the peer 0.33,
    0.29, 0.37 (FD at N = 5000). Means 0.317 and 0.330, differing by less than twice the standard error."""
    sb = eval_gan.same_budget(ours())
    assert sb["pairs"] == 3 and sb["seeds"] == [0, 1, 2]
    assert sb["ours"]["fd"] == [0.29, 0.36, 0.3] and sb["peer"]["fd"] == [0.33, 0.29, 0.37]
    assert sb["ours"]["mean"] == pytest.approx(statistics.fmean([0.29, 0.36, 0.30]))
    assert sb["peer"]["sd"] == pytest.approx(statistics.stdev([0.33, 0.29, 0.37]))
    assert sb["verdict"] == "level" and sb["ours_lower_in"] == 2 and sb["budget_minutes"] == 22.0


def test_the_tab_states_the_verdict_in_words():
    from playground.gan import views

    sb = ours()["same_budget"]
    text = views.same_budget_text(sb)
    assert (f"over 3 seed pairs, FD of ours {sb['ours']['mean']:.2f} ± {sb['ours']['sd']:.2f}, the peer "
            f"{sb['peer']['mean']:.2f} ± {sb['peer']['sd']:.2f} (mean ± standard deviation): level within "
            "run-to-run spread. Ours was lower in 2 of the 3 pairs.") in text
    assert "ours 0.32 ± 0.04, the peer 0.33 ± 0.04" in text.replace("FD of ours", "ours")


def _pair(key, o, p):
    return {key: {"ours_fd": o, "peer_fd": p}}


@pytest.mark.parametrize("ours_fd, peer_fd, verdict", [
    ([0.20, 0.21, 0.19], [0.40, 0.42, 0.38], "ours lower"),
    ([0.40, 0.42, 0.38], [0.20, 0.21, 0.19], "peer lower"),
    ([0.30, 0.40, 0.20], [0.32, 0.28, 0.36], "level"),
])
def test_the_verdict_rule(ours_fd, peer_fd, verdict):
    trials = {"round 2, older": {**_pair("bundled pair, seed 0", 9.0, 1.0), **_pair("seed 1", 9.0, 1.0)},
              "round 3, the bundled recipe": {"how": "text", **_pair("bundled pair, seed 0", ours_fd[0], peer_fd[0]),
                                              **_pair("second pair, seed 1", ours_fd[1], peer_fd[1]),
                                              **_pair("third pair, seed 2", ours_fd[2], peer_fd[2])}}
    sb = eval_gan.same_budget({"trials": trials, "budget_minutes": 5.0})
    assert sb["trials_round"] == "round 3, the bundled recipe" and sb["pairs"] == 3 and sb["verdict"] == verdict


def test_no_recorded_pairs_means_no_verdict():
    assert eval_gan.same_budget({}) is None
    assert eval_gan.same_budget({"trials": {"round 1": _pair("bundled pair, seed 0", 0.3, 0.4)}}) is None
