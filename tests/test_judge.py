"""The bundled domain classifiers: they load from their cards, and their recorded figures hold."""
from __future__ import annotations

import pytest
import torch

from playground.core import checkpoint, data
from playground.judge import metrics


@pytest.mark.parametrize("domain", metrics.DOMAINS)
def test_bundled_classifier_matches_its_card(domain):
    model, card = checkpoint.load(metrics.path(domain))
    assert metrics.path(domain).with_suffix(".safetensors").stat().st_size < 1_000_000
    test = data.load(domain, "test")
    x = test.float01()
    acc = float((metrics.predict(x, domain) == test.labels).double().mean())
    assert acc == pytest.approx(card["metrics"]["test_accuracy"], abs=2e-3)
    assert acc > (0.88 if domain == "fashion" else 0.95)
    # The recorded floor is reproduced from the shipped train statistics.
    fd = metrics.frechet_distance(*metrics.gaussian(metrics.features(x, domain)), *metrics.train_stats(domain))
    assert fd == pytest.approx(card["metrics"]["fd_real_test_vs_train"], rel=1e-3)


def test_evaluate_separates_real_from_noise():
    test = data.load("fashion", "test")
    x = test.float01()[:2000]
    real = metrics.evaluate(x, "fashion", labels=test.labels[:2000])
    noise = metrics.evaluate(torch.rand(2000, 1, 28, 28, generator=torch.Generator().manual_seed(0)), "fashion")
    assert real["accuracy"] > 0.88 and real["fd"] < 5 * real["fd_floor_real_test"] + 1
    assert noise["fd"] > 20 * real["fd"]
    assert 0.8 < real["diversity"] < 1.2 and real["class_entropy_bits"] > 3.2
