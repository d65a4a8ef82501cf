"""Train the VAE lab's VQ-VAE (playground/vae/vqvae.py) and write its checkpoint and card.

The bundled ones (1 thread each):

    python -m demos.train_vqvae --data fashion --epochs 3
    python -m demos.train_vqvae --data digits --epochs 12 --batch 32

Recipe: Adam (lr 1e-3), loss = recon + codebook + beta * commitment (beta = 0.25), recon the VAE lab's
Bernoulli term (BCE with logits on grey levels, summed over pixels). Two training practices beside the
paper's loss, both recorded in the card: the codebook starts as K encoder outputs z_e of the first batch
(random cells), and every `--restart-every` steps a code no cell chose in that window is moved onto a
random z_e of the current batch (a dead-code restart). The card records, on the held-out test split:
the reconstruction error -log p(x | z_q) in nats per image (the unit of the VAE cards' recon_nats), the
two codebook terms per image, the perplexity of the code frequencies and how many codes were used.
Writes assets/vae/<data>_vq.{safetensors,json}.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from playground.core import checkpoint, data, paths
from playground.vae.losses import recon_nll
from playground.vae.vqvae import VQConfig, VQVAE, perplexity, vq_terms

ASSETS = paths.assets("vae")


@torch.inference_mode()
def evaluate(model: VQVAE, x: torch.Tensor, batch: int = 1000) -> dict:
    """Held-out figures, per image (means over images): recon = -log p(x | z_q) in nats, the codebook and
    commitment terms, the loss; the perplexity of the code frequencies over all cells, the codes used."""
    model.eval()
    rec, cb, cm = 0.0, 0.0, 0.0
    counts = torch.zeros(model.config.codes, dtype=torch.long)
    for i in range(0, len(x), batch):
        xb = x[i : i + batch]
        z_e = model.encode(xb)
        k, z_q = model.quantize(z_e)
        rec += float(recon_nll(model.decode_logits(z_q), xb).sum())
        a, b = vq_terms(z_e, z_q)
        cb, cm = cb + float(a.sum()), cm + float(b.sum())
        counts += torch.bincount(k.flatten(), minlength=model.config.codes)
    n = len(x)
    beta = model.config.beta
    return {"recon_nats": round(rec / n, 3), "codebook": round(cb / n, 4), "commitment": round(cm / n, 4),
            "loss": round((rec + cb + beta * cm) / n, 3), "perplexity": round(perplexity(counts), 2),
            "codes_used": int((counts > 0).sum()), "codes": model.config.codes, "eval_images": n}


def train(model: VQVAE, x: torch.Tensor, *, epochs: int, batch: int, lr: float, seed: int,
          restart_every: int) -> dict:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    K, D = model.config.codes, model.config.code_dim

    def cells(xb):                                                 # (B*h*w, D) encoder outputs
        return model.encode(xb).detach().permute(0, 2, 3, 1).reshape(-1, D)

    with torch.no_grad():                                          # codebook <- K random encoder outputs
        z = cells(x[torch.randperm(len(x), generator=g)[:batch]])
        model.codebook.weight.copy_(z[torch.randperm(len(z), generator=g)[:K]])
    t0, step, restarts, curve = time.time(), 0, 0, []
    used = torch.zeros(K, dtype=torch.bool)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        tot = {"recon": 0.0, "codebook": 0.0, "commitment": 0.0}
        cnt = 0
        for i in range(0, len(x), batch):
            xb = x[perm[i : i + batch]]
            out = model(xb)
            opt.zero_grad(set_to_none=True)
            out["loss"].backward()
            opt.step()
            step += 1
            used[out["codes"].unique()] = True
            if restart_every and step % restart_every == 0:
                dead = (~used).nonzero().flatten()
                if len(dead):
                    with torch.no_grad():
                        z = cells(xb)
                        model.codebook.weight[dead] = z[torch.randint(len(z), (len(dead),), generator=g)]
                    restarts += len(dead)
                used.zero_()
            for t in tot:
                tot[t] += float(out[t].detach()) * len(xb)
            cnt += len(xb)
        curve.append({t: round(v / cnt, 3) for t, v in tot.items()})
        print(f"  epoch {ep + 1}/{epochs}: train {curve[-1]} restarts so far {restarts} "
              f"({time.time() - t0:.0f} s)", flush=True)
    return {"steps": step, "wall_s": round(time.time() - t0, 1), "train_terms_per_epoch": curve,
            "dead_code_restarts": restarts}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", choices=["fashion", "digits", "synthetic"], default="fashion")
    p.add_argument("--codes", type=int, default=VQConfig.codes, help="K, the codebook size")
    p.add_argument("--code-dim", type=int, default=VQConfig.code_dim, help="D, the size of a codebook entry")
    p.add_argument("--beta", type=float, default=VQConfig.beta, help="weight of the commitment term")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--restart-every", type=int, default=100, help="steps between dead-code restarts (0: none)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke tests)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: deterministic)")
    p.add_argument("--name", default=None, help="checkpoint name (default: <data>_vq)")
    p.add_argument("--out", default=str(ASSETS), help="folder for the checkpoint")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    name = a.name or f"{a.data}_vq"
    if a.data == "synthetic":
        train_ds, test_ds = data.synthetic(400, seed=0), data.synthetic(100, seed=1)
    else:
        train_ds, test_ds = data.load(a.data, "train"), data.load(a.data, "test")
    xtr, xte = train_ds.float01(), test_ds.float01()
    if a.limit:
        xtr = xtr[: a.limit]
    cfg = VQConfig(codes=a.codes, code_dim=a.code_dim, beta=a.beta)
    recipe = {"optimizer": "Adam", "lr": a.lr, "batch": a.batch, "epochs": a.epochs, "beta": a.beta,
              "likelihood": "Bernoulli (BCE with logits on grey levels in [0, 1])",
              "loss": "recon + ||sg(z_e) - e||^2 + beta ||z_e - sg(e)||^2, per image (sums over cells and dimensions)",
              "codebook_init": "K encoder outputs z_e of the first batch (random cells)",
              "dead_code_restart": (f"every {a.restart_every} steps, codes no cell chose in that window are moved "
                                    "onto random z_e of the current batch") if a.restart_every else "none",
              "train_images": len(xtr), "test_images": len(xte),
              "command": f"python -m demos.train_vqvae --data {a.data} --codes {a.codes} --code-dim {a.code_dim} "
                         f"--beta {a.beta:g} --epochs {a.epochs} --batch {a.batch} --lr {a.lr:g} --seed {a.seed} "
                         f"--restart-every {a.restart_every}" + (f" --limit {a.limit}" if a.limit else ""),
              "threads": torch.get_num_threads()}
    data_desc = f"{a.data} (train split, {len(xtr)} images; metrics on the test split, {len(xte)} images)"
    print(f"training VQVAE K={cfg.codes} D={cfg.code_dim} on {a.data}", flush=True)
    torch.manual_seed(a.seed)
    model = VQVAE(cfg)
    log = train(model, xtr, epochs=a.epochs, batch=a.batch, lr=a.lr, seed=a.seed, restart_every=a.restart_every)
    metrics = {**evaluate(model, xte), **log}
    checkpoint.save(Path(a.out) / name, model, data=data_desc, steps=log["steps"], seed=a.seed, metrics=metrics,
                    extra={"recipe": recipe, "classes": train_ds.classes})
    print("held-out:", {k: v for k, v in metrics.items() if k != "train_terms_per_epoch"}, flush=True)
    return metrics


if __name__ == "__main__":
    main()
