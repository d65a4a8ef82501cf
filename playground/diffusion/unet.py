"""A small class-conditional U-Net that predicts the noise eps in x_t (DDPM, Ho et al. 2020,
"Denoising Diffusion Probabilistic Models"), with a null class for classifier-free guidance
(Ho & Salimans 2022, "Classifier-Free Diffusion Guidance").

    eps_theta(x_t, t, y) ~= eps        where x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps

Layout at 28x28 (no padding), two downsamplings 28 -> 14 -> 7:

    x_t (B,1,28,28) -> conv -> [res]@28 -> down -> [res]@14 -> down -> [res]@7
                    -> mid: res, self-attention, res @7
                    -> up: [res(skip)]@7 -> conv, x2 -> [res(skip)]@14 -> conv, x2 -> [res(skip)]@28 -> conv -> eps

The time step t enters as a sinusoidal embedding (Vaswani et al. 2017) through an MLP; the class y
as a learned embedding with one extra row, index `n_classes`, meaning "no class" (the null
class used for the unconditional prediction eps_u). Their sum scales and shifts every residual
block's normalised activations (FiLM, as in the improved-DDPM U-Net).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from playground.core import jit


@dataclass(frozen=True)
class UNetConfig:
    image_size: int = 28                    # 28 -> 14 -> 7 (must be divisible by 2**(len(channels)-1))
    in_channels: int = 1                    # grey images
    channels: tuple[int, ...] = (32, 64, 64)  # width at each resolution
    emb_dim: int = 128                      # time + class embedding width
    n_classes: int = 10                     # real classes; index n_classes is the null class
    groups: int = 8                         # GroupNorm groups
    attention: bool = True                  # self-attention at the lowest resolution
    dropout: float = 0.0                    # dropout inside residual blocks


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding: [cos(t w_k), sin(t w_k)] with w_k = max_period^(-k / (dim/2)).  (B,) -> (B, dim)"""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]                              # (B, half)
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)          # (B, dim)


class ResBlock(nn.Module):
    """h = conv(SiLU(GN(x))); h = GN(h) * (1 + scale) + shift from the embedding; out = x + conv(SiLU(h))."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))                            # (B, c_out, H, W)
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)  # (B, c_out, 1, 1) each
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the H*W positions: softmax(Q K^T / sqrt(C)) V, residual."""

    def __init__(self, c: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, c)
        self.qkv = nn.Conv2d(c, 3 * c, 1)
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).unbind(1)  # (B, C, HW) each
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))  # (B, HW, C)
        return x + self.proj(a.transpose(1, 2).reshape(b, c, h, w))


class UNet(nn.Module):
    config_class = UNetConfig

    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = cfg = config
        ch, e, g = cfg.channels, cfg.emb_dim, cfg.groups
        self.time_mlp = nn.Sequential(nn.Linear(ch[0], e), nn.SiLU(), nn.Linear(e, e))
        self.class_emb = nn.Embedding(cfg.n_classes + 1, e)             # row n_classes = null class
        self.conv_in = nn.Conv2d(cfg.in_channels, ch[0], 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c_prev = ch[0]
        for i, c in enumerate(ch):
            self.down.append(ResBlock(c_prev, c, e, g, cfg.dropout))
            c_prev = c
            if i < len(ch) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid1 = ResBlock(c_prev, c_prev, e, g, cfg.dropout)
        self.attn = SelfAttention(c_prev, g) if cfg.attention else nn.Identity()
        self.mid2 = ResBlock(c_prev, c_prev, e, g, cfg.dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(ch))):
            self.up.append(ResBlock(c_prev + ch[i], ch[i], e, g, cfg.dropout))
            c_prev = ch[i]
            if i > 0:  # conv at the low resolution (4x cheaper), then nearest x2
                self.upsample.append(nn.Conv2d(ch[i], ch[i - 1], 3, padding=1))
                c_prev = ch[i - 1]
        self.norm_out = nn.GroupNorm(g, ch[0])
        self.conv_out = nn.Conv2d(ch[0], cfg.in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def null_class(self) -> int:
        return self.config.n_classes

    def serve(self) -> "UNet":
        """For serving (the lab's service, once after loading): forward without gradients runs as a
        traced and frozen TorchScript graph (core/jit.py): the same operations, bit for bit, without
        the Python between them (a 2-image step 4.7 ms instead of 6.0) and without holding the
        interpreter lock. Training, with gradients, runs this Python."""
        c, hw = self.config.in_channels, self.config.image_size
        example = (torch.zeros(2, c, hw, hw), torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
        compiled = jit.frozen(self, *example)
        object.__setattr__(self, "_compiled", None if compiled is self else compiled)   # not a submodule
        return self

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x (B,C,H,W) noisy images, t (B,) integer steps in [0, T), y (B,) classes (n_classes = null) -> eps (B,C,H,W)."""
        compiled = self.__dict__.get("_compiled")
        if compiled is not None and not torch.is_grad_enabled():
            return compiled(x, t, y)
        emb = self.time_mlp(timestep_embedding(t, self.config.channels[0])) + self.class_emb(y)  # (B, E)
        h = self.conv_in(x)                                              # (B, c0, 28, 28)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)                                              # (B, c_i, 28/2^i, 28/2^i)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.attn(self.mid1(h, emb)), emb)                 # (B, c_last, 7, 7)
        for j, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
            if j < len(self.upsample):
                h = F.interpolate(self.upsample[j](h), scale_factor=2.0, mode="nearest")
        return self.conv_out(F.silu(self.norm_out(h)))                   # (B, C, H, W)
