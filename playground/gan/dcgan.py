"""DCGAN (Radford, Metz and Chintala, "Unsupervised Representation Learning with Deep Convolutional
GANs", 2016), scaled to 32x32 grey images: the peer our StyleGAN-like generator is compared with.

Its rules: no pooling (strided convolutions), batch norm in G and D, no hidden dense layers,
ReLU in G with tanh at the output, leaky ReLU in D.

    G: z (100) -> dense -> 4x4x4c -> convT -> 8x8x2c -> convT -> 16x16xc -> convT -> 32x32x1, tanh
    D: 32x32x1 -> conv -> 16x16xc -> conv -> 8x8x2c -> conv -> 4x4x4c -> dense -> logit
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class DCGANConfig:
    z_dim: int = 100          # as in the paper
    base: int = 64            # c: feature maps at 16x16 in G (and D); 4c at 4x4
    img_channels: int = 1     # grey

    @property
    def maps(self) -> tuple[int, int, int]:
        """D's feature maps after each stride-2 conv (at 16, 8, 4 px); G's in reverse order."""
        c = self.base
        return (c, 2 * c, 4 * c)


def _init(m: nn.Module) -> None:
    """The paper's init: conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(m.weight, 0.0, 0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class DCGenerator(nn.Module):
    config_class = DCGANConfig

    def __init__(self, config: DCGANConfig):
        super().__init__()
        self.config = config
        c1, c2, c4 = config.maps
        self.fc = nn.Linear(config.z_dim, c4 * 16, bias=False)
        self.bn0 = nn.BatchNorm2d(c4)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(c4, c2, 4, 2, 1, bias=False), nn.BatchNorm2d(c2), nn.ReLU(True),  # 8x8
            nn.ConvTranspose2d(c2, c1, 4, 2, 1, bias=False), nn.BatchNorm2d(c1), nn.ReLU(True),  # 16x16
            nn.ConvTranspose2d(c1, config.img_channels, 4, 2, 1), nn.Tanh(),                     # 32x32
        )
        self.apply(_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn0(self.fc(z).view(len(z), -1, 4, 4)))  # (B, 4c, 4, 4)
        return self.net(x)                                            # (B, 1, 32, 32) in [-1, 1]


class DCDiscriminator(nn.Module):
    config_class = DCGANConfig

    def __init__(self, config: DCGANConfig):
        super().__init__()
        c1, c2, c4 = config.maps                 # maps at 16, 8 and 4 px
        self.config = config
        self.net = nn.Sequential(
            nn.Conv2d(config.img_channels, c1, 4, 2, 1), nn.LeakyReLU(0.2, True),                  # 16x16
            nn.Conv2d(c1, c2, 4, 2, 1, bias=False), nn.BatchNorm2d(c2), nn.LeakyReLU(0.2, True),  # 8x8
            nn.Conv2d(c2, c4, 4, 2, 1, bias=False), nn.BatchNorm2d(c4), nn.LeakyReLU(0.2, True),  # 4x4
        )
        self.out = nn.Linear(c4 * 16, 1)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.net(x).flatten(1)).squeeze(1)            # (B,) logits
