"""The Diffusion tab's text-to-image part through its public API (gradio_client): the tiny Stable
Diffusion of sd_tiny.py configured as the model folder (PLAYGROUND_SD_MODEL), in an app of the
Diffusion tab alone; and, in the whole app of conftest.py (no model configured, offline), the bundled
model standing in with its notice."""
from __future__ import annotations

import os

import pytest
import torch
from gradio_client.exceptions import AppError
from PIL import Image

from conftest import free_port

pytestmark = pytest.mark.slow    # an app is launched and real chains run through it

ARGS = ["a photo of a red sneaker", "", 7.5, "DDIM", 4, 0, "full", "latent channels"]


def serve_sd(folder):
    """The Diffusion tab alone, with the tiny model folder configured as a user would (the variable is set
    while the service is made). Returns (demo, url)."""
    import gradio as gr

    from playground import labs
    from playground.core import hub, settings
    from playground.diffusion import sd_service

    hub.decide("yes")
    lab = labs.by_key("diffusion")
    os.environ[sd_service.ENV_MODEL] = str(folder)
    try:
        with gr.Blocks(analytics_enabled=False) as demo:
            labs.tab(lab).build(labs.service(lab, settings.from_env()))
    finally:
        del os.environ[sd_service.ENV_MODEL]
    demo.queue(default_concurrency_limit=4)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def sd_url(tmp_path_factory):
    from playground.diffusion import sd_tiny

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    demo, url = serve_sd(sd_tiny.save(tmp_path_factory.mktemp("tiny-sd")))
    yield url
    demo.close()
    torch.set_num_threads(n)


@pytest.fixture()
def sd_client(sd_url):
    from gradio_client import Client

    return Client(sd_url, verbose=False)       # a session of its own: a chain of its own


def pixels(path):
    return Image.open(path).convert("RGB").tobytes()


def test_step_scrub_guidance_and_the_noise_views(sd_client):
    c = sd_client
    out1 = c.predict(*ARGS, api_name="/sd_step")           # x_t, x0, final, eps_u, eps_c, eps, status, k
    assert "Step 1 / 4** (taken: 1)" in out1[6] and "“a photo of a red sneaker”" in out1[6]
    out2 = c.predict(*ARGS, api_name="/sd_step")
    assert "Step 2 / 4** (taken: 2)" in out2[6]
    back = c.predict(1, "latent channels", api_name="/sd_scrub")
    assert "Step 1 / 4** (taken: 2)" in back[6] and pixels(back[0]) == pixels(out1[0])
    live = c.predict(2, 1.0, "latent channels", api_name="/sd_guidance")
    assert "Shown at your $s=1$" in live[6] and "ran with $s=7.5$" in live[6]
    assert pixels(live[3]) == pixels(out2[3]) and pixels(live[4]) == pixels(out2[4])     # e_u, e_c as they were
    assert pixels(live[5]) == pixels(out2[4]) and pixels(live[5]) != pixels(out2[5])     # at s = 1 e is e_c
    assert pixels(live[1]) != pixels(out2[1])                                            # and x0_hat moved
    decoded = c.predict(2, 7.5, "decoded (TAESD)", api_name="/sd_guidance")
    assert "Shown at your" not in decoded[6] and Image.open(decoded[3]).size == (256, 256)
    assert pixels(decoded[3]) != pixels(out2[3])
    for _ in range(2):
        last = c.predict(*ARGS, api_name="/sd_step")
    assert "Finished" in last[6] and Image.open(last[2]).size == (256, 256)           # the full VAE's image


def test_new_chain_play_and_the_one_call_image(sd_client):
    c = sd_client
    new = c.predict(*ARGS[:6], "1/2", ARGS[7], api_name="/sd_new")
    assert "Step 0 / 4" in new[6] and "64×64" in new[6] and new[1] is None
    play = c.predict(*ARGS[:6], "1/2", ARGS[7], api_name="/sd_play")      # the timer then ticks (not in the API)
    assert "Step 0 / 4** (taken: 0)" in play[6]
    img, note = c.predict(*ARGS[:7], api_name="/sd_sample")
    assert Image.open(img).size == (256, 256) and note == ""


def test_one_call_image_is_the_stepped_chains_final_image(sd_client):
    for _ in range(4):
        out = sd_client.predict(*ARGS, api_name="/sd_step")
    img, _ = sd_client.predict(*ARGS[:7], api_name="/sd_sample")
    assert "Finished" in out[6] and pixels(img) == pixels(out[2])


def test_compare_two_prompts_streams_both(sd_client):
    final = sd_client.submit("two prompts", ARGS[0], "a green lighthouse", "", 7.5, 1.0, "DDIM", 3, 0, "1/2",
                             api_name="/sd_compare").result()
    assert "Step 3 / 3" in final[4] and "a green lighthouse" in final[4]
    assert pixels(final[0]) != pixels(final[2])


def test_bad_input_is_answered_and_the_app_keeps_serving(sd_client):
    with pytest.raises(AppError, match="shorten it to at most 500"):
        sd_client.predict("x" * 501, *ARGS[1:], api_name="/sd_step")
    with pytest.raises(AppError, match="No chain yet"):
        sd_client.predict(2, "latent channels", api_name="/sd_scrub")
    assert "No chain yet" in sd_client.predict(0, 3.0, "latent channels", api_name="/sd_guidance")[6]   # no error
    assert "Step 1 / 4" in sd_client.predict(*ARGS, api_name="/sd_step")[6]


def test_without_a_model_the_bundled_model_stands_in(client):
    """The whole app (conftest): offline and no folder configured."""
    out = client.predict("a long red dress", *ARGS[1:], api_name="/sd_step")
    assert "not available here" in out[6] and "class *Dress*" in out[6] and "Step 1 / 4" in out[6]
    assert Image.open(out[0]).size == (224, 224)
