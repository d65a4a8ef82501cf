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

The conditional DCGAN (`--model cdcgan`): n / 10 samples of each class, each asked for by its label;
the judge's class accuracy per class (the share of class-c samples it labels c), their mean, and FD
and diversity of all of them as above. Beside them, the judge's own per-class accuracy on the real
test images: a class the judge often misreads on real data (Shirt) caps what it can grant samples.

    python -m demos.eval_gan --model cdcgan

Same budget (`--verdict`, no sampling, no weights touched): the seed pairs our card records in its
`trials` (the round that trained the bundled pair: ours and the peer side by side for the same
wall-clock budget, one pair per seed) are summarised as mean +- standard deviation per model, and the
verdict is written into our card as `same_budget`. The full evaluation writes it too.

    python -m demos.eval_gan --verdict
"""
from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
from pathlib import Path

import torch

from playground.core import checkpoint, paths
from playground.core.data import FASHION_CLASSES
from playground.gan import cdcgan
from playground.gan.service import CONDITIONAL, MODEL, PEER
from playground.gan.stylegan import mix
from playground.gan.train import to_judge

ASSETS = paths.assets("gan")


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


def conditional_samples(G, n_per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n_per_class images of every class (class by class), batch norm in eval mode, and their labels."""
    y = torch.arange(G.config.n_classes).repeat_interleave(n_per_class)
    return cdcgan.samples(G, y, seed), y


def per_class_accuracy(pred: torch.Tensor, y: torch.Tensor, n_classes: int) -> list[float]:
    """For each class c: the share of the images asked to be c that the judge labels c."""
    return [float((pred[y == c] == c).double().mean()) for c in range(n_classes)]


def conditional_metrics(G, n_per_class: int, seed: int) -> dict:
    """The conditional model's card metrics: per-class judge accuracy, its mean, FD, diversity."""
    from playground.core import data
    from playground.judge import metrics

    x, y = conditional_samples(G, n_per_class, seed)
    x = to_judge(x)
    out = metrics.evaluate(x, "fashion", labels=y)
    acc = per_class_accuracy(metrics.predict(x, "fashion"), y, G.config.n_classes)
    test = data.load("fashion", "test")
    real = per_class_accuracy(metrics.predict(test.float01(), "fashion"), test.labels, G.config.n_classes)
    return {**out, "n_per_class": n_per_class, "classes": FASHION_CLASSES, "per_class_accuracy": acc,
            "mean_class_accuracy": statistics.fmean(acc), "judge_real_test_per_class_accuracy": real,
            "definition": "per class c: the share of the n_per_class samples asked for class c (batch norm in eval "
                          "mode, z ~ N(0, I)) that the judge classifier labels c; FD against the judge's real "
                          "training statistics, as for the other GANs"}


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
    for name, layers in G.config.groups.items():
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


def write_field(name: Path, field: str, value) -> None:
    """Set one top-level field of a card (the weights and every other field stay as they are)."""
    p = name.with_suffix(".json")
    card = json.loads(p.read_text())
    card[field] = value
    p.write_text(json.dumps(card, indent=2) + "\n")


def _round_number(key: str) -> int:
    m = re.match(r"round (\d+)", key)
    return int(m.group(1)) if m else -1


def same_budget(card: dict) -> dict | None:
    """The same-budget verdict over the seed pairs in a card's `trials`, or None when it records none.

    The pairs are the entries with both `ours_fd` and `peer_fd` in the latest round that holds the
    bundled pair (an entry whose name says "bundled"). Per model: the mean and the sample standard
    deviation (n - 1) of FD over the pairs. The verdict is "level" when the difference of the means is
    within twice its standard error, sqrt(sd_ours^2 / n + sd_peer^2 / n) (about a 95% band), else the
    lower one wins."""
    rounds = sorted((k for k, v in (card.get("trials") or {}).items() if isinstance(v, dict) and _round_number(k) >= 0),
                    key=_round_number)
    for key in reversed(rounds):
        entries = card["trials"][key]
        pairs = {k: v for k, v in entries.items() if isinstance(v, dict) and {"ours_fd", "peer_fd"} <= set(v)}
        if len(pairs) >= 2 and any("bundled" in k for k in pairs):
            break
    else:
        return None
    ours = [float(v["ours_fd"]) for v in pairs.values()]
    peer = [float(v["peer_fd"]) for v in pairs.values()]
    n = len(pairs)
    mo, mp, so, sp = statistics.fmean(ours), statistics.fmean(peer), statistics.stdev(ours), statistics.stdev(peer)
    se = math.sqrt(so ** 2 / n + sp ** 2 / n)
    verdict = "level" if abs(mo - mp) <= 2 * se else ("ours lower" if mo < mp else "peer lower")
    seeds = [int(m.group(1)) if (m := re.search(r"seed (\d+)", k)) else None for k in pairs]
    return {
        "pairs": n, "seeds": seeds, "trials_round": key,
        "budget_minutes": card.get("budget_minutes"),
        "ours": {"fd": ours, "mean": mo, "sd": so}, "peer": {"fd": peer, "mean": mp, "sd": sp},
        "difference_of_means": mo - mp, "standard_error": se,
        "ours_lower_in": sum(o < p for o, p in zip(ours, peer)),
        "verdict": verdict,
        "rule": "FD of G_ema at N = 5000 per pair; mean and sample standard deviation (n - 1) over the pairs; "
                "level when |mean ours - mean peer| <= 2 sqrt(sd_ours^2 / n + sd_peer^2 / n)",
        "recipe": "python -m demos.eval_gan --verdict",
    }


def write_verdict(folder: Path) -> dict | None:
    sb = same_budget(checkpoint.read_card(folder / MODEL))
    if sb:
        write_field(folder / MODEL, "same_budget", sb)
    return sb


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=("pair", "cdcgan"), default="pair",
                    help="pair: ours and the DCGAN peer; cdcgan: the conditional DCGAN (n / 10 per class)")
    ap.add_argument("--n", type=int, default=5000, help="samples per model for FD (>= 1000)")
    ap.add_argument("--mixes", type=int, default=1000, help="source/style pairs drawn for the mixing rates")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--folder", default=str(ASSETS))
    ap.add_argument("--no-write", action="store_true", help="print only; leave the cards as they are")
    ap.add_argument("--verdict", action="store_true",
                    help="only summarise the seed pairs in our card's trials into its same_budget field (no sampling)")
    a = ap.parse_args(argv)
    folder = Path(a.folder)
    if a.verdict:
        sb = same_budget(checkpoint.read_card(folder / MODEL))
        print(json.dumps(sb, indent=2))
        if sb and not a.no_write:
            write_field(folder / MODEL, "same_budget", sb)
            print(f"wrote same_budget into {folder / MODEL}.json")
        return
    from playground.judge import metrics

    if a.model == "cdcgan":
        Gc, _ = checkpoint.load(folder / CONDITIONAL)
        m = conditional_metrics(Gc, a.n // Gc.config.n_classes, a.seed)
        print(f"| class | judge accuracy on {m['n_per_class']} samples | the judge on real test images |\n|---|---|---|")
        for c, acc, real in zip(FASHION_CLASSES, m["per_class_accuracy"], m["judge_real_test_per_class_accuracy"]):
            print(f"| {c} | {100 * acc:.1f}% | {100 * real:.1f}% |")
        print(f"mean {100 * m['mean_class_accuracy']:.1f}%; FD {m['fd']:.3f} (floor {m['fd_floor_real_test']:.3f}); "
              f"diversity {m['diversity']:.2f}")
        if not a.no_write:
            write_field(folder / CONDITIONAL, "metrics", {**m, "recipe": f"python -m demos.eval_gan --model cdcgan "
                                                                    f"--n {a.n} --seed {a.seed}"})
            print(f"wrote the metrics into {folder / CONDITIONAL}.json")
        return
    G, _ = checkpoint.load(folder / MODEL)
    ours = metrics.evaluate(to_judge(ours_samples(G, a.n, a.seed)), "fashion")
    ours["psi"] = 1.0
    ours["truncated_psi_0.8"] = {k: v for k, v in metrics.evaluate(to_judge(ours_samples(G, a.n, a.seed, 0.8)),
                                                                    "fashion").items() if k in ("fd", "class_entropy_bits", "diversity")}
    ours["style_mixing"] = style_mixing(G, a.mixes, a.seed + 1)

    variants = {}
    Gp, _ = checkpoint.load(folder / PEER)
    for bn in ("eval", "train"):
        variants[f"raw, batch norm {bn} mode"] = metrics.evaluate(to_judge(dcgan_samples(Gp, a.n, a.seed, bn)), "fashion")
    if (folder / f"{PEER}_ema.json").exists():
        Ge, _ = checkpoint.load(folder / f"{PEER}_ema")
        variants["weight average (EMA), batch norm eval mode"] = metrics.evaluate(
            to_judge(dcgan_samples(Ge, a.n, a.seed, "eval")), "fashion")
    best = min(variants, key=lambda k: variants[k]["fd"])
    peer = {**variants[best], "variant": best,
            "variants": {k: {m: v[m] for m in ("fd", "class_entropy_bits", "diversity")} for k, v in variants.items()}}

    mix_ = ours["style_mixing"]
    print("| | StyleGAN-like (ours) | DCGAN (peer) |\n|---|---|---|")
    print(f"| FD (classifier features), {a.n} samples | {ours['fd']:.2f} | {peer['fd']:.2f} ({best}) |")
    print(f"| real-data floor | {ours['fd_floor_real_test']:.2f} | {peer['fd_floor_real_test']:.2f} |")
    print(f"| class entropy (bits, max {metrics.chance_entropy():.2f}) | {ours['class_entropy_bits']:.2f} | "
          f"{peer['class_entropy_bits']:.2f} |")
    print(f"| diversity (1 = real) | {ours['diversity']:.2f} | {peer['diversity']:.2f} |")
    print(f"| class histogram | {ours['class_histogram']} | {peer['class_histogram']} |")
    print(f"\nStyle mixing over {mix_['n_mixes']} mixes: coarse from style -> follows style "
          f"{100 * mix_['coarse_follows_style']:.1f}%; fine from style -> keeps source {100 * mix_['fine_keeps_source']:.1f}% "
          f"(middle: follows style {100 * mix_['middle_follows_style']:.1f}%, keeps source {100 * mix_['middle_keeps_source']:.1f}%)")
    print(f"psi = 0.8: FD {ours['truncated_psi_0.8']['fd']:.2f}")
    for k, v in variants.items():
        print(f"DCGAN {k}: FD {v['fd']:.2f}")
    co, cp = checkpoint.read_card(folder / MODEL), checkpoint.read_card(folder / PEER)
    bundled_pair = {
        "how": "both trained at the same time for the same wall-clock budget, side by side (two processes, one CPU "
               "thread each) on the same otherwise quiet 2-core machine, same data and seed",
        "budget_minutes": {"ours": co.get("budget_minutes"), "dcgan": cp.get("budget_minutes")},
        "steps": {"ours": co["steps"], "dcgan": cp["steps"]},
        "batch": {"ours": co["train_config"]["batch"], "dcgan": cp["train_config"]["batch"]},
        "fd": {"ours": ours["fd"], "dcgan": peer["fd"], "floor": ours["fd_floor_real_test"]},
        "ours_lower": ours["fd"] < peer["fd"],
    }
    ours["same_budget_comparison"] = peer["same_budget_comparison"] = bundled_pair
    print(f"\nSame budget: {bundled_pair['budget_minutes']} min; steps {bundled_pair['steps']}; "
          f"ours lower FD: {bundled_pair['ours_lower']}")
    if not a.no_write:
        recipe = f"python -m demos.eval_gan --n {a.n} --mixes {a.mixes} --seed {a.seed}"
        write_field(folder / MODEL, "metrics", {**ours, "recipe": recipe})
        write_field(folder / PEER, "metrics", {**peer, "recipe": recipe})
        write_verdict(folder)
        print("wrote the metrics (and the same-budget verdict) into the cards")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
