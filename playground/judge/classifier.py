"""The domain classifier: a small CNN for 28x28 grey images (Fashion-MNIST or the digits).

It has two jobs: predict the class of an image, and give a 128-d feature vector (the input to
the last layer) in which the metrics module measures Fréchet distance and diversity, as FID
does with Inception-v3 features, but in a space trained on this very domain.

    x (B,1,28,28) -> 3 blocks (3x3 conv, BN, ReLU, 2x2 max-pool) -> global average pool -> f (B,128)
    logits = W f + b                                                     (B, 10)
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn


@dataclass(frozen=True)
class ClassifierConfig:
    in_channels: int = 1
    widths: tuple[int, ...] = (32, 64, 128)  # channels of the conv blocks; the last is the feature size
    n_classes: int = 10
    dropout: float = 0.2


class DomainClassifier(nn.Module):
    config_class = ClassifierConfig

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        layers, c = [], config.in_channels
        for w in config.widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2)]
            c = w
        self.body = nn.Sequential(*layers)          # 28 -> 14 -> 7 -> 3
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(c, config.n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B,1,28,28) in [0,1] -> (B, widths[-1]) pooled features."""
        return self.body(x * 2 - 1).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.drop(self.features(x)))  # (B, n_classes) logits
