"""A small VQ-VAE for 28x28 grey images (van den Oord, Vinyals & Kavukcuoglu, "Neural Discrete
Representation Learning", 2017).

    z_e = E(x)                                   a conv encoder: (B, 1, 28, 28) -> (B, D, 7, 7)
    k   = argmin_j || z_e - e_j ||^2             each of the 7 x 7 cells takes its nearest codebook entry
    z_q = e_k                                    (B, D, 7, 7), from a codebook of K entries e_j in R^D
    x^  = sigmoid(G(z_q))                        a conv decoder, Bernoulli logits out (as the VAE's)

The argmin has no gradient; the straight-through estimator (section 3.2 of the paper) copies the
decoder's gradient at z_q onto z_e:  z_q_st = z_e + sg(z_q - z_e)  (equal to z_q forward, identity backward).
The loss per image (equation 3 of the paper), sg = stop-gradient:

    L = -log p(x | z_q)  +  || sg(z_e) - e ||^2  +  beta * || z_e - sg(e) ||^2
        reconstruction      codebook (moves e)     commitment (keeps z_e near its code; beta = 0.25)

The reconstruction is the VAE lab's own Bernoulli term (losses.recon_nll: BCE summed over pixels),
so the two labs' held-out reconstruction errors are in the same unit, nats per image. The two
codebook terms are summed over the cells and dimensions of an image too. Codebook usage is measured by
the perplexity exp(-sum_k p_k log p_k) of the code frequencies p_k: K when every code is used equally,
1 when one code is used for everything. (The training recipe, demos/train_vqvae.py, also restarts
dead codes; that is training practice, not part of the model.)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from playground.vae.losses import recon_nll


@dataclass(frozen=True)
class VQConfig:
    codes: int = 128          # K, the codebook size
    code_dim: int = 32        # D, the size of one codebook entry (and of z_e at each cell)
    ch1: int = 32             # channels after the first stride-2 conv (28 -> 14)
    ch2: int = 64             # channels after the second stride-2 conv (14 -> 7)
    beta: float = 0.25        # weight of the commitment term
    image_size: int = 28      # H = W; the code grid is image_size // 4 per side


class ResBlock(nn.Module):
    """x + conv1x1(SiLU(conv3x3(SiLU(x)))), as the paper's residual stacks (at a smaller size)."""

    def __init__(self, ch: int):
        super().__init__()
        self.f = nn.Sequential(nn.SiLU(), nn.Conv2d(ch, ch, 3, 1, 1), nn.SiLU(), nn.Conv2d(ch, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.f(x)


def nearest(z: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """k = argmin_j ||z - e_j||^2 = argmin_j ( ||e_j||^2 - 2 z.e_j )   (||z||^2 is the same for every j).
    z (N, D), codebook (K, D) -> k (N,) int64."""
    d = codebook.pow(2).sum(1)[None, :] - 2.0 * z @ codebook.t()      # (N, K)
    return d.argmin(1)


def straight_through(z_e: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
    """z_e + sg(z_q - z_e): the value of z_q, the gradient of z_e (passed on unchanged)."""
    return z_e + (z_q - z_e).detach()


def perplexity(counts: torch.Tensor) -> float:
    """exp(-sum_k p_k log p_k), p = counts / counts.sum(); unused codes (p_k = 0) add nothing."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def vq_terms(z_e: torch.Tensor, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per image: codebook ||sg(z_e) - e||^2 and commitment ||z_e - sg(e)||^2 (no beta), summed over
    cells and dimensions. z_e, e (B, D, h, w) -> two tensors (B,)."""
    codebook = (z_e.detach() - e).pow(2).flatten(1).sum(1)
    commitment = (z_e - e.detach()).pow(2).flatten(1).sum(1)
    return codebook, commitment


class VQVAE(nn.Module):
    config_class = VQConfig

    def __init__(self, config: VQConfig):
        super().__init__()
        self.config = c = config
        self.enc = nn.Sequential(
            nn.Conv2d(1, c.ch1, 4, 2, 1), nn.SiLU(),              # (B, ch1, 14, 14)
            nn.Conv2d(c.ch1, c.ch2, 4, 2, 1),                     # (B, ch2, 7, 7)
            ResBlock(c.ch2), nn.SiLU(),
            nn.Conv2d(c.ch2, c.code_dim, 1),                      # (B, D, 7, 7) = z_e
        )
        self.codebook = nn.Embedding(c.codes, c.code_dim)         # (K, D): e_1 .. e_K
        nn.init.uniform_(self.codebook.weight, -1.0 / c.codes, 1.0 / c.codes)
        self.dec = nn.Sequential(
            nn.Conv2d(c.code_dim, c.ch2, 3, 1, 1),                # (B, ch2, 7, 7)
            ResBlock(c.ch2), nn.SiLU(),
            nn.ConvTranspose2d(c.ch2, c.ch1, 4, 2, 1), nn.SiLU(), # (B, ch1, 14, 14)
            nn.ConvTranspose2d(c.ch1, 1, 4, 2, 1),                # (B, 1, 28, 28) logits
        )

    @property
    def grid(self) -> int:
        return self.config.image_size // 4

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 1, 28, 28) in [0, 1] -> z_e (B, D, 7, 7)."""
        return self.enc(x)

    def quantize(self, z_e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z_e (B, D, h, w) -> the code of each cell k (B, h, w) and z_q = e_k (B, D, h, w)."""
        b, d, h, w = z_e.shape
        k = nearest(z_e.permute(0, 2, 3, 1).reshape(-1, d), self.codebook.weight).view(b, h, w)
        return k, self.lookup(k)

    def lookup(self, k: torch.Tensor) -> torch.Tensor:
        """Codes k (B, h, w) -> z_q (B, D, h, w)."""
        return self.codebook(k).permute(0, 3, 1, 2)

    def decode_logits(self, z_q: torch.Tensor) -> torch.Tensor:
        """z_q (B, D, h, w) -> Bernoulli logits (B, 1, 28, 28)."""
        return self.dec(z_q)

    def decode_codes(self, k: torch.Tensor) -> torch.Tensor:
        """A grid of codes (B, h, w) -> the image sigmoid(G(e_k)) (B, 1, 28, 28) in [0, 1]."""
        return torch.sigmoid(self.dec(self.lookup(k)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """One pass of the training objective; the terms are batch means of per-image sums (nats for recon)."""
        z_e = self.encode(x)
        k, z_q = self.quantize(z_e)
        logits = self.decode_logits(straight_through(z_e, z_q))
        recon = recon_nll(logits, x).mean()
        codebook, commitment = (t.mean() for t in vq_terms(z_e, z_q))
        return {"logits": logits, "codes": k, "z_e": z_e, "recon": recon, "codebook": codebook,
                "commitment": commitment, "loss": recon + codebook + self.config.beta * commitment}
