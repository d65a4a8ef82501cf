"""A conditional DCGAN: the DCGAN peer (playground.gan.dcgan) told which class to draw.

Both players take the class y (one of the 10 Fashion-MNIST classes) besides their usual input.

Generator: class-conditional batch norm (de Vries et al. 2017; Dumoulin et al. 2017). Every batch
norm of DCGAN's G keeps its normalisation but looks its scale and shift up per class,

    h' = gamma[y] * (h - mu_B) / sqrt(var_B + eps) + beta[y]        (gamma, beta: (10, C) tables)

so the class steers every layer from 4x4 to 16x16, not only the input. z stays the 100-d noise.

Discriminator: the projection discriminator (Miyato and Koyama, "cGANs with Projection
Discriminator", 2018). With phi(x) the features DCGAN's D computes before its last dense layer
(4x4x4c, flattened) and psi that dense layer,

    l(x, y) = psi(phi(x)) + embed(y) . phi(x)                       (embed: (10, 16 * 4c) table)

The first term asks "is this a real image?", the second "is it a real image *of class y*?"; the
paper derives the inner product from the log-likelihood ratio of real and fake class posteriors,
which is why it conditions more faithfully than concatenating y to D's input. Why these two rather
than concatenation: both add the class as a learned per-class vector acting on features (no extra
input channels, no change to the unconditional layers), and this pair is the one Miyato and Koyama
trained together. The game and its loss are DCGAN's (playground.gan.train), with l(x, y) for l(x).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from playground.gan.dcgan import DCGANConfig, _init as _dcgan_init


def _init(m: nn.Module) -> None:
    """DCGAN's init; the conditional batch norms' tables initialise themselves the same way."""
    if not (isinstance(m, nn.BatchNorm2d) and not m.affine):
        _dcgan_init(m)


@dataclass(frozen=True)
class CDCGANConfig(DCGANConfig):
    """DCGAN's config (z_dim, base c, grey images, the feature maps), and the number of classes."""
    n_classes: int = 10       # Fashion-MNIST's


class ConditionalBatchNorm2d(nn.Module):
    """Batch norm whose affine scale and shift are rows of per-class tables: gamma[y] * norm(h) + beta[y]."""

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gamma = nn.Embedding(n_classes, channels)
        self.beta = nn.Embedding(n_classes, channels)
        nn.init.normal_(self.gamma.weight, 1.0, 0.02)    # DCGAN's batch-norm init, per class
        nn.init.zeros_(self.beta.weight)

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return self.gamma(y)[:, :, None, None] * self.bn(h) + self.beta(y)[:, :, None, None]


class CDCGenerator(nn.Module):
    config_class = CDCGANConfig

    def __init__(self, config: CDCGANConfig):
        super().__init__()
        self.config = config
        c1, c2, c4 = config.maps
        k = config.n_classes
        self.fc = nn.Linear(config.z_dim, c4 * 16, bias=False)
        self.bn0 = ConditionalBatchNorm2d(c4, k)
        self.up1 = nn.ConvTranspose2d(c4, c2, 4, 2, 1, bias=False)          # 8x8
        self.bn1 = ConditionalBatchNorm2d(c2, k)
        self.up2 = nn.ConvTranspose2d(c2, c1, 4, 2, 1, bias=False)          # 16x16
        self.bn2 = ConditionalBatchNorm2d(c1, k)
        self.up3 = nn.ConvTranspose2d(c1, config.img_channels, 4, 2, 1)     # 32x32
        self.apply(_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn0(self.fc(z).view(len(z), -1, 4, 4), y))     # (B, 4c, 4, 4)
        h = torch.relu(self.bn1(self.up1(h), y))                            # (B, 2c, 8, 8)
        h = torch.relu(self.bn2(self.up2(h), y))                            # (B, c, 16, 16)
        return torch.tanh(self.up3(h))                                      # (B, 1, 32, 32) in [-1, 1]


class CDCDiscriminator(nn.Module):
    config_class = CDCGANConfig

    def __init__(self, config: CDCGANConfig):
        super().__init__()
        c1, c2, c4 = config.maps
        self.config = config
        self.net = nn.Sequential(                                           # DCGAN's D up to its dense layer
            nn.Conv2d(config.img_channels, c1, 4, 2, 1), nn.LeakyReLU(0.2, True),                  # 16x16
            nn.Conv2d(c1, c2, 4, 2, 1, bias=False), nn.BatchNorm2d(c2), nn.LeakyReLU(0.2, True),  # 8x8
            nn.Conv2d(c2, c4, 4, 2, 1, bias=False), nn.BatchNorm2d(c4), nn.LeakyReLU(0.2, True),  # 4x4
        )
        self.out = nn.Linear(c4 * 16, 1)                                    # psi
        self.embed = nn.Embedding(config.n_classes, c4 * 16)                # the class vectors of the projection
        self.apply(_init)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)                                       # phi(x): (B, 16 * 4c)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        phi = self.features(x)
        return self.out(phi).squeeze(1) + (self.embed(y) * phi).sum(1)      # (B,) logits l(x, y)


@torch.inference_mode()
def samples(G: CDCGenerator, y: torch.Tensor, seed: int) -> torch.Tensor:
    """Images (N, 1, 32, 32) in [-1, 1] of the classes y, z ~ N(0, I) from one generator seeded `seed`, batch
    norm in eval mode (its running statistics), 500 at a time."""
    z = torch.randn(len(y), G.config.z_dim, generator=torch.Generator().manual_seed(seed))
    G.eval()
    return torch.cat([G(z[i:i + 500], y[i:i + 500]) for i in range(0, len(y), 500)])
