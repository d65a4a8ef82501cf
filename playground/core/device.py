"""Which device the models run on, and the ZeroGPU shim.

On a Hugging Face ZeroGPU Space a GPU is attached only inside functions decorated with
`spaces.GPU`, and every such call spends the visitor's quota (per IP: a class behind one school
address shares one). So there the bundled models, small enough for a CPU, always run on the CPU
(`for_bundled()`), and only hub models run inside `gpu(...)`. On a dedicated GPU everything may use
cuda. Elsewhere the `spaces` package is absent and `gpu` returns the function unchanged.
"""
from __future__ import annotations

import importlib.util
import os

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


def zerogpu() -> bool:
    """True on a ZeroGPU Space (the spaces package says so; SPACES_ZERO_GPU=1 forces it for tests)."""
    if os.environ.get("SPACES_ZERO_GPU", "").strip().lower() in ("1", "true", "yes"):
        return True
    if not has_spaces():
        return False
    try:
        import spaces.config

        return bool(spaces.config.Config.zero_gpu)
    except Exception:  # noqa: BLE001 - a spaces package without that flag: not ZeroGPU
        return False


def for_bundled() -> torch.device:
    """Where a bundled model runs: the CPU on ZeroGPU (no quota spent), else the configured device."""
    return torch.device("cpu") if zerogpu() else get()


# What the spaces package says when no GPU can be had for a call (its own wording; see spaces/zero/client.py).
GPU_FAILURES = ("exceeded your GPU quota", "GPU quota", "No GPU is currently available", "ZeroGPU",
                "GPU task aborted", "OutOfMemoryError")


def gpu_failure(exc: BaseException) -> bool:
    """True when `exc` means the GPU could not be had or failed (quota spent, none free, out of memory):
    the caller then falls back to its CPU / bundled model and says so, instead of failing."""
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    # the package re-raises a worker's failure as gr.Error(message, title="ZeroGPU worker error")
    text = f"{exc} {getattr(exc, 'title', '')}"
    return any(m in text for m in GPU_FAILURES)


def gpu(fn=None, *, duration=60):
    """Decorator for GPU work: `spaces.GPU(duration=...)` on ZeroGPU, unchanged elsewhere. `duration` is
    seconds, or a function of the call's arguments that returns them (spaces accepts both), so that each
    call asks for what its work needs. A generator function stays a generator function (Gradio streams
    only those), on ZeroGPU and off it."""

    def wrap(f):
        if has_spaces():
            import spaces  # only present on Hugging Face Spaces

            return spaces.GPU(duration=duration)(f)
        return f

    return wrap(fn) if fn is not None else wrap
