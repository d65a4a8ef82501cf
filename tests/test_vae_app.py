"""VAE lab: the bundled checkpoints' cards, and every endpoint through the public API (gradio_client
against the whole app). Bad input gets a message that says what to change; the app keeps serving."""
from __future__ import annotations

import base64
import io
import json

import httpx
import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from playground.core import checkpoint
from playground.vae import lab, tab

FASHION = "Fashion-MNIST"
DIGITS = "Digits (opencv, 5,000)"
ZEROS = [0.0] * tab.N_SLIDERS


def live(value) -> Image.Image:
    """The live decode answers a data URL of the 28x28 PNG (no file round trip)."""
    assert isinstance(value, str) and value.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1])))


# --- the cards --------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["fashion", "digits"])
def test_cards_record_the_held_out_elbo_and_beat_the_peer(key):
    card = checkpoint.read_card(lab.ASSETS / lab.model_name(key, "main"))
    m = card["metrics"]
    assert m["neg_elbo_nats"] == pytest.approx(m["recon_nats"] + m["kl_nats"], abs=0.01)
    assert m["eval_images"] == (10_000 if key == "fashion" else 500)
    assert card["recipe"]["likelihood"].startswith("Bernoulli")
    peer = m["peer_mlp_784_400_20"]
    assert peer["neg_elbo_nats"] == pytest.approx(peer["recon_nats"] + peer["kl_nats"], abs=0.01)
    assert m["neg_elbo_nats"] < peer["neg_elbo_nats"], "our conv VAE must beat the MLP peer"
    peer_card = checkpoint.read_card(lab.ASSETS / lab.model_name(key, "peer"))
    assert peer_card["recipe"]["epochs"] == card["recipe"]["epochs"]
    assert peer_card["config"]["latent_dim"] == 20 and peer_card["config"]["hidden"] == 400
    assert len(m["kl_per_dim_nats"]) == card["config"]["latent_dim"] >= 8


def test_bundled_set_beta_and_2d_models_and_sizes():
    assert checkpoint.read_card(lab.ASSETS / lab.model_name("fashion", "beta"))["config"]["beta"] > 1
    for key in ("fashion", "digits"):
        assert checkpoint.read_card(lab.ASSETS / lab.model_name(key, "map"))["config"]["latent_dim"] == 2
        assert (lab.ASSETS / f"{lab.model_name(key, 'map')}_map.safetensors").exists()
    for f in lab.ASSETS.iterdir():
        assert f.stat().st_size < 10 * 1024 * 1024, f
    for name in ("fashion_b1", "fashion_b4", "fashion_b1_2d", "digits_b1", "digits_b1_2d"):
        m, card = checkpoint.load(lab.ASSETS / name)               # sha256 checked, strict load
        assert m.config.latent_dim == card["config"]["latent_dim"]


def test_speed_probe_and_load_calls():
    r = tab.speed_probe()
    assert r["family"] == "VAE" and 0 < r["seconds"] < 5
    assert {c[0] for c in tab.load_calls()} >= {"vae_decode", "vae_encode_pick"}


# --- endpoints --------------------------------------------------------------------------------

def test_decode_reset_and_sample(client):
    a = live(client.predict(FASHION, *ZEROS, api_name="/vae_decode"))
    assert a.size == (28, 28)
    b = live(client.predict(FASHION, *([2.0] + ZEROS[1:]), api_name="/vae_decode"))
    assert np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() > 1.0   # the first slider matters
    out = client.predict(FASHION, api_name="/vae_reset")
    assert list(out[: tab.N_SLIDERS]) == ZEROS and live(out[tab.N_SLIDERS]).size == a.size
    out = client.predict(FASHION, 5, api_name="/vae_sample")
    vals, img, seed = out[: tab.N_SLIDERS], out[tab.N_SLIDERS], out[tab.N_SLIDERS + 1]
    assert seed == 6 and any(v != 0 for v in vals) and all(abs(v) <= tab.SLIDER_MAX for v in vals)
    again = live(client.predict(FASHION, *vals, api_name="/vae_decode"))
    assert np.abs(np.asarray(again, float) - np.asarray(live(img), float)).max() <= 8  # rounding only


def test_encode_pick_resample_and_to_sliders(client):
    label = lab.pick_labels("fashion")[7]
    seen, recon, samples, plot, md, *rest = client.predict(FASHION, label, api_name="/vae_encode_pick")
    assert Image.open(seen).size == Image.open(recon).size == (280, 280)
    assert Image.open(samples).size[0] > 5 * Image.open(samples).size[1]            # a strip of 6
    assert "ELBO" in md and "KL" in md
    assert plot is not None
    r = client.predict(api_name="/vae_resample")
    s2 = r[0] if isinstance(r, (list, tuple)) else r
    assert Image.open(s2).size == Image.open(samples).size
    assert not np.array_equal(np.asarray(Image.open(s2)), np.asarray(Image.open(samples)))
    out = client.predict(FASHION, api_name="/vae_to_sliders")
    assert any(v != 0 for v in out[: tab.N_SLIDERS])


def _png(path, size=(200, 200), fg=0, bg=255):
    img = Image.new("L", size, bg)
    ImageDraw.Draw(img).ellipse([40, 30, 160, 170], outline=fg, width=14)
    img.save(path)
    return str(path)


def test_encode_upload_and_drawing(client, tmp_path):
    out = client.predict(FASHION, handle_file(_png(tmp_path / "o.png")), api_name="/vae_encode_upload")
    seen = np.asarray(Image.open(out[0]).convert("L"))
    assert seen[:10].mean() < 30 and seen.max() > 200                # inverted: light ring on black
    sketch = {"background": None, "layers": [], "composite": handle_file(_png(tmp_path / "d.png"))}
    out = client.predict(DIGITS, sketch, api_name="/vae_encode_drawing")
    assert "ELBO" in out[4]


def test_latent_map_and_manifold(client):
    plot, img, grid = client.predict(FASHION, 0.5, -0.5, 6, api_name="/vae_map")
    assert plot is not None and Image.open(img).size == (280, 280)
    g = Image.open(grid)
    assert g.size == ((6 * 30 + 2) * 2, (6 * 30 + 2) * 2)
    g5 = Image.open(client.predict(FASHION, 5, api_name="/vae_manifold"))
    assert g5.size == ((5 * 30 + 2) * 2,) * 2
    assert Image.open(client.predict(FASHION, 1.0, 1.0, api_name="/vae_map_decode")).size == (280, 280)
    assert client.predict(FASHION, 1.0, 1.0, api_name="/vae_map_plot") is not None
    client.predict(FASHION, lab.pick_labels("fashion")[3], api_name="/vae_encode_pick")
    z1, z2, *_ = client.predict(FASHION, 6, api_name="/vae_map_to_encoded")
    assert (z1, z2) != (0.0, 0.0)


def test_interpolation_strip_and_gif(client):
    labels = lab.pick_labels("digits")
    client.predict(DIGITS, api_name="/vae_dataset")
    strip, gif_view, gif_file = client.predict(DIGITS, labels[1], labels[7], 6, "linear", api_name="/vae_interpolate")
    s = Image.open(strip)
    assert s.size == ((6 * 30 + 2) * 4, (2 * 30 + 2) * 4)              # N columns, linear + spherical rows
    g = Image.open(gif_file)
    assert g.format == "GIF" and g.n_frames == 2 * 6 - 2                 # there and back again


def test_beta_comparison(client):
    grid, plot = client.predict(FASHION, 3, api_name="/vae_compare_beta")
    assert Image.open(grid).size == ((8 * 30 + 2) * 3, (5 * 30 + 2) * 3)
    fig = json.loads(plot["plot"]) if isinstance(plot, dict) and isinstance(plot.get("plot"), str) else plot
    assert fig is not None


def test_switching_data_set_relabels_the_sliders(client):
    out = client.predict(DIGITS, api_name="/vae_dataset")
    assert len(out) == tab.N_SLIDERS + 4 and "nats" in str(out[-1])
    assert live(client.predict(DIGITS, *([1.5] + ZEROS[1:]), api_name="/vae_decode")).size == (28, 28)


# --- bad input --------------------------------------------------------------------------------

def _still_serving(client):
    assert client.predict("still here", api_name="/echo") == "still here"
    assert client.predict(FASHION, *ZEROS, api_name="/vae_decode")


@pytest.mark.parametrize("values, needle", [
    ([7.0] + ZEROS[1:], "out of range"),
    (ZEROS[:-1] + [-1e9], "out of range"),
    (["abc"] + ZEROS[1:], "must be a number"),
    ([None] + ZEROS[1:], "must be a number"),
])
def test_decode_refuses_bad_latents(client, values, needle):
    with pytest.raises(AppError, match=needle):
        client.predict(FASHION, *values, api_name="/vae_decode")
    _still_serving(client)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_decode_refuses_nan_and_inf_sent_as_raw_json(client, app_url, literal):
    """gradio_client cannot even send NaN; a raw HTTP call can."""
    body = '{"data": ["Fashion-MNIST", %s%s]}' % (literal, ", 0" * (tab.N_SLIDERS - 1))
    base = app_url.rstrip("/") + "/gradio_api/call/vae_decode"
    r = httpx.post(base, content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200
    events = httpx.get(f"{base}/{r.json()['event_id']}", timeout=60).text
    assert "event: error" in events and "finite number" in events
    _still_serving(client)


def test_bad_data_set_and_picks(client):
    with pytest.raises(AppError, match="Data set must be one of"):
        client.predict("CIFAR", *ZEROS, api_name="/vae_decode")
    with pytest.raises(AppError, match="Test image: choose one of"):
        client.predict(FASHION, "test #99999", api_name="/vae_encode_pick")
    with pytest.raises(AppError, match="Steps"):
        client.predict(FASHION, lab.pick_labels("fashion")[0], lab.pick_labels("fashion")[1], "many",
                       "linear", api_name="/vae_interpolate")
    with pytest.raises(AppError, match="Seed"):
        client.predict(FASHION, "lucky", api_name="/vae_sample")
    _still_serving(client)


def test_upload_refuses_non_images_and_huge_images(client, tmp_path):
    txt = tmp_path / "notes.png"
    txt.write_text("this is not an image\n" * 20)
    with pytest.raises(AppError, match="not an image"):
        client.predict(FASHION, handle_file(str(txt)), api_name="/vae_encode_upload")
    big = tmp_path / "big.png"
    Image.new("L", (7100, 7100), 0).save(big)                        # 50.4 megapixels, a small file
    with pytest.raises(AppError, match="megapixels"):
        client.predict(FASHION, handle_file(str(big)), api_name="/vae_encode_upload")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    with pytest.raises(AppError, match="blank"):
        client.predict(FASHION, handle_file(str(blank)), api_name="/vae_encode_upload")
    with pytest.raises(AppError, match="first"):
        client.predict(FASHION, None, api_name="/vae_encode_drawing")
    _still_serving(client)
