"""A small StyleGAN-like generator and its discriminator, for 32x32 grey images.

Papers: Karras et al., "A Style-Based Generator Architecture for GANs" (StyleGAN, 2019) for the
mapping network z -> w, per-layer styles, noise inputs, style mixing and truncation; Karras et al.,
"Analyzing and Improving the Image Quality of StyleGAN" (StyleGAN2, 2020) for modulated convolution
with weight demodulation (in place of AdaIN), skip connections through ToRGB, the residual
discriminator, equalised learning rate and lazy R1.

Generator, with L = 1 + 2 (len(channels) - 1) style inputs ("layers"; 7 with the default four resolutions):

    z ~ N(0, I) --mapping MLP--> w                                   (B, w_dim)
    w_avg: running mean of w, for truncation  w' = w_avg + psi (w - w_avg)
    const 4x4 --L0--> 4x4 --up, L1--> 8x8 --L2--> --up, L3--> 16x16 --L4--> --up, L5--> 32x32 --L6-->
    each L_i: modulated 3x3 conv with style s_i = A_i(w_i), + noise * strength_i, + bias, leaky ReLU
    the ToRGB at each resolution takes the style of the last layer there; RGB outputs are summed
    across resolutions (upsampled), so the image is refined scale by scale; `out="tanh"` squashes the
    sum into the data's range [-1, 1] (DCGAN's output layer), `out="linear"` leaves it as StyleGAN2 does.

L1, L3 and L5 double the size: bilinear resize then the 3x3 conv (`up="bilinear"`), or one 4x4 stride-2
transposed conv (`up="transposed"`, DCGAN's upsampling, modulated and demodulated the same way; 2.25x fewer
multiply-adds). Which one a checkpoint uses is in its card's config.

Layers at 4x4 and 8x8 are "coarse", those between 8x8 and the output size "middle", those at the output size
"fine" (`StyleGANConfig.groups`; 0-2, 3-4 and 5-6 for the default four resolutions).

Using a trained generator (the GAN tab and demos/eval_gan.py): a seed always means the same z (`z_of`), so a
seed typed in the tab, sent through the API or used in an evaluation gives the same image; `mixing_grid` and
`single_mix` mix styles per layer; `truncation_sweep` draws the same seeds at several psi;
`mapping_projection` flattens z and w to 2-D with `torch.pca_lowrank`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

UPSAMPLING = ("bilinear", "transposed")        # StyleGANConfig.up
OUTPUTS = ("linear", "tanh")                   # StyleGANConfig.out


@dataclass(frozen=True)
class StyleGANConfig:
    z_dim: int = 128                             # latent z size
    w_dim: int = 128                             # intermediate latent w size
    mapping_layers: int = 4                      # depth of the mapping MLP
    mapping_lr_mul: float = 0.01                 # the mapping MLP learns 100x slower (StyleGAN)
    channels: tuple[int, ...] = (128, 64, 32, 16)   # feature maps at 4, 8, 16, 32 px
    img_channels: int = 1                        # grey
    w_avg_beta: float = 0.995                    # EMA decay of the tracked w_avg
    d_channels: tuple[int, ...] = (16, 32, 64, 128)  # discriminator maps at 32, 16, 8, 4 px
    mbstd_group: int = 4                         # minibatch-stddev group size in the discriminator
    up: str = "bilinear"                         # how L1, L3, L5 double the size: "bilinear" then a 3x3 conv,
                                                 # or "transposed": one 4x4 stride-2 transposed conv (DCGAN's)
    out: str = "linear"                          # the summed ToRGB output as is ("linear", StyleGAN2's) or
                                                 # squashed into the data's range by tanh ("tanh", DCGAN's)

    def __post_init__(self):
        if self.up not in UPSAMPLING or self.out not in OUTPUTS:
            raise ValueError(f"up must be one of {UPSAMPLING} and out one of {OUTPUTS}, not {self.up!r}, {self.out!r}")

    @property
    def resolution(self) -> int:
        return 4 * 2 ** (len(self.channels) - 1)

    @property
    def num_ws(self) -> int:
        return 1 + 2 * (len(self.channels) - 1)  # one style per conv layer

    @property
    def layer_sizes(self) -> tuple[int, ...]:
        """The spatial size each style input (conv layer) works at: 4, then two layers per doubling."""
        return (4,) + tuple(4 * 2 ** (i // 2 + 1) for i in range(self.num_ws - 1))

    @property
    def groups(self) -> dict[str, tuple[int, ...]]:
        """The layers by scale: coarse (4x4 and 8x8), middle (above 8x8, below the output size), fine (the
        output size). Which one a style comes from decides pose and shape (coarse) or texture (fine)."""
        sizes = self.layer_sizes
        return {"coarse": tuple(i for i, s in enumerate(sizes) if s <= 8),
                "middle": tuple(i for i, s in enumerate(sizes) if 8 < s < self.resolution),
                "fine": tuple(i for i, s in enumerate(sizes) if s == self.resolution > 8)}


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU with gain sqrt(2), so activations keep unit variance (He init)."""
    return F.leaky_relu(x, 0.2) * math.sqrt(2)


class EqLinear(nn.Module):
    """Equalised learning rate: weights stored ~ N(0, 1/lr_mul^2), scaled at run time by lr_mul/sqrt(fan_in)."""

    def __init__(self, fan_in: int, fan_out: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(fan_out, fan_in) / lr_mul)
        self.bias = nn.Parameter(torch.full((fan_out,), float(bias_init)) / lr_mul)
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(fan_in), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return lrelu(y) if self.act else y


class EqConv(nn.Module):
    """A plain conv with equalised learning rate (discriminator)."""

    def __init__(self, cin: int, cout: int, k: int, act: bool = True, bias: bool = True, stride: int = 1):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.pad, self.act, self.stride = 1 / math.sqrt(cin * k * k), k // 2, act, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.pad, stride=self.stride)
        return lrelu(y) if self.act else y


class Mapping(nn.Module):
    """z -> w: normalise z to the unit-variance sphere, then an MLP (StyleGAN's f)."""

    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        dims = [cfg.z_dim] + [cfg.w_dim] * cfg.mapping_layers
        self.layers = nn.Sequential(*[EqLinear(a, b, lr_mul=cfg.mapping_lr_mul, act=True) for a, b in zip(dims, dims[1:])])

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8)  # pixel norm  # (B, z_dim)
        return self.layers(z)                                            # (B, w_dim)


class ModConv(nn.Module):
    """Modulated convolution (StyleGAN2 eq. 1-3):
        w'_{ijk} = s_i * w_{ijk}                      modulate input channel i by the style s = A(w)
        w''_{ijk} = w'_{ijk} / sqrt(sum_{i,k} w'^2_{ijk} + eps)   demodulate output channel j
    computed without per-sample weights: conv(x * s, w) * d, with d_j = rsqrt(sum_{i,k} (s_i w_{ijk})^2).
    Then per-pixel noise scaled by a learned per-channel strength, a bias and the activation."""

    def __init__(self, cin: int, cout: int, w_dim: int, k: int = 3, up: str | None = None, demod: bool = True,
                 noise: bool = True, act: bool = True):
        super().__init__()
        k = 4 if up == "transposed" else k
        self.affine = EqLinear(w_dim, cin, bias_init=1.0)  # A: w -> s, starts at s = 1
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.noise_strength = nn.Parameter(torch.zeros(cout)) if noise else None  # B: learned per channel
        self.scale, self.pad, self.up, self.demod, self.act = 1 / math.sqrt(cin * k * k), k // 2, up, demod, act

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        s = self.affine(w)                                           # (B, cin)
        weight = self.weight * self.scale                            # (cout, cin, k, k)
        if self.up == "transposed":
            # each output pixel of a 4x4 stride-2 transposed conv meets 4 of the 16 taps: x2 keeps unit scale
            y = 2 * F.conv_transpose2d(x * s[:, :, None, None], weight.transpose(0, 1), stride=2, padding=1)
        else:
            if self.up == "bilinear":
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            y = F.conv2d(x * s[:, :, None, None], weight, padding=self.pad)  # (B, cout, H, W)
        if self.demod:
            d = torch.rsqrt((s[:, None, :] ** 2 * weight.square().sum((2, 3))[None]).sum(2) + 1e-8)  # (B, cout)
            y = y * d[:, :, None, None]
        if self.noise_strength is not None and noise is not None:
            y = y + noise * self.noise_strength[None, :, None, None]  # noise (B or 1, 1, H, W)
        y = y + self.bias[None, :, None, None]
        return lrelu(y) if self.act else y


class Synthesis(nn.Module):
    def __init__(self, cfg: StyleGANConfig):
        super().__init__()
        ch = cfg.channels
        self.const = nn.Parameter(torch.randn(1, ch[0], 4, 4))     # the learned 4x4 constant
        convs, torgb = [ModConv(ch[0], ch[0], cfg.w_dim)], [ModConv(ch[0], cfg.img_channels, cfg.w_dim, k=1,
                                                                   demod=False, noise=False, act=False)]
        for a, b in zip(ch, ch[1:]):
            convs += [ModConv(a, b, cfg.w_dim, up=cfg.up), ModConv(b, b, cfg.w_dim)]
            torgb.append(ModConv(b, cfg.img_channels, cfg.w_dim, k=1, demod=False, noise=False, act=False))
        self.convs, self.torgb = nn.ModuleList(convs), nn.ModuleList(torgb)
        self.sizes = list(cfg.layer_sizes)                           # spatial size per layer
        self.tanh = cfg.out == "tanh"

    def forward(self, ws: torch.Tensor, noise: list[torch.Tensor | None]) -> torch.Tensor:
        """ws (B, num_ws, w_dim), one w per layer; noise: one (B or 1, 1, H, W) tensor or None per layer."""
        x = self.const.expand(ws.shape[0], -1, -1, -1)              # (B, C0, 4, 4)
        rgb = None
        for i, conv in enumerate(self.convs):
            x = conv(x, ws[:, i], noise[i])                          # (B, C, H, W)
            if i == 0 or i % 2 == 0:                                 # last layer at this resolution
                y = self.torgb[(i + 1) // 2](x, ws[:, i])            # (B, 1, H, W)
                rgb = y if rgb is None else F.interpolate(rgb, scale_factor=2, mode="bilinear", align_corners=False) + y
        return torch.tanh(rgb) if self.tanh else rgb                 # (B, 1, 32, 32), (roughly) in [-1, 1]


class StyleGenerator(nn.Module):
    config_class = StyleGANConfig

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        self.config = config
        self.mapping = Mapping(config)
        self.synthesis = Synthesis(config)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    @property
    def num_ws(self) -> int:
        return self.config.num_ws

    def map(self, z: torch.Tensor, psi: float = 1.0, update_w_avg: bool = False) -> torch.Tensor:
        """z (B, z_dim) -> w (B, w_dim), truncated: w' = w_avg + psi (w - w_avg)."""
        w = self.mapping(z)
        if update_w_avg:                                             # w_avg <- beta w_avg + (1 - beta) mean(w)
            self.w_avg.copy_(w.detach().mean(0).lerp(self.w_avg, self.config.w_avg_beta))
        return truncate(w, self.w_avg, psi)

    def make_noise(self, batch: int, mode: str = "random", seed: int | None = None) -> list[torch.Tensor | None]:
        """Per-layer noise: 'random' (fresh per image), 'fixed' (one map per layer from `seed`, shared by
        the whole batch) or 'off' (no noise)."""
        dev = self.w_avg.device
        if mode == "off":
            return [None] * len(self.synthesis.sizes)
        if mode == "fixed":
            g = torch.Generator().manual_seed(int(seed or 0))
            return [torch.randn(1, 1, s, s, generator=g).to(dev) for s in self.synthesis.sizes]
        return [torch.randn(batch, 1, s, s, device=dev) for s in self.synthesis.sizes]

    def synthesize(self, ws: torch.Tensor, noise_mode: str = "random", noise_seed: int = 0) -> torch.Tensor:
        """ws (B, num_ws, w_dim) or w (B, w_dim) -> images (B, 1, 32, 32) in about [-1, 1]."""
        if ws.dim() == 2:
            ws = ws[:, None].expand(-1, self.num_ws, -1)
        return self.synthesis(ws, self.make_noise(ws.shape[0], noise_mode, noise_seed))

    def forward(self, z: torch.Tensor, psi: float = 1.0, noise_mode: str = "random", noise_seed: int = 0) -> torch.Tensor:
        return self.synthesize(self.map(z, psi), noise_mode, noise_seed)


def truncate(w: torch.Tensor, w_avg: torch.Tensor, psi: float) -> torch.Tensor:
    """The truncation trick: w' = w_avg + psi (w - w_avg). psi = 1 is the identity, psi = 0 gives w_avg."""
    if psi == 1.0:
        return w
    return w_avg + psi * (w - w_avg)


def mix(w_src: torch.Tensor, w_style: torch.Tensor, weights) -> torch.Tensor:
    """Per-layer style mixing: ws[:, i] = (1 - a_i) w_src + a_i w_style, a_i in [0, 1].
    a_i = 1 takes layer i's style entirely from the style seed; 0 keeps the source's.
    w_src, w_style (B, w_dim); weights (num_ws,) -> (B, num_ws, w_dim)."""
    a = torch.as_tensor(weights, dtype=w_src.dtype, device=w_src.device)[None, :, None]  # (1, L, 1)
    return torch.lerp(w_src[:, None, :], w_style[:, None, :], a)


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation across a group of samples as one more feature map,
    so D can see a batch's lack of variety (a cheap counter to mode collapse)."""

    def __init__(self, group: int):
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = min(self.group, b)
        while b % g:
            g -= 1
        y = x.reshape(g, -1, c, h, w)
        y = (y.var(0, unbiased=False) + 1e-8).sqrt().mean((1, 2, 3))  # (B/g,)
        y = y.repeat(g).reshape(b, 1, 1, 1).expand(b, 1, h, w)
        return torch.cat([x, y], 1)


class DBlock(nn.Module):
    """Residual discriminator block: a 3x3 conv, a strided 3x3 conv that halves the size (cheaper on a
    CPU than StyleGAN2's conv + blur-pool), plus a pooled 1x1 skip."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv1, self.conv2 = EqConv(cin, cin, 3), EqConv(cin, cout, 3, stride=2)
        self.skip = EqConv(cin, cout, 1, act=False, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return (y + self.skip(F.avg_pool2d(x, 2))) / math.sqrt(2)


class StyleDiscriminator(nn.Module):
    """StyleGAN2's residual D: FromRGB, blocks 32 -> 16 -> 8 -> 4, minibatch stddev, conv, two dense layers.
    Returns a logit per image (B,)."""

    config_class = StyleGANConfig

    def __init__(self, config: StyleGANConfig):
        super().__init__()
        self.config = config
        ch = config.d_channels
        self.fromrgb = EqConv(config.img_channels, ch[0], 1)
        self.blocks = nn.Sequential(*[DBlock(a, b) for a, b in zip(ch, ch[1:])])
        self.mbstd = MinibatchStd(config.mbstd_group)
        self.conv = EqConv(ch[-1] + 1, ch[-1], 3)
        self.fc = EqLinear(ch[-1] * 16, ch[-1], act=True)
        self.out = EqLinear(ch[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.fromrgb(x))                             # (B, C, 4, 4)
        x = self.conv(self.mbstd(x))                                 # (B, C, 4, 4)
        return self.out(self.fc(x.flatten(1))).squeeze(1)            # (B,)


# --- using a trained generator: seeds, style mixing, the picture of z and w --------------------------------

PCA_Q = 6          # rank of the randomized PCA in `pca2`; 2 axes are kept, the 4 extra make them accurate
PCA_NITER = 4      # its subspace iterations (torch's default is 2)


def z_of(seeds, z_dim: int) -> torch.Tensor:
    """One z per seed: (N, z_dim), z = randn from torch.Generator().manual_seed(seed)."""
    return torch.stack([torch.randn(z_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds])


def to01(x: torch.Tensor) -> torch.Tensor:
    """Generator output in [-1, 1] -> [0, 1] for display."""
    return ((x + 1) / 2).clamp(0, 1)


def noise_mode(on: bool) -> str:
    """The noise inputs as the tab shows them: one fixed map per layer (from the noise seed), or none."""
    return "fixed" if on else "off"


@torch.inference_mode()
def synthesize_rows(G: StyleGenerator, parts: list[tuple[torch.Tensor, str, int]]) -> list[torch.Tensor]:
    """Several requests in one synthesis pass: part i is (ws_i (n_i, L, w_dim) or (n_i, w_dim), its noise mode,
    its noise seed); its images equal G.synthesize(ws_i, mode_i, seed_i) up to float rounding ('off' rows
    get zero noise, which adds nothing; 'fixed' rows their own seed's maps). -> [(n_i, 1, H, W)]."""
    ws = torch.cat([w if w.dim() == 3 else w[:, None].expand(-1, G.num_ws, -1) for w, _, _ in parts])
    noise = []
    fixed = [G.make_noise(1, "fixed", seed) if mode == "fixed" else None for _, mode, seed in parts]
    for li, size in enumerate(G.synthesis.sizes):
        noise.append(torch.cat([
            fx[li].expand(len(w), -1, -1, -1) if fx is not None else
            torch.zeros(len(w), 1, size, size) if mode == "off" else torch.randn(len(w), 1, size, size)
            for (w, mode, _), fx in zip(parts, fixed)]).to(G.w_avg.device))      # (B, 1, s, s)
    return list(G.synthesis(ws, noise).split([len(w) for w, _, _ in parts]))


@torch.inference_mode()
def mixing_grid(G: StyleGenerator, src_seeds, style_seeds, layers, psi: float = 1.0, noise_on: bool = True,
                noise_seed: int = 0, synthesize=None) -> dict[str, torch.Tensor]:
    """Sources (S images), styles (T images) and their mixes (T, S): mix (i, j) takes the layers in
    `layers` from style seed i and all other layers from source seed j; and the w_avg image. One
    generator call for all, images in [0, 1]. `synthesize(ws, mode, seed)` replaces G.synthesize (the
    service passes one that merges concurrent users' calls)."""
    synthesize = synthesize or G.synthesize
    S, T = len(src_seeds), len(style_seeds)
    w = G.map(z_of([*src_seeds, *style_seeds], G.config.z_dim), psi)      # (S + T, w_dim)
    w_src, w_sty = w[:S], w[S:]
    a = torch.zeros(G.num_ws)
    a[list(layers)] = 1.0
    ws_src = w_src[:, None].expand(-1, G.num_ws, -1)                      # (S, L, w_dim)
    ws_sty = w_sty[:, None].expand(-1, G.num_ws, -1)                      # (T, L, w_dim)
    ws_mix = mix(w_src.repeat(T, 1), w_sty.repeat_interleave(S, 0), a)    # (T * S, L, w_dim)
    w_avg = G.w_avg[None, None].expand(1, G.num_ws, -1)                   # (1, L, w_dim)
    out = to01(synthesize(torch.cat([ws_src, ws_sty, ws_mix, w_avg]), noise_mode(noise_on), noise_seed))
    return {"sources": out[:S], "styles": out[S:S + T], "mixes": out[S + T:-1].reshape(T, S, *out.shape[1:]),
            "w_avg": out[-1]}


@torch.inference_mode()
def single_mix(G: StyleGenerator, seed_a: int, seed_b: int, weights, psi: float = 1.0, noise_on: bool = True,
               noise_seed: int = 0, synthesize=None) -> dict[str, torch.Tensor]:
    """Image A, image B and the per-layer blend ws[:, i] = (1 - a_i) w_A + a_i w_B, in [0, 1]."""
    synthesize = synthesize or G.synthesize
    w = G.map(z_of([seed_a, seed_b], G.config.z_dim), psi)                # (2, w_dim)
    ws = torch.cat([w[:1, None].expand(1, G.num_ws, -1), w[1:, None].expand(1, G.num_ws, -1),
                    mix(w[:1], w[1:], weights)])                          # (3, L, w_dim)
    out = to01(synthesize(ws, noise_mode(noise_on), noise_seed))
    return {"a": out[0], "b": out[1], "mix": out[2]}


@torch.inference_mode()
def truncation_sweep(G: StyleGenerator, seeds, psis, noise_on: bool = True, noise_seed: int = 0) -> torch.Tensor:
    """The same seeds at each psi in `psis`: (len(psis), len(seeds), C, H, W) in [0, 1], one generator call.
    Frame k shows w' = w_avg + psi_k (w - w_avg) for every seed: psi = 0 is w_avg's image for all."""
    w = G.map(z_of(seeds, G.config.z_dim))                                # (S, w_dim)
    ws = torch.cat([truncate(w, G.w_avg, float(p)) for p in psis])       # (F * S, w_dim)
    out = to01(G.synthesize(ws, noise_mode(noise_on), noise_seed))
    return out.reshape(len(psis), len(seeds), *out.shape[1:])


@torch.inference_mode()
def sample(G: StyleGenerator, n: int, seed: int = 0, psi: float = 1.0, noise_on: bool = True,
           noise_seed: int = 0) -> torch.Tensor:
    """n images in [0, 1] from seeds seed .. seed + n - 1."""
    return to01(G(z_of(range(seed, seed + n), G.config.z_dim), psi, noise_mode(noise_on), noise_seed))


def pca2(x: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """The first two principal axes of x (N, D): torch.pca_lowrank on the centred data (center=True), rank
    q = PCA_Q with PCA_NITER subspace iterations, its random start seeded (a fork of the RNG) so that the same
    data always gives the same picture. The share of variance an axis explains is its squared singular value
    over the total, sum ||x_n - mean||^2. -> mean (D,), basis (D, 2), [share of PC1, share of PC2]."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _, s, v = torch.pca_lowrank(x, q=min(PCA_Q, *x.shape), center=True, niter=PCA_NITER)
    mu = x.mean(0)
    total = (x - mu).square().sum()
    return mu, v[:, :2], (s[:2].square() / total).tolist()


@torch.inference_mode()
def mapping_projection(G: StyleGenerator, n: int, psi: float = 0.7, seed: int = 0) -> dict:
    """z and w of n seeds, each projected to 2-D by its own PCA (`pca2`); the truncated
    w' = w_avg + psi (w - w_avg) and w_avg in the same basis as w. Plain lists, for plotting."""
    z = z_of(range(seed, seed + n), G.config.z_dim)                        # (n, z_dim)
    w = G.map(z)                                                           # (n, w_dim)
    wt = truncate(w, G.w_avg, psi)
    mz, bz, ez = pca2(z)
    mw, bw, ew = pca2(w)
    return {"z": ((z - mz) @ bz).tolist(), "w": ((w - mw) @ bw).tolist(), "w_trunc": ((wt - mw) @ bw).tolist(),
            "w_avg": ((G.w_avg - mw) @ bw).tolist(), "explained_z": ez, "explained_w": ew, "psi": psi, "n": n,
            "spread_w": float((w - G.w_avg).norm(dim=1).mean()), "spread_w_trunc": float((wt - G.w_avg).norm(dim=1).mean())}
