"""The Diffusion lab's guided tour, headless: the tour file is well formed and its links name only the lab's
controls; each check's answer is one of its step's choices and agrees with a measurement made here
directly (closed forms, pipeline.sample, the judge), and follows the state when the state changes."""
from __future__ import annotations

import pytest
import torch

from playground.core import lesson, settings
from playground.core.errors import InputError
from playground.diffusion import pipeline, service
from playground.diffusion.schedulers import NoiseSchedule
from playground.judge import metrics

TOUR = lesson.load_tour(lesson.tour_path("diffusion"))
STEPS = {s.check: s for s in TOUR.steps}
DEFAULTS = {"class": "Sneaker", "s": 3.0, "sampler": "DDIM", "eta": 0.0, "steps": 50, "seed": 0, "k": 50,
            "cmp": service.COMPARE_MODES[1], "cmp_class": "Dress", "sa": 1.0, "sb": 5.0, "cmp_sampler": "DDIM",
            "cmp_steps": 50, "cmp_seed": 1, "image": "Ankle boot", "t": 300, "schedule": "cosine", "noise_seed": 0}


@pytest.fixture(scope="module")
def svc():
    return service.Service(settings.from_env())


def values(step: lesson.Step, **change) -> dict:
    """The lab's control values after the step's link (what the page holds when the learner reveals)."""
    les = lesson.parse(f"lab=diffusion&{step.link}", {"diffusion": {k: lesson.Param(k, "text") for k in DEFAULTS}})
    vals = {**DEFAULTS, **les.values, **change}
    for k in ("s", "eta", "sa", "sb"):
        vals[k] = float(vals[k])
    for k in ("steps", "seed", "k", "cmp_steps", "cmp_seed", "t", "noise_seed"):
        vals[k] = int(vals[k])
    return vals


def reveal(svc, check: str, args: dict | None = None, **change):
    step = STEPS[check]
    r = svc.tour_check(check, {**step.args, **(args or {})}, values(step, **change))
    assert r.answer in step.choices, r.answer
    return step, r


def to01(x):
    return (x.clamp(-1, 1) + 1) / 2


def test_the_tour_file_is_well_formed():
    assert TOUR.lab == "diffusion" and 5 <= len(TOUR.steps) <= 8
    for s in TOUR.steps:
        assert 2 <= len(s.choices) <= 4 and s.args["choices"] == list(s.choices), s.title
        assert "$" in s.explain and "?" in s.question, s.title
        les = lesson.parse(f"lab=diffusion&{s.link}", {"diffusion": {k: lesson.Param(k, "text") for k in DEFAULTS}},
                           {"diffusion": ("step", "lockstep", "sd", "forward", "card")})
        assert not les.notices and les.view, (s.title, les.notices)


@pytest.mark.slow   # imports gradio and builds the tab
def test_tour_links_set_only_the_tabs_controls_with_their_real_limits(svc):
    import gradio as gr

    from playground.diffusion import tab

    with gr.Blocks():
        link = tab.build(svc)
    assert set(DEFAULTS) <= set(link.params)
    for s in TOUR.steps:
        les = lesson.parse(f"lab=diffusion&{s.link}", {"diffusion": link.params}, {"diffusion": tuple(link.view_tabs)})
        assert not les.notices, (s.title, les.notices)
        assert all(les.values[k] == link.params[k].check(v) for k, v in values(s).items() if k in les.values)


def test_an_unknown_check_is_refused(svc):
    with pytest.raises(InputError, match="no check called 'nope'"):
        svc.tour_check("nope", {}, dict(DEFAULTS))


def test_signal_left_is_the_schedules_sqrt_abar(svc):
    step, r = reveal(svc, "signal_left")
    a = float(NoiseSchedule("cosine", svc.facts().T).alphas_cumprod[900]) ** 0.5        # closed form
    assert f"{a:.4f}" in r.shown
    assert r.answer == step.choices[0 if a >= service.SIGNAL_MOST else 1 if a >= service.SIGNAL_TRACE else 2]
    assert r.answer == "a faint trace"                                    # the bundled cosine schedule at t = 900
    assert reveal(svc, "signal_left", schedule="linear")[1].answer == "practically none"
    assert reveal(svc, "signal_left", t=50)[1].answer == "most of it"


@pytest.mark.slow   # 6 chains of 10 steps
def test_same_start_ddim_eta0_ignores_the_step_noise_ddpm_does_not(svc):
    step, r = reveal(svc, "same_start", steps=10)
    model, _, schedule = svc.model()
    y, x_T = torch.tensor([service.CLASSES.index("Trouser")]), pipeline.start_noise(1, model, 4)
    a = pipeline.sample(model, schedule, y, 3.0, sampler="DDIM", steps=10, seed=4)
    b = pipeline.sample(model, schedule, y, 3.0, sampler="DDIM", steps=10, seed=5, x_T=x_T)
    assert torch.equal(a, b) and r.answer == step.choices[0]
    c = pipeline.sample(model, schedule, y, 3.0, sampler="DDPM", steps=10, seed=5, x_T=x_T)
    d = pipeline.sample(model, schedule, y, 3.0, sampler="DDPM", steps=10, seed=4)
    ddpm = float((to01(c) - to01(d)).abs().mean())
    assert ddpm >= service.SLIGHT and f"mean {ddpm:.3f}" in r.shown              # the contrast, measured
    assert reveal(svc, "same_start", steps=10, sampler="DDPM")[1].answer == step.choices[2]


@pytest.mark.slow   # 2 chains of 50 steps
def test_x0_early_is_a_blurry_garment_of_the_class(svc):
    step, r = reveal(svc, "x0_early")
    chain = svc.new_chain("Dress", 3.0, "DDIM", 50, 0.0, 3).chain
    model, _, schedule = svc.model()
    for _ in range(50):
        chain.step(model, schedule)
    early, final = chain.frames[4], chain.frames[-1].x_prev
    d = float((to01(early.x0) - to01(final)).abs().mean())
    assert d >= service.CLOSE and f"**{d:.3f}** at step 5" in r.shown
    assert r.answer == "a blurry garment, already of the class"
    assert reveal(svc, "x0_early", k=50)[1].answer == step.choices[2]               # at the end: the final image


@pytest.mark.slow   # 2 x 20 samples of 20 steps
def test_class_accuracy_at_s0_is_chance_and_at_s3_high(svc):
    step, r = reveal(svc, "class_accuracy")
    model, _, schedule = svc.model()
    y = torch.arange(20) % 10
    acc = [float((metrics.predict(to01(pipeline.sample(model, schedule, y, s, steps=20, seed=0))) == y).double().mean())
           for s in (0.0, 3.0)]
    assert f"**{acc[0]:.0%}** are the class asked for at s = 0" in r.shown and f"**{acc[1]:.0%}**" in r.shown
    assert acc[0] < service.MOSTLY <= acc[1] and r.answer == "only by chance"


@pytest.mark.slow   # 2 x 12 samples of 20 steps
def test_class_diversity_falls_as_s_rises(svc):
    step, r = reveal(svc, "class_diversity")
    model, _, schedule = svc.model()
    y = torch.full((12,), service.CLASSES.index("Dress"))
    div = [metrics.diversity(metrics.features(to01(pipeline.sample(model, schedule, y, s, steps=20, seed=0))))
           for s in (1.0, 5.0)]
    assert f"{div[0]:.2f} at s = 1" in r.shown and f"{div[1]:.2f} at s = 5" in r.shown
    assert div[1] < (1 - service.SAME_SPREAD) * div[0] and r.answer == "less varied"


@pytest.mark.slow   # 4 x 8 samples
def test_fewer_steps_change_ddim_less_than_ddpm(svc):
    step, r = reveal(svc, "fewer_steps")
    model, _, schedule = svc.model()
    y = torch.arange(8) % 10
    change = {k: float((to01(pipeline.sample(model, schedule, y, 1.0, sampler=k, steps=50, seed=0))
                        - to01(pipeline.sample(model, schedule, y, 1.0, sampler=k, steps=20, seed=0))).abs().mean())
              for k in ("DDIM", "DDPM")}
    assert f"**{change['DDIM']:.3f}** with DDIM" in r.shown and f"**{change['DDPM']:.3f}** with DDPM" in r.shown
    assert change["DDPM"] >= service.CLOSER * change["DDIM"] and r.answer == "DDIM"
    card = svc.facts().ddim_vs_ddpm
    assert f"FD {card['fd_ddim']:.2f} for DDIM" in r.shown                        # the card's figures, quoted


if __name__ == "__main__":   # what the bundled model answers now
    s = service.Service(settings.from_env())
    for st in TOUR.steps:
        rv = s.tour_check(st.check, st.args, values(st))
        print(f"{st.title}: {rv.answer}\n    {rv.shown}")
