"""A small convolutional VAE for 28x28 grey images (Kingma & Welling, "Auto-Encoding Variational
Bayes", 2014), with beta as a training parameter (Higgins et al., beta-VAE, 2017).

    encoder  q(z|x) = N(mu(x), diag sigma(x)^2)   two stride-2 convs + a linear layer
    decoder  p(x|z) = Bernoulli(sigmoid(f(z)))     a linear layer + two stride-2 transposed convs

The decoder is deliberately small: the tab decodes on every slider move, on a CPU.
The loss terms are in losses.py.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from playground.vae.losses import reparameterise


@dataclass(frozen=True)
class VAEConfig:
    latent_dim: int = 16      # D, the number of latent sliders
    ch1: int = 16             # channels after the first stride-2 conv (28 -> 14)
    ch2: int = 32             # channels after the second stride-2 conv (14 -> 7)
    hidden: int = 256         # width of the fully connected layer on both sides
    beta: float = 1.0         # weight of the KL term in the training loss (1 = the ELBO)
    image_size: int = 28      # H = W


class ConvVAE(nn.Module):
    config_class = VAEConfig

    def __init__(self, config: VAEConfig):
        super().__init__()
        self.config = c = config
        s = c.image_size // 4
        self.enc = nn.Sequential(
            nn.Conv2d(1, c.ch1, 4, 2, 1), nn.SiLU(),          # (B, ch1, 14, 14)
            nn.Conv2d(c.ch1, c.ch2, 4, 2, 1), nn.SiLU(),      # (B, ch2, 7, 7)
            nn.Flatten(),                                      # (B, ch2*49)
            nn.Linear(c.ch2 * s * s, c.hidden), nn.SiLU(),     # (B, hidden)
        )
        self.to_stats = nn.Linear(c.hidden, 2 * c.latent_dim)  # (B, 2D): mu and log sigma^2
        self.dec = nn.Sequential(
            nn.Linear(c.latent_dim, c.hidden), nn.SiLU(),      # (B, hidden)
            nn.Linear(c.hidden, c.ch2 * s * s), nn.SiLU(),     # (B, ch2*49)
            nn.Unflatten(1, (c.ch2, s, s)),                    # (B, ch2, 7, 7)
            nn.ConvTranspose2d(c.ch2, c.ch1, 4, 2, 1), nn.SiLU(),  # (B, ch1, 14, 14)
            nn.ConvTranspose2d(c.ch1, 1, 4, 2, 1),             # (B, 1, 28, 28) logits
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, 1, 28, 28) in [0, 1] -> mu, logvar (B, D)."""
        mu, logvar = self.to_stats(self.enc(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-12.0, 8.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D) -> Bernoulli logits (B, 1, 28, 28)."""
        return self.dec(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, D) -> the Bernoulli means sigmoid(logits), i.e. the image (B, 1, 28, 28) in [0, 1]."""
        return torch.sigmoid(self.dec(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One pass of the training objective: returns logits, mu, logvar."""
        mu, logvar = self.encode(x)
        z = reparameterise(mu, logvar)                         # z = mu + sigma * eps
        return self.decode_logits(z), mu, logvar
