"""Text-to-image service (playground/diffusion/sd_service.py), headless: the tiny Stable Diffusion of
sd_tiny.py as a configured model folder; Step / Scrub / the live guidance scale / the one-call image /
the A/B comparison; validation; the note and the bundled model's stand-in when no model is there; and
on ZeroGPU (the spaces stand-in in tests/stand_in): chunked GPU calls, CPU state between them, and the
fallback when the quota is spent."""
from __future__ import annotations

import functools
import inspect
import os
import copy
import pickle
import sys
from pathlib import Path

import pytest
import torch

from playground.core import hub, settings
from playground.core.errors import InputError
from playground.diffusion import sd_service, sd_tiny, service, views
from playground.diffusion.pipeline import Chain

ROOT = Path(__file__).resolve().parents[1]
ARGS = ("a photo of a red sneaker", "", 7.5, "DDIM", 4, 0, "full", "latent channels")


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """The app runs in this process: one torch thread, as the 2-core machine is shared with Chromium."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return sd_tiny.save(tmp_path_factory.mktemp("tiny-sd"))


def make(monkeypatch, ref) -> sd_service.SDService:
    if ref is None:
        monkeypatch.delenv(sd_service.ENV_MODEL, raising=False)
    else:
        monkeypatch.setenv(sd_service.ENV_MODEL, str(ref))
    return service.Service(settings.from_env()).sd


@pytest.fixture()
def svc(monkeypatch, folder):
    return make(monkeypatch, folder)


def stepped(svc, n, args=ARGS):
    chain, shown = None, None
    for _ in range(n):
        shown = svc.step(chain, *args)
        chain = shown.chain
    return shown


# --- which model, and what the tab says when there is none ----------------------------------------

def test_without_a_model_the_tab_says_why_and_the_bundled_model_stands_in(monkeypatch):
    s = make(monkeypatch, None)
    info = s.info()
    assert not info.available and "hub is not reachable" in info.source.reason
    note = views.sd_info(info)
    assert "not available here" in note and sd_service.ENV_MODEL in note and sd_service.HUB_ID in note
    shown = s.step(None, "a long red dress, studio photo", *ARGS[1:])
    assert isinstance(shown.chain, Chain) and len(shown.chain.frames) == 1
    assert "Showing the bundled class-conditional model" in shown.notice and "class *Dress*" in shown.notice
    out = views.sd_shown(shown, s.fallback.facts().classes)
    assert out[1].size == (224, 224) and "Step 1 / 4" in out[-1] and "not available here" in out[-1]
    again = s.step(shown.chain, "a long red dress, studio photo", *ARGS[1:])     # the bundled chain goes on
    assert again.chain is shown.chain and len(again.chain.frames) == 2


@pytest.mark.parametrize("ref, match", [("not a model; rm -rf /", "neither a model folder nor a hub id"),
                                        ("someone/some-sd", "hub is not reachable")])
def test_a_bad_or_unreachable_setting_is_explained(monkeypatch, ref, match):
    info = make(monkeypatch, ref).info()
    assert not info.available and match in info.source.reason


@pytest.mark.slow
def test_a_folder_that_does_not_load_falls_back_with_the_reason(monkeypatch, tmp_path):
    s = make(monkeypatch, tmp_path)                       # a folder, but no model in it
    assert s.info().available
    shown = s.new_chain(*ARGS)
    assert isinstance(shown.chain, Chain) and "has no model_index.json" in shown.notice


def test_the_class_is_read_from_the_prompt(monkeypatch):
    s = make(monkeypatch, None)
    assert s.class_for("A T-shirt with stripes") == "T-shirt/top"
    assert s.class_for("black ankle boots") == "Ankle boot"
    assert s.class_for("a shirt") == "Shirt" and s.class_for("a lighthouse") == sd_service.DEFAULT_CLASS


# --- validation -----------------------------------------------------------------------------------

def test_numbers_are_clamped_and_text_is_cleaned(monkeypatch):
    s = make(monkeypatch, None)
    a = s.args("a\x00 cat\x07", None, 1e6, "DDPM", 10_000, -5, "1/2", "latent channels")
    assert (a.prompt, a.negative, a.scale, a.steps, a.seed) == ("a cat", "", sd_service.MAX_SCALE,
                                                                sd_service.MAX_STEPS, 0)


@pytest.mark.parametrize("change, match", [
    ({0: "x" * (sd_service.MAX_PROMPT_CHARS + 1)}, f"at most {sd_service.MAX_PROMPT_CHARS}"),
    ({0: "   "}, "Prompt is empty"),
    ({3: "Euler"}, "Sampler must be one of: DDIM, DDPM"),
    ({2: float("nan")}, "Guidance scale s must be a number"),
    ({6: "2x"}, "Size must be one of: full, 3/4, 1/2"),
    ({7: "pixels"}, "Noise shown as must be one of"),
])
def test_bad_input_is_refused_with_a_message(monkeypatch, change, match):
    s = make(monkeypatch, None)
    args = [change.get(i, v) for i, v in enumerate(ARGS)]
    with pytest.raises(InputError, match=match):
        s.step(None, *args)


def test_scrub_without_a_chain_says_what_to_do(monkeypatch):
    s = make(monkeypatch, None)
    with pytest.raises(InputError, match="No chain yet: press New chain"):
        s.scrub(None, 2, "latent channels")
    quiet = views.sd_shown(s.guidance(None, 0, 3.0, "latent channels"), [])   # s moved before any step: no error
    assert quiet[:7] == (None,) * 7 and "No chain yet" in quiet[7]


# --- the tiny model through the service -----------------------------------------------------------

@pytest.mark.slow
def test_step_scrub_and_the_live_guidance_scale(svc):
    shown = stepped(svc, 2)
    chain = shown.chain
    assert isinstance(chain, sd_service.SDChain) and shown.k == 2 and chain.run.latents.device.type == "cpu"
    assert "Step 2 / 4** (taken: 2)" in views.sd_status(shown)
    back = svc.scrub(chain, 1, "latent channels")
    assert back.k == 1 and torch.equal(back.pictures["x_t"], chain.frames[0].previews["x_t"])
    f = chain.frames[1]
    live = svc.guidance(chain, 2, 1.0, "latent channels")            # s = 1: the guided noise is e_c
    assert live.scale == 1.0 and "Shown at your $s=1$" in views.sd_status(live)
    assert torch.equal(live.pictures["eps"], f.out_c) and torch.equal(live.pictures["eps_u"], f.out_u)
    assert not torch.equal(live.pictures["x0"], shown.pictures["x0"])            # x0_hat moved with s
    assert torch.equal(live.pictures["x_t"], shown.pictures["x_t"])              # x_t did not
    mix = svc.guidance(chain, 2, 3.0, "latent channels").pictures["eps"]
    assert torch.allclose(mix, f.out_u + 3.0 * (f.out_c - f.out_u))
    own = svc.guidance(chain, 2, 7.5, "latent channels")
    assert own.scale is None and torch.equal(own.pictures["x0"], shown.pictures["x0"])
    decoded = svc.scrub(chain, 2, "decoded (TAESD)").pictures
    assert decoded["eps_u"].dtype == torch.uint8 and decoded["eps_u"].shape == (3, chain.height, chain.width)
    pics = views.sd_shown(svc.scrub(chain, 2, "latent channels"), [])
    assert [p.size for p in pics[1:3]] == [(256, 256)] * 2 and pics[4].size[0] >= views.PREVIEW_SIDE


@pytest.mark.slow
def test_new_prompt_and_scale_apply_from_the_next_step(svc):
    chain = stepped(svc, 1).chain
    chain = svc.step(chain, "a blue bag", "dull", 2.0, *ARGS[3:]).chain
    f0, f1 = chain.frames
    assert (f0.prompt, f0.scale, f1.prompt, f1.negative, f1.scale) == (ARGS[0], 7.5, "a blue bag", "dull", 2.0)
    assert chain.run.encoded == ("a blue bag", "dull")
    other = svc.step(chain, *ARGS[:5], 9, *ARGS[6:]).chain                    # another seed: a new chain
    assert other is not chain and len(other.frames) == 1


@pytest.mark.slow
def test_one_call_image_is_the_stepped_chains_final_image(svc):
    shown = stepped(svc, 4)
    img, notice = svc.sample(*ARGS[:-1])
    assert shown.chain.done and "Finished" in views.sd_status(shown) and notice == ""
    assert torch.equal(img, shown.chain.final) and torch.equal(shown.pictures["final"], img)


@pytest.mark.slow
def test_play_ticks_to_the_end(svc):
    chain = svc.play(None, *ARGS).chain
    while not chain.done:
        chain = svc.tick(chain, *ARGS).chain
    assert len(chain.frames) == 4 and chain.final is not None


@pytest.mark.slow
def test_a_prompt_beyond_the_text_encoders_length_is_noted(svc):
    shown = svc.new_chain(" ".join(["a"] * 80), *ARGS[1:])                  # 82 tokens, start and end included
    assert "reads only the first 77" in shown.notice


@pytest.mark.slow
def test_compare_two_scales_from_the_same_noise(svc):
    ups = list(svc.compare("two guidance scales", ARGS[0], "", "", 7.5, 7.5, "DDIM", 3, 0, "1/2"))
    assert [u.step for u in ups] == [1, 2, 3] and ups[-1].total == 3
    a_x, a_x0, b_x, b_x0 = ups[-1].pictures
    assert torch.equal(a_x, b_x) and a_x.shape == (3, 64, 64)              # same noise and s: same image
    two = list(svc.compare("two prompts", ARGS[0], "a green lighthouse", "", 7.5, 1.0, "DDIM", 3, 0, "1/2"))[-1]
    assert not torch.equal(two.pictures[0], two.pictures[2]) and "a green lighthouse" in two.names[1]
    assert "Left: **“a photo of a red sneaker”, s = 7.5**" in views.sd_lockstep(two)[-1]


# --- ZeroGPU: the spaces stand-in -----------------------------------------------------------------

@pytest.fixture()
def spaces(monkeypatch):
    """The stand-in spaces package, and _on_gpu behind a copy both ways (checked picklable), as the real
    package's forked worker gets its arguments and returns its result (and so the chain's tensors are
    checked to be on the CPU when they cross)."""
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "stand_in"))
    for name in ("spaces", "spaces.config"):
        sys.modules.pop(name, None)
    import spaces as stand_in

    crossed = []
    real = sd_service._on_gpu

    @functools.wraps(real)
    def on_gpu(*args):
        crossed.append({t.device.type for run in args[1] for t in (run.latents, run.gen_state)})
        assert pickle.dumps(args)           # what the worker receives can be sent...
        out = real(*copy.deepcopy(args))    # ...and arrives as a copy (we never unpickle)
        crossed.append({t.device.type for run in out[0] for t in (run.latents, run.cond)})
        assert pickle.dumps(out)
        return copy.deepcopy(out)

    monkeypatch.setattr(sd_service, "_on_gpu", on_gpu)
    stand_in.CALLS.clear()
    yield stand_in, crossed
    for name in ("spaces", "spaces.config"):
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def plain(folder):
    """The one-call image made off ZeroGPU (before the stand-in is imported)."""
    os.environ[sd_service.ENV_MODEL] = str(folder)
    try:
        return service.Service(settings.from_env()).sd.sample(*ARGS[:-1])[0]
    finally:
        del os.environ[sd_service.ENV_MODEL]


@pytest.mark.slow
def test_zerogpu_runs_chunks_of_steps_per_call_with_the_state_on_the_cpu(plain, spaces, monkeypatch, folder):
    stand_in, crossed = spaces
    s = make(monkeypatch, folder)
    assert s.zero and s.info().where == "ZeroGPU" and "up to" in views.sd_info(s.info())
    monkeypatch.setattr(sd_service, "GPU_SECONDS_PER_STEP", (sd_service.GPU_CALL_SECONDS -
                                                             sd_service.GPU_CALL_OVERHEAD) / 3)
    assert s.chunk_steps(1.0) == 3
    img, notice = s.sample(*ARGS[:-1])                            # 4 steps: a call of 3, then one of 1
    assert torch.equal(img, plain) and notice == ""
    assert stand_in.CALLS == [{"fn": "_on_gpu", "duration": sd_service.GPU_CALL_SECONDS}] * 2
    assert crossed == [{"cpu"}] * 4
    ten = (*ARGS[:4], 10, *ARGS[5:])                              # Play: ZEROGPU_TICKS calls of 2 steps
    chain = s.play(None, *ten).chain
    while not chain.done:
        chain = s.tick(chain, *ten).chain
    assert len(stand_in.CALLS) == 2 + sd_service.ZEROGPU_TICKS and len(chain.frames) == 10
    assert s.model().device.type == "cpu" and all(f.x_in.device.type == "cpu" for f in chain.frames)
    assert 0 < s.measured < sd_service.GPU_SECONDS_PER_STEP                 # measured by every call
    s.measured = 4 * sd_service.GPU_SECONDS_PER_STEP                          # a slower GPU: smaller chunks
    assert s.chunk_steps(1.0) == 1 and s.chunk_steps(0.25) == 3


@pytest.mark.slow
def test_zerogpu_falls_back_to_the_bundled_model_when_the_quota_is_spent(spaces, monkeypatch, folder):
    stand_in, _ = spaces
    s = make(monkeypatch, folder)
    first = s.step(None, *ARGS)
    assert isinstance(first.chain, sd_service.SDChain)
    monkeypatch.setitem(stand_in.QUOTA, "left", 0)
    shown = s.step(first.chain, *ARGS)
    assert isinstance(shown.chain, Chain) and "exceeded your GPU quota" in shown.notice
    assert "class *Sneaker*" in shown.notice
    img, notice = s.sample(*ARGS[:-1])
    assert img.shape == (1, 28, 28) and "exceeded your GPU quota" in notice
    ups = list(s.compare("two prompts", "a bag", "a coat", "", 3.0, 1.0, "DDIM", 4, 0, "full"))
    assert "class *Bag*" in ups[-1].names[0] and "class *Coat*" in ups[-1].names[1]
    assert "exceeded your GPU quota" in ups[-1].notice and ups[-1].step == 4


def test_compare_stays_a_generator(monkeypatch):
    """It streams (ui.handler keeps generator functions generators: tests/test_core.py)."""
    assert inspect.isgeneratorfunction(make(monkeypatch, None).compare)
