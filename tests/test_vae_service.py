"""VAE lab, headless: every action of the service, its one validation policy (numbers clamped, NaN/inf
and non-numbers refused, unknown choices refused), missing checkpoints, and the views' figures checked
against the data they were made from."""
from __future__ import annotations

import json
import re

import numpy as np
import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import pytest
import torch
from PIL import Image, ImageDraw

from playground.core import checkpoint, plots, settings
from playground.core.errors import InputError, Unavailable
from playground.vae import service as S
from playground.vae import views
from playground.vae.model import VAEConfig

# fashion_b1: the mean pixel of decode(z = 0), and the nats (reconstruction, KL) of "test #9: Sneaker"
GOLDEN_ZERO_MEAN = 0.231133              # regenerate: python tests/test_vae_service.py
GOLDEN_PICK_TERMS = (153.62, 10.671)     # regenerate: python tests/test_vae_service.py


FIRST = S.Service(settings.from_env()).dataset_info("Fashion-MNIST").order[0]   # slider 1's latent dimension


@pytest.fixture(scope="module")
def svc():
    return S.Service(settings.from_env())


def card(svc, key, role="main"):
    return checkpoint.read_card(svc.assets / svc.roles[key][role])


# --- what is read from the cards ---------------------------------------------------------------

def test_roles_labels_and_slider_count_come_from_the_cards(svc):
    for key in S.DATASETS:
        assert card(svc, key, "beta")["config"]["beta"] > 1
        assert card(svc, key, "map")["config"]["latent_dim"] == S.MAP_DIM
        assert card(svc, key, "peer")["model"].endswith(":MLPVAE")
    recipe = card(svc, "digits")["recipe"]
    assert svc.labels["digits"] == f"Digits (opencv, {recipe['train_images'] + recipe['test_images']:,})"
    assert svc.n_sliders == max(card(svc, k)["config"]["latent_dim"] for k in S.DATASETS)
    assert svc.default == "Fashion-MNIST" and svc.image_size == card(svc, "fashion")["config"]["image_size"]


def test_texts_and_table_read_the_cards(svc):
    info = svc.dataset_info(svc.default)
    main, beta, peer = (card(svc, "fashion", r) for r in ("main", "beta", "peer"))
    assert info.betas == (main["config"]["beta"], beta["config"]["beta"])
    assert f"a {main['config']['latent_dim']}-dimensional latent" in views.intro(info)
    assert views.beta_title(info) == f"beta = {main['config']['beta']:g} vs beta = {beta['config']['beta']:g}"
    table = views.figures_table(info)
    assert f"| **{main['metrics']['neg_elbo_nats']:.1f}** |" in table and f"{main['parameters']:,}" in table
    c = peer["config"]
    assert f"peer: MLP VAE {c['image_size'] ** 2}-{c['hidden']}-{c['latent_dim']}" in table
    assert table.count("\n| ") == 1 + 4                    # header + one row per bundled model
    labels = views.slider_labels(info, svc.n_sliders)
    kl = main["metrics"]["kl_per_dim_nats"]
    top = int(np.argmax(kl))
    assert labels[0] == f"z[{top}]  ·  KL {kl[top]:.2f} nats"


# --- sliders: the number policy -----------------------------------------------------------------

def zeros(svc):
    return [0.0] * svc.n_sliders


def test_decode_golden_and_out_of_range_latents_are_clamped(svc):
    z = zeros(svc)
    assert float(svc.decode_sliders(svc.default, *z).mean()) == pytest.approx(GOLDEN_ZERO_MEAN, abs=1e-4)
    edge = svc.decode_sliders(svc.default, S.Z_LIMIT, *z[1:])
    assert torch.equal(svc.decode_sliders(svc.default, 7.0, *z[1:]), edge)
    assert torch.equal(svc.decode_sliders(svc.default, *z[:-1], -1e9),
                       svc.decode_sliders(svc.default, *z[:-1], -S.Z_LIMIT))
    assert not torch.equal(edge, svc.decode_sliders(svc.default, *z))   # the first slider matters


@pytest.mark.parametrize("bad, message", [
    (float("nan"), re.escape(f"Slider 1 (z[{FIRST}]) must be a number from {-S.Z_LIMIT:g} to {S.Z_LIMIT:g} (got nan)")),
    (float("inf"), re.escape("(got inf)")),
    ("abc", re.escape(f"must be a number from {-S.Z_LIMIT:g} to {S.Z_LIMIT:g}, not 'abc'")),
    (None, re.escape(f"Slider 1 (z[{FIRST}]) must be a number")),
    (True, re.escape(f"Slider 1 (z[{FIRST}]) must be a number")),
])
def test_decode_refuses_non_numbers(svc, bad, message):
    with pytest.raises(InputError, match=message):
        svc.decode_sliders(svc.default, bad, *zeros(svc)[1:])


def test_decode_refuses_wrong_counts_and_unknown_data_sets(svc):
    with pytest.raises(InputError, match=f"Send exactly {svc.n_sliders} latent slider values"):
        svc.decode_sliders(svc.default, 0.0, 0.0, 0.0)
    with pytest.raises(InputError, match="Data set must be one of: Fashion-MNIST, Digits"):
        svc.decode_sliders("CIFAR", *zeros(svc))


def test_reset_and_prior_sample_show_what_the_sliders_hold(svc):
    r = svc.reset(svc.default)
    assert r.values == zeros(svc) and r.next_seed is None
    s = svc.sample_prior(svc.default, -5)                   # a seed is clamped into [0, 2^31 - 1]
    assert s.next_seed == 1 and s.values == svc.sample_prior(svc.default, 0).values
    assert all(abs(v) <= S.SLIDER_MAX for v in s.values) and any(v != 0 for v in s.values)
    assert torch.equal(s.image, svc.decode_sliders(svc.default, *s.values))
    with pytest.raises(InputError, match="Seed must be a whole number"):
        svc.sample_prior(svc.default, "lucky")
    out = views.sliders(s)
    assert out[:-2] == s.values and out[-2].startswith("data:image/png;base64,") and out[-1] == 1


# --- encoding ----------------------------------------------------------------------------------

def test_encode_pick_terms_samples_and_figure(svc):
    label = S.pick_labels("fashion")[7]
    assert label == "test #9: Sneaker"
    e = svc.encode_pick(svc.default, label)
    recon, kl = GOLDEN_PICK_TERMS
    assert (e.terms["recon"], e.terms["kl"]) == (pytest.approx(recon, abs=1e-2), pytest.approx(kl, abs=1e-2))
    assert e.terms["neg_elbo"] == pytest.approx(e.terms["recon"] + e.terms["kl"], rel=1e-6)
    assert e.terms["samples"] == S.TERM_SAMPLES and f"over {S.TERM_SAMPLES} draws" in views.terms_markdown(e.terms)
    assert e.samples.shape[0] == S.N_SAMPLES and e.x.shape == e.recon.shape
    fig = views.mu_sigma_figure(e.mu, e.sigma, e.order)
    bars, sigma = fig.data
    assert list(bars.y) == [e.mu[j] for j in e.order] and list(bars.error_y.array) == list(sigma.y)
    assert list(bars.x) == [f"z[{j}]" for j in e.order]
    assert plots.valid(fig) and fig.layout.shapes[0].y0 == 1.0                  # the prior's sigma
    again, state = svc.resample(e.state)
    assert state.seed == 1 and not torch.equal(again, e.samples)
    assert torch.equal(svc.to_sliders(svc.default, e.state).image,
                       svc.decode_sliders(svc.default, *svc.to_sliders(svc.default, e.state).values))


def test_encode_refuses_unknown_picks_and_needs_a_state(svc):
    with pytest.raises(InputError, match="Test image must be one of: test #19: T-shirt/top"):
        svc.encode_pick(svc.default, "test #99999")
    with pytest.raises(InputError, match="Encode an image first"):
        svc.resample(None)
    e = svc.encode_pick(svc.default, S.pick_labels("fashion")[0])
    with pytest.raises(InputError, match="encoded with the Fashion-MNIST model"):
        svc.to_sliders(svc.labels["digits"], e.state)


def _ring(size=(200, 200)) -> Image.Image:
    img = Image.new("L", size, 255)
    ImageDraw.Draw(img).ellipse([40, 30, 160, 170], outline=0, width=14)
    return img


def test_uploads_are_inverted_cropped_and_checked(svc):
    e = svc.encode_upload(svc.default, _ring())
    x = e.x[0]
    assert float(x[[0, -1]].max()) < 0.05 and float(x.max()) > 0.8     # a light ring on black
    box = S.OBJECT_BOX["fashion"]
    rows = torch.nonzero(x.amax(1) > 0.1)
    assert int(rows.max() - rows.min() + 1) == box                     # the taller side fills the box
    with pytest.raises(InputError, match="Uploaded image: the picture is blank"):
        svc.encode_upload(svc.default, Image.new("L", (50, 50), 255))
    with pytest.raises(InputError, match="Drawing: upload or choose an image first"):
        svc.encode_drawing(svc.default, {"background": None, "layers": [], "composite": None})


# --- map, manifold, interpolation, beta ---------------------------------------------------------

def test_map_figure_points_marks_and_clamped_grid(svc):
    e = svc.encode_pick(svc.default, S.pick_labels("fashion")[1])
    r = svc.map_all(svc.default, 9.0, -0.5, 6, e.state)
    assert r.z == (S.Z_LIMIT, -0.5) and r.grid.shape[0] == 36 and r.n == 6
    fig = views.map_figure(r.view)
    classes = [t for t in fig.data if t.name in S.CLASSES["fashion"]]
    assert len(classes) == len(S.CLASSES["fashion"])
    assert sum(len(t.x) for t in classes) == min(views.MAP_POINTS, len(r.view.points))
    cur, mark = fig.data[-2:]
    assert (cur.name, cur.x[0], cur.y[0]) == ("current z", S.Z_LIMIT, -0.5)
    assert mark.name == "encoded image" and [mark.x[0], mark.y[0]] == r.view.mark
    moved = svc.map_to_encoded(svc.default, 6, e.state)
    assert list(moved.z) == [round(max(-S.SLIDER_MAX, min(S.SLIDER_MAX, v)), 2) for v in r.view.mark]
    assert svc.manifold(svc.default, 100)[1] == S.GRID[1] and svc.manifold(svc.default, 1)[1] == S.GRID[0]
    with pytest.raises(InputError, match="Encode an image"):
        svc.map_to_encoded(svc.default, 6, None)


def test_interpolation_paths_meet_at_the_ends_and_the_gif_goes_there_and_back(svc):
    picks = S.pick_labels("fashion")
    r = svc.interpolate(svc.default, picks[2], picks[3], 99, "linear")
    assert len(r.linear) == S.STEPS[1]                                   # steps clamped
    for end in (0, -1):
        assert torch.allclose(r.linear[end], r.spherical[end], atol=1e-5)
    strip, gif, same = views.interpolation(r)
    g = Image.open(gif)
    assert gif == same and g.format == "GIF" and g.n_frames == 2 * S.STEPS[1] - 2
    with pytest.raises(InputError, match="GIF path must be one of: spherical, linear"):
        svc.interpolate(svc.default, picks[2], picks[3], 5, "zigzag")
    with pytest.raises(InputError, match="Steps must be a whole number"):
        svc.interpolate(svc.default, picks[2], picks[3], "many", "linear")


def test_beta_figure_bars_are_the_cards_kl_per_dimension(svc):
    r = svc.compare_beta(svc.default, 3)
    assert r.rows.shape[0] == 5 * S.BETA_IMAGES and r.per_row == S.BETA_IMAGES
    fig = views.beta_figure(r)
    for bars, role in zip(fig.data, ("main", "beta")):
        c = card(svc, "fashion", role)
        assert list(bars.y) == sorted(c["metrics"]["kl_per_dim_nats"], reverse=True)
        assert bars.name == f"beta = {c['config']['beta']:g}"


# --- Home, the load script, and another asset folder -------------------------------------------

def test_speed_probe_and_load_calls_run_through_the_service(svc):
    r = svc.speed_probe()
    assert r["family"] == "VAE" and r["what"] == f"one {svc.image_size}x{svc.image_size} decoder pass"
    assert 0 < r["seconds"] < 5
    method = {"vae_decode": svc.decode_sliders, "vae_encode_pick": svc.encode_pick, "vae_interpolate": svc.interpolate}
    for api_name, args in svc.load_calls():
        method[api_name](*args)                                          # every call is valid


def test_a_folder_without_checkpoints_says_which_recipe_to_run(tmp_path):
    empty = S.Service(settings.from_env(), assets=tmp_path)
    assert empty.n_sliders == VAEConfig.latent_dim and empty.labels["digits"] == "Digits (opencv)"
    info = empty.dataset_info(empty.default)
    assert info.figures == [] and info.betas is None and "no model" in views.beta_equation(info)
    with pytest.raises(Unavailable, match=r"fashion_b1 is missing; train it with `python -m demos.train_vae --data fash"):
        empty.decode_sliders(empty.default, *([0.0] * empty.n_sliders))
    for name in ("fashion_b1.json", "fashion_b1.safetensors"):
        (tmp_path / name).symlink_to(S.Service(settings.from_env()).assets / name)
    one = S.Service(settings.from_env(), assets=tmp_path)
    assert one.decode_sliders(one.default, *([0.0] * one.n_sliders)).shape[0] == 1
    with pytest.raises(Unavailable, match=r"--beta B \(any B > 1\)"):
        one.compare_beta(one.default, 0)


if __name__ == "__main__":
    s = S.Service(settings.from_env())
    print("GOLDEN_ZERO_MEAN =", round(float(s.decode_sliders(s.default, *zeros(s)).mean()), 6))
    t = s.encode_pick(s.default, S.pick_labels("fashion")[7]).terms
    print("GOLDEN_PICK_TERMS =", (round(t["recon"], 3), round(t["kl"], 3)))
    print(json.dumps(s.load_calls()))


def test_concurrent_live_decodes_are_batched_and_equal_each_alone(svc):
    """Students dragging sliders at once: their decodes share one decoder pass (the batcher's batch
    sizes show it) and each gets its own image, equal to decoding it alone up to float rounding."""
    import threading

    m = svc.loaded("fashion", "main")
    rng = torch.Generator().manual_seed(0)
    values = [(torch.rand(svc.n_sliders, generator=rng) * 4 - 2).tolist() for _ in range(12)]
    alone = [svc._decode(m, svc._z(m, v))[0] for v in values]
    got = [None] * len(values)
    batcher = svc._live(m)
    before = len(batcher.sizes)

    start = threading.Barrier(len(values))

    def student(i):
        start.wait()
        got[i] = svc.decode_sliders(svc.default, *values[i])

    threads = [threading.Thread(target=student, args=(i,)) for i in range(len(values))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, g in zip(alone, got):
        assert torch.allclose(a, g, atol=1e-5)
    sizes = batcher.sizes[before:]
    assert sum(sizes) == len(values) and max(sizes) > 1, sizes


# --- VQ-VAE ------------------------------------------------------------------------------------

def test_vq_encode_is_the_models_nearest_codes_and_their_decode(svc):
    from playground.vae.losses import recon_nll

    model, card = svc._vq("fashion")
    v = svc.vq_encode(svc.default, "test #9: Sneaker")
    x = svc._test_images("fashion", [9])
    with torch.no_grad():
        k, z_q = model.quantize(model.encode(x))
        assert v.state.codes == v.state.original == k[0].tolist()
        assert torch.allclose(v.recon, model.decode_codes(k)[0]) and torch.equal(v.edited, v.recon)
        assert v.terms["recon"] == pytest.approx(float(recon_nll(model.decode_logits(z_q), x)[0]), rel=1e-5)
    g = model.grid
    assert v.changed == [] and v.cell == (g // 2, g // 2) and svc.vq_shape == (g, card["config"]["codes"])
    assert v.usage_images == S.USAGE_IMAGES and sum(v.usage) == S.USAGE_IMAGES * g * g
    assert len(v.usage) == card["config"]["codes"]
    p = np.array(v.usage) / sum(v.usage)
    assert v.usage_perplexity == pytest.approx(float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())), rel=1e-9)


def test_vq_views_encode_and_decode_the_image_once(svc, monkeypatch):
    model, _ = svc._vq("fashion")
    svc._vq_usage("fashion")                                  # the codebook usage (encodes test images), kept apart
    calls = {"encode": 0, "dec": 0}
    monkeypatch.setattr(model, "encode", lambda x, _f=model.encode: calls.__setitem__("encode", calls["encode"] + 1)
                        or _f(x))
    hook = model.dec.register_forward_hook(lambda *_: calls.__setitem__("dec", calls["dec"] + 1))
    try:
        v = svc.vq_encode(svc.default, "test #9: Sneaker")
        assert calls == {"encode": 1, "dec": 1}               # no edit: one decode gives the loss and the picture
        svc.vq_edit(svc.default, v.state, 0, 0, 1)
        assert calls == {"encode": 2, "dec": 3}               # an edit: the encoder's grid and the edited one
    finally:
        hook.remove()


def test_vq_sub_tab_opens_on_the_first_test_image_and_keeps_an_encoded_one(svc):
    v, label = svc.vq_first(svc.default, None)
    assert label == S.pick_labels("fashion")[0] and v.state.codes == svc.vq_encode(svc.default, label).state.codes
    assert svc.vq_first(svc.default, v.state) is None                      # an image is there: left as it is
    assert svc.vq_first(svc.labels["digits"], v.state)[1] == S.pick_labels("digits")[0]   # another data set's


def test_vq_edit_changes_one_cell_adds_up_and_clamps(svc):
    v = svc.vq_encode(svc.default, "test #9: Sneaker")
    k = (v.state.codes[2][3] + 1) % svc.vq_shape[1]
    e = svc.vq_edit(svc.default, v.state, 2, 3, k)
    assert e.changed == [(2, 3)] and e.state.codes[2][3] == k and e.state.original == v.state.original
    assert not torch.equal(e.edited, v.edited) and torch.equal(e.recon, v.recon)
    assert v.state.codes == v.state.original                     # the earlier state is not changed in place
    g, n = svc.vq_shape
    e2 = svc.vq_edit(svc.default, e.state, 99, -3, 1e9)         # clamped into the grid and the codebook
    assert e2.cell == (g - 1, 0) and e2.state.codes[g - 1][0] == n - 1 and (2, 3) in e2.changed


@pytest.mark.parametrize("args, message", [
    (("x", 0, 0), "Cell row must be a whole number from 0 to"),
    ((0, float("nan"), 0), "Cell column must be a whole number"),
    ((0, 0, None), "Code must be a whole number from 0 to"),
])
def test_vq_edit_refuses_non_numbers_naming_the_field(svc, args, message):
    with pytest.raises(InputError, match=message):      # the request's own fields first, then the session
        svc.vq_edit(svc.default, None, *args)


def test_vq_edit_needs_an_image_of_the_same_data_set(svc):
    with pytest.raises(InputError, match="Pick a test image on the VQ-VAE tab first"):
        svc.vq_edit(svc.default, None, 0, 0, 0)
    digit = svc.vq_encode(svc.labels["digits"], S.pick_labels("digits")[3])
    assert digit.usage_images == len(svc._test_set("digits")) < S.USAGE_IMAGES    # the whole (smaller) split
    with pytest.raises(InputError, match=re.escape(f"encoded with the {svc.labels['digits']} VQ-VAE")):
        svc.vq_edit(svc.default, digit.state, 0, 0, 0)
    with pytest.raises(InputError, match="Test image must be one of"):
        svc.vq_encode(svc.default, "test #99999")


def test_vq_views_show_the_grid_usage_terms_and_both_cards(svc):
    v = svc.vq_edit(svc.default, svc.vq_encode(svc.default, "test #2: Trouser").state, 1, 1, 0)
    fig = views.vq_grid_figure(v)
    assert [list(r) for r in fig.data[0].z] == v.state.codes and len(fig.layout.shapes) == len(v.changed) + 1
    usage = views.vq_usage_figure(v)
    assert list(usage.data[0].y) == v.usage and f"perplexity {v.usage_perplexity:.1f} of" in usage.layout.title.text
    m, vae = v.card["metrics"], card(svc, "fashion")["metrics"]
    terms = views.vq_terms_markdown(v)
    assert f"| {v.terms['recon']:.1f} | {v.terms['codebook']:.2f} |" in terms and f"| {m['recon_nats']:.1f} |" in terms
    compare = views.vq_compare_markdown(v)
    assert f"**{m['recon_nats']:.1f}**" in compare and f"**{vae['recon_nats']:.1f}**" in compare
    assert f"KL {vae['kl_nats']:.1f} nats" in compare
    assert len(views.vq(v)) == 8 and views.vq(v)[-1] is v.state


def test_vq_tour_step_compares_both_models_on_the_same_test_images(svc):
    from playground.core import lesson

    step = lesson.load_tour(lesson.tour_path("vae")).steps[-1]
    assert step.check == "vq_recon"
    r = svc.tour_check(step.check, {**step.args, "n": 32}, {"dataset": svc.default})
    vq, vae = (float(v) for v in re.findall(r": (\d+\.\d)", r.shown)[:2])
    assert r.answer == step.choices[0 if vq < vae else 1] and "on 32 test images" in r.shown
