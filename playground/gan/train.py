"""Training loops for the GAN lab (no gradio): the StyleGAN-like model and the DCGAN peer.

Both play the same game, in its non-saturating form (Goodfellow et al. 2014, section 3):

    D maximises  E_x[log D(x)] + E_z[log(1 - D(G(z)))]       ->  L_D = softplus(-l(x)) + softplus(l(G(z)))
    G maximises  E_z[log D(G(z))]  (not: minimises log(1 - D(G(z))), which saturates early)
                                                                ->  L_G = softplus(-l(G(z)))
with D(x) = sigmoid(l(x)) and l the discriminator's logit.

The StyleGAN-like model plays against a DCGAN-shaped discriminator (batch norm included) with the
same loss, but narrower than the peer's (width `d_base`; each card records its D in
`discriminator_config`). A narrower D costs less per step (the per-step costs measured when it was
chosen are in our card's `trials`), so on the same wall-clock budget ours takes more steps; the
budget, not the step count, is what the comparison holds fixed. On top of that game it adds
style-mixing regularisation (a second z takes over the layers after a random crossover point, with
probability `mixing_prob`, lower than StyleGAN's, which cost this small G the most quality per step),
w_avg tracking for truncation and an exponential moving average of G's weights. Its G has
equalised learning rates, so its Adam step `lr` is relative to unit-scale weights. StyleGAN2's
residual discriminator with the R1 penalty on real data (Mescheder et al. 2018), applied lazily
every `r1_every` steps,  L_R1 = gamma / 2 * E_x ||grad_x l(x)||^2 , is the other choice
(`TrainConfig(**STYLEGAN2_D)`); on the same CPU budget it did worse than the DCGAN-shaped D. The
measured figures of the bundled pair, the same-budget verdict over the recorded seed pairs and every
round of trials are in the card (`metrics`, `same_budget`, `trials`).
The DCGAN peer follows its paper: Adam(2e-4, beta1 = 0.5), batch norm, no penalty.
The conditional DCGAN (playground.gan.cdcgan, kind "cdcgan") plays the peer's game with its recipe,
each player told a class: real images come with their labels, fakes are drawn for uniformly random
classes y, and l(x) becomes l(x, y) in both losses.
For both, a step draws one batch of fakes that serves D's update and then G's (as PyTorch's DCGAN
example does), and D's weights are frozen during G's update, which skips their unused gradients.
"""
from __future__ import annotations

import copy
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from playground.gan.cdcgan import CDCDiscriminator, CDCGANConfig, CDCGenerator
from playground.gan.dcgan import DCDiscriminator, DCGANConfig, DCGenerator
from playground.gan.stylegan import StyleDiscriminator, StyleGANConfig, StyleGenerator

DISCRIMINATORS = ("dcgan", "resnet")
# StyleGAN2's recipe for its own residual D: lazy R1, one learning rate for both, Adam(0, 0.99)
STYLEGAN2_D = {"discriminator": "resnet", "lr": 0.0025, "d_lr": 0.0025, "betas": (0.0, 0.99), "r1_gamma": 0.1}
DCGAN_ADAM = {"lr": 2e-4, "betas": (0.5, 0.999)}   # the DCGAN paper's optimiser, for the peer's G and D alike
PEER_READS = ("batch", "ema_half_life_img", "ema_rampup", "log_every")   # the TrainConfig fields the peer uses


@dataclass(frozen=True)
class TrainConfig:
    batch: int = 32                 # images per step
    discriminator: str = "dcgan"    # ours plays "dcgan" (DCGAN's D, width d_base) or "resnet" (StyleGAN2's D + R1)
    lr: float = 0.002               # G's Adam step (equalised lr: relative to unit-scale weights)
    d_lr: float = 0.0002            # D's Adam step (DCGAN's, for its D)
    d_base: int = 32                # ours against "dcgan": that D's width c (the peer's own D has 64)
    betas: tuple[float, float] = (0.5, 0.999)   # Adam's betas for both (DCGAN's; StyleGAN2 uses (0, 0.99))
    r1_gamma: float = 0.0           # R1 weight gamma (0 = off; StyleGAN2's D used 0.1 here)
    r1_every: int = 16              # lazy R1: every this many D steps, scaled up by the same factor
    mixing_prob: float = 0.5        # style-mixing regularisation probability (StyleGAN used 0.9)
    ema_half_life_img: int = 5000   # G_ema's half-life in images seen
    ema_rampup: float = 0.05        # half-life ramps up with images seen (StyleGAN2-ADA), as a fraction
    log_every: int = 25             # record D/G losses and D(x), D(G(z)) every this many steps


def pad_fashion(images_uint8: torch.Tensor) -> torch.Tensor:
    """(N, 28, 28) uint8 -> (N, 1, 32, 32) float in [-1, 1], padded by 2 px of background (-1)."""
    x = images_uint8.float().div(127.5).sub(1).unsqueeze(1)
    return F.pad(x, (2, 2, 2, 2), value=-1.0)


def to_judge(x: torch.Tensor) -> torch.Tensor:
    """Generator output (N, 1, 32, 32) in [-1, 1] -> (N, 1, 28, 28) in [0, 1]: undo the padding."""
    return ((x[:, :, 2:30, 2:30] + 1) / 2).clamp(0, 1)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    for pe, p in zip(ema.parameters(), model.parameters()):
        pe.lerp_(p, 1 - beta)
    for be, b in zip(ema.buffers(), model.buffers()):
        be.copy_(b)


class Trainer:
    """One GAN's state and its step. `kind` is 'stylegan', 'dcgan' or 'cdcgan' (which needs `labels`)."""

    def __init__(self, kind: str, data: torch.Tensor, tcfg: TrainConfig, seed: int,
                 model_cfg: StyleGANConfig | DCGANConfig | CDCGANConfig | None = None,
                 device: str | torch.device = "cpu", labels: torch.Tensor | None = None):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.kind, self.data, self.tcfg = kind, data.to(self.device), tcfg
        if (kind == "cdcgan") != (labels is not None):
            raise ValueError("labels go with kind cdcgan, and only with it")
        self.labels = labels.to(self.device) if labels is not None else None
        self.gen = torch.Generator().manual_seed(seed + 1)     # batches of real data
        if kind == "stylegan":
            cfg = model_cfg or StyleGANConfig()
            if tcfg.discriminator not in DISCRIMINATORS:
                raise ValueError(f"discriminator must be one of {DISCRIMINATORS}, not {tcfg.discriminator!r}")
            self.G = StyleGenerator(cfg).to(self.device)
            D = DCDiscriminator(DCGANConfig(base=tcfg.d_base)) if tcfg.discriminator == "dcgan" else StyleDiscriminator(cfg)
            self.D = D.to(self.device)
            ratio = tcfg.r1_every / (tcfg.r1_every + 1) if tcfg.r1_gamma else 1.0  # lazy R1's Adam correction
            b1, b2 = tcfg.betas
            self.opt_g = torch.optim.Adam(self.G.parameters(), lr=tcfg.lr, betas=(b1, b2), eps=1e-8, foreach=True)
            self.opt_d = torch.optim.Adam(self.D.parameters(), lr=tcfg.d_lr * ratio, betas=(b1 ** ratio, b2 ** ratio),
                                          eps=1e-8, foreach=True)
        elif kind == "dcgan":
            cfg = model_cfg or DCGANConfig()
            self.G, self.D = DCGenerator(cfg).to(self.device), DCDiscriminator(cfg).to(self.device)
            self.opt_g = torch.optim.Adam(self.G.parameters(), **DCGAN_ADAM, foreach=True)
            self.opt_d = torch.optim.Adam(self.D.parameters(), **DCGAN_ADAM, foreach=True)
        elif kind == "cdcgan":
            cfg = model_cfg or CDCGANConfig()
            self.G, self.D = CDCGenerator(cfg).to(self.device), CDCDiscriminator(cfg).to(self.device)
            self.opt_g = torch.optim.Adam(self.G.parameters(), **DCGAN_ADAM, foreach=True)
            self.opt_d = torch.optim.Adam(self.D.parameters(), **DCGAN_ADAM, foreach=True)
        else:
            raise ValueError(f"kind must be stylegan, dcgan or cdcgan, not {kind!r}")
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.z_dim = cfg.z_dim
        self.step_count = 0
        self.log: list[dict] = []

    def recorded_config(self) -> dict:
        """The training settings this run actually used, for its card (the peer ignores ours' fields)."""
        cfg = asdict(self.tcfg)
        if self.kind in ("dcgan", "cdcgan"):
            cfg = {**{k: cfg[k] for k in PEER_READS}, "adam_g_and_d": DCGAN_ADAM}
        return cfg

    # --- sampling -------------------------------------------------------------------------------
    def _fake(self, b: int, update_w_avg: bool = False, y: torch.Tensor | None = None) -> torch.Tensor:
        z = torch.randn(b, self.z_dim, device=self.device)
        if self.kind == "cdcgan":
            return self.G(z, y)
        if self.kind == "dcgan":
            return self.G(z)
        G = self.G
        w = G.map(z, update_w_avg=update_w_avg)                       # (B, w_dim)
        ws = w[:, None].repeat(1, G.num_ws, 1)                        # (B, L, w_dim)
        if torch.rand(()) < self.tcfg.mixing_prob:                    # style-mixing regularisation
            cut = int(torch.randint(1, G.num_ws, ()))
            ws[:, cut:] = G.map(torch.randn(b, self.z_dim, device=self.device))[:, None]
        return G.synthesize(ws, "random")

    def _real(self, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch of real images and, for the conditional model, their labels (else None)."""
        idx = torch.randint(0, len(self.data), (b,), generator=self.gen).to(self.device)  # drawn on the CPU
        return self.data[idx], (self.labels[idx] if self.labels is not None else None)

    # --- one step of the game -------------------------------------------------------------------
    def step(self) -> None:
        t, b = self.tcfg, self.tcfg.batch
        self.G.train(), self.D.train()
        # D step: push l(x) up on real data and l(G(z)) down on fakes.
        # One batch of fakes serves both steps (as in PyTorch's DCGAN example): D sees it detached, then G
        # is scored on it by the updated D, which saves one G forward pass per step.
        real, y_real = self._real(b)
        y_fake = torch.randint(0, self.G.config.n_classes, (b,), device=self.device) if y_real is not None else None
        fake = self._fake(b, update_w_avg=True, y=y_fake)
        # the conditional D scores (image, class) pairs: l(x, y); the others ignore the label
        D = (lambda x, y: self.D(x, y)) if y_real is not None else (lambda x, y: self.D(x))
        self.D.requires_grad_(True)
        lr_, lf = D(real, y_real), D(fake.detach(), y_fake)
        loss_d = F.softplus(-lr_).mean() + F.softplus(lf).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        r1 = None
        if self.kind == "stylegan" and t.r1_gamma and self.step_count % t.r1_every == 0:
            x = self._real(b)[0].requires_grad_(True)
            (g,) = torch.autograd.grad(self.D(x).sum(), x, create_graph=True)
            r1 = g.square().sum((1, 2, 3)).mean()
            self.opt_d.zero_grad(set_to_none=True)
            (r1 * (t.r1_gamma / 2) * t.r1_every).backward()
            self.opt_d.step()
        # G step: the non-saturating loss. D's weights are frozen for it (the gradient flows through D to
        # the image only), which skips D's weight gradients without changing G's.
        self.D.requires_grad_(False)
        lg = D(fake, y_fake)
        loss_g = F.softplus(-lg).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        self.opt_g.step()
        # G_ema: half-life in images, ramped up early on.
        seen = (self.step_count + 1) * b
        half = min(t.ema_half_life_img, seen * t.ema_rampup) if t.ema_rampup else t.ema_half_life_img
        ema_update(self.G_ema, self.G, 0.5 ** (b / max(half, 1e-8)))
        if self.step_count % t.log_every == 0:
            rec = {"step": self.step_count, "d_loss": float(loss_d.detach()), "g_loss": float(loss_g.detach()),
                   "d_real": float(torch.sigmoid(lr_.detach()).mean()), "d_fake": float(torch.sigmoid(lf.detach()).mean())}
            if r1 is not None:
                rec["r1"] = float(r1.detach())
            self.log.append(rec)
        self.step_count += 1

    @torch.no_grad()
    def sample(self, z: torch.Tensor, ema: bool = True, psi: float = 1.0, bn_mode: str = "eval",
               y: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, 1, 32, 32) in [-1, 1] for fixed z (and, for cdcgan, classes y), on the CPU."""
        G = self.G_ema if ema else self.G
        z = z.to(self.device)
        if self.kind in ("dcgan", "cdcgan"):
            G.train(bn_mode == "train")
            y = y.to(self.device) if self.kind == "cdcgan" else None
            out = torch.cat([G(z[i:i + 500], y[i:i + 500]) if y is not None else G(z[i:i + 500])
                             for i in range(0, len(z), 500)])
            G.eval()
            return out.cpu()
        G.eval()
        return torch.cat([G(z[i:i + 500], psi=psi, noise_mode="random") for i in range(0, len(z), 500)]).cpu()
