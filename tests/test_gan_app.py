"""GAN lab through the public API (gradio_client against the whole app): every endpoint answers,
bad input gets a message that says what to change, and the app keeps serving afterwards."""
from __future__ import annotations

import math

import pytest
from gradio_client.exceptions import AppError
from PIL import Image

from playground.gan import sampling as S
from playground.gan import tab

COARSE = [S.LAYER_NAMES[i] for i in S.PRESETS["coarse"]]


def _grid(client, *args):
    return client.predict(*args, api_name="/gan_mix")


def test_mix_grid_endpoint(client):
    grid, wavg, caption = _grid(client, "1, 2, 3, 4, 5", "10, 11, 12, 13, 14", COARSE, 0.8, True, 0)
    g = Image.open(grid)
    # 6 x 6 cells (header row and column) of 32 px at x4, with padding
    assert g.size[0] == g.size[1] and g.size[0] >= 6 * 32 * tab.SCALE
    assert Image.open(wavg).size == (32 * 6, 32 * 6)
    assert "25 mixes" in caption and "0, 1, 2" in caption


def test_mix_grid_other_shapes_and_no_layers(client):
    grid, _, caption = _grid(client, "7", "8 9", [], 1.0, False, 0)
    assert "none" in caption and "2 mixes" in caption
    assert Image.open(grid).size[0] < Image.open(grid).size[1]   # 2 rows of mixes + header, 1 column


@pytest.mark.parametrize("src, sty, layers, psi, noise, nseed, needle", [
    ("abc", "1", COARSE, 0.8, True, 0, "not a whole number"),
    ("", "1", COARSE, 0.8, True, 0, "empty"),
    ("1,2,3,4,5,6,7", "1", COARSE, 0.8, True, 0, "at most 6"),
    ("-5", "1", COARSE, 0.8, True, 0, "from 0 to"),
    ("1" * 300, "1", COARSE, 0.8, True, 0, "shorten"),
    ("1", "99999999999", COARSE, 0.8, True, 0, "from 0 to"),
    ("1", "2", ["layer 9"], 0.8, True, 0, "list of choices"),
    ("1", "2", COARSE, 99.0, True, 0, "maximum value 1.5"),
    ("1", "2", COARSE, 0.8, True, -3, "minimum value 0"),
    # wrong JSON types are refused by Gradio's own schema check before the handler runs
    ("1", "2", "0: 4x4", "x", True, 0, ""),
    ("1", "2", COARSE, 0.8, True, "seed", ""),
])
def test_mix_grid_bad_inputs_say_what_to_change(client, src, sty, layers, psi, noise, nseed, needle):
    with pytest.raises(AppError) as e:
        _grid(client, src, sty, layers, psi, noise, nseed)
    assert needle.lower() in str(e.value).lower()
    # the app keeps serving
    _, _, caption = _grid(client, "1", "2", COARSE, 0.8, True, 0)
    assert "1 mix +" in caption


def test_checks_behind_the_components():
    """The handlers' own checks, for what the components' preprocessing might let through."""
    from gradio import Error

    with pytest.raises(Error, match="Layer must be one of"):
        tab.parse_layers(["layer 9"])
    with pytest.raises(Error, match="list of layer names"):
        tab.parse_layers(3)
    assert tab.parse_layers("6: 32x32") == [6] and tab.parse_layers(None) == []
    with pytest.raises(Error, match="true or false"):
        tab.flag("Noise", "yes")
    with pytest.raises(Error, match="Preset must be one of"):
        tab.preset_layers("everything")
    with pytest.raises(Error, match="finite"):
        tab.render_single(1, 2, *[math.inf] * 7, 0.8, True, 0)
    with pytest.raises(Error, match="Expected 7 layer weights"):
        tab.render_single(1, 2, 0.5)
    assert tab.layers_preset(COARSE) == "coarse" and tab.layers_preset(["0: 4x4"]) == "custom"
    assert tab.parse_seeds("Seeds", " 3;4 5 ") == [3, 4, 5]


def test_single_image_endpoint(client):
    a, b, m = client.predict(1, 10, 1, 0.5, 0.5, 0, 0, 0, 1, 0.8, True, 0, api_name="/gan_single")
    assert Image.open(m).size == (320, 320) and Image.open(a).size == (128, 128)


def test_single_bad_inputs(client):
    with pytest.raises(AppError, match="minimum value 0"):
        client.predict(-1, 10, 1, 1, 1, 0, 0, 0, 0, 0.8, True, 0, api_name="/gan_single")
    with pytest.raises(AppError, match="maximum value 1"):
        client.predict(1, 10, 5, 1, 1, 0, 0, 0, 0, 0.8, True, 0, api_name="/gan_single")
    with pytest.raises(AppError):
        client.predict(1, 10, "a", 1, 1, 0, 0, 0, 0, 0.8, True, 0, api_name="/gan_single")
    assert client.predict(2, 3, 1, 1, 1, 0, 0, 0, 0, 0.8, False, 0, api_name="/gan_single")


def test_preset_and_mapping_endpoints(client):
    assert client.predict("fine", api_name="/gan_preset") == [S.LAYER_NAMES[i] for i in S.PRESETS["fine"]]
    with pytest.raises(AppError, match="list of choices"):
        client.predict("everything", api_name="/gan_preset")
    plot, note = client.predict(0.5, api_name="/gan_mapping")
    assert "ratio 0.50" in note and plot


def test_load_calls_run(client):
    for api, args in tab.load_calls():
        assert client.predict(*args, api_name=f"/{api}")


def test_speed_probe_and_cards():
    r = tab.speed_probe()
    assert r["family"] == "GAN" and 0 < r["seconds"] < 60
    table = tab.cards_table()
    assert "FD" in table and "floor" in table
    ours, peer = S.card(S.MODEL)["discriminator_config"]["base"], S.card(S.PEER)["discriminator_config"]["base"]
    assert f"| discriminator | DCGAN's, {ours}, {2 * ours}, {4 * ours} maps" in table
    assert f"DCGAN's, {peer}, {2 * peer}, {4 * peer} maps at 16, 8, 4 px |" in table
    assert len(tab.snapshot_gallery(S.MODEL)) >= 3 and len(tab.snapshot_gallery(S.PEER)) >= 3
