"""The peer: the MLP VAE of pytorch/examples (vae/main.py), 784-400-20, written out here so that
our recipe trains it on the same data for the same epochs and the cards compare like with like.

    encoder  x (784) -> 400 (ReLU) -> mu (20), log sigma^2 (20)
    decoder  z (20) -> 400 (ReLU) -> 784 Bernoulli logits
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from playground.vae.losses import reparameterise


@dataclass(frozen=True)
class MLPVAEConfig:
    latent_dim: int = 20      # as in pytorch/examples
    hidden: int = 400         # as in pytorch/examples
    beta: float = 1.0         # weight of the KL term in the training loss
    image_size: int = 28


class MLPVAE(nn.Module):
    config_class = MLPVAEConfig

    def __init__(self, config: MLPVAEConfig):
        super().__init__()
        self.config = c = config
        n = c.image_size * c.image_size
        self.fc1 = nn.Linear(n, c.hidden)
        self.fc21 = nn.Linear(c.hidden, c.latent_dim)
        self.fc22 = nn.Linear(c.hidden, c.latent_dim)
        self.fc3 = nn.Linear(c.latent_dim, c.hidden)
        self.fc4 = nn.Linear(c.hidden, n)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.fc1(x.flatten(1)))                # (B, 400)
        return self.fc21(h), self.fc22(h)                      # (B, 20) each

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        s = self.config.image_size
        return self.fc4(torch.relu(self.fc3(z))).view(-1, 1, s, s)   # (B, 1, 28, 28)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decode_logits(z))

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        return self.decode_logits(reparameterise(mu, logvar)), mu, logvar
