"""GAN lab service, headless (no server, no gradio): each action on the bundled generator, the one
validation policy (numbers and seeds clamped, non-numbers, unknown choices and non-flags refused with a
message naming the field), the views built from its plain data, and the shape rules of the lab.
Validation runs before any model loads, so those tests are quick; the ones that run the bundled
generator are marked slow (its first load and torchvision's import take seconds on a busy 2-core CPU)."""
from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest
import torch
from PIL import Image

from playground.core import cache, settings
from playground.core.errors import InputError
from playground.core.validate import MAX_SEED
from playground.gan import stylegan as sg
from playground.gan import views
from playground.gan.service import (COND_SCALE, COND_SEEDS, CONDITIONAL, DEFAULTS, MAPPING_SEEDS, MAX_SEEDS, MODEL,
                                    PEER, Service)

LAB = Path(__file__).resolve().parents[1] / "playground" / "gan"


@pytest.fixture(scope="module")
def svc():
    return Service(settings.from_env())


@pytest.fixture(scope="module")
def coarse(svc):
    return svc.presets()["coarse"]


def test_layer_names_and_presets_come_from_the_config(svc):
    cfg = svc.config()
    assert svc.layer_names() == [f"{i}: {s}x{s}" for i, s in enumerate(cfg.layer_sizes)]
    assert len(svc.layer_names()) == cfg.num_ws
    presets = svc.presets()
    assert list(presets) == ["coarse", "middle", "fine"]
    assert sorted(n for names in presets.values() for n in names) == sorted(svc.layer_names())


def test_seeds_are_clamped_and_non_numbers_refused_naming_the_field(svc):
    assert svc.seeds("Source seeds", " 3;4 5 ") == [3, 4, 5]
    assert svc.seeds("Source seeds", "-5, 99999999999, 7") == [0, MAX_SEED, 7]
    with pytest.raises(InputError, match=r"Style seeds: 'two' is not a whole number"):
        svc.seeds("Style seeds", "1, two")
    with pytest.raises(InputError, match=r"Style seeds: '1.5' is not a whole number"):
        svc.seeds("Style seeds", "1.5")
    with pytest.raises(InputError, match=rf"Source seeds: at most {MAX_SEEDS} seeds, you gave {MAX_SEEDS + 1}"):
        svc.seeds("Source seeds", ",".join(map(str, range(MAX_SEEDS + 1))))
    with pytest.raises(InputError, match="Source seeds is empty"):
        svc.seeds("Source seeds", "  ")
    with pytest.raises(InputError, match=f"Source seeds: type one to {MAX_SEEDS} seeds separated by commas"):
        svc.seeds("Source seeds", " , ")
    with pytest.raises(InputError, match="Source seeds is 300 characters; shorten it"):
        svc.seeds("Source seeds", "1" * 300)
    with pytest.raises(InputError, match="Source seeds must be text"):
        svc.seeds("Source seeds", 5)


@pytest.mark.slow
def test_mix_grid_clamps_and_describes_what_it_made(svc, coarse):
    r = svc.mix_grid("-5, 2", "10", coarse, 99.0, True, -3)
    assert r.sources == [0, 2] and r.styles == [10] and r.psi == 1.5 and r.noise_seed == 0
    assert r.layers == list(svc.config().groups["coarse"])
    cap = views.grid_caption(r)
    assert "source seeds [0, 2]" in cap and "psi = 1.50" in cap and "noise on (seed 0)" in cap
    assert "2 mixes + 3 originals" in cap
    # (1 + 1 styles) rows x (1 + 2 sources) columns of 32 px cells with 2 px padding, at the grid scale
    res = svc.config().resolution
    assert r.grid.size == (4 * (3 * (res + 2) + 2), 4 * (2 * (res + 2) + 2))
    assert r.w_avg.size == (6 * res, 6 * res)


@pytest.mark.slow
def test_mix_grid_with_no_layers_repeats_the_sources(svc):
    r = svc.mix_grid("7", "8 9", [], 1.0, False, 0)
    assert "none (every mix equals its source)" in views.grid_caption(r) and "noise off" in views.grid_caption(r)
    out = sg.mixing_grid(svc.generator(), [7], [8, 9], [], 1.0, False, 0)
    assert torch.equal(out["mixes"][0, 0], out["sources"][0]) and torch.equal(out["mixes"][1, 0], out["sources"][0])


@pytest.mark.parametrize("args, error", [
    (("1", "2", ["layer 9"], 0.8, True, 0), "Layers must be one of"),
    (("1", "2", 3, 0.8, True, 0), "Layers must be a list of options"),
    (("1", "2", [], "x", True, 0), "Truncation psi must be a number from 0 to 1.5"),
    (("1", "2", [], math.nan, True, 0), r"Truncation psi must be a number from 0 to 1\.5 \(got nan\)"),
    (("1", "2", [], 0.8, "yes", 0), "Noise must be true or false"),
    (("1", "2", [], 0.8, True, "seed"), "Noise seed must be a whole number from 0 to"),
])
def test_mix_grid_refuses_bad_input_naming_the_field(svc, args, error):
    with pytest.raises(InputError, match=error):
        svc.mix_grid(*args)


def test_presets_round_trip(svc):
    presets = svc.presets()
    for name, layers in presets.items():
        assert svc.preset_layers(name) == layers
        assert svc.layers_preset(list(reversed(layers))) == name
    assert svc.preset_layers("custom") is None
    assert svc.layers_preset([svc.layer_names()[0]]) == "custom" and svc.layers_preset(None) == "custom"
    with pytest.raises(InputError, match="Preset must be one of: coarse, middle, fine, custom"):
        svc.preset_layers("everything")


@pytest.mark.slow
def test_single_mix_endpoints_and_checks(svc):
    n = svc.config().num_ws
    r0 = svc.single_mix(1, 2, [0.0] * n, 1.0, True, 5)
    r1 = svc.single_mix(1, 2, [1.0] * n, 1.0, True, 5)
    assert r0.mix.size == (10 * 32, 10 * 32) and r0.a.size == r0.b.size == (4 * 32, 4 * 32)

    def pixels(img):                       # back to one value per generated pixel
        return torch.tensor(list(img.resize((32, 32), Image.NEAREST).getdata()), dtype=torch.int16)

    assert (pixels(r0.mix) - pixels(r0.a)).abs().max() <= 1         # weights 0: A's image
    assert (pixels(r1.mix) - pixels(r1.b)).abs().max() <= 1         # weights 1: B's image
    assert (pixels(r0.a) - pixels(r0.b)).abs().max() > 50
    clamped = svc.single_mix(-1, 10, [5.0] + [0.0] * (n - 1), 0.8, True, 0)     # seed -> 0, weight -> 1
    same = svc.single_mix(0, 10, [1.0] + [0.0] * (n - 1), 0.8, True, 0)
    assert list(clamped.mix.getdata()) == list(same.mix.getdata())
    with pytest.raises(InputError, match=rf"Layer weights must have exactly {n} numbers, not 1"):
        svc.single_mix(1, 2, [0.5], 0.8, True, 0)
    with pytest.raises(InputError, match=r"Layer weights \[1\] must be a number from 0 to 1"):
        svc.single_mix(1, 2, [math.inf] * n, 0.8, True, 0)
    with pytest.raises(InputError, match="Seed B must be a whole number"):
        svc.single_mix(1, "b", [0.0] * n, 0.8, True, 0)


@pytest.mark.slow
def test_mapping_explained_variance_matches_an_exact_svd(svc):
    """The mapping picture's PCA (torch.pca_lowrank, centred, q = PCA_Q) against an exact SVD of the same w."""
    p = svc.mapping(0.5)
    assert p["n"] == MAPPING_SEEDS and len(p["w"]) == MAPPING_SEEDS and p["psi"] == 0.5
    G = svc.generator()
    assert G.num_ws == len(svc.layer_names())
    with torch.inference_mode():
        w = G.map(sg.z_of(range(MAPPING_SEEDS), G.config.z_dim))
    s = torch.linalg.svd(w - w.mean(0)).S
    assert p["explained_w"] == pytest.approx((s[:2] ** 2 / (s ** 2).sum()).tolist(), rel=1e-3)
    assert p["spread_w_trunc"] / p["spread_w"] == pytest.approx(0.5, abs=1e-4)
    fig, note = views.mapping_outputs(p)
    assert "ratio 0.50 = psi" in note
    assert [t.name for t in fig.data] == ["z", "w (psi = 1)", "pull of truncation", "w' (psi = 0.50)", "w_avg"]
    assert len(fig.data[0].x) == MAPPING_SEEDS and fig.data[4].x[0] == pytest.approx(p["w_avg"][0])


def test_cards_table_reads_the_cards(svc):
    f = svc.facts()
    table = views.cards_table(f)
    assert f"| FD in the classifier's feature space, {f['ours']['metrics']['n']} samples (lower is better) | " \
           f"{f['ours']['metrics']['fd']:.2f} | {f['peer']['metrics']['fd']:.2f} |" in table
    assert "Our FD is lower" not in table
    maps = f["d_maps"]
    assert f"| discriminator | DCGAN's, {', '.join(map(str, maps['ours']))} maps at 16, 8, 4 px" in table
    assert f"DCGAN's, {', '.join(map(str, maps['peer']))} maps at 16, 8, 4 px |" in table
    assert "(3.32 = all 10 classes equally)" in table
    assert "no verdict is drawn from the one bundled pair" in views.same_budget_text(None)


def test_text_reads_its_figures_from_the_config_and_cards(svc):
    f = svc.facts()
    head = views.header(f, svc.source_markdown())
    assert f"{f['num_ws']} style inputs" in head and "fine = 32x32 (layers 5-6)" in head
    game = views.eq_game(f)
    o, p = f["ours"], f["peer"]
    assert f"width {o['discriminator_config']['base']} where the peer's has width {p['discriminator_config']['base']}" in game
    assert f"{o['steps']:,} steps and the peer {p['steps']:,}" in game
    assert "half as wide" not in game and "quarter" not in game
    assert "log2 10 = 3.32 bits" in views.mode_collapse(10) and "log2 4 = 2.00 bits" in views.mode_collapse(4)
    assert "do not record" in views.eq_game({"ours": {}, "peer": {}})


def test_curves_and_snapshots_from_the_cards(svc):
    f = svc.facts()
    fig = views.curves_figure(f["ours"], f["peer"])
    ours_steps = [r["step"] for r in f["ours"]["curves"]]
    assert list(fig.data[0].x) == ours_steps and len(fig.data) == 8
    for name in (MODEL, PEER):
        shots = svc.snapshots(name)
        assert [s["step"] for s in shots] == [s["step"] for s in svc.card(name)["snapshots"]]
        assert views.gallery(shots)[-1][1].startswith(f"step {shots[-1]['step']} (")


def test_conditional_class_and_seed_are_checked_before_any_model_runs(svc):
    assert svc.conditional_settings("Bag", -3) == ("Bag", list(range(COND_SEEDS)))
    assert svc.conditional_settings("Bag", 2.0) == ("Bag", list(range(2, 2 + COND_SEEDS)))
    label, top = svc.conditional_settings("Sandal", 10 ** 12)                  # clamped: every seed stays valid
    assert top[-1] == MAX_SEED and len(top) == COND_SEEDS
    for label, seed, error in (("Cat", 0, r"Class must be one of: T-shirt/top, Trouser, .* \(got 'Cat'\)"),
                               (None, 0, "Class must be one of"), (3, 0, "Class must be one of"),
                               ("Bag", "x", "Seed must be a whole number"), ("Bag", math.nan, "Seed must be")):
        with pytest.raises(InputError, match=error):
            svc.conditional(label, seed)


@pytest.mark.slow
def test_conditional_samples_and_the_judges_reading(svc):
    """The strip holds COND_SEEDS samples of the class asked for; the labels under them are the judge's
    predictions on the same images made another way (the generator called directly), and the table and
    the card's per-class table say what the data says."""
    from playground.core.data import FASHION_CLASSES
    from playground.gan.train import to_judge
    from playground.judge import metrics

    r = svc.conditional("Trouser", 3)
    assert r.label == "Trouser" and r.seeds == list(range(3, 3 + COND_SEEDS))
    assert r.strip.height >= 32 * COND_SCALE and r.strip.width >= COND_SEEDS * 32 * COND_SCALE
    G = svc.conditional_generator()
    with torch.inference_mode():
        x = G(sg.z_of(r.seeds, G.config.z_dim), torch.full((COND_SEEDS,), FASHION_CLASSES.index("Trouser")))
    assert [FASHION_CLASSES[int(c)] for c in metrics.predict(to_judge(x), "fashion")] == r.judged
    assert all(0.1 <= p <= 1 for p in r.confidence)
    table = views.conditional_table(r)
    assert "| judge | " + " | ".join(r.judged) + " |" in table
    assert f"the judge reads {r.judged.count('Trouser')} of {COND_SEEDS} as Trouser" in table
    other = svc.conditional("Bag", 3)
    assert other.seeds == r.seeds and other.strip.tobytes() != r.strip.tobytes()
    card = svc.card(CONDITIONAL)
    m = card["metrics"]
    text = views.conditional_card(card)
    for c, acc in zip(m["classes"], m["per_class_accuracy"]):
        assert f"| {c} | {100 * acc:.1f}% |" in text
    assert f"**{100 * m['mean_class_accuracy']:.1f}%**" in text and f"over all {m['n']} samples: {m['fd']:.2f}" in text
    assert "no held-out metrics" in views.conditional_card({})


@pytest.mark.slow
def test_speed_probe_and_load_calls(svc):
    r = svc.speed_probe()
    assert r["family"] == "GAN" and r["what"] == "one 32x32 image, 1 generator pass" and 0 < r["seconds"] < 60
    calls = dict(svc.load_calls())
    assert set(calls) == {"gan_mix", "gan_single", "gan_sweep", "gan_conditional"}
    assert svc.conditional(*calls["gan_conditional"]).label == DEFAULTS["cclass"]
    assert svc.mix_grid(*calls["gan_mix"]).sources == svc.seeds("", DEFAULTS["src"])
    seed_a, seed_b, *rest = calls["gan_single"]
    n = svc.config().num_ws
    assert svc.single_mix(seed_a, seed_b, rest[:n], *rest[n:]).mix.size == (320, 320)
    assert svc.truncation_sweep(*calls["gan_sweep"]).seeds == svc.seeds("", DEFAULTS["src"])


def test_the_lab_has_its_shape():
    """Gradio only in tab.py; no load-once caches, locks or asset roots of its own; tab.py stays short."""
    for f in LAB.glob("*.py"):
        tree = ast.parse(f.read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert f.name == "tab.py" or not any(m.split(".")[0] == "gradio" for m in imported), f.name
        assert not {"threading", "functools"} & imported, f.name
        assert "root_block" not in f.read_text() and "Path(__file__)" not in f.read_text(), f.name
    assert len((LAB / "tab.py").read_text().splitlines()) <= 200


def test_concurrent_grids_share_one_synthesis_pass_and_equal_each_alone():
    """Students drawing grids at once (their own seeds, layers, psi, noise on or off): one synthesis
    pass for all (the batcher's sizes show it), and each grid equals its request alone (up to float
    rounding of the batched convolutions: the 8-bit pictures agree to one level)."""
    import threading

    import numpy as np

    svc = Service(settings.from_env())
    reqs = [("1, 2", "3", svc.presets()["coarse"], 0.7, True, 5), ("4", "5, 6", svc.presets()["fine"], 1.0, False, 0),
            ("7, 8, 9", "10", [], 0.5, True, 9), ("11", "12", svc.presets()["middle"], 1.2, True, 1)]
    alone = [np.asarray(svc.mix_grid(*r).grid, dtype=np.int16) for r in reqs]
    G = svc.generator()
    batcher = cache.once(("gan", "synthesis", id(G)), lambda: None)
    before = len(batcher.sizes)
    got, start = [None] * len(reqs), threading.Barrier(len(reqs))

    def student(i):
        start.wait()
        got[i] = np.asarray(svc.mix_grid(*reqs[i]).grid, dtype=np.int16)

    threads = [threading.Thread(target=student, args=(i,)) for i in range(len(reqs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for a, g in zip(alone, got):
        assert a.shape == g.shape and np.abs(a - g).max() <= 1
    sizes = batcher.sizes[before:]
    assert sum(sizes) == len(reqs) and max(sizes) > 1, sizes
