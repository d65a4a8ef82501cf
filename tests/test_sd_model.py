"""Stable Diffusion's step loop (playground/diffusion/sd.py) against diffusers' StableDiffusionPipeline.

A tiny Stable Diffusion is built here from configs (random weights: playground/diffusion/sd_tiny.py),
saved with save_pretrained to a temporary folder and loaded through our loader exactly as a hub id would
be; then our loop, taken in chunks with the state copied between them (checked picklable) (as a ZeroGPU worker receives
and returns the state), must give the pipeline's final latents for the same prompt, seed, steps and
guidance. Everything on the CPU, on one thread (tiny models are faster so on a shared machine).
"""
from __future__ import annotations

import copy
import pickle
import sys
from pathlib import Path

import pytest
import torch

if __name__ == "__main__":   # run as a script to print the differences: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.diffusion import sd, sd_tiny  # noqa: E402
from playground.diffusion.schedulers import guide  # noqa: E402

PROMPT, STEPS, SEED = "a watercolor painting of a lighthouse", 6, 3


@pytest.fixture(scope="module", autouse=True)
def _one_thread(one_torch_thread):
    """The app runs in this process: one torch thread, as the 2-core machine is shared with Chromium."""


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return sd_tiny.save(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="module")
def model(folder):
    return sd.load_sd(str(folder))


def ours(m, prompt, s, sampler, steps=STEPS, seed=SEED, negative="", chunk=4, size=None):
    """Final latents of our loop, taken `chunk` steps per call with the state copied between calls (and checked picklable)."""
    side = size or m.native_size
    run = sd.start(m, prompt, negative, sampler, steps, seed, side, side)
    while not run.done:
        assert pickle.dumps(run)        # it can cross a worker boundary
        run = copy.deepcopy(run)        # and a copy is what arrives (the project never unpickles)
        sd.advance(m, [run], chunk, [s], previews=False)
    return run.latents


def reference(folder, prompt, s, sampler, steps=STEPS, seed=SEED, negative=None):
    """diffusers' own pipeline: the same folder, the sampler swapped in the documented way (from_config)."""
    from diffusers import DDIMScheduler, DDPMScheduler, StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    if sampler != sd.OWN:
        pipe.scheduler = {"DDIM": DDIMScheduler, "DDPM": DDPMScheduler}[sampler].from_config(pipe.scheduler.config)
    return pipe(prompt, negative_prompt=negative, num_inference_steps=steps, guidance_scale=s,
                generator=torch.Generator().manual_seed(seed), output_type="latent").images


CASES = [(s, sampler) for s in (1.0, 7.5) for sampler in sd.SAMPLERS]


@pytest.mark.slow
@pytest.mark.parametrize("s, sampler", CASES)
def test_step_loop_equals_the_pipeline(folder, model, s, sampler):
    """Final latents equal StableDiffusionPipeline's, exactly, at s = 1 (the pipeline then runs the
    conditional pass only) and s = 7.5, for DDIM, DDPM (its step noise comes from the carried generator
    state) and the scheduler the model ships with (PNDM: its multistep memory travels with the chain)."""
    a, b = ours(model, PROMPT, s, sampler), reference(folder, PROMPT, s, sampler)
    side = model.native_size // model.vae_scale_factor
    assert a.shape == b.shape == (1, 4, side, side)
    assert torch.equal(a, b), f"max abs diff {(a - b).abs().max():.3g}"


@pytest.mark.slow
def test_negative_prompt_is_the_unconditional_text(folder, model):
    a = ours(model, PROMPT, 7.5, "DDIM", negative="blurry, grey")
    assert torch.equal(a, reference(folder, PROMPT, 7.5, "DDIM", negative="blurry, grey"))
    assert not torch.equal(a, ours(model, PROMPT, 7.5, "DDIM"))


@pytest.mark.slow
def test_chunking_does_not_change_the_chain(model):
    """One step per call, or all at once: the same latents (DDPM draws step noise; PNDM keeps memory)."""
    for sampler in ("DDPM", sd.OWN):
        assert torch.equal(ours(model, PROMPT, 3.0, sampler, chunk=1), ours(model, PROMPT, 3.0, sampler, chunk=99))


@pytest.mark.slow
def test_frames_hold_what_the_network_said(model):
    """Per step: e_u and e_c of the batch [uncond, cond], the guided e recomputed from them, and x0_hat
    equal to DDIM's own pred_original_sample; the last frame has decoded previews and the run its image."""
    from diffusers import DDIMScheduler

    run = sd.start(model, PROMPT, "", "DDIM", 3, SEED, 64, 64)
    x = run.latents.clone()
    frames, finals, sps = sd.advance(model, [run], 1, [7.5])
    f = frames[0][0]
    cond, uncond = sd.encode(model, PROMPT), sd.encode(model, "")
    with torch.inference_mode():
        e_c = model.unet(x, f.t, encoder_hidden_states=cond).sample[0]
        e_u = model.unet(x, f.t, encoder_hidden_states=uncond).sample[0]
    assert torch.allclose(f.out_c, e_c, atol=1e-5) and torch.allclose(f.out_u, e_u, atol=1e-5)
    e = guide(f.out_u, f.out_c, 7.5)
    ddim = DDIMScheduler.from_config(model.scheduler.config)
    ddim.set_timesteps(3)
    x0_ref = ddim.step(e[None], f.t, x).pred_original_sample[0]
    assert torch.allclose(sd.eps_x0(e, f.x_in, f.abar)[1], x0_ref, atol=1e-5)
    assert f.previews["x_t"].dtype == torch.uint8 and f.previews["x0"].shape == (3, 64, 64)
    assert finals == [None] and sps > 0 and run.latents.device.type == "cpu"


def test_eps_x0_closed_forms():
    """epsilon: x_in = sqrt(a) x0 + sqrt(1-a) e is inverted exactly; v = sqrt(a) e - sqrt(1-a) x0 likewise."""
    g = torch.Generator().manual_seed(0)
    x0, e = torch.randn(4, 8, 8, generator=g), torch.randn(4, 8, 8, generator=g)
    a = 0.3
    x_in = a ** 0.5 * x0 + (1 - a) ** 0.5 * e
    for out, kind in ((e, "epsilon"), (a ** 0.5 * e - (1 - a) ** 0.5 * x0, "v_prediction")):
        e_hat, x0_hat = sd.eps_x0(out, x_in, a, kind)
        assert torch.allclose(e_hat, e, atol=1e-5) and torch.allclose(x0_hat, x0, atol=1e-5)


@pytest.mark.slow
def test_loader_takes_a_folder_and_refuses_what_is_not_a_model(folder, tmp_path):
    m = sd.load_sd(str(folder))
    assert m.taesd is not None and m.native_size == 128 and m.size_multiple == 16 and m.max_tokens == 77
    assert type(m.scheduler).__name__ == "PNDMScheduler"
    with pytest.raises(sd.LoadError, match="has no model_index.json"):
        sd.load_sd(str(tmp_path))
    with pytest.raises(sd.LoadError, match="neither a model folder nor a hub id"):
        sd.load_sd("../../etc/passwd; rm -rf")
    with pytest.raises(sd.LoadError, match="could not be loaded as Stable Diffusion"):
        sd.load_sd("nobody/no-such-model", offline=True)


@pytest.mark.slow   # imports open_clip and transformers
def test_tiny_tokenizer_is_clip_bpe():
    tok = sd_tiny.tokenizer()
    assert len(tok) == 2 * 256 + sd_tiny.TOKENIZER_MERGES + 2 and tok.model_max_length == 77
    assert tok.convert_ids_to_tokens(tok("a photo").input_ids) == ["<|startoftext|>", "a</w>", "pho", "to</w>",
                                                                   "<|endoftext|>"]


if __name__ == "__main__":   # the max abs differences: python tests/test_sd_model.py
    import tempfile

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as d:
        sd_tiny.save(d)
        m = sd.load_sd(d)
        for s, sampler in CASES:
            diff = (ours(m, PROMPT, s, sampler) - reference(d, PROMPT, s, sampler)).abs().max()
            print(f"s = {s:g}, {sampler}: max |ours - pipeline| = {float(diff):.3g}")
