"""Diffusion lab: closed forms, samplers against diffusers, guidance, and a tiny U-Net with golden values."""
from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

if __name__ == "__main__":   # run as a script to print the golden values: import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playground.diffusion import pipeline  # noqa: E402
from playground.diffusion.schedulers import (DDIMSampler, DDPMSampler, NoiseSchedule, guide,  # noqa: E402
                                             make_betas, make_sampler)
from playground.diffusion.unet import UNet, UNetConfig  # noqa: E402


# --- the forward process ---------------------------------------------------------------------

@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("t", [0, 250, 700, 999])
def test_q_sample_moments(name, t):
    """x_t = sqrt(abar) x_0 + sqrt(1 - abar) eps has mean sqrt(abar) x_0 and variance 1 - abar per pixel."""
    sched = NoiseSchedule(name, 1000)
    g = torch.Generator().manual_seed(t)
    x0 = torch.rand((1, 1, 4, 4), generator=g) * 2 - 1
    n = 20000
    noise = torch.randn((n, 1, 4, 4), generator=g, dtype=torch.float64)
    xt = sched.q_sample(x0.double().expand(n, -1, -1, -1), torch.full((n,), t), noise)
    a = float(sched.alphas_cumprod[t])
    se = math.sqrt((1 - a) / n)
    assert torch.allclose(xt.mean(0), math.sqrt(a) * x0[0].double(), atol=5 * se + 1e-12)
    assert torch.allclose(xt.var(0), torch.full_like(xt[0], 1 - a), rtol=0.05, atol=1e-9)


def test_schedules_closed_forms():
    lin = make_betas("linear", 1000)
    assert lin[0] == pytest.approx(1e-4) and lin[-1] == pytest.approx(0.02)
    cos = NoiseSchedule("cosine", 1000)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    for t in (0, 100, 500, 900):
        assert float(cos.alphas_cumprod[t]) == pytest.approx(f((t + 1) / 1000) / f(0), rel=1e-6)
    for s in (cos, NoiseSchedule("linear", 1000)):
        assert torch.all(s.alphas_cumprod[1:] < s.alphas_cumprod[:-1])   # monotone: more noise as t grows
        assert float(s.alphas_cumprod[-1]) < 1e-3                        # x_T is (almost) pure noise


# --- samplers ----------------------------------------------------------------------------------

def gaussian_eps(sigma: float, sched: NoiseSchedule):
    """The exact noise predictor when the data are x_0 ~ N(0, sigma^2 I):
    E[eps | x_t] = sqrt(1 - abar) x_t / (abar sigma^2 + 1 - abar)."""
    def eps(x, t):
        a = float(sched.abar(max(int(t), 0)))
        return math.sqrt(1 - a) * x / (a * sigma ** 2 + 1 - a)
    return eps


def test_ddim_eta0_is_deterministic():
    sched = NoiseSchedule("cosine", 1000)
    eps = gaussian_eps(0.5, sched)
    x_T = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    outs = []
    for seed in (1, 2):  # different generators must not matter when eta = 0
        s = make_sampler("DDIM", sched, 50, eta=0.0)
        g = torch.Generator().manual_seed(seed)
        x = x_T.clone()
        for t in s.timesteps.tolist():
            x = s.step(eps(x, t), t, x, generator=g).prev_sample
        outs.append(x)
    assert torch.equal(outs[0], outs[1])


def ddim_round_trip(n: int) -> float:
    """Relative error of x_T after DDIM (eta = 0) x_T -> x_0 in n steps and the same ODE back x_0 -> x_T."""
    sched = NoiseSchedule("cosine", 1000)
    eps = gaussian_eps(0.5, sched)
    s = DDIMSampler(sched, clip_sample=False, eta=0.0)
    s.set_timesteps(n)
    x_T = torch.randn((4, 1, 8, 8), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    x = x_T.clone()
    for t in s.timesteps.tolist():
        x = s.step(eps(x, t), t, x).prev_sample
    assert x.std() < 0.6                                   # it did move: from std 1 towards the data's 0.5
    t_from = -1
    for t_to in s.timesteps.flip(0).tolist():              # 0, T/n, ..., T - T/n
        x = s.invert_step(eps(x, max(t_from, 0)), t_from, x, t_to)
        t_from = t_to
    return float((x - x_T).norm() / x_T.norm())


def test_ddim_inversion_recovers_x_T():
    """Inversion evaluates eps at the lower end of each interval, so it is exact only as steps -> inf:
    the error is first order in the step size (measured: 3.0 % at 100 steps, 0.6 % at 500)."""
    e100, e500 = ddim_round_trip(100), ddim_round_trip(500)
    assert e500 < 0.01, e500
    assert e100 < 0.05 and e500 < e100 / 3, (e100, e500)


def test_ddpm_full_chain_reaches_data_variance():
    """On Gaussian data with the exact eps, DDPM over the full chain gives samples of the data's std."""
    sched = NoiseSchedule("linear", 1000)
    eps = gaussian_eps(0.5, sched)
    s = DDPMSampler(sched, clip_sample=False)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((4000, 1, 2, 2), generator=g, dtype=torch.float64)
    for t in s.timesteps.tolist():
        x = s.step(eps(x, t), t, x, generator=g).prev_sample
    assert float(x.std()) == pytest.approx(0.5, rel=0.05)


# --- equivalence with diffusers ----------------------------------------------------------------

DIFFUSERS_SCHEDULE = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("n", [1000, 50])
def test_ddpm_step_matches_diffusers(name, n):
    from diffusers import DDPMScheduler

    ref = DDPMScheduler(num_train_timesteps=1000, beta_schedule=DIFFUSERS_SCHEDULE[name], clip_sample=True,
                        variance_type="fixed_small")
    ref.set_timesteps(n)
    ours = make_sampler("DDPM", NoiseSchedule(name, 1000), n)
    assert ours.timesteps.tolist() == ref.timesteps.tolist()
    g = torch.Generator().manual_seed(0)
    for t in ours.timesteps.tolist()[:: max(1, n // 10)] + [ours.timesteps.tolist()[-1]]:
        x = torch.randn((2, 1, 6, 6), generator=g)
        eps = torch.randn((2, 1, 6, 6), generator=g)
        a = ref.step(eps, t, x, generator=torch.Generator().manual_seed(t))
        b = ours.step(eps, t, x, generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(b.prev_sample, a.prev_sample, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(b.pred_original_sample, a.pred_original_sample, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["linear", "cosine"])
@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("clipped_eps", [True, False])
def test_ddim_step_matches_diffusers(name, eta, clipped_eps):
    from diffusers import DDIMScheduler

    ref = DDIMScheduler(num_train_timesteps=1000, beta_schedule=DIFFUSERS_SCHEDULE[name], clip_sample=True,
                        set_alpha_to_one=True)
    ref.set_timesteps(50)
    ours = make_sampler("DDIM", NoiseSchedule(name, 1000), 50, eta=eta)
    ours.use_clipped_model_output = clipped_eps
    assert ours.timesteps.tolist() == ref.timesteps.tolist()
    g = torch.Generator().manual_seed(1)
    for t in ours.timesteps.tolist():
        x = torch.randn((2, 1, 6, 6), generator=g)
        eps = torch.randn((2, 1, 6, 6), generator=g)
        a = ref.step(eps, t, x, eta=eta, use_clipped_model_output=clipped_eps,
                     generator=torch.Generator().manual_seed(t))
        b = ours.step(eps, t, x, generator=torch.Generator().manual_seed(t))
        torch.testing.assert_close(b.prev_sample, a.prev_sample, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(b.pred_original_sample, a.pred_original_sample, rtol=1e-4, atol=1e-4)


# --- guidance and a tiny U-Net -------------------------------------------------------------------

TINY = UNetConfig(image_size=8, channels=(4, 8), emb_dim=16, n_classes=3, groups=2, attention=True)


def tiny_unet(seed: int = 0) -> UNet:
    torch.manual_seed(seed)
    m = UNet(TINY)
    with torch.no_grad():  # the output layer starts at zero; give it weights so eps is not trivially 0
        m.conv_out.weight.normal_(0, 0.3)
        m.conv_out.bias.normal_(0, 0.1)
    return m.eval()


def test_guidance_formula():
    eu, ec = torch.randn(3, 4), torch.randn(3, 4)
    assert torch.equal(guide(eu, ec, 1.0), ec)
    assert torch.equal(guide(eu, ec, 0.0), eu)
    torch.testing.assert_close(guide(eu, ec, 2.5), eu + 2.5 * (ec - eu))


def test_guided_eps_at_s1_is_the_conditional_prediction():
    m = tiny_unet()
    x = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0, 1, 2])
    with torch.no_grad():
        cond = m(x, torch.full((3,), 400), y)
        uncond = m(x, torch.full((3,), 400), torch.full((3,), 3))
    for both in (False, True):  # batched (cond + uncond as one batch of 2B) or the cond pass alone
        eps, eps_u, eps_c = pipeline.guided_eps(m, x, 400, y, 1.0, both=both)
        torch.testing.assert_close(eps, cond, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(eps_c, cond, rtol=1e-5, atol=1e-6)
        if both:
            torch.testing.assert_close(eps_u, uncond, rtol=1e-5, atol=1e-6)
    eps0, _, _ = pipeline.guided_eps(m, x, 400, y, 0.0)
    torch.testing.assert_close(eps0, uncond, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(cond, uncond)   # the class matters in this network


def test_unet_shapes_and_null_class():
    m = tiny_unet()
    assert m.null_class == 3 and m.class_emb.num_embeddings == 4
    out = m(torch.zeros(5, 1, 8, 8), torch.arange(5) * 100, torch.tensor([0, 1, 2, 3, 3]))
    assert out.shape == (5, 1, 8, 8)
    assert UNet(UNetConfig()).forward(torch.zeros(1, 1, 28, 28), torch.tensor([10]), torch.tensor([10])).shape == (1, 1, 28, 28)


# Golden values: a 2-step chain of the tiny U-Net (seed 0) from fixed noise, guidance s = 2.
GOLDEN = {  # regenerate: python tests/test_diffusion_math.py
    "DDIM": [-32.2885, 0.83745, -1.0, 0.67367],   # eps recomputed from the clipped x0 (see DDIMSampler)
    "DDPM": [-32.5462, 0.83717, -1.0, 0.66712],   # step noise by pipeline.step_seed(7, k)
}


def two_step(kind: str) -> torch.Tensor:
    m = tiny_unet(0)
    sched = NoiseSchedule("cosine", 1000)
    x = torch.randn((2, 1, 8, 8), generator=torch.Generator().manual_seed(42))
    y = torch.tensor([1, 2])
    return pipeline.sample(m, sched, y, 2.0, sampler=kind, steps=2, eta=0.0, x_T=x, seed=7)


def two_step_figures(kind: str) -> list[float]:
    x = two_step(kind)
    return [round(float(x.sum()), 4), round(float(x.abs().mean()), 5), round(float(x[0, 0, 3, 4]), 5),
            round(float(x[1, 0, 6, 1]), 5)]


@pytest.mark.parametrize("kind", ["DDIM", "DDPM"])
def test_two_step_golden(kind):
    got = two_step_figures(kind)
    assert got == pytest.approx(GOLDEN[kind], abs=2e-4), got


# --- one noise rule: a batch in one call, a chain stepped, a batch split differently -----------------

@pytest.mark.parametrize("kind, eta", [("DDPM", 0.0), ("DDIM", 0.5)])
def test_sample_of_one_equals_a_stepped_chain(kind, eta):
    """The two paths the service uses, for one request: sample_rows (the one-call image) and a Chain
    stepped to the end, same seed: the same image exactly, for the samplers that draw step noise (DDPM,
    DDIM with eta > 0), and at s = 3, 1 and 0. The evaluation's pipeline.sample (one pass of B at s = 0
    or 1 instead of 2B) agrees to float rounding."""
    m = tiny_unet(1)
    sched = NoiseSchedule("cosine", 1000)
    for s in (3.0, 1.0, 0.0):
        chain = pipeline.Chain(label=1, scale=s, sampler=kind, steps=5, seed=11, eta=eta).start(m)
        while chain.step(m, sched) is not None:
            pass
        one = pipeline.sample_rows(m, sched, [1], [s], [11], sampler=kind, steps=5, eta=eta)
        assert torch.equal(one[0], chain.frames[-1].x_prev), s
        assert [f.t for f in chain.frames] == [800, 600, 400, 200, 0]
        assert [f.t_next for f in chain.frames] == [600, 400, 200, 0, -200]
        ev = pipeline.sample(m, sched, torch.tensor([1]), s, sampler=kind, steps=5, eta=eta, seed=11)
        assert torch.allclose(ev[0], one[0], atol=1e-5), s


@pytest.mark.parametrize("kind, eta, draws", [("DDPM", 0.0, 2 * 4), ("DDIM", 0.5, 2 * 5), ("DDIM", 0.0, 0)])
def test_step_noise_is_drawn_only_where_the_sampler_uses_it(kind, eta, draws, monkeypatch):
    """DDPM draws z at every step but the last, DDIM only when eta > 0: the step noise (a seed hash and a
    generator per row and step) is made only then, for the one-call image and for a chain alike."""
    made = []
    real = pipeline.step_noise
    monkeypatch.setattr(pipeline, "step_noise", lambda like, seed, k: made.append(k) or real(like, seed, k))
    m, sched = tiny_unet(1), NoiseSchedule("cosine", 1000)
    pipeline.sample_rows(m, sched, [1, 2], [3.0, 1.0], [11, 12], sampler=kind, steps=5, eta=eta)
    assert len(made) == draws
    made.clear()
    chain = pipeline.Chain(label=1, scale=3.0, sampler=kind, steps=5, seed=11, eta=eta).start(m)
    while chain.step(m, sched) is not None:
        pass
    assert len(made) == draws // 2


@pytest.mark.parametrize("kind", ["DDPM", "DDIM"])
def test_batched_requests_equal_each_request_alone(kind):
    """Three students' requests (own class, scale, seed) in one batch, and their chains stepped together
    while at different steps: each row equals its request alone, up to float rounding of the batched
    convolutions."""
    m = tiny_unet(1)
    sched = NoiseSchedule("cosine", 1000)
    ys, ss, seeds = [1, 0, 1], [3.0, 1.0, 0.0], [5, 6, 7]
    together = pipeline.sample_rows(m, sched, ys, ss, seeds, sampler=kind, steps=4)
    for i in range(3):
        alone = pipeline.sample_rows(m, sched, ys[i:i + 1], ss[i:i + 1], seeds[i:i + 1], sampler=kind, steps=4)
        assert torch.allclose(together[i], alone[0], atol=1e-5)
    chains = [pipeline.Chain(label=y, scale=s, sampler=kind, steps=4, seed=d).start(m) for y, s, d in zip(ys, ss, seeds)]
    chains[0].step(m, sched)                                   # one chain ahead of the others
    solo = [pipeline.Chain(label=y, scale=s, sampler=kind, steps=4, seed=d).start(m) for y, s, d in zip(ys, ss, seeds)]
    solo[0].step(m, sched)
    while any(not c.done for c in chains):
        pipeline.step_chains(m, sched, chains)
    for c in solo:
        while c.step(m, sched) is not None:
            pass
    for a, b in zip(chains, solo):
        assert torch.allclose(a.frames[-1].x_prev, b.frames[-1].x_prev, atol=1e-5)
        assert [f.t for f in a.frames] == [f.t for f in b.frames]


def test_batched_sampling_is_deterministic_and_independent_of_the_split():
    """The same seed gives the same batch; how the batch is split for the network does not change the
    noise an image gets (the step noise is drawn for the whole batch)."""
    m = tiny_unet(2)
    sched = NoiseSchedule("cosine", 1000)
    y = torch.tensor([0, 1, 2, 0, 1])
    a = pipeline.sample(m, sched, y, 2.0, sampler="DDPM", steps=4, seed=5, batch=5)
    b = pipeline.sample(m, sched, y, 2.0, sampler="DDPM", steps=4, seed=5, batch=5)
    c = pipeline.sample(m, sched, y, 2.0, sampler="DDPM", steps=4, seed=5, batch=2)
    d = pipeline.sample(m, sched, y, 2.0, sampler="DDPM", steps=4, seed=6, batch=5)
    assert torch.equal(a, b)
    torch.testing.assert_close(c, a, rtol=1e-5, atol=1e-5)    # the network's sums may round differently per batch
    assert (d - a).abs().max() > 0.1


def test_neighbouring_seeds_share_no_noise():
    """Step k's noise is no other step's or seed's: not seed + 1's start noise, not the next step's of seed - 1."""
    m = tiny_unet(0)
    like = torch.zeros(1, 1, 8, 8)
    start = {s: pipeline.start_noise(1, m, s) for s in range(4)}
    steps = {(s, k): pipeline.step_noise(like, s, k) for s in range(4) for k in range(4)}
    pool = list(start.values()) + list(steps.values())
    for i, a in enumerate(pool):
        for b in pool[i + 1:]:
            assert not torch.equal(a, b)


if __name__ == "__main__":
    for kind in GOLDEN:
        print(f'    "{kind}": {two_step_figures(kind)},')
