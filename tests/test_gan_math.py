"""GAN lab: the mapping / truncation / mixing math, modulated convolution against a per-sample
reference, PCA against an exact SVD, and a tiny model with golden values. Fast: tiny configs, no
checkpoint needed; the conditional DCGAN's projection and class-conditional batch norm against their
equations computed by hand. Tests that run training steps are marked slow."""
from __future__ import annotations

import copy
import math
import sys
from pathlib import Path

if __name__ == "__main__":      # run as a script (prints the golden values): import from this checkout
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from playground.gan import stylegan as sg  # noqa: E402
from playground.gan.cdcgan import (CDCDiscriminator, CDCGANConfig, CDCGenerator,  # noqa: E402
                                   ConditionalBatchNorm2d)
from playground.gan.dcgan import DCDiscriminator, DCGANConfig, DCGenerator  # noqa: E402
from playground.gan.stylegan import (MinibatchStd, ModConv, StyleDiscriminator, StyleGANConfig,  # noqa: E402
                                     StyleGenerator, mix, truncate)
from playground.gan.train import STYLEGAN2_D, Trainer, TrainConfig, pad_fashion, to_judge  # noqa: E402

TINY = StyleGANConfig(z_dim=8, w_dim=8, mapping_layers=2, channels=(8, 8, 4, 4), d_channels=(4, 4, 8, 8))


@pytest.fixture(scope="module")
def G():
    torch.manual_seed(0)
    g = StyleGenerator(TINY).eval()
    with torch.no_grad():
        g.w_avg.copy_(torch.randn(TINY.w_dim))
        for conv in g.synthesis.convs:      # make noise matter, so that noise tests mean something
            conv.noise_strength.fill_(0.3)
    return g


def test_config_shapes():
    cfg = StyleGANConfig()
    assert cfg.resolution == 32 and cfg.num_ws == 7 == len(cfg.layer_sizes)
    assert cfg.layer_sizes == (4, 8, 8, 16, 16, 32, 32)
    assert cfg.groups == {"coarse": (0, 1, 2), "middle": (3, 4), "fine": (5, 6)}
    assert TINY.resolution == 32 and TINY.num_ws == 7 and TINY.groups == cfg.groups
    assert StyleGenerator(TINY).synthesis.sizes == list(TINY.layer_sizes)
    small = StyleGANConfig(channels=(8, 8, 4))        # 16 px: no middle layers
    assert small.layer_sizes == (4, 8, 8, 16, 16)
    assert small.groups == {"coarse": (0, 1, 2), "middle": (), "fine": (3, 4)}
    assert DCGANConfig(base=32).maps == (32, 64, 128)


def test_truncation_psi0_gives_w_avg_and_psi1_is_identity(G):
    z = torch.randn(5, TINY.z_dim)
    w = G.map(z)
    assert torch.equal(G.map(z, psi=1.0), w)
    assert torch.allclose(G.map(z, psi=0.0), G.w_avg.expand(5, -1), atol=1e-6)
    half = G.map(z, psi=0.5)
    assert torch.allclose(half, (w + G.w_avg) / 2, atol=1e-6)
    # the distance to w_avg scales by exactly |psi|
    for psi in (0.25, 0.7, 1.3):
        d = (truncate(w, G.w_avg, psi) - G.w_avg).norm(dim=1) / (w - G.w_avg).norm(dim=1)
        assert torch.allclose(d, torch.full_like(d, psi), atol=1e-5)


def test_psi0_image_is_the_w_avg_image_for_every_seed(G):
    x = G(torch.randn(3, TINY.z_dim), psi=0.0, noise_mode="off")
    ref = G.synthesize(G.w_avg[None], "off")
    assert torch.allclose(x, ref.expand(3, -1, -1, -1), atol=1e-5)


def test_mapping_normalises_z_first(G):
    z = torch.randn(4, TINY.z_dim)
    assert torch.allclose(G.mapping(z), G.mapping(3.7 * z), atol=1e-5)   # pixel norm: scale of z is ignored


def test_w_avg_tracks_the_mean_of_w():
    torch.manual_seed(1)
    g = StyleGenerator(TINY)
    z = torch.randn(16, TINY.z_dim)
    before = g.w_avg.clone()
    w = g.map(z, update_w_avg=True)
    beta = TINY.w_avg_beta
    assert torch.allclose(g.w_avg, beta * before + (1 - beta) * w.mean(0), atol=1e-6)


def test_mix_weights_blend_per_layer():
    a, b = torch.randn(2, 8), torch.randn(2, 8)
    out = mix(a, b, [0, 1, 0.25, 0, 0, 0, 1])
    assert out.shape == (2, 7, 8)
    assert torch.equal(out[:, 0], a) and torch.equal(out[:, 1], b)
    assert torch.allclose(out[:, 2], 0.75 * a + 0.25 * b)


@pytest.mark.parametrize("noise", [False, True])
def test_mixing_all_layers_from_one_seed_equals_that_seeds_image(G, noise):
    out = sg.mixing_grid(G, [3, 4, 5], [7, 8], range(7), psi=0.9, noise_on=noise, noise_seed=11)
    for i in range(2):
        for j in range(3):
            assert torch.allclose(out["mixes"][i, j], out["styles"][i], atol=1e-5)
    none = sg.mixing_grid(G, [3, 4, 5], [7, 8], [], psi=0.9, noise_on=noise, noise_seed=11)
    for i in range(2):
        assert torch.allclose(none["mixes"][i], none["sources"], atol=1e-5)
    # and a partial mix differs from both
    part = sg.mixing_grid(G, [3], [7], TINY.groups["coarse"], psi=1.0, noise_on=noise, noise_seed=11)
    assert not torch.allclose(part["mixes"][0, 0], part["sources"][0], atol=1e-4)


def test_single_mix_endpoints(G):
    a0 = sg.single_mix(G, 1, 2, [0.0] * 7, 1.0, True, 5)
    a1 = sg.single_mix(G, 1, 2, [1.0] * 7, 1.0, True, 5)
    assert torch.allclose(a0["mix"], a0["a"], atol=1e-5)
    assert torch.allclose(a1["mix"], a1["b"], atol=1e-5)


def test_seeds_are_reproducible_and_noise_seed_matters(G):
    assert torch.equal(sg.z_of([42], 8), sg.z_of([42], 8))
    x1 = sg.sample(G, 2, seed=3, noise_on=True, noise_seed=0)
    x2 = sg.sample(G, 2, seed=3, noise_on=True, noise_seed=0)
    x3 = sg.sample(G, 2, seed=3, noise_on=True, noise_seed=1)
    x4 = sg.sample(G, 2, seed=3, noise_on=False)
    assert torch.equal(x1, x2)
    assert not torch.allclose(x1, x3) and not torch.allclose(x1, x4)
    assert x1.shape == (2, 1, 32, 32) and 0 <= x1.min() and x1.max() <= 1


def test_modulated_conv_equals_per_sample_weights():
    """conv(x * s, W) * d  ==  conv with w''_{b,o,i,k} = s_{b,i} W_{o,i,k} / sqrt(sum_{i,k} (s_{b,i} W_{o,i,k})^2)."""
    torch.manual_seed(0)
    m = ModConv(6, 5, w_dim=4)
    x, w = torch.randn(3, 6, 7, 7), torch.randn(3, 4)
    y = m(x, w)
    s = m.affine(w)
    ref = []
    for b in range(3):
        wt = m.weight * m.scale * s[b][None, :, None, None]
        wt = wt / (wt.square().sum((1, 2, 3), keepdim=True) + 1e-8).sqrt()
        ref.append(F.leaky_relu(F.conv2d(x[b:b + 1], wt, padding=1) + m.bias[None, :, None, None], 0.2) * math.sqrt(2))
    assert torch.allclose(y, torch.cat(ref), atol=1e-5)


def test_transposed_modulated_conv_equals_per_sample_weights():
    """The 4x4 stride-2 upsampling layer: conv_transpose(x * s, W) * d * 2 equals a transposed conv with each
    sample's own modulated, demodulated weights, and doubles the size."""
    torch.manual_seed(0)
    m = ModConv(6, 5, w_dim=4, up="transposed", noise=False, act=False)
    x, w = torch.randn(3, 6, 4, 4), torch.randn(3, 4)
    y = m(x, w)
    assert y.shape == (3, 5, 8, 8) and m.weight.shape == (5, 6, 4, 4)
    s = m.affine(w)
    ref = []
    for b in range(3):
        wt = m.weight * m.scale * s[b][None, :, None, None]                  # (cout, cin, 4, 4)
        wt = wt / (wt.square().sum((1, 2, 3), keepdim=True) + 1e-8).sqrt()
        ref.append(2 * F.conv_transpose2d(x[b:b + 1], wt.transpose(0, 1), stride=2, padding=1) + m.bias[None, :, None, None])
    assert torch.allclose(y, torch.cat(ref), atol=1e-5)


def test_upsampling_layers_keep_unit_scale():
    """Demodulation (and the x2 of the transposed conv) keep unit-variance inputs at about unit variance."""
    torch.manual_seed(0)
    x, w = torch.randn(64, 32, 8, 8), torch.randn(64, 16)
    for up in ("bilinear", "transposed"):
        m = ModConv(32, 32, w_dim=16, up=up, noise=False, act=False)
        y = m(x, w)
        assert y.shape == (64, 32, 16, 16)
        assert 0.6 < y.std().item() < 1.4, up


def test_demodulated_forward_keeps_unit_variance_and_ignores_the_style_scale():
    """ModConv.forward with demodulation: a unit-variance input gives a unit-variance output (each output
    channel's modulated weights are renormalised to unit norm), and multiplying every style s = A(w) by 10
    changes nothing; without demodulation the same forward is linear in s, so the output grows 10x."""
    torch.manual_seed(0)
    x, w = torch.randn(16, 8, 34, 34), torch.randn(16, 4)
    m = ModConv(8, 6, w_dim=4, noise=False, act=False)
    y = m(x, w)
    assert y[:, :, 1:-1, 1:-1].std().item() == pytest.approx(1.0, abs=0.03)   # away from the zero padding
    loud = copy.deepcopy(m)
    with torch.no_grad():                       # s = A(w) is affine in (weight, bias): both x10 -> s x10
        loud.affine.weight.mul_(10)
        loud.affine.bias.mul_(10)
    assert torch.allclose(loud.affine(w), 10 * m.affine(w), rtol=1e-5)
    assert torch.allclose(loud(x, w), y, atol=1e-4)
    m.demod = loud.demod = False
    assert torch.allclose(loud(x, w), 10 * m(x, w), rtol=1e-4, atol=1e-4)
    assert not torch.allclose(m(x, w), y, atol=1e-2)


def test_pca2_matches_an_exact_svd():
    """torch.pca_lowrank as pca2 runs it (centred, q = PCA_Q, PCA_NITER iterations) gives the explained-variance
    shares and the axes (up to sign) of an exact SVD of the centred data, and the same answer every time."""
    g = torch.Generator().manual_seed(0)
    spectrum = torch.tensor([6.0, 3.0, 1.5, 1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.1])
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g))
    x = (torch.randn(400, 12, generator=g) * spectrum) @ q.T + 5.0       # correlated and off-centre
    mu, basis, shares = sg.pca2(x)
    _, s, vh = torch.linalg.svd(x - x.mean(0), full_matrices=False)
    assert shares == pytest.approx((s[:2] ** 2 / (s ** 2).sum()).tolist(), rel=1e-4)
    assert torch.allclose((basis.T @ vh[:2].T).abs(), torch.eye(2), atol=1e-4)
    assert torch.allclose(mu, x.mean(0))
    again = sg.pca2(x)
    assert torch.equal(again[1], basis) and again[2] == shares


def test_minibatch_std_appends_one_channel():
    x = torch.randn(8, 3, 4, 4)
    y = MinibatchStd(4)(x)
    assert y.shape == (8, 4, 4, 4) and torch.equal(y[:, :3], x)
    same = MinibatchStd(4)(torch.ones(8, 3, 4, 4))
    assert torch.allclose(same[:, 3], torch.full((8, 4, 4), 1e-4), atol=1e-4)  # no variety -> ~0


def test_discriminators_and_dcgan_shapes():
    torch.manual_seed(0)
    assert StyleDiscriminator(TINY)(torch.randn(4, 1, 32, 32)).shape == (4,)
    cfg = DCGANConfig(z_dim=10, base=4)
    g, d = DCGenerator(cfg), DCDiscriminator(cfg)
    x = g(torch.randn(3, 10))
    assert x.shape == (3, 1, 32, 32) and x.abs().max() <= 1
    assert d(x).shape == (3,)


def test_padding_round_trip():
    imgs = torch.randint(0, 256, (5, 28, 28), dtype=torch.uint8)
    x = pad_fashion(imgs)
    assert x.shape == (5, 1, 32, 32) and x.min() >= -1 and x.max() <= 1
    assert torch.allclose(to_judge(x)[:, 0], imgs.float() / 255, atol=1e-6)
    assert torch.all(x[:, :, :2] == -1)


def tiny_golden() -> dict:
    """The tiny model's figures that the golden values pin: seeded init, seeded z, fixed noise."""
    torch.manual_seed(0)
    g = StyleGenerator(TINY).eval()
    z = torch.randn(2, TINY.z_dim, generator=torch.Generator().manual_seed(0))
    x = g(z, noise_mode="fixed", noise_seed=0)
    assert x.shape == (2, 1, 32, 32)
    return {"w_sum": g.map(z).sum().item(), "x_sum": x.sum().item(), "x_centre": x[0, 0, 16, 16].item()}


def test_tiny_model_golden_values():
    got = tiny_golden()
    assert got["w_sum"] == pytest.approx(GOLDEN_W_SUM, rel=1e-4, abs=1e-4)
    assert got["x_sum"] == pytest.approx(GOLDEN_X_SUM, rel=1e-4, abs=1e-3)
    assert got["x_centre"] == pytest.approx(GOLDEN_X_CENTRE, rel=1e-4, abs=1e-5)


GOLDEN_W_SUM = 9.808547973632812        # regenerate: python tests/test_gan_math.py
GOLDEN_X_SUM = 2466.216064453125        # regenerate: python tests/test_gan_math.py
GOLDEN_X_CENTRE = 1.1357759237289429    # regenerate: python tests/test_gan_math.py


def test_tanh_output_is_tanh_of_the_linear_output():
    """out="tanh" squashes the summed ToRGB output into the data's range and changes nothing else."""
    import dataclasses

    torch.manual_seed(0)
    lin = StyleGenerator(TINY).eval()
    th = StyleGenerator(dataclasses.replace(TINY, out="tanh")).eval()
    th.load_state_dict(lin.state_dict())
    z = torch.randn(3, TINY.z_dim)
    y_lin, y_th = lin(z, noise_mode="fixed", noise_seed=2), th(z, noise_mode="fixed", noise_seed=2)
    assert torch.allclose(y_th, torch.tanh(y_lin), atol=1e-6)
    assert y_th.abs().max() < 1


@pytest.mark.slow
@pytest.mark.parametrize("kind, disc", [("stylegan", "dcgan"), ("stylegan", "resnet"), ("dcgan", None)])
def test_trainer_steps_are_finite_and_logged(kind, disc):
    torch.manual_seed(0)
    data = torch.rand(64, 1, 32, 32) * 2 - 1
    cfg = TINY if kind == "stylegan" else DCGANConfig(z_dim=8, base=4)
    tcfg = TrainConfig(batch=8, log_every=1, r1_every=2, **(STYLEGAN2_D if disc == "resnet" else {}))
    tr = Trainer(kind, data, tcfg, seed=0, model_cfg=cfg)
    if disc:
        assert isinstance(tr.D, DCDiscriminator if disc == "dcgan" else StyleDiscriminator)
    for _ in range(3):
        tr.step()
    assert tr.step_count == 3 and len(tr.log) == 3
    for rec in tr.log:
        assert all(math.isfinite(v) for v in rec.values())
        assert 0 <= rec["d_real"] <= 1 and 0 <= rec["d_fake"] <= 1
    if kind == "stylegan":
        assert tr.G.w_avg.abs().sum() > 0                          # w_avg moved
        assert ("r1" in tr.log[0]) == (disc == "resnet")           # R1 ran at step 0 only where it is on
    # G_ema moved towards G but is not G
    p, pe = next(tr.G.parameters()), next(tr.G_ema.parameters())
    assert not torch.equal(p, pe)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["stylegan", "dcgan"])
def test_one_batch_of_fakes_serves_both_steps_and_the_g_step_leaves_d_alone(kind):
    """A step draws one batch of fakes for the D step and the G step, and the G step adds nothing to D's
    gradients (D is frozen for it), so D's update is exactly its own loss's."""
    torch.manual_seed(0)
    data = torch.rand(64, 1, 32, 32) * 2 - 1
    cfg = TINY if kind == "stylegan" else DCGANConfig(z_dim=8, base=4)
    tr = Trainer(kind, data, TrainConfig(batch=8), seed=0, model_cfg=cfg)
    calls, grads = [], {}

    def spy(fn, name):                       # record D's gradients, then run the optimiser's step
        def wrapped():
            grads[name] = [p.grad.clone() for p in tr.D.parameters()]
            return fn()
        return wrapped

    fake = tr._fake
    tr._fake = lambda *a, **k: calls.append(1) or fake(*a, **k)
    tr.opt_d.step, tr.opt_g.step = spy(tr.opt_d.step, "at_d_step"), spy(tr.opt_g.step, "at_g_step")
    tr.step()
    assert len(calls) == 1
    assert all(torch.equal(a, b) for a, b in zip(grads["at_d_step"], grads["at_g_step"]))
    assert any(g.abs().sum() > 0 for g in grads["at_d_step"])


def test_config_rejects_unknown_upsampling_or_output():
    with pytest.raises(ValueError, match="up must be one of"):
        StyleGANConfig(up="nearest")
    with pytest.raises(ValueError, match="out one of"):
        StyleGANConfig(out="sigmoid")


def test_trainer_rejects_an_unknown_discriminator():
    with pytest.raises(ValueError, match="discriminator"):
        Trainer("stylegan", torch.zeros(8, 1, 32, 32), TrainConfig(discriminator="mlp"), seed=0, model_cfg=TINY)


def test_ours_d_has_its_own_width_and_each_card_records_only_what_its_model_uses():
    data = torch.rand(16, 1, 32, 32) * 2 - 1
    ours = Trainer("stylegan", data, TrainConfig(d_base=8), seed=0, model_cfg=TINY)
    assert ours.D.config.base == 8 and [m.out_channels for m in ours.D.net if hasattr(m, "out_channels")] == [8, 16, 32]
    assert ours.recorded_config()["d_base"] == 8
    peer = Trainer("dcgan", data, TrainConfig(d_base=8, lr=0.5), seed=0, model_cfg=DCGANConfig(z_dim=8, base=4))
    rec = peer.recorded_config()
    assert set(rec) == {"batch", "ema_half_life_img", "ema_rampup", "log_every", "adam_g_and_d"}
    assert rec["adam_g_and_d"]["lr"] == 2e-4 == peer.opt_g.param_groups[0]["lr"] == peer.opt_d.param_groups[0]["lr"]
    assert peer.D.config.base == 4                                  # the peer's D follows its own config


@pytest.mark.slow
def test_trainer_is_deterministic_given_the_seed():
    data = torch.rand(64, 1, 32, 32) * 2 - 1
    outs = []
    for _ in range(2):
        tr = Trainer("stylegan", data, TrainConfig(batch=8, r1_every=2), seed=3, model_cfg=TINY)
        tr.step(), tr.step()
        outs.append(torch.cat([p.detach().flatten() for p in tr.G_ema.parameters()]))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.slow
def test_training_recipe_writes_a_reproducible_card(tmp_path):
    import json

    from demos import train_gan

    threads = torch.get_num_threads()
    try:
        train_gan.main(["--model", "stylegan", "--steps", "2", "--batch", "4", "--train-size", "64",
                        "--out", str(tmp_path)])
    finally:
        torch.set_num_threads(threads)
    card = json.loads((tmp_path / "stylegan_fashion.json").read_text())
    assert card["steps"] == 2 and card["finished"] and card["config"]["channels"] == [128, 64, 32, 32]
    assert card["config"]["up"] == "transposed" and card["discriminator"] == "DCDiscriminator"
    assert "--steps 2" in card["recipe"] and "--discriminator dcgan --up transposed" in card["recipe"]
    assert card["config"]["out"] == "tanh" and "--output tanh --mixing 0.5" in card["recipe"] and card["device"] == "cpu"
    assert card["train_config"]["mixing_prob"] == 0.5 and card["train_config"]["lr"] == 0.002
    assert "--channels 128,64,32,32" in card["recipe"] and "--d-base 32" in card["recipe"]
    assert card["discriminator_config"]["base"] == 32 and card["train_config"]["d_base"] == 32
    assert card["curves"][0]["step"] == 0 and {"d_loss", "g_loss", "d_real", "d_fake"} <= set(card["curves"][0])
    pngs = sorted(tmp_path.glob("stylegan_fashion_step*.png"))
    assert len(pngs) >= 2 and all(p.stat().st_size < 200_000 for p in pngs)
    from playground.core import checkpoint

    G, _ = checkpoint.load(tmp_path / "stylegan_fashion")
    assert G(torch.randn(2, 128)).shape == (2, 1, 32, 32)


if __name__ == "__main__":
    # Prints the current values of the golden constants above.
    for k, v in tiny_golden().items():
        print(f"GOLDEN_{k.upper()} = {v!r}")


# --- the conditional DCGAN (playground/gan/cdcgan.py) ---------------------------------------------------

CTINY = CDCGANConfig(z_dim=8, base=4)


def test_projection_discriminator_is_psi_of_phi_plus_the_class_vector_dot_phi():
    """l(x, y) = psi(phi(x)) + embed(y) . phi(x), computed by hand from D's own tables; and moving one
    class's vector changes the logits of that class's images only."""
    torch.manual_seed(0)
    D = CDCDiscriminator(CTINY).eval()
    with torch.no_grad():
        D.embed.weight.normal_()                       # make the projection term matter
    x, y = torch.rand(6, 1, 32, 32) * 2 - 1, torch.tensor([0, 3, 3, 9, 1, 0])
    phi = D.net(x).reshape(6, -1)
    assert phi.shape == (6, 16 * 4 * CTINY.base)
    by_hand = phi @ D.out.weight[0] + D.out.bias[0] + (D.embed.weight[y] * phi).sum(1)
    assert torch.allclose(D(x, y), by_hand, atol=1e-5)
    before = D(x, y).detach()
    with torch.no_grad():
        D.embed.weight[3] += 1.0
    moved = (D(x, y).detach() - before).abs() > 1e-6
    assert moved.tolist() == (y == 3).tolist()
    # and the change is exactly 1 . phi(x) for those
    assert torch.allclose((D(x, y) - before)[y == 3], phi[y == 3].sum(1), atol=1e-4)


def test_conditional_batch_norm_is_the_class_rows_of_gamma_and_beta_around_the_batch_norm():
    torch.manual_seed(0)
    cbn = ConditionalBatchNorm2d(3, 10).train()
    with torch.no_grad():
        cbn.gamma.weight.normal_(), cbn.beta.weight.normal_()
    h, y = torch.randn(5, 3, 4, 4), torch.tensor([2, 2, 7, 0, 9])
    mu, var = h.mean((0, 2, 3), keepdim=True), h.var((0, 2, 3), unbiased=False, keepdim=True)
    by_hand = cbn.gamma.weight[y][:, :, None, None] * (h - mu) / torch.sqrt(var + cbn.bn.eps) + \
        cbn.beta.weight[y][:, :, None, None]
    assert torch.allclose(cbn(h, y), by_hand, atol=1e-5)


def test_conditional_generator_shapes_range_and_the_class_matters():
    torch.manual_seed(0)
    G = CDCGenerator(CTINY).eval()
    with torch.no_grad():                              # untrained tables are all near (1, 0): spread them
        for m in G.modules():
            if isinstance(m, ConditionalBatchNorm2d):
                m.gamma.weight.normal_(1.0, 0.5), m.beta.weight.normal_(0.0, 0.5)
    z = torch.randn(4, CTINY.z_dim)
    a, b = G(z, torch.tensor([1, 1, 1, 1])), G(z, torch.tensor([1, 1, 5, 5]))
    assert a.shape == (4, 1, 32, 32) and a.abs().max() <= 1
    assert torch.equal(a[:2], b[:2])                   # eval mode: each image depends on its own (z, y) only
    assert (a[2:] - b[2:]).abs().mean() > 1e-3         # same z, another class: another image
    assert torch.equal(G(z, torch.tensor([1, 1, 1, 1])), a)


@pytest.mark.slow
def test_conditional_trainer_needs_labels_and_steps_finite():
    torch.manual_seed(0)
    labels = torch.arange(64) % 10
    data = (labels / 10).view(-1, 1, 1, 1).expand(64, 1, 32, 32).clone()   # image i is flat at label_i / 10
    with pytest.raises(ValueError, match="labels go with kind cdcgan"):
        Trainer("cdcgan", data, TrainConfig(batch=8), seed=0, model_cfg=CTINY)
    with pytest.raises(ValueError, match="labels go with kind cdcgan"):
        Trainer("dcgan", data, TrainConfig(batch=8), seed=0, model_cfg=DCGANConfig(z_dim=8, base=4), labels=labels)
    runs = []
    for _ in range(2):                                 # deterministic given the seed
        tr = Trainer("cdcgan", data, TrainConfig(batch=8, log_every=1), seed=0, model_cfg=CTINY, labels=labels)
        seen = []
        d_forward = tr.D.forward
        tr.D.forward = lambda x, y: seen.append((x, y)) or d_forward(x, y)
        tr.step(), tr.step()
        runs.append(torch.cat([p.detach().flatten() for p in tr.G_ema.parameters()]))
    assert all(math.isfinite(v) for rec in tr.log for v in rec.values())
    assert len(seen) == 6 and all(y.shape == (8,) and y.max() < 10 for _, y in seen)   # real, fake, G step; twice
    real, y_real = seen[0]
    assert torch.equal((real.mean((1, 2, 3)) * 10).round().long(), y_real)   # real images come with their labels
    assert torch.equal(seen[1][1], seen[2][1])         # G is scored on the classes its fakes were asked for
    assert torch.equal(runs[0], runs[1])
    assert tr.recorded_config()["adam_g_and_d"]["lr"] == 2e-4
    assert tr.sample(torch.randn(3, 8), y=torch.tensor([0, 1, 2])).shape == (3, 1, 32, 32)
