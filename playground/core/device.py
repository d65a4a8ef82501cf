"""Which device the models run on, and the ZeroGPU shim.

On a Hugging Face ZeroGPU Space a GPU is attached only inside functions decorated with
`spaces.GPU`; elsewhere the `spaces` package is absent and `gpu` is a no-op decorator.
"""
from __future__ import annotations

import importlib.util

import torch

_chosen: str | None = None


def resolve(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; an explicit name that is not available falls back to cpu."""
    name = (name or "auto").lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        return torch.device("cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        return torch.device("cpu")
    return torch.device(name)


def configure(name: str) -> torch.device:
    """Called once by app.py with the user's setting."""
    global _chosen
    _chosen = str(resolve(name))
    return torch.device(_chosen)


def get() -> torch.device:
    """The device every lab should put its models on."""
    return torch.device(_chosen) if _chosen else resolve("auto")


def describe() -> str:
    d = get()
    if d.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(d)})"
    return d.type + (f" ({torch.get_num_threads()} threads)" if d.type == "cpu" else "")


def has_spaces() -> bool:
    return importlib.util.find_spec("spaces") is not None


def gpu(fn=None, *, duration: int = 60):
    """Decorator for GPU work: `spaces.GPU(duration=...)` on ZeroGPU, unchanged elsewhere. A generator
    function stays a generator function (Gradio streams only those), on ZeroGPU and off it."""

    def wrap(f):
        if has_spaces():
            import spaces  # only present on Hugging Face Spaces

            return spaces.GPU(duration=duration)(f)
        return f

    return wrap(fn) if fn is not None else wrap
