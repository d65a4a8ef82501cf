"""The GAN lab's classroom layer, headless: its guided tour (each check's answer is one of its step's choices
and agrees with a direct measurement made another way: demos/eval_gan.py's code path, the tab's own
single-mix images, an exact SVD), the lesson link's controls (every tour link parses clean; a state round-trips
through its query), the preset/layers reconciliation a link relies on, and the truncation sweep behind the GIF.
The checks run the bundled generator and the judge classifier: slow."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from playground.core import lesson, settings
from playground.core.errors import InputError
from playground.gan import stylegan as sg
from playground.gan import views
from playground.gan.service import (CHECKS, DEFAULTS, EVEN, HALF, MAPPING_SEEDS, MODEL, SAME, STRETCH, SWEEP,
                                    Service)

TOUR = lesson.load_tour(lesson.tour_path("gan"))


@pytest.fixture(scope="module")
def svc():
    return Service(settings.from_env())


def step(check: str) -> lesson.Step:
    return next(s for s in TOUR.steps if s.check == check)


def values(svc) -> dict:
    """The tab's controls at their defaults, as the tour's reveal passes them."""
    return {"src": DEFAULTS["src"], "style": DEFAULTS["style"], "preset": DEFAULTS["preset"],
            "layers": svc.presets()[DEFAULTS["preset"]], "psi": DEFAULTS["psi"], "noise": DEFAULTS["noise"],
            "noise_seed": DEFAULTS["noise_seed"]}


def reveal(svc, check: str) -> tuple[lesson.Reveal, lesson.Step]:
    s = step(check)
    r = svc.tour_check(s.check, s.args, values(svc))
    assert r.answer in s.choices and r.shown
    return r, s


# --- quick: the tour file against the service, the link's layers ---------------------------------

def test_the_tour_uses_every_check_and_repeats_its_choices_in_args():
    assert 5 <= len(TOUR.steps) <= 8 and TOUR.lab == "gan"
    assert sorted({s.check for s in TOUR.steps}) == sorted(CHECKS)
    for s in TOUR.steps:
        assert list(s.args["choices"]) == list(s.choices), s.title
        assert "lab=" not in s.link and "$" in s.explain, s.title       # an equation in every explanation


def test_a_check_that_does_not_exist_or_has_no_choices_is_refused(svc):
    with pytest.raises(InputError, match="no check called 'nope'; it has class_layers"):
        svc.tour_check("nope", {"choices": ["a", "b"]}, {})
    with pytest.raises(InputError, match="args must repeat its choices"):
        svc.tour_check("class_spread", {}, {})


def test_a_links_preset_and_layers_are_made_consistent(svc):
    p, names = svc.presets(), svc.layer_names()
    assert svc.link_layers("fine", p["coarse"]) == (p["fine"], "fine")        # a preset named with default layers
    assert svc.link_layers("coarse", p["fine"]) == (p["fine"], "fine")        # ticked layers name the preset
    assert svc.link_layers("fine", [names[3]]) == ([names[3]], "custom")
    assert svc.link_layers("custom", list(reversed(p["middle"]))) == (p["middle"], "middle")   # in layer order
    with pytest.raises(InputError, match="Layers must be one of"):
        svc.link_layers("fine", ["9: huge"])


# --- slow: each check against a direct measurement --------------------------------------------------

@pytest.mark.slow
def test_class_layers_agrees_with_the_cards_evaluation_code(svc):
    """The group whose style carries the class, by demos/eval_gan.py's style_mixing on other seed pairs."""
    from demos import eval_gan

    r, s = reveal(svc, "class_layers")
    rates = eval_gan.style_mixing(svc.generator(), s.args["pairs"], s.args["seed"] + 1)
    groups = list(svc.config().groups)
    best = max(groups, key=lambda g: rates[f"{g}_follows_style"])
    assert r.answer == s.choices[groups.index(best)]
    assert "In the grid on screen" in r.shown and "The card, over" in r.shown


@pytest.mark.slow
def test_fine_layers_agrees_with_the_tabs_single_mix_images(svc):
    """The pixel change of taking the fine layers from B, measured on the tab's own A / B / mix pictures."""
    r, s = reveal(svc, "fine_layers")
    fine, n = set(svc.config().groups["fine"]), svc.config().num_ws
    weights = [1.0 if i in fine else 0.0 for i in range(n)]

    def px(img):
        return torch.tensor(list(img.resize((32, 32), Image.NEAREST).getdata()), dtype=torch.float32) / 255

    change = swap = 0.0
    for k in range(16):
        m = svc.single_mix(100 + k, 200 + k, weights, s.args["psi"], True, 0)
        change += float((px(m.mix) - px(m.a)).abs().mean())
        swap += float((px(m.b) - px(m.a)).abs().mean())
    assert (r.answer == s.choices[0]) == (change / swap >= HALF)


@pytest.mark.slow
@pytest.mark.parametrize("check", ["truncation_diversity", "truncation_fd"])
def test_truncation_checks_agree_with_the_cards_sampling_path(svc, check):
    """Diversity and FD at psi = 1 and the step's psi on samples drawn as demos/eval_gan.py draws them (random
    noise, z from one seeded generator: other images than the check's)."""
    from demos import eval_gan
    from playground.gan.train import to_judge
    from playground.judge import metrics

    r, s = reveal(svc, check)
    G, n = svc.generator(), s.args["n"]
    got = {}
    for psi in (1.0, s.args["psi"]):
        f = metrics.features(to_judge(eval_gan.ours_samples(G, n, 7, psi)))
        got[psi] = (metrics.frechet_distance(*metrics.gaussian(f), *metrics.train_stats()), metrics.diversity(f))
    fd1, div1 = got[1.0]
    fd, div = got[s.args["psi"]]
    if check == "truncation_fd":
        assert r.answer == s.choices[0 if fd < fd1 else 1]
    else:
        ratio = div / div1
        assert r.answer == s.choices[0 if ratio < 1 - SAME else 2 if ratio > 1 + SAME else 1]


@pytest.mark.slow
def test_wavg_sharpness_agrees_with_the_tabs_w_avg_picture(svc):
    """Edge strength of the tab's w_avg picture against one sample's and the pixel average's, on other seeds."""
    r, s = reveal(svc, "wavg_sharpness")
    pic = svc.mix_grid("1", "2", [], 0.0, True, 0).w_avg.resize((32, 32), Image.NEAREST)
    w_img = torch.tensor(list(pic.getdata()), dtype=torch.float32).reshape(32, 32) / 255
    x = sg.sample(svc.generator(), s.args["n"], 10_000)
    each = sorted(svc.edges(xi) for xi in x)
    e_w, median, e_mean = svc.edges(w_img), each[len(each) // 2], svc.edges(x.mean(0))
    assert r.answer == s.choices[0 if abs(e_w - median) < abs(e_w - e_mean) else 1]


@pytest.mark.slow
def test_mapping_shape_agrees_with_an_exact_svd(svc):
    r, s = reveal(svc, "mapping_shape")
    G = svc.generator()
    with torch.inference_mode():
        z = sg.z_of(range(MAPPING_SEEDS), G.config.z_dim)
        w = G.map(z)

    def top2(x):
        sv = torch.linalg.svd(x - x.mean(0)).S
        return float((sv[:2] ** 2).sum() / (sv ** 2).sum())

    assert r.answer == s.choices[1 if top2(w) >= STRETCH * top2(z) else 0]


@pytest.mark.slow
def test_class_spread_agrees_with_the_cards_sampling_path_and_the_card(svc):
    from demos import eval_gan
    from playground.gan.train import to_judge
    from playground.judge import metrics

    r, s = reveal(svc, "class_spread")
    bits = metrics.class_entropy_bits(metrics.predict(to_judge(eval_gan.ours_samples(svc.generator(), s.args["n"], 7))))
    assert r.answer == s.choices[0 if bits >= EVEN * math.log2(10) else 1]
    card = svc.card(MODEL)["metrics"]["class_entropy_bits"]
    assert (card >= EVEN * math.log2(10)) == (r.answer == s.choices[0])        # the card's N = 5000 says the same


@pytest.mark.slow
def test_conditional_classes_agrees_with_the_judge_on_the_same_samples(svc):
    """The reveal's shares, measured another way: the same samples (cdcgan.samples, the same seed) through
    the judge's own predict on the 28x28 crop, then the same rule (within twice the standard error of the
    difference of two shares is "about as often")."""
    from playground.core.data import FASHION_CLASSES
    from playground.gan import cdcgan
    from playground.gan.train import to_judge
    from playground.judge import metrics

    r, s = reveal(svc, "conditional_classes")
    n, (a, b) = s.args["n"], s.args["classes"]
    y = torch.tensor([FASHION_CLASSES.index(a), FASHION_CLASSES.index(b)]).repeat_interleave(n)
    pred = metrics.predict(to_judge(cdcgan.samples(svc.conditional_generator(), y, s.args["seed"])), "fashion")
    pa, pb = (float((pred[y == c] == c).double().mean()) for c in y.unique_consecutive())
    se = math.sqrt(pa * (1 - pa) / n + pb * (1 - pb) / n)
    assert r.answer == s.choices[1 if abs(pa - pb) <= 2 * se else 0 if pa < pb else 2]
    assert f"the judge reads {pa:.0%} of the {a} samples as {a} and {pb:.0%} of the {b} samples as {b}" in r.shown
    with pytest.raises(InputError, match="Tour class must be one of"):
        svc.tour_check("conditional_classes", {**s.args, "classes": ["Shirt", "Cat"]}, {})


# --- slow: the lesson link of the built tab, the sweep ---------------------------------------------

@pytest.fixture(scope="module")
def link(svc):
    from playground.core import ui
    from playground.gan import tab

    with ui.Blocks():
        return tab.build(svc)


@pytest.mark.slow
def test_every_tour_link_parses_clean_against_the_tabs_controls(link):
    names = ["src", "style", "preset", "layers", "psi", "noise", "noise_seed", "a", "b"]
    assert list(link.params)[:len(names)] == names and link.show_fn and link.check_fn
    for s in TOUR.steps:
        les = lesson.parse(f"lab=gan&{s.link}", {"gan": link.params}, {"gan": tuple(link.view_tabs)})
        assert not les.notices and les.values, (s.title, les.notices)


@pytest.mark.slow
def test_a_state_round_trips_through_its_link(link, svc):
    state = {"src": "7, 8", "style": "3", "preset": "custom", "layers": [svc.layer_names()[3]], "psi": 0.35,
             "noise": False, "noise_seed": 12, "a": 4, "b": 9, "w2": 0.25}
    defaults = {n: c.value for n, c in link.controls.items()}
    q = lesson.Lesson("gan", values=state, lock=["psi"]).query(link.params, defaults)
    assert "psi=0.35" in q and "noise=0" in q and "w0=" not in q
    back = lesson.parse(q, {"gan": link.params}, {"gan": ()})
    assert back.values == state and back.lock == ["psi"] and not back.notices
    # the conditional view and its two controls: a class and a seed (a bad class is dropped with a notice)
    cond = {"cclass": "Bag", "cseed": 7}
    q = lesson.Lesson("gan", view="conditional", values=cond).query(link.params, defaults)
    assert "view=conditional" in q and "cclass=Bag" in q and "cseed=7" in q
    back = lesson.parse(q, {"gan": link.params}, {"gan": tuple(link.view_tabs)})
    assert back.view == "conditional" and back.values == cond and not back.notices
    bad = lesson.parse("lab=gan&cclass=Cat&cseed=-3", {"gan": link.params}, {"gan": tuple(link.view_tabs)})
    assert "cclass" not in bad.values and bad.values["cseed"] == 0 and bad.notices


@pytest.mark.slow
def test_the_truncation_sweep_runs_from_w_avg_to_the_untruncated_seeds(svc):
    r = svc.truncation_sweep("3, 4", False, 0)
    assert r.psis == pytest.approx(torch.linspace(*SWEEP).tolist()) and r.seeds == [3, 4]
    assert r.frames.shape == (SWEEP[2], 2, 1, 32, 32)
    assert torch.allclose(r.frames[0, 0], r.frames[0, 1])                       # psi = 0: both are w_avg's image
    assert torch.allclose(r.frames[-1], sg.sample(svc.generator(), 2, 3, 1.0, False), atol=1e-5)
    gif = Image.open(views.sweep_gif(r))
    assert gif.format == "GIF" and gif.n_frames == 2 * SWEEP[2] - 2                # there and back again
    with pytest.raises(InputError, match="Source seeds: 'x' is not a whole number"):
        svc.truncation_sweep("x", True, 0)
