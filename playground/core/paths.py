"""Where the project's own files are: the repository root and the bundled assets.

    assets("vae", "fashion_b1")   -> <repo>/assets/vae/fashion_b1   (a checkpoint name, no suffix)

Every lab and recipe asks here, so that moving the assets folder is a one-line change. Per-user
and per-machine files (caches, converted models) go under `Settings.cache_dir`, never here.
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"


def assets(*parts: str) -> Path:
    """A path under the bundled assets folder."""
    return ASSETS.joinpath(*parts)
