"""Held-out metrics for the GAN lab's checkpoints, written into their cards.

    python -m demos.eval_gan                   # both models, 5000 samples each, 1000 style mixes
    python -m demos.eval_gan --n 2000 --mixes 600 --no-write

For each generator: Fréchet distance in the judge classifier's feature space against the real
training statistics, next to the floor (real test images against the same statistics), the class
histogram and entropy of the samples, and feature diversity (playground.judge.metrics.evaluate).
Generated 32x32 images are cropped back to the 28x28 of Fashion-MNIST (the training data was padded).

The DCGAN peer gets its best shot: its raw weights with batch norm in eval and in train mode, and its
weight average, are all measured; the card's headline FD is the best of them.

Style mixing (ours only): for random pairs (source seed, style seed) whose images the classifier puts
in different classes, the mix that takes the coarse layers (4x4, 8x8) from the style seed should be
classified as the style seed's class, and the mix that takes only the fine layers (32x32) from it
should keep the source's class. Both rates are reported over all such pairs.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from playground.core import checkpoint
from playground.gan import sampling as S
from playground.gan.stylegan import COARSE, FINE, MIDDLE, mix
from playground.gan.train import to_judge


@torch.inference_mode()
def ours_samples(G, n: int, seed: int, psi: float = 1.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.config.z_dim, generator=g)
    torch.manual_seed(seed)
    return torch.cat([G(z[i:i + 500], psi=psi, noise_mode="random") for i in range(0, n, 500)])


@torch.inference_mode()
def dcgan_samples(G, n: int, seed: int, bn_mode: str) -> torch.Tensor:
    z = torch.randn(n, G.config.z_dim, generator=torch.Generator().manual_seed(seed))
    G.train(bn_mode == "train")
    out = torch.cat([G(z[i:i + 500]) for i in range(0, n, 500)])
    G.eval()
    return out


@torch.inference_mode()
def style_mixing(G, n_pairs: int, seed: int, psi: float = 1.0) -> dict:
    from playground.judge import metrics

    g = torch.Generator().manual_seed(seed)
    w_src = G.map(torch.randn(n_pairs, G.config.z_dim, generator=g), psi)
    w_sty = G.map(torch.randn(n_pairs, G.config.z_dim, generator=g), psi)

    def pred(ws):
        x = torch.cat([G.synthesize(ws[i:i + 500], "fixed", 0) for i in range(0, len(ws), 500)])
        return metrics.predict(to_judge(x), "fashion")

    def onehot(layers):
        a = torch.zeros(G.num_ws)
        a[list(layers)] = 1
        return a

    c_src, c_sty = pred(w_src), pred(w_sty)
    res = {}
    for name, layers in (("coarse", COARSE), ("middle", MIDDLE), ("fine", FINE)):
        res[name] = pred(mix(w_src, w_sty, onehot(layers)))
    diff = c_src != c_sty
    n = int(diff.sum())
    rate = lambda a, b: float((a[diff] == b[diff]).double().mean())  # noqa: E731
    return {
        "n_pairs_drawn": n_pairs, "n_mixes": n, "psi": psi, "noise": "fixed maps, seed 0",
        "coarse_follows_style": rate(res["coarse"], c_sty), "coarse_keeps_source": rate(res["coarse"], c_src),
        "middle_follows_style": rate(res["middle"], c_sty), "middle_keeps_source": rate(res["middle"], c_src),
        "fine_follows_style": rate(res["fine"], c_sty), "fine_keeps_source": rate(res["fine"], c_src),
        "definition": "over pairs whose source and style images get different classes: the share of mixes "
                      "classified as the style seed's class (follows_style) or the source's (keeps_source)",
    }


def write_metrics(name: Path, metrics_: dict) -> None:
    p = name.with_suffix(".json")
    card = json.loads(p.read_text())
    card["metrics"] = metrics_
    p.write_text(json.dumps(card, indent=2) + "\n")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=5000, help="samples per model for FD (>= 1000)")
    ap.add_argument("--mixes", type=int, default=1000, help="source/style pairs drawn for the mixing rates")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--folder", default=str(S.ASSETS))
    ap.add_argument("--no-write", action="store_true", help="print only; leave the cards as they are")
    a = ap.parse_args(argv)
    from playground.judge import metrics

    folder = Path(a.folder)
    G, _ = S.load(S.MODEL, folder)
    ours = metrics.evaluate(to_judge(ours_samples(G, a.n, a.seed)), "fashion")
    ours["psi"] = 1.0
    ours["truncated_psi_0.8"] = {k: v for k, v in metrics.evaluate(to_judge(ours_samples(G, a.n, a.seed, 0.8)),
                                                                    "fashion").items() if k in ("fd", "class_entropy_bits", "diversity")}
    ours["style_mixing"] = style_mixing(G, a.mixes, a.seed + 1)

    variants = {}
    Gp, _ = S.load(S.PEER, folder)
    for bn in ("eval", "train"):
        variants[f"raw, batch norm {bn} mode"] = metrics.evaluate(to_judge(dcgan_samples(Gp, a.n, a.seed, bn)), "fashion")
    if (folder / f"{S.PEER}_ema.json").exists():
        Ge, _ = S.load(f"{S.PEER}_ema", folder)
        variants["weight average (EMA), batch norm eval mode"] = metrics.evaluate(
            to_judge(dcgan_samples(Ge, a.n, a.seed, "eval")), "fashion")
    best = min(variants, key=lambda k: variants[k]["fd"])
    peer = {**variants[best], "variant": best,
            "variants": {k: {m: v[m] for m in ("fd", "class_entropy_bits", "diversity")} for k, v in variants.items()}}

    mix_ = ours["style_mixing"]
    print("| | StyleGAN-like (ours) | DCGAN (peer) |\n|---|---|---|")
    print(f"| FD (classifier features), {a.n} samples | {ours['fd']:.2f} | {peer['fd']:.2f} ({best}) |")
    print(f"| real-data floor | {ours['fd_floor_real_test']:.2f} | {peer['fd_floor_real_test']:.2f} |")
    print(f"| class entropy (bits, max 3.32) | {ours['class_entropy_bits']:.2f} | {peer['class_entropy_bits']:.2f} |")
    print(f"| diversity (1 = real) | {ours['diversity']:.2f} | {peer['diversity']:.2f} |")
    print(f"| class histogram | {ours['class_histogram']} | {peer['class_histogram']} |")
    print(f"\nStyle mixing over {mix_['n_mixes']} mixes: coarse from style -> follows style "
          f"{100 * mix_['coarse_follows_style']:.1f}%; fine from style -> keeps source {100 * mix_['fine_keeps_source']:.1f}% "
          f"(middle: follows style {100 * mix_['middle_follows_style']:.1f}%, keeps source {100 * mix_['middle_keeps_source']:.1f}%)")
    print(f"psi = 0.8: FD {ours['truncated_psi_0.8']['fd']:.2f}")
    for k, v in variants.items():
        print(f"DCGAN {k}: FD {v['fd']:.2f}")
    co, cp = checkpoint.read_card(folder / S.MODEL), checkpoint.read_card(folder / S.PEER)
    same_budget = {
        "how": "both trained at the same time for the same wall-clock budget, side by side (two processes, one CPU "
               "thread each) on the same otherwise quiet 2-core machine, same data and seed",
        "budget_minutes": {"ours": co.get("budget_minutes"), "dcgan": cp.get("budget_minutes")},
        "steps": {"ours": co["steps"], "dcgan": cp["steps"]},
        "batch": {"ours": co["train_config"]["batch"], "dcgan": cp["train_config"]["batch"]},
        "fd": {"ours": ours["fd"], "dcgan": peer["fd"], "floor": ours["fd_floor_real_test"]},
        "ours_lower": ours["fd"] < peer["fd"],
    }
    ours["same_budget_comparison"] = peer["same_budget_comparison"] = same_budget
    print(f"\nSame budget: {same_budget['budget_minutes']} min; steps {same_budget['steps']}; "
          f"ours lower FD: {same_budget['ours_lower']}")
    if not a.no_write:
        recipe = f"python -m demos.eval_gan --n {a.n} --mixes {a.mixes} --seed {a.seed}"
        write_metrics(folder / S.MODEL, {**ours, "recipe": recipe})
        write_metrics(folder / S.PEER, {**peer, "recipe": recipe})
        print("wrote the metrics into the cards")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
