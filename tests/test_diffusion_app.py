"""Diffusion tab through its public API (gradio_client): the endpoints work on the bundled model,
and bad input is answered with an error while the app keeps serving."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from playground.core import checkpoint
from playground.diffusion import pipeline

ARGS = ["Sneaker", 3.0, "DDIM", 20, 0.0, 0]


def test_bundled_checkpoint_and_card():
    card = checkpoint.read_card(pipeline.BUNDLED)
    assert Path(str(pipeline.BUNDLED) + ".safetensors").stat().st_size < 10 * 1024 * 1024
    for key in ("recipe", "schedule", "num_train_timesteps", "p_uncond", "wall_seconds", "sha256"):
        assert key in card, key
    model, card2, sched = pipeline.bundled()
    assert card2["sha256"] == card["sha256"] and sched.name == card["schedule"]
    assert model.null_class == 10


def test_card_records_the_guidance_sweep():
    m = checkpoint.read_card(pipeline.BUNDLED)["metrics"]
    sw, cmp = m["guidance_sweep"], m["ddim_vs_ddpm"]
    assert 0.0 in sw["scales"] and 1.0 in sw["scales"] and len(sw["scales"]) >= 4
    assert len(sw["accuracy"]) == len(sw["diversity"]) == len(sw["fd"]) == len(sw["scales"])
    assert cmp["n"] >= 50 and cmp["ddpm_steps"] == 1000 and cmp["ddim_steps"] == 50


def test_sample_endpoint_returns_an_image(client):
    path = client.predict(*ARGS, api_name="/diffusion_sample")
    img = Image.open(path)
    assert img.size == (224, 224)


def test_step_then_scrub_back(client):
    out1 = client.predict(*ARGS, api_name="/diffusion_step")
    assert "Step 1 / 20" in out1[7]
    out2 = client.predict(*ARGS, api_name="/diffusion_step")
    assert "Step 2 / 20" in out2[7] and "taken: 2" in out2[7]
    back = client.predict(1, api_name="/diffusion_scrub")
    assert "Step 1 / 20" in back[7] and "taken: 2" in back[7]
    assert Image.open(back[0]).tobytes() == Image.open(out1[0]).tobytes()    # the same x_t as step 1 showed
    gif = client.predict(api_name="/diffusion_gif")
    assert Image.open(gif).n_frames >= 3
    png = client.predict(api_name="/diffusion_png")
    assert Image.open(png).size == (224, 224)


def test_new_chain_and_forward_and_tradeoff(client):
    out = client.predict("Trouser", 1.0, "DDPM", 10, 0.0, 5, api_name="/diffusion_new")
    assert "Step 0 / 10" in out[7]
    img, text, plot = client.predict("Sneaker", None, 300, "linear", 0, api_name="/diffusion_forward")
    assert Image.open(img).width > 28 * 9 and "t=300" in text
    fig = json.loads(plot["plot"])
    assert len(fig["data"]) == 5                      # 2 schedules x 2 curves + the marked t
    trade = client.predict(2.5, api_name="/diffusion_tradeoff")
    assert "your s = 2.5" in trade["plot"]


def test_compare_streams_both_chains(client):
    job = client.submit("DDPM against DDIM", "Bag", 3.0, 1.0, "DDIM", 10, 1, api_name="/diffusion_compare")
    final = job.result()
    assert "Step 10 / 10" in final[4] and "DDPM" in final[4] and "DDIM" in final[4]


@pytest.mark.parametrize("args, api", [
    (["Cat", 3.0, "DDIM", 20, 0.0, 0], "/diffusion_sample"),            # no such class
    (["Sneaker", 3.0, "Euler", 20, 0.0, 0], "/diffusion_sample"),       # no such sampler
    (["Sneaker", "a lot", "DDIM", 20, 0.0, 0], "/diffusion_step"),      # not a number
    (["Sneaker", None, 300, "quadratic", 0], "/diffusion_forward"),     # no such schedule
])
def test_bad_inputs_are_refused_and_the_app_keeps_serving(client, args, api):
    with pytest.raises(Exception):
        client.predict(*args, api_name=api)
    assert client.predict("still here", api_name="/echo") == "still here"


def test_out_of_range_numbers(client):
    """Through the API the components refuse values outside their range with a message; called directly,
    the handlers clamp them (s <= 10, steps <= 1000, eta >= 0, seed >= 0, t <= 999)."""
    from playground.diffusion import tab

    with pytest.raises(Exception, match="maximum"):
        client.predict("Sneaker", 1e6, "DDIM", 20, 0.0, 0, api_name="/diffusion_new")
    assert client.predict("still here", api_name="/echo") == "still here"
    assert tab._settings("Sneaker", 1e6, "DDIM", 100000, -3, -5) == (7, 10.0, "DDIM", 1000, 0.0, 0)
    _, text, _ = tab.forward_process("Sneaker", None, 5000, "cosine", 0)
    assert "t=999" in text


def test_scrub_and_export_without_a_chain_say_what_to_do():
    import gradio as gr

    from playground.diffusion import tab

    with pytest.raises(gr.Error, match="New chain"):
        tab.scrub(None, 3)
    with pytest.raises(gr.Error, match="take some steps"):
        tab.export_gif(None)
    with pytest.raises(gr.Error, match="take some steps"):
        tab.export_png(None)


def test_speed_probe_shape():
    from playground.diffusion import tab

    r = tab.speed_probe()
    assert r["family"] == "Diffusion" and r["seconds"] > 0 and "DDIM 50" in r["what"]
