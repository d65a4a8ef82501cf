"""Train the small CLIP bundled with the CLIP lab, and measure it on held-out pairs.

    python -m demos.train_clip                      # the bundled model (its time: the card's train_seconds)
    python -m demos.train_clip --steps 20 --out /tmp/clip_smoke.safetensors   # a smoke run

The architecture (`TinyClipConfig`) is registered with open_clip and built by
`open_clip.create_model_and_transforms`; the loss is the symmetric InfoNCE of the CLIP paper.
Each batch mixes three offline sources of image-caption pairs (see playground/clip/data.py):
Noto emoji with their Unicode names and paraphrases, Fashion-MNIST with templated captions, and
procedurally drawn coloured shapes with compositional captions.

After training the weights are written as float16 safetensors with a JSON card, reloaded through
the same factory call the lab's service uses, and evaluated on pairs never seen in training:
  recall@1 / @5, image->text and text->image, for held-out emoji, Fashion-MNIST test images,
  fresh shape drawings, and shapes whose (colour, shape) pair was never drawn in training;
  zero-shot accuracy on the 10,000 Fashion-MNIST test images, a single prompt template against
  the prompt-template ensemble.
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from playground.clip import data as cd
from playground.clip import model as cm
from playground.core import paths, settings

MEAN = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)   # open_clip's OpenAI mean/std
STD = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)


def cache_dir() -> Path:
    """The settings' cache folder (PLAYGROUND_CACHE): rendered emoji, the open_clip config."""
    return settings.from_env().cache_dir


def fashion_48(split: str, px: int, cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST resized to px with PIL bicubic, as open_clip's preprocess would: (N, px, px) uint8."""
    from playground.core import data

    ds = data.load("fashion", split, cache=cache or cache_dir())
    x = ds.images.numpy()
    out = np.stack([np.asarray(Image.fromarray(a).resize((px, px), Image.BICUBIC)) for a in x])
    return out, ds.labels.numpy()


def fashion_rgb(split: str, px: int, cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fashion-MNIST as the evaluation feeds it to the image tower: (N, px, px, 3) uint8, grey repeated."""
    x, y = fashion_48(split, px, cache)
    return np.repeat(x[..., None], 3, -1), y


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random zoom (0.8 to 1.05) and shift (up to 8 %) per image, edges repeated. x: (B, 3, S, S) in [0, 1]."""
    b = len(x)
    s = 0.8 + 0.25 * torch.rand(b, generator=g)
    t = (torch.rand(b, 2, generator=g) - 0.5) * 0.16
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / s
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode="border", align_corners=False)


def normalise(x_uint8: torch.Tensor) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [0, 1]."""
    return x_uint8.permute(0, 3, 1, 2).float() / 255.0


# --- evaluation -------------------------------------------------------------------------------

def retrieval_metrics(runner: cm.ClipRunner, imgs: np.ndarray, caps: list[str]) -> dict:
    uniq = sorted(set(caps))
    pos = {c: i for i, c in enumerate(uniq)}
    owner = np.array([pos[c] for c in caps])                          # (N,) caption id of each image
    ie = runner.encode_pils([Image.fromarray(a) for a in imgs])        # (N, D)
    te = runner.encode_texts(uniq)                                     # (U, D)
    sim = ie @ te.T                                                    # (N, U)
    out = {"pairs": len(caps), "distinct_captions": len(uniq)}
    i2t = np.argsort(-sim, axis=1)
    t2i = np.argsort(-sim.T, axis=1)
    for k in (1, 5):
        out[f"i2t_r@{k}"] = round(float(np.mean([owner[n] in i2t[n, :k] for n in range(len(caps))])), 4)
        out[f"t2i_r@{k}"] = round(float(np.mean([np.any(owner[t2i[u, :k]] == u) for u in range(len(uniq))])), 4)
    return out


def zero_shot(runner: cm.ClipRunner, imgs: np.ndarray, labels: np.ndarray) -> dict:
    ie = runner.encode_pils([Image.fromarray(a) for a in imgs], batch=256)
    res = {}
    for key, templates in (("single_template", (cm.SINGLE_TEMPLATE,)), ("ensemble", cm.ENSEMBLE_TEMPLATES)):
        ce = runner.class_embeddings(cd.FASHION_LABELS, templates)      # (10, D)
        res[key] = round(float(((ie @ ce.T).argmax(1) == labels).mean()), 4)
    res["templates_single"] = cm.SINGLE_TEMPLATE
    res["templates_ensemble"] = list(cm.ENSEMBLE_TEMPLATES)
    res["labels"] = cd.FASHION_LABELS
    res["images"] = int(len(labels))
    return res


def held_out_sets(px: int, seed: int) -> dict:
    """Image-caption pairs never seen in training, by source."""
    emo, names = cd.emoji_rgb(px, cache=cache_dir())
    _, held = cd.emoji_split(len(names), seed=0)
    fx, fy = fashion_rgb("test", px)
    fx1000, fy1000 = fx[:1000], fy[:1000]
    seen_x, _, seen_c = cd.shapes(1000, seed + 10_001, px=px)
    un_x, _, un_c = cd.shapes(500, seed + 10_002, unseen=True, px=px)
    return {
        "emoji_unseen_names": (emo[held], [names[i] for i in held]),
        "fashion_test": (fx1000, [cm.SINGLE_TEMPLATE.format(cd.FASHION_LABELS[y]) for y in fy1000]),
        "shapes_fresh_drawings": (seen_x, seen_c),
        "shapes_unseen_colour_shape_pairs": (un_x, un_c),
    }, (fx, fy)


def evaluate(weights: Path, px: int, seed: int) -> dict:
    model, pre, tok = cm.load_bundled(weights, cache_dir() / "open_clip_configs")   # the service's loading path
    runner = cm.ClipRunner(model, pre, tok, str(weights))
    sets, (fx, fy) = held_out_sets(px, seed)
    metrics = {"retrieval": {k: retrieval_metrics(runner, x, c) for k, (x, c) in sets.items()}}
    metrics["fashion_zero_shot"] = zero_shot(runner, fx, fy)
    metrics["temperature"] = round(runner.temperature, 4)
    return metrics


def write_examples(folder: Path = paths.assets("clip", "examples")) -> None:
    """The tab's example images: three Fashion-MNIST test images, a shape drawing and an emoji (PNG)."""
    folder.mkdir(parents=True, exist_ok=True)
    from playground.core import data

    ds = data.load("fashion", "test", cache=cache_dir())
    for label, name in ((7, "sneaker"), (1, "trousers"), (8, "bag")):
        i = int((ds.labels == label).nonzero()[0])
        Image.fromarray(ds.images[i].numpy()).resize((112, 112), Image.BICUBIC).save(folder / f"fashion_{name}.png")
    rng = np.random.default_rng(123)
    Image.fromarray(cd.draw_shape("red", "circle", "big", "middle", rng, 112)).save(folder / "shape_red_circle.png")
    from playground.clip.gallery import EMOJI_PX

    emo, names = cd.emoji_rgb(EMOJI_PX, cache=cache_dir())   # pixel-identical to the gallery's rocket
    Image.fromarray(emo[names.index("rocket")]).save(folder / "emoji_rocket.png")


# --- training ---------------------------------------------------------------------------------

def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--batch", type=int, default=128, help="pairs per step (emoji, fashion and shapes mixed)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--shapes", type=int, default=20_000, help="shape drawings made for training")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared, busy CPU")
    p.add_argument("--max-minutes", type=float, default=34.0, help="stop early (and say so in the card) past this")
    p.add_argument("--out", type=Path, default=cm.BUNDLED)
    p.add_argument("--examples-only", action="store_true", help="only write the tab's example images")
    a = p.parse_args(argv)
    if a.examples_only:
        write_examples()
        return {}
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    cfg = cm.TinyClipConfig()
    px = cfg.image_size
    t_start = time.time()

    emo, names = cd.emoji_rgb(px, cache=cache_dir())
    emo_train, _ = cd.emoji_split(len(names), seed=0)
    fx, fy = fashion_48("train", px)
    sx, scaps, _ = cd.shapes(a.shapes, a.seed, px=px)
    print(f"data ready in {time.time() - t_start:.0f} s: {len(emo_train)} emoji, {len(fy)} fashion, {len(sx)} shapes",
          flush=True)
    emo_t, fx_t, sx_t = torch.from_numpy(emo), torch.from_numpy(fx), torch.from_numpy(sx)

    model, _, _ = cm.load(cm.register(cfg, cache_dir() / "open_clip_configs"), None)
    import open_clip

    tokenizer = open_clip.get_tokenizer(cfg.name)
    model.train()
    decay = [p_ for n, p_ in model.named_parameters() if p_.ndim >= 2 and "embedding" not in n]
    rest = [p_ for n, p_ in model.named_parameters() if not (p_.ndim >= 2 and "embedding" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": a.weight_decay}, {"params": rest, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.98), eps=1e-6)
    n_emo, n_fas = a.batch * 5 // 16, a.batch * 5 // 16
    n_sha = a.batch - n_emo - n_fas
    log, step, t0 = [], 0, time.time()
    for step in range(1, a.steps + 1):
        lr = a.lr * min(1.0, step / a.warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / a.steps)))
        for grp in opt.param_groups:
            grp["lr"] = lr
        ie = rng.choice(emo_train, n_emo, replace=False)
        ifa = rng.integers(0, len(fy), n_fas)
        ish = rng.integers(0, len(sx), n_sha)
        x = torch.cat([normalise(emo_t[ie]), normalise(fx_t[ifa].unsqueeze(-1).expand(-1, -1, -1, 3)),
                       normalise(sx_t[ish])])                                      # (B, 3, S, S)
        x = augment(x, g)
        x = (x - MEAN) / STD
        caps = ([cd.emoji_caption(names[i], rng) for i in ie] + [cd.fashion_caption(int(fy[i]), rng) for i in ifa]
                + [scaps[i] for i in ish])
        img, txt, scale = model(x, tokenizer(caps))
        loss = cm.contrastive_loss(img, txt, model.logit_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 25 == 0 or step == 1:
            el = time.time() - t0
            log.append({"step": step, "loss": round(loss.item(), 4), "seconds": round(el, 1)})
            print(f"step {step:5d}  loss {loss.item():.3f}  T {1 / scale.item():.3f}  lr {lr:.2e}  "
                  f"{el / step:.2f} s/step  {el / 60:.1f} min", flush=True)
        if time.time() - t_start > a.max_minutes * 60:
            print(f"time limit: stopping at step {step}", flush=True)
            break
    train_s = time.time() - t_start
    model.eval()
    recipe = {
        "data": ("emoji: Noto Color Emoji (Debian fonts-noto-color-emoji), Unicode names + paraphrases "
                 f"{list(cd.EMOJI_TEMPLATES)}, 9/10 of them; fashion: Fashion-MNIST train (Debian "
                 f"dataset-fashion-mnist), captions {list(cd.FASHION_TEMPLATES)} x synonyms; shapes: "
                 f"{a.shapes} drawings, {len(cd.COLOURS)} colours x {len(cd.SHAPES)} shapes x 2 sizes x "
                 f"{len(cd.POSITIONS)} positions, (colour, shape) pairs {cd.UNSEEN_PAIRS} never drawn"),
        "steps": step, "planned_steps": a.steps, "seed": a.seed, "batch": a.batch,
        "batch_mix": {"emoji": n_emo, "fashion": n_fas, "shapes": n_sha},
        "optimizer": {"name": "AdamW", "lr": a.lr, "warmup": a.warmup, "schedule": "cosine",
                      "weight_decay": a.weight_decay, "betas": [0.9, 0.98]},
        "augment": "random zoom 0.8-1.05 and shift up to 8 %, edges repeated; no flips (left/right is in the captions)",
        "threads": a.threads, "train_seconds": round(train_s, 1), "loss_log": log,
        "recipe": "python -m demos.train_clip " + " ".join(argv or []),
        "open_clip_call": f"open_clip.create_model_and_transforms('{cfg.name}', pretrained='<this file>')",
        "created": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
    }
    cm.save(model, cfg, a.out, recipe)
    t_eval = time.time()
    metrics = evaluate(a.out, px, a.seed)
    print(f"evaluated in {time.time() - t_eval:.0f} s", flush=True)
    card = cm.read_card(a.out)
    card["metrics"] = metrics
    card["wall_seconds"] = round(time.time() - t_start, 1)
    import json

    a.out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(metrics, indent=1))
    return card


if __name__ == "__main__":
    main()
