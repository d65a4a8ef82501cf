"""Diffusion tab through its public API (gradio_client): the endpoints work on the bundled model,
and bad input is answered with an error while the app keeps serving."""
from __future__ import annotations

import json

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

pytestmark = pytest.mark.slow   # the whole app is launched, and real chains run through it

ARGS = ["Sneaker", 3.0, "DDIM", 20, 0.0, 0]


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


def test_one_call_image_is_the_stepped_chains_last_image(app_url):
    """Through the API too: /diffusion_sample shows the picture that Step shows as x_t' at the last step."""
    from gradio_client import Client

    fresh = Client(app_url, verbose=False)
    args = ["Sneaker", 3.0, "DDPM", 5, 0.0, 0]
    once = Image.open(fresh.predict(*args, api_name="/diffusion_sample"))
    for _ in range(5):
        out = fresh.predict(*args, api_name="/diffusion_step")
    assert "Finished" in out[7]
    assert Image.open(out[3]).tobytes() == once.tobytes()        # outputs: x_t, x0, eps, x_t', ...


def test_load_calls_run(client):
    from playground.core import settings
    from playground.diffusion import service

    for api, args in service.Service(settings.from_env()).load_calls():
        assert client.predict(*args, api_name=f"/{api}") is not None


def test_compare_streams_both_chains(client):
    job = client.submit("DDPM against DDIM", "Bag", 3.0, 1.0, "DDIM", 10, 1, api_name="/diffusion_compare")
    final = job.result()
    assert "Step 10 / 10" in final[4] and "DDPM" in final[4] and "DDIM" in final[4]


@pytest.mark.parametrize("args, api, match", [   # the service sees what was sent (core.ui.raw_payloads)
    (["Cat", 3.0, "DDIM", 20, 0.0, 0], "/diffusion_sample", r"Class must be one of: T-shirt/top, Trouser"),
    (["Sneaker", 3.0, "Euler", 20, 0.0, 0], "/diffusion_sample", r"Sampler must be one of: DDIM, DDPM \(got 'Euler'\)"),
    (["Sneaker", None, 300, "quadratic", 0], "/diffusion_forward", r"Schedule must be one of: linear, cosine"),
    (["Sneaker", "a lot", "DDIM", 20, 0.0, 0], "/diffusion_step", r"Guidance scale s must be a number from 0 to 10, not 'a lot'"),
])
def test_bad_inputs_are_refused_and_the_app_keeps_serving(client, args, api, match):
    with pytest.raises(AppError, match=match):
        client.predict(*args, api_name=api)
    assert client.predict("still here", api_name="/echo") == "still here"


def test_out_of_range_numbers_through_the_api(client):
    """Through the API as in the service, a number outside its range is clamped (core/validate.py)."""
    status = client.predict("Sneaker", 1e6, "DDIM", 2, -3.0, -9, api_name="/diffusion_step")[7]
    assert "$s=10$" in status and "seed 0" in status
    assert client.predict("still here", api_name="/echo") == "still here"


def test_scrub_and_export_without_a_chain_say_what_to_do(app_url):
    from gradio_client import Client

    fresh = Client(app_url, verbose=False)     # a new session: no chain in its state
    with pytest.raises(AppError, match="No chain yet: press New chain"):
        fresh.predict(3, api_name="/diffusion_scrub")
    with pytest.raises(AppError, match="Nothing to export yet"):
        fresh.predict(api_name="/diffusion_gif")
