"""Train the VAE lab's models and write their checkpoints and cards (held-out ELBO in the card).

The bundled set (about 30 minutes of wall time on a busy 2-core CPU, 1 thread per process, run as
three parallel streams):

    python -m demos.train_vae --data fashion --epochs 5 --peer           # ours (D=16) + the MLP peer
    python -m demos.train_vae --data fashion --epochs 5 --beta 4
    python -m demos.train_vae --data fashion --epochs 5 --latent 2       # + the map's encodings
    python -m demos.train_vae --data digits --epochs 12 --batch 32 --peer
    python -m demos.train_vae --data digits --epochs 12 --batch 32 --beta 4
    python -m demos.train_vae --data digits --epochs 12 --batch 32 --latent 2

One recipe for every model, the peer included: Adam (lr 1e-3), the same batch size (128; 32 on the
4,500 digits so that 12 epochs are enough steps), the same epochs and the same data order (seeded),
loss = recon + beta * KL with a Bernoulli decoder (binary cross-entropy on
grey levels in [0, 1], logits out). The card records the negative ELBO on the held-out test split in
nats per image, split into reconstruction and KL (each image scored with `--eval-samples` draws of
z ~ q(z|x), a fixed seed), plus the KL carried by each latent dimension (the tab orders its sliders by it).
Writes assets/vae/<name>.{safetensors,json} (and <name>_peer_mlp.* with --peer).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from playground.core import checkpoint, data, paths
from playground.vae.losses import kl_per_dim, loss_terms, recon_nll, reparameterise
from playground.vae.mlp import MLPVAE, MLPVAEConfig
from playground.vae.model import ConvVAE, VAEConfig
from playground.vae.service import checkpoint_name

ASSETS = paths.assets("vae")


@torch.inference_mode()
def evaluate(model, x: torch.Tensor, samples: int = 4, seed: int = 1234, batch: int = 1000,
             per_image: bool = False) -> dict:
    """Held-out negative ELBO (nats per image) = E_q[-log p(x|z)] + KL(q(z|x) || N(0, I)),
    the expectation estimated with `samples` draws per image; also the KL of each dimension.
    `per_image` adds each image's own estimate (a tensor (N,), for a standard error; never put in a card)."""
    model.eval()
    g = torch.Generator().manual_seed(seed)
    rec_sum, kl_sum, kld_sum, each = 0.0, 0.0, 0.0, []
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        mu, logvar = model.encode(xb)
        kld = kl_per_dim(mu, logvar)                                    # (B, D)
        rec = 0.0
        for _ in range(samples):
            eps = torch.randn(mu.shape, generator=g)
            rec = rec + recon_nll(model.decode_logits(reparameterise(mu, logvar, eps)), xb)  # (B,)
        rec_sum += float((rec / samples).sum())
        each.append(rec / samples + kld.sum(1))                         # (B,)
        kl_sum += float(kld.sum())
        kld_sum = kld_sum + kld.sum(0)
    n = len(x)
    out = {"neg_elbo_nats": round((rec_sum + kl_sum) / n, 3), "recon_nats": round(rec_sum / n, 3),
           "kl_nats": round(kl_sum / n, 3), "kl_per_dim_nats": [round(float(v) / n, 4) for v in kld_sum],
           "eval_samples": samples, "eval_images": n}
    return {**out, "neg_elbo_per_image": torch.cat(each)} if per_image else out


@torch.inference_mode()
def write_map(path: Path, model, ds) -> Path:
    """For a 2-D model: the test-set means mu(x) (float16) and labels, so the tab's latent map
    needs no encoder pass at start-up. Written as PATH_map.safetensors."""
    from safetensors.torch import save_file

    model.eval()
    x = ds.float01()
    mu = torch.cat([model.encode(x[i : i + 1000])[0] for i in range(0, len(x), 1000)])   # (N, 2)
    out = path.with_name(path.name + "_map.safetensors")
    save_file({"mu": mu.half().contiguous(), "labels": ds.labels.to(torch.uint8).contiguous()}, str(out))
    return out


def train(model, x: torch.Tensor, *, epochs: int, batch: int, lr: float, beta: float, seed: int,
          log_every: int = 100) -> dict:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    t0, step, curve = time.time(), 0, []
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        tot, cnt = 0.0, 0
        for i in range(0, len(x), batch):
            xb = x[perm[i : i + batch]]
            logits, mu, logvar = model(xb)
            t = loss_terms(logits, xb, mu, logvar, beta)
            opt.zero_grad(set_to_none=True)
            t["loss"].backward()
            opt.step()
            step += 1
            tot += float(t["neg_elbo"].detach()) * len(xb)
            cnt += len(xb)
        curve.append(round(tot / cnt, 2))
        print(f"  {type(model).__name__} epoch {ep + 1}/{epochs}: train -ELBO {tot / cnt:.2f} "
              f"({time.time() - t0:.0f} s)", flush=True)
    return {"steps": step, "wall_s": round(time.time() - t0, 1), "train_neg_elbo_per_epoch": curve}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=["fashion", "digits", "synthetic"], default="fashion")
    p.add_argument("--latent", type=int, default=16, help="latent dimensions D (16; 2 for the map)")
    p.add_argument("--beta", type=float, default=1.0, help="KL weight (1 = the ELBO; > 1 = beta-VAE)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-samples", type=int, default=4)
    p.add_argument("--peer", action="store_true", help="also train the pytorch/examples MLP VAE by this recipe")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke tests)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: deterministic, and best on a busy 2-core machine)")
    p.add_argument("--name", default=None, help="checkpoint name (default: <data>_b<beta>[_2d])")
    p.add_argument("--out", default=str(ASSETS), help="folder for the checkpoints")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    name = a.name or checkpoint_name(a.data, a.beta, a.latent)
    out = Path(a.out)

    if a.data == "synthetic":
        train_ds, test_ds = data.synthetic(400, seed=0), data.synthetic(100, seed=1)
    else:
        train_ds, test_ds = data.load(a.data, "train"), data.load(a.data, "test")
    xtr, xte = train_ds.float01(), test_ds.float01()
    if a.limit:
        xtr = xtr[: a.limit]
    recipe = {"optimizer": "Adam", "lr": a.lr, "batch": a.batch, "epochs": a.epochs, "beta": a.beta,
              "likelihood": "Bernoulli (BCE with logits on grey levels in [0, 1])",
              "train_images": len(xtr), "test_images": len(xte),
              "command": f"python -m demos.train_vae --data {a.data} --latent {a.latent} --beta {a.beta:g} "
                         f"--epochs {a.epochs} --batch {a.batch} --lr {a.lr:g} --seed {a.seed}" + (" --peer" if a.peer else "")
                         + (f" --limit {a.limit}" if a.limit else ""),
              "threads": torch.get_num_threads()}
    data_desc = f"{a.data} (train split, {len(xtr)} images; metrics on the test split, {len(xte)} images)"

    results = {}
    peer_metrics = None
    if a.peer:
        print(f"training the peer MLP VAE 784-400-20 on {a.data}", flush=True)
        torch.manual_seed(a.seed)
        peer = MLPVAE(MLPVAEConfig(beta=a.beta))
        log = train(peer, xtr, epochs=a.epochs, batch=a.batch, lr=a.lr, beta=a.beta, seed=a.seed)
        peer_metrics = {**evaluate(peer, xte, a.eval_samples), **log}
        checkpoint.save(out / f"{name}_peer_mlp", peer, data=data_desc, steps=log["steps"], seed=a.seed,
                        metrics=peer_metrics, extra={"recipe": recipe, "role": "peer: pytorch/examples MLP VAE"})
        results["peer"] = peer_metrics
        print("peer:", {k: v for k, v in peer_metrics.items() if k != "kl_per_dim_nats"}, flush=True)

    print(f"training ConvVAE D={a.latent} beta={a.beta:g} on {a.data}", flush=True)
    torch.manual_seed(a.seed)
    model = ConvVAE(VAEConfig(latent_dim=a.latent, beta=a.beta))
    log = train(model, xtr, epochs=a.epochs, batch=a.batch, lr=a.lr, beta=a.beta, seed=a.seed)
    metrics = {**evaluate(model, xte, a.eval_samples), **log}
    extra = {"recipe": recipe, "classes": train_ds.classes}
    if peer_metrics is not None:
        metrics["peer_mlp_784_400_20"] = {k: peer_metrics[k] for k in ("neg_elbo_nats", "recon_nats", "kl_nats", "wall_s")}
        metrics["beats_peer_by_nats"] = round(peer_metrics["neg_elbo_nats"] - metrics["neg_elbo_nats"], 3)
    checkpoint.save(out / name, model, data=data_desc, steps=log["steps"], seed=a.seed, metrics=metrics, extra=extra)
    results["ours"] = metrics
    if a.latent == 2:
        print("wrote", write_map(out / name, model, test_ds), flush=True)
    print("ours:", {k: v for k, v in metrics.items() if k != "kl_per_dim_nats"}, flush=True)
    return results


if __name__ == "__main__":
    main()
