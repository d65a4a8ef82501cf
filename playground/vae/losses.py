"""The ELBO of a VAE with a Gaussian encoder and a Bernoulli decoder, term by term.

Kingma & Welling, "Auto-Encoding Variational Bayes" (2014): for one image x,

    log p(x) >= ELBO(x) = E_{q(z|x)}[ log p(x|z) ] - KL( q(z|x) || p(z) )

with q(z|x) = N(mu, diag sigma^2) and the prior p(z) = N(0, I). The beta-VAE (Higgins et al.,
"beta-VAE: Learning Basic Visual Concepts with a Constrained Variational Framework", 2017)
trains on  recon + beta * KL  instead; beta = 1 is the plain ELBO.

Decoder likelihood: Bernoulli. The decoder outputs one logit per pixel, and
-log p(x|z) = sum_pixels BCE(logit, x) with x the grey level in [0, 1] (the usual practice, as in
pytorch/examples; strictly a Bernoulli is for binary pixels, so grey levels give a cross-entropy,
and the same one is used for every model compared here).
All figures are in nats per image (sums over pixels and latent dimensions, means over images).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL( N(mu, sigma^2) || N(0, 1) ) for each dimension:

        KL_j = 1/2 * ( mu_j^2 + sigma_j^2 - 1 - log sigma_j^2 )

    mu, logvar: (B, D) -> (B, D) nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def kl_mc(mu: torch.Tensor, logvar: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Monte Carlo estimate of the same KL, summed over dimensions: E_q[ log q(z) - log p(z) ].
    Used by the tests to check the closed form. (B, D) -> (B,)."""
    std = (0.5 * logvar).exp()
    eps = torch.randn((n, *mu.shape), generator=generator, dtype=mu.dtype)     # (n, B, D)
    z = mu + std * eps
    log_q = -0.5 * (eps.pow(2) + logvar + math.log(2 * math.pi))              # log N(z; mu, sigma^2)
    log_p = -0.5 * (z.pow(2) + math.log(2 * math.pi))                          # log N(z; 0, 1)
    return (log_q - log_p).sum(-1).mean(0)


def reparameterise(mu: torch.Tensor, logvar: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): the sample is a differentiable function of (mu, sigma).
    (B, D) -> (B, D)."""
    if eps is None:
        eps = torch.randn_like(mu)
    return mu + (0.5 * logvar).exp() * eps


def recon_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x|z) under a Bernoulli per pixel: sum of BCE with logits. (B, ...) -> (B,) nats."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)


def loss_terms(logits: torch.Tensor, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
               beta: float = 1.0) -> dict[str, torch.Tensor]:
    """Per-batch means: recon = E[-log p(x|z)], kl = KL(q||p), loss = recon + beta * kl
    (the negative ELBO when beta = 1)."""
    recon = recon_nll(logits, x).mean()
    kl = kl_per_dim(mu, logvar).sum(1).mean()
    return {"recon": recon, "kl": kl, "loss": recon + beta * kl, "neg_elbo": recon + kl}
