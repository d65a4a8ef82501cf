"""VAE lab, VQ-VAE (playground/vae/vqvae.py): closed forms (the straight-through estimator, the nearest
codebook entry, perplexity, the two codebook terms' gradients) and a tiny model with a golden value."""
from __future__ import annotations

import conftest  # noqa: F401  (puts the repository root on sys.path when this file is run as a script)
import pytest
import torch

from playground.vae.losses import recon_nll
from playground.vae.vqvae import VQConfig, VQVAE, nearest, perplexity, straight_through, vq_terms


def test_straight_through_passes_the_upstream_gradient_unchanged():
    g = torch.Generator().manual_seed(0)
    z_e = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    z_q = torch.randn(2, 3, 4, 4, generator=g, requires_grad=True)
    upstream = torch.randn(2, 3, 4, 4, generator=g)
    out = straight_through(z_e, z_q)
    assert torch.allclose(out, z_q)                                  # forward: the value of z_q
    out.backward(upstream)
    assert torch.equal(z_e.grad, upstream)                           # backward: d/dz_e is the identity
    assert z_q.grad is None                                          # and nothing flows into the codebook


def test_assignment_is_the_brute_force_nearest_entry():
    g = torch.Generator().manual_seed(1)
    z, book = torch.randn(200, 5, generator=g), torch.randn(17, 5, generator=g)
    brute = torch.tensor([min(range(17), key=lambda j: float(((zi - book[j]) ** 2).sum())) for zi in z])
    assert torch.equal(nearest(z, book), brute)
    assert torch.equal(nearest(book, book), torch.arange(17))        # an entry is its own nearest


def test_quantize_takes_the_nearest_entry_per_cell():
    torch.manual_seed(0)
    m = VQVAE(VQConfig(codes=6, code_dim=3, ch1=4, ch2=8))
    z_e = torch.randn(2, 3, 7, 7)
    k, z_q = m.quantize(z_e)
    d = ((z_e.permute(0, 2, 3, 1)[..., None, :] - m.codebook.weight) ** 2).sum(-1)   # (2, 7, 7, K)
    assert torch.equal(k, d.argmin(-1)) and torch.equal(z_q, m.lookup(k))
    assert torch.equal(z_q[1, :, 4, 2], m.codebook.weight[k[1, 4, 2]])


def test_perplexity_of_uniform_and_one_hot_usage():
    assert perplexity(torch.full((64,), 10)) == pytest.approx(64.0)
    assert perplexity(torch.tensor([0, 0, 37, 0])) == pytest.approx(1.0)
    assert perplexity(torch.tensor([5, 5, 0, 0])) == pytest.approx(2.0)   # unused codes add nothing


def test_codebook_term_moves_only_e_and_commitment_only_z_e():
    z_e = torch.tensor([[[[1.0]], [[2.0]]]], requires_grad=True)     # (1, D=2, 1, 1)
    e = torch.tensor([[[[0.0]], [[4.0]]]], requires_grad=True)
    codebook, commitment = vq_terms(z_e, e)
    assert codebook.item() == commitment.item() == pytest.approx(1.0 + 4.0)
    codebook.sum().backward(retain_graph=True)
    assert z_e.grad is None and torch.equal(e.grad, 2 * (e - z_e).detach())
    e.grad = None
    commitment.sum().backward()
    assert e.grad is None and torch.equal(z_e.grad, 2 * (z_e - e).detach())


GOLDEN_LOSS = 552.265  # regenerate: python tests/test_vae_vq_math.py


def tiny():
    torch.manual_seed(0)
    m = VQVAE(VQConfig(codes=8, code_dim=4, ch1=4, ch2=8))
    x = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    return m, x


def test_tiny_vqvae_shapes_loss_and_golden_value():
    m, x = tiny()
    out = m(x)
    assert out["codes"].shape == (2, 7, 7) and out["logits"].shape == x.shape and out["z_e"].shape == (2, 4, 7, 7)
    assert out["recon"].item() == pytest.approx(recon_nll(out["logits"], x).mean().item())
    assert out["loss"].item() == pytest.approx((out["recon"] + out["codebook"] + 0.25 * out["commitment"]).item())
    assert torch.allclose(m.decode_codes(out["codes"]), torch.sigmoid(out["logits"]), atol=1e-6)  # = z_q forward
    out["loss"].backward()
    assert m.enc[0].weight.grad.abs().sum() > 0 and m.codebook.weight.grad.abs().sum() > 0
    assert out["loss"].item() == pytest.approx(GOLDEN_LOSS, abs=2e-2)


if __name__ == "__main__":
    print("GOLDEN_LOSS =", round(tiny()[0](tiny()[1])["loss"].item(), 3))
