"""CLIP: contrastive language-image pre-training (Radford et al., 2021, "Learning Transferable Visual
Models From Natural Language Supervision"), through open_clip (Ilharco et al., 2021).

What is in this file:
- `TinyClipConfig`: the small architecture this project trains (a ViT image tower and a causal text
  transformer), written out as an open_clip model config and registered with open_clip, so that our
  checkpoint and a hub model are built by the very same factory call.
- `load(name, pretrained)`: that factory call, `open_clip.create_model_and_transforms`, for a hub tag
  (e.g. ViT-B-32 / laion2b_s34b_b79k) or a local .safetensors path (our bundled model).
- `contrastive_loss`: the symmetric InfoNCE loss CLIP is trained with.
- `ClipRunner`: encode texts and images to unit vectors, in batches, with prompt-template ensembles.
- `modality_gap`: how far apart the image and the text clouds sit (Liang et al., 2022, "Mind the Gap").

No gradio, no caches, no settings here: the caller passes every folder (the service passes its own).
"""
from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from playground.core import checkpoint, paths

BUNDLED = paths.assets("clip", "tiny_clip.safetensors")   # its card, with the training figures, is beside it


@dataclass(frozen=True)
class TinyClipConfig:
    name: str = "PlaygroundCLIP-Tiny"   # the architecture name registered with open_clip
    embed_dim: int = 128                # size of the joint image-text space
    image_size: int = 32                # input images are 32x32 RGB
    patch_size: int = 8                 # 4 x 4 = 16 patches (+1 class token)
    vision_width: int = 96              # ViT width
    vision_layers: int = 3              # ViT depth
    vision_head_width: int = 32         # 96 / 32 = 3 heads
    context_length: int = 20            # text tokens (open_clip's default is 77; captions here are short)
    vocab_size: int = 49408             # open_clip's BPE vocabulary (ships in the wheel)
    text_width: int = 64                # the token table is vocab x width: width 64 keeps the file < 10 MB
    text_heads: int = 4
    text_layers: int = 3

    def open_clip_config(self) -> dict:
        """The JSON open_clip reads for an architecture (same keys as its model_configs/*.json)."""
        return {
            "embed_dim": self.embed_dim,
            "vision_cfg": {"image_size": self.image_size, "layers": self.vision_layers, "width": self.vision_width,
                           "head_width": self.vision_head_width, "patch_size": self.patch_size},
            "text_cfg": {"context_length": self.context_length, "vocab_size": self.vocab_size,
                         "width": self.text_width, "heads": self.text_heads, "layers": self.text_layers},
        }


def register(cfg: TinyClipConfig, folder: Path) -> str:
    """Write cfg as `<folder>/<name>.json` (unless that file already holds it) and add it to open_clip's
    registry (unless the registry already holds it). Returns the name."""
    import open_clip

    text = json.dumps(cfg.open_clip_config(), indent=2)
    path = Path(folder) / f"{cfg.name}.json"
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if open_clip.get_model_config(cfg.name) != cfg.open_clip_config():
        open_clip.add_model_config(path)
    return cfg.name


def read_card(weights: Path = BUNDLED) -> dict:
    """The JSON card beside a checkpoint (its config, data, training time and held-out metrics)."""
    return checkpoint.read_card(weights)


def config_from_card(card: dict) -> TinyClipConfig:
    return TinyClipConfig(**card["config"])


def load(name: str, pretrained: str | None, device: str | torch.device = "cpu", cache_dir: Path | None = None):
    """THE factory call, for hub tags and local checkpoints alike:
    open_clip.create_model_and_transforms(name, pretrained=tag_or_path). A local path must be a
    .safetensors file (open_clip reads those with safetensors, never with torch.load). Hub weights are
    downloaded into `cache_dir` (None: open_clip's own default).
    Returns (model in eval mode, image preprocess, tokenizer)."""
    import open_clip

    if pretrained and Path(pretrained).suffix not in ("", ".safetensors") and Path(pretrained).exists():
        raise ValueError(f"{pretrained}: only .safetensors checkpoints are loaded (no pickle)")
    model, _, preprocess = open_clip.create_model_and_transforms(
        name, pretrained=pretrained, device=device, cache_dir=None if cache_dir is None else str(cache_dir))
    tokenizer = open_clip.get_tokenizer(name)
    return model.eval(), preprocess, tokenizer


def load_bundled(weights: Path, config_dir: Path, device: str | torch.device = "cpu"):
    """Our checkpoint: register its architecture from its card (the open_clip config is written into
    `config_dir`), then the same `load` as the hub."""
    cfg = config_from_card(read_card(weights))
    return load(register(cfg, config_dir), str(weights), device)


def save(model: torch.nn.Module, cfg: TinyClipConfig, path: Path, card: dict, half: bool = True) -> dict:
    """Weights as safetensors (float16 when `half`), the card as JSON beside them."""
    from safetensors.torch import save_file

    from playground.core.checkpoint import MAX_FILE_BYTES, sha256

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(path), metadata={"open_clip_model": cfg.name})
    if path.stat().st_size > MAX_FILE_BYTES:
        raise RuntimeError(f"{path} is {path.stat().st_size / 1e6:.1f} MB; bundled weights stay under 10 MB")
    card = {"model": f"open_clip:{cfg.name}", "config": asdict(cfg), "open_clip_config": cfg.open_clip_config(),
            **card, "parameters": int(sum(p.numel() for p in model.parameters())),
            "dtype": "float16" if half else "float32", "bytes": path.stat().st_size, "sha256": sha256(path)}
    path.with_suffix(".json").write_text(json.dumps(card, indent=2) + "\n")
    return card


# --- the loss -------------------------------------------------------------------------------------

def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, logit_scale: torch.Tensor | float) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of N matching pairs (img[i], txt[i]), both L2-normalised (N, D).

        logits_ij = exp(t) * <img_i, txt_j>                      t = log(1 / temperature)
        L = 1/2 * ( 1/N sum_i -log softmax_j(logits)_ii          image -> text (rows)
                  + 1/N sum_j -log softmax_i(logits)_jj )        text -> image (columns)
    """
    scale = logit_scale.exp() if torch.is_tensor(logit_scale) else float(np.exp(logit_scale))
    logits = scale * img @ txt.t()                                   # (N, N)
    target = torch.arange(len(img), device=img.device)               # (N,)
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
    """A loaded model with its preprocess and tokenizer; encodes to unit vectors (numpy float32)."""

    def __init__(self, model, preprocess, tokenizer, model_id: str, device: str | torch.device = "cpu"):
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.model_id, self.device = model_id, torch.device(device)
        self.lock = threading.Lock()

    @property
    def temperature(self) -> float:
        """The learned temperature 1 / exp(logit_scale)."""
        return float(1.0 / self.model.logit_scale.exp().item())

    @torch.no_grad()
    def encode_texts(self, texts: list[str], batch: int = 256) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch):
            tok = self.tokenizer(list(texts[i:i + batch])).to(self.device)     # (B, context)
            out.append(F.normalize(self.model.encode_text(tok).float(), dim=-1).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    @torch.no_grad()
    def encode_pils(self, images: list, batch: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(images), batch):
            x = torch.stack([self.preprocess(im.convert("RGB")) for im in images[i:i + batch]]).to(self.device)
            out.append(F.normalize(self.model.encode_image(x).float(), dim=-1).cpu())  # (B, D)
        return torch.cat(out).numpy() if out else np.zeros((0, self.dim), np.float32)

    @property
    def dim(self) -> int:
        return int(self.model.text_projection.shape[1]) if hasattr(self.model, "text_projection") else 512

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
