"""VAE lab: the bundled checkpoints' cards, and every endpoint through the public API (gradio_client
against the whole app, so those tests are marked slow). Bad input gets a message that says what to
change; the app keeps serving."""
from __future__ import annotations

import base64
import io
import json
import re

import httpx
import numpy as np
import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError
from PIL import Image, ImageDraw

from playground.core import checkpoint, settings
from playground.vae import service as S
from playground.vae import views

SVC = S.Service(settings.from_env())     # the same cards the app reads (models load on first use)
FASHION, DIGITS = SVC.labels["fashion"], SVC.labels["digits"]
N = SVC.n_sliders
FIRST = SVC.dataset_info(SVC.default).order[0]   # the latent dimension slider 1 drives (most KL)
ZEROS = [0.0] * N
SIZE = SVC.image_size
RANGE = f"Slider 1 (z[{FIRST}]) must be a number from {-S.Z_LIMIT:g} to {S.Z_LIMIT:g}"   # core.validate's words


def grid_px(n: int, scale: int) -> int:
    """Side of a strip of n model-sized images (2 px padding, as core.images.grid) enlarged `scale` times."""
    return (n * (SIZE + 2) + 2) * scale


def figure(value) -> dict:
    """A gr.Plot value through the API: {"type": "plotly", "plot": "<figure JSON>"}."""
    return json.loads(value["plot"])


def values(a) -> list:
    """A trace's coordinates: a JSON list, or plotly's typed array {"dtype", "bdata": base64} for numpy data."""
    if isinstance(a, dict):
        return np.frombuffer(base64.b64decode(a["bdata"]), dtype=a["dtype"]).tolist()
    return list(a)


def live(value) -> Image.Image:
    """The live decode answers a data URL of the 28x28 PNG (no file round trip)."""
    assert isinstance(value, str) and value.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(value.split(",", 1)[1])))


# --- the cards --------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["fashion", "digits"])
def test_cards_record_the_held_out_elbo_and_beat_the_peer(key):
    card = checkpoint.read_card(SVC.assets / SVC.roles[key]["main"])
    m = card["metrics"]
    assert m["neg_elbo_nats"] == pytest.approx(m["recon_nats"] + m["kl_nats"], abs=0.01)
    assert m["eval_images"] == (10_000 if key == "fashion" else 500)
    assert card["recipe"]["likelihood"].startswith("Bernoulli")
    peer = m["peer_mlp_784_400_20"]
    assert peer["neg_elbo_nats"] == pytest.approx(peer["recon_nats"] + peer["kl_nats"], abs=0.01)
    assert m["neg_elbo_nats"] < peer["neg_elbo_nats"], "our conv VAE must beat the MLP peer"
    peer_card = checkpoint.read_card(SVC.assets / SVC.roles[key]["peer"])
    assert peer_card["recipe"]["epochs"] == card["recipe"]["epochs"]
    assert peer_card["config"]["latent_dim"] == 20 and peer_card["config"]["hidden"] == 400
    assert len(m["kl_per_dim_nats"]) == card["config"]["latent_dim"] >= 8


def test_bundled_set_beta_and_2d_models_and_sizes():
    assert checkpoint.read_card(SVC.assets / SVC.roles["fashion"]["beta"])["config"]["beta"] > 1
    for key in ("fashion", "digits"):
        assert checkpoint.read_card(SVC.assets / SVC.roles[key]["map"])["config"]["latent_dim"] == S.MAP_DIM
        assert (SVC.assets / f"{SVC.roles[key]['map']}_map.safetensors").exists()
    for f in SVC.assets.iterdir():
        assert f.stat().st_size < 10 * 1024 * 1024, f
    for name in ("fashion_b1", "fashion_b4", "fashion_b1_2d", "digits_b1", "digits_b1_2d"):
        m, card = checkpoint.load(SVC.assets / name)               # sha256 checked, strict load
        assert m.config.latent_dim == card["config"]["latent_dim"]


# --- endpoints --------------------------------------------------------------------------------

@pytest.mark.slow
def test_decode_reset_and_sample(client):
    a = live(client.predict(FASHION, *ZEROS, api_name="/vae_decode"))
    assert a.size == (28, 28)
    b = live(client.predict(FASHION, *([2.0] + ZEROS[1:]), api_name="/vae_decode"))
    assert np.abs(np.asarray(a, float) - np.asarray(b, float)).mean() > 1.0   # the first slider matters
    out = client.predict(FASHION, api_name="/vae_reset")
    assert list(out[:N]) == ZEROS and live(out[N]).size == a.size
    out = client.predict(FASHION, 5, api_name="/vae_sample")
    vals, img, seed = out[:N], out[N], out[N + 1]
    assert seed == 6 and any(v != 0 for v in vals) and all(abs(v) <= S.SLIDER_MAX for v in vals)
    again = live(client.predict(FASHION, *vals, api_name="/vae_decode"))
    assert np.array_equal(np.asarray(again), np.asarray(live(img)))     # the image is what the sliders hold


@pytest.mark.slow
def test_encode_pick_resample_and_to_sliders(client):
    label = S.pick_labels("fashion")[7]
    seen, recon, samples, plot, md, *rest = client.predict(FASHION, label, api_name="/vae_encode_pick")
    assert Image.open(seen).size == Image.open(recon).size == (SIZE * views.SCALE,) * 2
    assert Image.open(samples).size == (grid_px(S.N_SAMPLES, 5), grid_px(1, 5))
    expected = SVC.encode_pick(FASHION, label)
    assert f"**{expected.terms['neg_elbo']:.1f}**" in md and "KL" in md
    bars = figure(plot)["data"][0]
    assert bars["x"] == [f"z[{j}]" for j in expected.order]
    assert bars["y"] == pytest.approx([expected.mu[j] for j in expected.order], abs=1e-5)
    r = client.predict(api_name="/vae_resample")
    s2 = r[0] if isinstance(r, (list, tuple)) else r
    assert Image.open(s2).size == Image.open(samples).size
    assert not np.array_equal(np.asarray(Image.open(s2)), np.asarray(Image.open(samples)))
    out = client.predict(FASHION, api_name="/vae_to_sliders")
    assert list(out[:N]) == SVC.to_sliders(FASHION, expected.state).values


def _png(path, size=(200, 200), fg=0, bg=255):
    img = Image.new("L", size, bg)
    ImageDraw.Draw(img).ellipse([40, 30, 160, 170], outline=fg, width=14)
    img.save(path)
    return str(path)


@pytest.mark.slow
def test_encode_upload_and_drawing(client, tmp_path):
    out = client.predict(FASHION, handle_file(_png(tmp_path / "o.png")), api_name="/vae_encode_upload")
    seen = np.asarray(Image.open(out[0]).convert("L"))
    assert seen[:10].mean() < 30 and seen.max() > 200                # inverted: light ring on black
    sketch = {"background": None, "layers": [], "composite": handle_file(_png(tmp_path / "d.png"))}
    out = client.predict(DIGITS, sketch, api_name="/vae_encode_drawing")
    assert "ELBO" in out[4]


@pytest.mark.slow
def test_latent_map_and_manifold(client):
    plot, img, grid = client.predict(FASHION, 0.5, -0.5, 6, api_name="/vae_map")
    assert Image.open(img).size == (SIZE * views.SCALE,) * 2
    traces = figure(plot)["data"]
    n_points = len(SVC.map_plot(FASHION, 0, 0).points)
    shown = sum(len(values(t["x"])) for t in traces if t["name"] in S.CLASSES["fashion"])
    assert shown == min(views.MAP_POINTS, n_points)
    assert [(t["name"], t["x"], t["y"]) for t in traces[-1:]] == [("current z", [0.5], [-0.5])]
    assert Image.open(grid).size == (grid_px(6, 2),) * 2
    g5 = Image.open(client.predict(FASHION, 5, api_name="/vae_manifold"))
    assert g5.size == (grid_px(5, 2),) * 2
    assert Image.open(client.predict(FASHION, 1.0, 1.0, api_name="/vae_map_decode")).size == (SIZE * views.SCALE,) * 2
    current = figure(client.predict(FASHION, 1.0, 9.0, api_name="/vae_map_plot"))["data"][-1]
    assert (current["x"], current["y"]) == ([1.0], [S.Z_LIMIT])                  # clamped, not refused
    label = S.pick_labels("fashion")[3]
    client.predict(FASHION, label, api_name="/vae_encode_pick")
    z1, z2, plot, *_ = client.predict(FASHION, 6, api_name="/vae_map_to_encoded")
    mark = figure(plot)["data"][-1]
    assert mark["name"] == "encoded image" and (z1, z2) == tuple(
        round(max(-S.SLIDER_MAX, min(S.SLIDER_MAX, v)), 2) for v in (mark["x"][0], mark["y"][0]))


@pytest.mark.slow
def test_interpolation_strip_and_gif(client):
    labels = S.pick_labels("digits")
    client.predict(DIGITS, api_name="/vae_dataset")
    strip, gif_view, gif_file = client.predict(DIGITS, labels[1], labels[7], 6, "linear", api_name="/vae_interpolate")
    s = Image.open(strip)
    assert s.size == (grid_px(6, 4), grid_px(2, 4))                     # N columns, linear + spherical rows
    g = Image.open(gif_file)
    assert g.format == "GIF" and g.n_frames == 2 * 6 - 2                 # there and back again


@pytest.mark.slow
def test_beta_comparison(client):
    grid, plot = client.predict(FASHION, 3, api_name="/vae_compare_beta")
    assert Image.open(grid).size == (grid_px(S.BETA_IMAGES, 3), grid_px(5, 3))
    for bars, role in zip(figure(plot)["data"], ("main", "beta")):
        card = checkpoint.read_card(SVC.assets / SVC.roles["fashion"][role])
        assert bars["y"] == sorted(card["metrics"]["kl_per_dim_nats"], reverse=True)
        assert bars["name"] == f"beta = {card['config']['beta']:g}"


@pytest.mark.slow
def test_switching_data_set_relabels_the_sliders(client):
    out = client.predict(DIGITS, api_name="/vae_dataset")
    card = checkpoint.read_card(SVC.assets / SVC.roles["digits"]["main"])
    assert len(out) == N + 5 and f"**{card['metrics']['neg_elbo_nats']:.1f}**" in out[-1]
    assert out[-2]["value"] is None and S.pick_labels("digits")[0] in str(out[-2]["choices"])   # the VQ-VAE's picker
    assert live(client.predict(DIGITS, *([1.5] + ZEROS[1:]), api_name="/vae_decode")).size == (28, 28)


@pytest.mark.slow
def test_vq_encode_then_edit_a_code_through_the_api(client):
    """One session: encode a test image into its code grid, then put a code into one cell."""
    x, recon, edited, grid, usage, terms, compare = client.predict(FASHION, "test #9: Sneaker",
                                                                   api_name="/vae_vq_encode")
    codes = figure(grid)["data"][0]["z"]
    k = (codes[2][3] + 1) % SVC.vq_shape[1]
    out = client.predict(FASHION, 2, 3, k, api_name="/vae_vq_edit")
    assert figure(out[3])["data"][0]["z"][2][3] == k and "1 edited" in json.dumps(figure(out[3])["layout"]["title"])
    assert np.asarray(Image.open(out[1])).tolist() == np.asarray(Image.open(recon)).tolist()
    assert np.asarray(Image.open(out[2])).tolist() != np.asarray(Image.open(edited)).tolist()
    assert "reconstruction" in terms and "VAE:" in compare and "perplexity" in json.dumps(figure(usage)["layout"])


# --- bad input --------------------------------------------------------------------------------

def _still_serving(client):
    assert client.predict("still here", api_name="/echo") == "still here"
    assert client.predict(FASHION, *ZEROS, api_name="/vae_decode")


@pytest.mark.slow
def test_decode_clamps_out_of_range_latents(client):
    """One number policy: a latent past +-Z_LIMIT is clamped to it (as a slider would), never refused."""
    for sent, edge in (([7.0] + ZEROS[1:], [S.Z_LIMIT] + ZEROS[1:]), (ZEROS[:-1] + [-1e9], ZEROS[:-1] + [-S.Z_LIMIT])):
        got = live(client.predict(FASHION, *sent, api_name="/vae_decode"))
        assert np.array_equal(np.asarray(got), np.asarray(live(client.predict(FASHION, *edge, api_name="/vae_decode"))))


@pytest.mark.slow
@pytest.mark.parametrize("values, needle", [
    (["abc"] + ZEROS[1:], re.escape(f"{RANGE}, not 'abc'")),
    ([None] + ZEROS[1:], re.escape(f"{RANGE}.")),
])
def test_decode_refuses_non_numbers(client, values, needle):
    with pytest.raises(AppError, match=needle):
        client.predict(FASHION, *values, api_name="/vae_decode")
    _still_serving(client)


@pytest.mark.slow
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_decode_refuses_nan_and_inf_sent_as_raw_json(client, app_url, literal):
    """gradio_client cannot even send NaN; a raw HTTP call can."""
    body = '{"data": ["Fashion-MNIST", %s%s]}' % (literal, ", 0" * (N - 1))
    base = app_url.rstrip("/") + "/gradio_api/call/vae_decode"
    r = httpx.post(base, content=body, headers={"content-type": "application/json"}, timeout=30)
    assert r.status_code == 200
    events = httpx.get(f"{base}/{r.json()['event_id']}", timeout=60).text
    got = {"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}[literal]
    assert "event: error" in events and f"{RANGE} (got {got})" in events
    _still_serving(client)


@pytest.mark.slow
def test_bad_data_set_and_picks(client):
    with pytest.raises(AppError, match="Data set must be one of"):
        client.predict("CIFAR", *ZEROS, api_name="/vae_decode")
    with pytest.raises(AppError, match="Test image must be one of: test #19: T-shirt/top"):
        client.predict(FASHION, "test #99999", api_name="/vae_encode_pick")
    with pytest.raises(AppError, match=f"Steps must be a whole number from {S.STEPS[0]} to {S.STEPS[1]}, not 'many'"):
        client.predict(FASHION, S.pick_labels("fashion")[0], S.pick_labels("fashion")[1], "many",
                       "linear", api_name="/vae_interpolate")
    with pytest.raises(AppError, match="Seed must be a whole number"):
        client.predict(FASHION, "lucky", api_name="/vae_sample")
    _still_serving(client)


@pytest.mark.slow
def test_upload_refuses_non_images_and_huge_images(client, tmp_path):
    txt = tmp_path / "notes.png"
    txt.write_text("this is not an image\n" * 20)
    with pytest.raises(AppError, match="Uploaded image: that file is not an image"):
        client.predict(FASHION, handle_file(str(txt)), api_name="/vae_encode_upload")
    big = tmp_path / "big.png"
    Image.new("L", (7100, 7100), 0).save(big)                        # 50.4 megapixels, a small file
    with pytest.raises(AppError, match="Uploaded image: that image is too large; use one under 16 megapixels"):
        client.predict(FASHION, handle_file(str(big)), api_name="/vae_encode_upload")
    blank = tmp_path / "blank.png"
    Image.new("L", (50, 50), 255).save(blank)
    with pytest.raises(AppError, match="Uploaded image: the picture is blank"):
        client.predict(FASHION, handle_file(str(blank)), api_name="/vae_encode_upload")
    with pytest.raises(AppError, match="Drawing: upload or choose an image first"):
        client.predict(FASHION, None, api_name="/vae_encode_drawing")
    _still_serving(client)
