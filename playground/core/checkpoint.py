"""Checkpoint I/O: safetensors weights plus a JSON card. Nothing else is ever loaded (no pickle).

A checkpoint `NAME` is two files side by side:
    NAME.safetensors   the state dict (tensors only)
    NAME.json          the card: which model class, its config dataclass as a dict, the data,
                       training steps, seed, metrics on held-out data, and the sha256 of the weights

`load(NAME)` reads the card, checks the sha256, rebuilds the model from `card["model"]` (an
importable class under `playground.`) and `card["config"]`, and loads the weights strictly.

A model class must have a `config_class` attribute (a frozen dataclass) and take its config
as the only constructor argument.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from playground.core.errors import Unavailable

MAX_FILE_BYTES = 10 * 1024 * 1024  # every committed file stays under 10 MB (Spaces' limit without LFS)


class CheckpointError(Unavailable, RuntimeError):
    """A checkpoint is missing, damaged or refused; the message says which recipe remakes it."""


def _paths(name: str | Path) -> tuple[Path, Path]:
    p = Path(name)
    if p.suffix in (".safetensors", ".json"):
        p = p.with_suffix("")
    return p.with_suffix(".safetensors"), p.with_suffix(".json")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _class_path(model: torch.nn.Module) -> str:
    cls = type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(path: str):
    module, _, qual = path.partition(":")
    if not module.startswith("playground.") or not qual.isidentifier():
        raise CheckpointError(f"refusing to build {path!r}: only classes under playground. are allowed")
    obj = importlib.import_module(module)
    for part in qual.split("."):
        obj = getattr(obj, part)
    return obj


def save(
    name: str | Path,
    model: torch.nn.Module,
    *,
    data: str,
    steps: int,
    seed: int,
    metrics: dict[str, Any],
    extra: dict[str, Any] | None = None,
    half: bool = False,
) -> dict:
    """Write NAME.safetensors and NAME.json; returns the card. `half` stores float16 to save space."""
    weights, card_path = _paths(name)
    weights.parent.mkdir(parents=True, exist_ok=True)
    cfg = model.config
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    save_file(state, str(weights), metadata={"model": _class_path(model)})
    size = weights.stat().st_size
    if size > MAX_FILE_BYTES:
        raise CheckpointError(f"{weights} is {size / 1e6:.1f} MB; bundled weights must stay under 10 MB")
    card = {
        "model": _class_path(model),
        "config": dataclasses.asdict(cfg),
        "data": data,
        "steps": int(steps),
        "seed": int(seed),
        "metrics": metrics,
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "dtype": "float16" if half else "float32",
        "bytes": size,
        "sha256": sha256(weights),
        "created": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        **(extra or {}),
    }
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return card


def read_card(name: str | Path) -> dict:
    _, card_path = _paths(name)
    if not card_path.exists():
        raise CheckpointError(f"no card {card_path}: a checkpoint is NAME.safetensors with NAME.json beside it")
    return json.loads(card_path.read_text())


def build(card: dict) -> torch.nn.Module:
    """A fresh (untrained) model from a card: its class, and its config dataclass."""
    cls = _import_class(card["model"])
    cfg_cls = cls.config_class
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    cfg = cfg_cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in card["config"].items() if k in fields})
    return cls(cfg)


def load(name: str | Path, device: str | torch.device = "cpu", verify: bool = True) -> tuple[torch.nn.Module, dict]:
    """Rebuild the model its card describes and load its weights (safetensors only). Returns (model, card)."""
    weights, _ = _paths(name)
    card = read_card(name)
    if not weights.exists():
        raise CheckpointError(f"missing weights {weights}")
    if verify and card.get("sha256") and sha256(weights) != card["sha256"]:
        raise CheckpointError(f"{weights} does not match the sha256 in its card; re-run its recipe in demos/")
    model = build(card)
    state = load_file(str(weights))
    ref = model.state_dict()
    state = {k: v.to(ref[k].dtype) if k in ref else v for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), card
