"""VAE lab: closed forms against Monte Carlo, the reparameterisation's moments, the interpolation
paths, and a tiny model with golden values."""
from __future__ import annotations

import math

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import pytest
import torch

from playground.vae.latent import lerp, quantile_grid, slerp
from playground.vae.losses import kl_mc, kl_per_dim, loss_terms, recon_nll, reparameterise
from playground.vae.mlp import MLPVAE, MLPVAEConfig
from playground.vae.model import ConvVAE, VAEConfig


def test_closed_form_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 4, generator=g, dtype=torch.float64) * 1.5
    logvar = torch.randn(5, 4, generator=g, dtype=torch.float64)
    closed = kl_per_dim(mu, logvar).sum(1)                                  # (5,)
    mc = kl_mc(mu, logvar, n=200_000, generator=g)                          # (5,)
    # MC standard error is well under 0.02 nats here
    assert torch.allclose(closed, mc, atol=0.04), (closed, mc)


def test_kl_is_zero_at_the_prior_and_positive_elsewhere():
    z = torch.zeros(3, 6)
    assert torch.equal(kl_per_dim(z, z), torch.zeros(3, 6))
    assert (kl_per_dim(torch.full((2, 6), 0.3), torch.full((2, 6), -0.5)) > 0).all()
    # one dimension by hand: mu = 1, sigma^2 = e  ->  (1 + e - 1 - 1) / 2
    v = kl_per_dim(torch.tensor([[1.0]]), torch.tensor([[1.0]]))
    assert v.item() == pytest.approx((math.e - 1) / 2, rel=1e-6)


def test_reparameterised_samples_have_the_right_moments():
    torch.manual_seed(0)
    mu = torch.tensor([0.5, -2.0, 3.0])
    logvar = torch.log(torch.tensor([0.25, 1.0, 4.0]))
    z = reparameterise(mu.expand(200_000, 3), logvar.expand(200_000, 3))
    assert torch.allclose(z.mean(0), mu, atol=0.02)
    assert torch.allclose(z.var(0), logvar.exp(), rtol=0.02)


def test_reparameterisation_is_differentiable_in_mu_and_sigma():
    mu = torch.zeros(2, 3, requires_grad=True)
    logvar = torch.zeros(2, 3, requires_grad=True)
    eps = torch.ones(2, 3)
    reparameterise(mu, logvar, eps).sum().backward()
    assert torch.equal(mu.grad, torch.ones(2, 3))
    assert torch.allclose(logvar.grad, torch.full((2, 3), 0.5))           # d(exp(lv/2))/dlv at 0


def test_bernoulli_recon_is_the_summed_cross_entropy():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 1, 4, 4, generator=g)
    x = torch.rand(2, 1, 4, 4, generator=g)
    p = torch.sigmoid(logits)
    by_hand = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(1)
    assert torch.allclose(recon_nll(logits, x), by_hand, atol=1e-5)
    t = loss_terms(logits, x, torch.zeros(2, 3), torch.zeros(2, 3), beta=4.0)
    assert t["kl"].item() == 0.0 and torch.isclose(t["loss"], t["recon"]) and torch.isclose(t["neg_elbo"], t["recon"])


def test_lerp_and_slerp_paths():
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0])
    t = torch.linspace(0, 1, 5)
    for path in (lerp(a, b, t), slerp(a, b, t)):
        assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    # between two unit vectors slerp stays on the sphere; lerp cuts inside it
    assert torch.allclose(slerp(a, b, t).norm(dim=1), torch.ones(5), atol=1e-6)
    assert lerp(a, b, t)[2].norm() == pytest.approx(math.sqrt(0.5), rel=1e-6)
    assert torch.allclose(slerp(a, b, torch.tensor([0.5]))[0], torch.tensor([math.sqrt(0.5)] * 2 + [0.0]), atol=1e-6)
    assert torch.allclose(slerp(a, 2 * a, t), lerp(a, 2 * a, t))         # parallel: falls back to lerp


def test_quantile_grid_covers_equal_prior_mass():
    g = quantile_grid(5)
    assert g.shape == (25, 2)
    cdf = torch.distributions.Normal(0, 1).cdf(g[:5, 0])
    assert torch.allclose(cdf, torch.linspace(0.03, 0.97, 5), atol=1e-5)
    assert g[0, 1] > g[-1, 1]                                               # top row has the highest z[1]


# -ELBO of the seeded tiny model on the seeded batch (nats per image)
GOLDEN_CONV = 543.623  # regenerate: python tests/test_vae_math.py


@torch.no_grad()
def tiny_conv_vae() -> tuple[ConvVAE, torch.Tensor]:
    """A seeded ConvVAE with channels (2, 4), D = 3, and a seeded batch of two 28x28 images."""
    torch.manual_seed(0)
    m = ConvVAE(VAEConfig(latent_dim=3, ch1=2, ch2=4, hidden=8))
    return m, torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def tiny_neg_elbo(m: ConvVAE, x: torch.Tensor) -> float:
    torch.manual_seed(1)                                                    # the reparameterisation's eps
    logits, mu, logvar = m(x)
    return float(loss_terms(logits, x, mu, logvar)["neg_elbo"])


@torch.no_grad()
def test_tiny_conv_vae_shapes_and_golden_values():
    m, x = tiny_conv_vae()
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (2, 3)
    assert m.decode(mu).shape == (2, 1, 28, 28)
    assert 0 <= float(m.decode(mu).min()) and float(m.decode(mu).max()) <= 1
    assert tiny_neg_elbo(m, x) == pytest.approx(GOLDEN_CONV, abs=2e-2)


def test_mlp_peer_is_the_pytorch_examples_shape():
    m = MLPVAE(MLPVAEConfig())
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes["fc1.weight"] == (400, 784) and shapes["fc21.weight"] == (20, 400)
    assert shapes["fc3.weight"] == (400, 20) and shapes["fc4.weight"] == (784, 400)
    assert m.decode(torch.zeros(1, 20)).shape == (1, 1, 28, 28)


@pytest.mark.slow
def test_training_reduces_the_loss_and_checkpoint_round_trips(tmp_path):
    from demos import train_vae
    from playground.core import checkpoint

    r = train_vae.main(["--data", "synthetic", "--epochs", "2", "--limit", "256", "--batch", "64",
                        "--latent", "2", "--eval-samples", "1", "--out", str(tmp_path), "--peer"])
    curve = r["ours"]["train_neg_elbo_per_epoch"]
    assert curve[1] < curve[0]
    m, card = checkpoint.load(tmp_path / "synthetic_b1_2d")
    assert card["metrics"]["peer_mlp_784_400_20"]["neg_elbo_nats"] == r["peer"]["neg_elbo_nats"]
    assert card["recipe"]["likelihood"].startswith("Bernoulli")
    assert (tmp_path / "synthetic_b1_2d_map.safetensors").exists()
    assert isinstance(m, ConvVAE) and m.config.latent_dim == 2


if __name__ == "__main__":
    print("GOLDEN_CONV =", round(tiny_neg_elbo(*tiny_conv_vae()), 3))
