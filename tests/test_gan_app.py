"""GAN lab through the public API (gradio_client against the whole app): every endpoint answers,
numbers and seeds out of range are clamped, bad input gets a message that says what to change, and the
app keeps serving afterwards. Slow: it serves the whole app."""
from __future__ import annotations

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from playground.core import settings
from playground.core.validate import MAX_SEED
from playground.gan.service import GRID_SCALE, MAX_SEEDS, SWEEP, WAVG_SCALE, Service

pytestmark = pytest.mark.slow

SVC = Service(settings.from_env())
COARSE = SVC.presets()["coarse"]
N_LAYERS = len(SVC.layer_names())


def _grid(client, *args):
    return client.predict(*args, api_name="/gan_mix")


def test_mix_grid_endpoint(client):
    grid, wavg, caption = _grid(client, "1, 2, 3, 4, 5", "10, 11, 12, 13, 14", COARSE, 0.8, True, 0)
    g = Image.open(grid)
    # 6 x 6 cells (header row and column) of 32 px at the grid scale, with padding
    assert g.size[0] == g.size[1] and g.size[0] >= 6 * 32 * GRID_SCALE
    assert Image.open(wavg).size == (32 * WAVG_SCALE, 32 * WAVG_SCALE)
    assert "25 mixes" in caption and "0, 1, 2" in caption


def test_mix_grid_other_shapes_and_no_layers(client):
    grid, _, caption = _grid(client, "7", "8 9", [], 1.0, False, 0)
    assert "none" in caption and "2 mixes" in caption
    assert Image.open(grid).size[0] < Image.open(grid).size[1]   # 2 rows of mixes + header, 1 column


def test_seeds_out_of_range_are_clamped(client):
    _, _, caption = _grid(client, "-5", "99999999999", COARSE, 0.8, True, -3)
    assert "source seeds [0]" in caption and f"style seeds [{MAX_SEED}]" in caption and "noise on (seed 0)" in caption


@pytest.mark.parametrize("src, sty, layers, psi, noise, nseed, needle", [
    ("abc", "1", COARSE, 0.8, True, 0, "Source seeds: 'abc' is not a whole number"),
    ("", "1", COARSE, 0.8, True, 0, "Source seeds is empty"),
    (",".join("1" * (MAX_SEEDS + 1)), "1", COARSE, 0.8, True, 0, f"at most {MAX_SEEDS} seeds"),
    ("1" * 300, "1", COARSE, 0.8, True, 0, "shorten it to at most"),
    ("1", "2", ["layer 9"], 0.8, True, 0, "Layers must be one of: 0: 4x4"),
    # wrong JSON types reach the service as sent (core.ui.raw_payloads), which names the field
    ("1", "2", COARSE, "x", True, 0, "Truncation psi must be a number from 0 to 1.5, not 'x'"),
    ("1", "2", COARSE, 0.8, "on", 0, "Noise must be true or false"),
    ("1", "2", COARSE, 0.8, True, "seed", "Noise seed must be a whole number"),
])
def test_mix_grid_bad_inputs_say_what_to_change(client, src, sty, layers, psi, noise, nseed, needle):
    with pytest.raises(AppError) as e:
        _grid(client, src, sty, layers, psi, noise, nseed)
    assert needle.lower() in str(e.value).lower()
    # the app keeps serving
    _, _, caption = _grid(client, "1", "2", COARSE, 0.8, True, 0)
    assert "1 mix +" in caption


def _single(client, *args):
    return client.predict(*args, api_name="/gan_single")


def test_single_image_endpoint(client):
    a, b, m = _single(client, 1, 10, 1, 0.5, 0.5, 0, 0, 0, 1, 0.8, True, 0)
    assert Image.open(m).size == (320, 320) and Image.open(a).size == (128, 128)
    # a negative seed is clamped to 0: the same images as seed 0
    assert Image.open(_single(client, -1, 10, *[0] * N_LAYERS, 0.8, True, 0)[0]).tobytes() == \
        Image.open(_single(client, 0, 10, *[0] * N_LAYERS, 0.8, True, 0)[0]).tobytes()


def test_single_bad_inputs(client):
    # a weight above 1 is clamped to 1 (the policy), so it gives the image of weight 1
    over = _single(client, 1, 10, 5, 1, 1, 0, 0, 0, 0, 0.8, True, 0)[2]
    assert Image.open(over).tobytes() == Image.open(_single(client, 1, 10, 1, 1, 1, 0, 0, 0, 0, 0.8, True, 0)[2]).tobytes()
    with pytest.raises(AppError, match=r"Layer weights \[1\] must be a number from 0 to 1, not 'a'"):
        _single(client, 1, 10, "a", 1, 1, 0, 0, 0, 0, 0.8, True, 0)
    assert _single(client, 2, 3, 1, 1, 1, 0, 0, 0, 0, 0.8, False, 0)


def test_preset_and_mapping_endpoints(client):
    assert client.predict("fine", api_name="/gan_preset") == SVC.presets()["fine"]
    with pytest.raises(AppError, match="Preset must be one of: coarse, middle, fine, custom"):
        client.predict("everything", api_name="/gan_preset")
    plot, note = client.predict(0.5, api_name="/gan_mapping")
    assert "ratio 0.50" in note and "w_avg" in str(plot)


def test_sweep_endpoint_returns_the_gif(client):
    shown, file = client.predict("3, 4", False, 0, api_name="/gan_sweep")
    gif = Image.open(file)
    assert gif.format == "GIF" and gif.n_frames == 2 * SWEEP[2] - 2 and Image.open(shown).format == "GIF"
    with pytest.raises(AppError, match="Source seeds: 'x' is not a whole number"):
        client.predict("x", True, 0, api_name="/gan_sweep")


def test_conditional_endpoint(client):
    strip, table = client.predict("Sneaker", 5, api_name="/gan_conditional")
    assert Image.open(strip).size == SVC.conditional("Sneaker", 5).strip.size
    assert "Asked for **Sneaker**" in table and "| seed | 5 | 6 |" in table
    assert client.predict("Sneaker", -4, api_name="/gan_conditional")[1].startswith("| seed | 0 | 1 |")   # clamped
    with pytest.raises(AppError, match=r"Class must be one of: T-shirt/top, .* \(got 'Sneakers'\)"):
        client.predict("Sneakers", 0, api_name="/gan_conditional")


def test_load_calls_run(client):
    for api, args in SVC.load_calls():
        assert client.predict(*args, api_name=f"/{api}")
