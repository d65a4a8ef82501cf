"""Diffusion service, headless (no server): every user action on the bundled model, its validation, the
one noise rule shared by the one-call sample and the stepped chain, and the tab opening without the
Fashion-MNIST package."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from playground.core import cache, data, settings
from playground.core.errors import InputError
from playground.diffusion import service, views
from playground.diffusion.pipeline import Chain


@pytest.fixture(scope="module")
def svc():
    return service.Service(settings.from_env())


# --- the bug this lab had: the one-call sample and Step / Play must agree ------------------------

@pytest.mark.parametrize("kind, eta, steps", [
    ("DDPM", 0.0, 4), ("DDIM", 0.0, 4), ("DDIM", 0.5, 4),
    pytest.param("DDPM", 0.0, 20, marks=pytest.mark.slow),   # the report: Sneaker, s = 3, 20 steps
    pytest.param("DDIM", 0.0, 20, marks=pytest.mark.slow),
])
def test_one_call_sample_equals_step_and_play(svc, kind, eta, steps):
    """"The whole chain in one call" (/diffusion_sample) gives exactly the image that Step, pressed to the
    end, and Play (its timer ticks) give with the same settings: one noise rule serves all three."""
    args = ("Sneaker", 3.0, kind, steps, eta, 0)
    one = svc.sample(*args)
    chain = svc.new_chain(*args).chain
    while not chain.done:
        chain = svc.step(chain, *args).chain
    played = svc.play(None, *args).chain
    while not played.done:
        played = svc.tick(played, *args).chain
    assert torch.equal(one, chain.frames[-1].x_prev)
    assert torch.equal(one, played.frames[-1].x_prev)


def test_ddpm_chains_of_different_seeds_differ(svc):
    a = svc.sample("Sneaker", 3.0, "DDPM", 4, 0.0, 0)
    b = svc.sample("Sneaker", 3.0, "DDPM", 4, 0.0, 1)
    assert (a - b).abs().max() > 0.5


# --- validation: clamp numbers, refuse the rest with a message that says what to send -------------

def test_numbers_are_clamped(svc):
    T = svc.facts().T
    assert svc.chain_settings("Sneaker", 1e6, "DDIM", 100000, -3, -5) == (7, service.MAX_SCALE, "DDIM", T, 0.0, 0)
    assert svc.forward("Sneaker", None, 5000, "cosine", 0).t == T - 1
    assert svc.tradeoff(-2).scale == 0.0


@pytest.mark.parametrize("call, match", [
    (lambda s: s.chain_settings("Cat", 3.0, "DDIM", 20, 0.0, 0), r"Class must be one of: T-shirt/top"),
    (lambda s: s.chain_settings("Sneaker", 3.0, "Euler", 20, 0.0, 0), r"Sampler must be one of: DDIM, DDPM"),
    (lambda s: s.chain_settings("Sneaker", "a lot", "DDIM", 20, 0.0, 0), r"Guidance scale s must be a number"),
    (lambda s: s.chain_settings("Sneaker", math.nan, "DDIM", 20, 0.0, 0), r"Guidance scale s must be a number"),
    (lambda s: s.sample("Sneaker", 3.0, "DDIM", math.inf, 0.0, 0), r"Steps must be a whole number"),
    (lambda s: s.forward("Sneaker", None, 300, "quadratic", 0), r"Schedule must be one of: linear, cosine"),
    (lambda s: s.forward("Cat", None, 300, "cosine", 0), r"Image must be one of"),
    (lambda s: next(s.compare("three ways", "Bag", 1, 2, "DDIM", 3, 0)), r"Compare must be one of"),
    (lambda s: s.scrub(None, 3), r"No chain yet: press New chain"),
    (lambda s: s.export_gif(None), r"Nothing to export yet: take some steps first"),
    (lambda s: s.export_png(Chain(7, 3.0, "DDIM", 5, 0)), r"Nothing to export yet: take some steps first"),
])
def test_bad_input_is_refused_with_what_to_do(svc, call, match):
    with pytest.raises(InputError, match=match):
        call(svc)


# --- the chain's actions ---------------------------------------------------------------------------

def test_step_scrub_and_change_class_mid_chain(svc):
    args = ["Sneaker", 3.0, "DDIM", 5, 0.0, 3]
    r = svc.new_chain(*args)
    assert r.k == 0 and r.chain.frames == [] and r.chain.x_T.shape == (1, 28, 28)
    r = svc.step(r.chain, *args)
    r = svc.step(r.chain, "Bag", *args[1:])                    # the class applies from the next step on
    assert r.k == 2 and [f.label for f in r.chain.frames] == [7, 8]
    back = svc.scrub(r.chain, 1)
    assert back.k == 1 and back.chain is r.chain
    assert svc.scrub(r.chain, 40).k == 2                      # later than taken: the last step taken
    again = svc.step(r.chain, "Bag", 3.0, "DDIM", 5, 0.0, 4)  # another seed starts a fresh chain
    assert again.k == 1 and again.chain.seed == 4


def test_play_restarts_a_finished_chain_and_resumes_a_paused_one(svc):
    args = ["Trouser", 1.0, "DDIM", 3, 0.0, 2]
    r = svc.play(None, *args)
    assert r.k == 0
    r = svc.tick(r.chain, *args)
    paused = r.chain
    assert svc.play(paused, *args).chain is paused            # Play after Pause goes on with the same chain
    while not r.chain.done:
        r = svc.tick(r.chain, *args)
    fresh = svc.play(r.chain, *args)
    assert fresh.k == 0 and fresh.chain is not r.chain


@pytest.mark.slow   # the first grid imports torchvision
def test_export_gif_and_png(svc):
    args = ["Bag", 3.0, "DDIM", 3, 0.0, 0]
    chain = svc.step(svc.step(svc.new_chain(*args).chain, *args).chain, *args).chain
    gif = Image.open(svc.export_gif(chain))
    assert gif.n_frames == 1 + 2              # x_T and the two steps taken
    gif.seek(2)
    assert gif.info["duration"] == 9 * 100    # the last step is held for 8 more frames of 100 ms
    png = Image.open(svc.export_png(chain))
    assert png.size == (28 * service.EXPORT_SCALE,) * 2


def test_compare_streams_both_chains(svc):
    out = list(svc.compare("DDPM against DDIM", "Bag", 3.0, 1.0, "DDIM", 4, 1))
    assert [r.step for r in out] == [1, 2, 3, 4]
    last = out[-1]
    assert last.names == ["DDPM, s = 3", "DDIM, s = 3"] and last.t == 0
    assert not torch.equal(last.x[0], last.x[1])             # DDPM adds noise DDIM does not
    text = views.lockstep(last)[-1]
    assert "Step 4 / 4" in text and "DDPM, s = 3" in text


def test_the_served_unet_is_compiled_and_equal_to_its_python(svc):
    """Service.model() serves the U-Net as a frozen TorchScript graph (unet.serve): bit for bit the
    Python forward's eps, for a batch of another size than the one it was traced on."""
    model, _, _ = svc.model()
    assert isinstance(model.__dict__.get("_compiled"), torch.jit.ScriptModule)
    g = torch.Generator().manual_seed(0)
    x, t, y = torch.randn(3, 1, 28, 28, generator=g), torch.tensor([0, 500, 999]), torch.tensor([1, 10, 4])
    with torch.inference_mode():
        served = model(x, t, y)
    with torch.enable_grad():                                  # with gradients: the Python forward
        python = model(x, t, y)
    assert torch.equal(served, python)


# --- the forward process, with and without the data set ------------------------------------------

def test_forward_process_moments_and_upload(svc):
    r = svc.forward("Ankle boot", None, 300, "linear", 0)
    assert r.row.shape == (1 + service.FORWARD_DRAWS, 1, 28, 28) and r.schedule == "linear"
    assert r.abar == pytest.approx(float(torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)[300]))
    up = svc.forward("Ankle boot", Image.new("RGB", (60, 40), "white"), 0, "cosine", 0)
    assert up.row[0].min() == pytest.approx(-1.0) and up.row[0].max() == pytest.approx(1.0)   # white on black


def test_schedule_figure_marks_t_on_both_schedules_and_is_valid_plotly():
    """Built from dicts, unchecked (core/plots.py): plotly's validation gives the same JSON."""
    from playground.core import plots

    fig = views.schedule_figure(300, "cosine", 1000)
    assert plots.valid(fig)
    ab = float(torch.cumprod(1 - torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64), 0)[300])
    assert len(fig.data) == 5 and all(len(t.x) == 1000 for t in fig.data[:4])
    lin = views.schedule_figure(300, "linear", 1000).data[-1]
    assert lin.y == pytest.approx([ab ** 0.5, (1 - ab) ** 0.5]) and fig.layout.shapes[0].x0 == 300


@pytest.fixture()
def no_fashion(monkeypatch, tmp_path):
    """A machine without the Debian Fashion-MNIST package (and no downloaded copy, offline)."""
    monkeypatch.setattr(data, "FASHION_DIRS", [])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache.clear("diffusion-examples")
    yield service.Service(settings.Settings(cache_dir=tmp_path))
    cache.clear("diffusion-examples")


def test_without_fashion_mnist_the_forward_process_uses_synthetic_shapes(no_fashion):
    ex = no_fashion.forward_examples()
    assert ex.source == "synthetic" and ex.names == data.SYNTHETIC_CLASSES
    assert "apt-get install dataset-fashion-mnist" in ex.missing
    assert "not on this machine" in views.examples_note(ex)
    r = no_fashion.forward(ex.names[-1], None, 300, "cosine", 0)
    assert r.row.shape[0] == 1 + service.FORWARD_DRAWS
    assert no_fashion.load_calls()[1] == ("diffusion_forward", [ex.names[-1], None, 300, "cosine", 0])


@pytest.mark.slow   # imports gradio and builds the tab
def test_without_fashion_mnist_the_tab_opens_and_says_what_it_lacks(no_fashion):
    """Build the tab and run what opening the forward view runs (its select event, and a lesson link's show
    of that view), with the default inputs: no longer on every page load."""
    import gradio as gr

    from playground.diffusion import tab

    with gr.Blocks() as demo:
        link = tab.build(no_fashion)
    note = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "diff-forward-note")
    assert "dataset-fashion-mnist" in note.value
    fwd = next(f for f in demo.fns.values() if f.api_name == "diffusion_forward")
    assert (link.view_tabs["forward"]._id, "select") in fwd.targets and all(e != "load" for _, e in fwd.targets)
    img, text, fig = fwd.fn(*[c.value for c in fwd.inputs])
    assert img.width > 28 * service.FORWARD_DRAWS and "t=300" in text
    assert len(fig.data) == 5
    shown = link.show_fn("forward", *[c.value for c in link.show_inputs])[-3:]
    assert shown[0].width == img.width and shown[1] == text


# --- views read every figure from the card or the code ------------------------------------------

def test_texts_read_their_figures_from_the_card(svc):
    facts = svc.facts()
    assert f"{facts.card['p_uncond']:.0%} of the time" in views.eq_loss(facts.p_uncond)
    assert "30% of the time" in views.eq_loss(0.3)
    table = views.tradeoff_table(facts)
    assert f"Chance accuracy is {1 / len(facts.classes):.0%}" in table
    sw = facts.sweep
    assert f"| 3 | {sw['accuracy'][sw['scales'].index(3.0)]:.1%} |" in table
    assert f"ratio {facts.ddim_vs_ddpm['ratio']:.2f}" in table
    assert f"±{views.EPS_RANGE:g}" in views.GUIDANCE_NOTE


def test_tradeoff_figure_plots_the_card_sweep(svc):
    fig = views.tradeoff_figure(svc.tradeoff(2.5))
    sw = svc.facts().sweep
    assert [list(t.y) for t in fig.data] == [sw["accuracy"], sw["diversity"], sw["fd"]]
    assert all(list(t.x) == sw["scales"] for t in fig.data)
    assert fig.layout.shapes[0].x0 == 2.5 and fig.layout.annotations[0].text == "your s = 2.5"
    empty = views.tradeoff_figure(service.Tradeoff(None, 1.0))
    assert len(empty.data) == 0 and "eval_diffusion" in empty.layout.title.text


def test_status_line_names_the_step(svc):
    args = ["Coat", 2.0, "DDPM", 4, 0.0, 0]
    r = svc.step(svc.new_chain(*args).chain, *args)
    chain, *pics, status = views.shown(r, svc.facts().classes)
    assert chain is r.chain and all(isinstance(p, Image.Image) for p in pics)
    assert status.startswith("**Step 1 / 4** (taken: 1): network at $t=750$") and "*Coat*" in status
    assert "t'=500" in status and "DDPM" in status
    assert views.status(chain, 0, svc.facts().classes).startswith("**Step 0 / 4**")


def test_bundled_checkpoint_and_card(svc):
    model, card, sched = svc.model()
    facts = svc.facts()
    assert card["sha256"] == facts.card["sha256"] and sched.name == card["schedule"] and sched.T == facts.T
    assert model.null_class == len(facts.classes) == card["config"]["n_classes"]
    assert card["classes"] == data.FASHION_CLASSES
    assert service.CHECKPOINT.with_suffix(".safetensors").stat().st_size < 10 * 1024 * 1024
    m = card["metrics"]
    sw, cmp = m["guidance_sweep"], m["ddim_vs_ddpm"]
    assert 0.0 in sw["scales"] and 1.0 in sw["scales"] and 3.0 in sw["scales"]
    assert len(sw["accuracy"]) == len(sw["diversity"]) == len(sw["fd"]) == len(sw["scales"])
    assert cmp["ddpm_steps"] == facts.T and cmp["ddim_steps"] == sw["steps"]


@pytest.mark.slow
def test_speed_probe(svc):
    r = svc.speed_probe()
    assert r["family"] == "Diffusion" and 0 < r["seconds"] < 120
    assert f"DDIM {service.PROBE_STEPS} steps" in r["what"]
