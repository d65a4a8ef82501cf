"""Which device the models run on, and the ZeroGPU shim.

On a Hugging Face ZeroGPU Space a GPU is attached only inside functions decorated with
`spaces.GPU`, and every such call spends the visitor's quota (per IP: a class behind one school
address shares one). So there the bundled models, small enough for a CPU, always run on the CPU
(`for_bundled()`), and only hub models run inside `gpu(...)`. On a dedicated GPU everything may use
cuda. Elsewhere the `spaces` package is absent and `gpu` returns the function unchanged.
"""
from __future__ import annotations

import contextvars
import functools
import importlib.util
import inspect
import logging
import os

import torch

_chosen: str | None = None
_per_request: int | None = None         # torch threads for one request's model work (None: torch's own)


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


def configure(name: str, threads: int | None = None) -> torch.device:
    """Called once by app.py with the user's settings (device; torch threads per request, 0: every core)."""
    global _chosen, _per_request
    _chosen = str(resolve(name))
    if threads is not None:
        _per_request = threads if threads > 0 else cores()
        torch.set_num_threads(_per_request)      # threads started later take this as their default too
        _fewer_malloc_arenas()
    return torch.device(_chosen)


MALLOC_ARENAS = 4


def _fewer_malloc_arenas() -> None:
    """glibc gives threads that allocate at once their own heap (an arena; up to 8 per core), and freed
    memory stays in the arena that had it. A server that runs each request's model work in its own
    worker thread then holds many half-empty arenas: a class in stress mode pushed it past 3 GB.
    M_ARENA_MAX caps them (the same as MALLOC_ARENA_MAX, set from inside). Not glibc: nothing to do."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt(-8, MALLOC_ARENAS)          # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def cores() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def request_threads(n: int | None = None) -> None:
    """Set the torch threads of the calling thread: `n`, or the configured count per request.

    torch's CPU thread count is per calling thread (OpenMP's and MKL's settings are thread-local), so
    a request handler, a batcher's worker and the LLM's decode loop each say what they use, at the
    start of each piece of work: a pooled worker thread never keeps another job's count. Cheap (a
    microsecond). Outside the app (no `configure`), torch's own count is left alone."""
    want = n if n is not None else _per_request
    if want and torch.get_num_threads() != want:
        torch.set_num_threads(want)


def get() -> torch.device:
    """The device every lab should put its models on."""
    return torch.device(_chosen) if _chosen else resolve("auto")


def describe() -> str:
    d = get()
    if d.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(d)})"
    if d.type != "cpu":
        return d.type
    n = _per_request or torch.get_num_threads()
    return f"cpu ({n} thread{'s' if n > 1 else ''} per request, {cores()} cores)"


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
# (Not the words "ZeroGPU worker error": the package gives every exception of its worker that title, a bad
# input or a bug as well as a lost GPU, and those must surface, not be answered by another model.)
GPU_FAILURES = ("exceeded your GPU quota", "GPU quota", "No GPU is currently available",
                "GPU task aborted", "OutOfMemoryError")


def gpu_failure(exc: BaseException) -> bool:
    """True when `exc` means the GPU could not be had or failed (quota spent, none free, out of memory):
    the caller then falls back to its CPU / bundled model and says so, instead of failing."""
    if isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return True
    # the package re-raises a worker's failure as gr.Error(message, title="ZeroGPU worker error"): the
    # message says which failure it was
    text = str(exc)
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


# --- hub models on ZeroGPU, the bundled model when no GPU can be had ---------------------------------

_fallen_back = contextvars.ContextVar("playground_fallen_back", default=False)


def fallen_back() -> bool:
    """True inside a call that lost its GPU (see `routed`): the service should pick its bundled model on
    the CPU, whatever model the call asked for."""
    return _fallen_back.get()


def _fallback_context() -> contextvars.Context:
    ctx = contextvars.copy_context()
    ctx.run(_fallen_back.set, True)
    return ctx


def notify(message: str) -> None:
    """A visible notice for the user; core.ui replaces this with a Gradio toast."""
    logging.getLogger("playground").warning(message)


def routed(use_gpu, *, duration=60):
    """Method decorator for ZeroGPU. A call for which `use_gpu(self, *args, **kwargs)` is true (a hub model
    on the GPU) runs inside spaces.GPU with `duration`; every other call (the bundled models) runs here on
    the CPU and spends no quota. When the GPU cannot be had (`gpu_failure`: quota spent, none free), the
    call runs again here with `fallen_back()` true, so the service picks its bundled model, and the user
    is told why (`notify`). A generator method stays a generator. Off ZeroGPU: the method, unchanged."""

    def wrap(f):
        made = {"gpu": gpu(f, duration=duration) if has_spaces() else None}    # on a Space: at import

        def on_gpu(*args, **kwargs):
            if made["gpu"] is None:                  # the spaces package appeared later (the tests' stand-in)
                made["gpu"] = gpu(f, duration=duration)
            return made["gpu"](*args, **kwargs)

        def wanted(self, args, kwargs) -> bool:
            return zerogpu() and not fallen_back() and bool(use_gpu(self, *args, **kwargs))

        def say(e: BaseException) -> None:
            first = (str(e).splitlines() or [type(e).__name__])[0][:200]
            notify(f"No GPU for this call ({first}): the bundled model answered instead, on the CPU.")

        if inspect.isgeneratorfunction(f):
            @functools.wraps(f)
            def gen(self, *args, **kwargs):
                if not wanted(self, args, kwargs):
                    yield from f(self, *args, **kwargs)
                    return
                try:
                    yield from on_gpu(self, *args, **kwargs)
                    return
                except Exception as e:  # noqa: BLE001 - only a GPU failure falls back; anything else is a bug
                    if not gpu_failure(e):
                        raise
                    say(e)
                ctx = _fallback_context()                # each step runs in it: a generator may be
                it = ctx.run(f, self, *args, **kwargs)    # resumed from another thread or context
                try:
                    while True:
                        try:
                            value = ctx.run(next, it)
                        except StopIteration:
                            return
                        yield value
                finally:                                  # Stop: the method's own clean-up, in it too
                    ctx.run(it.close)
            return gen

        @functools.wraps(f)
        def call(self, *args, **kwargs):
            if not wanted(self, args, kwargs):
                return f(self, *args, **kwargs)
            try:
                return on_gpu(self, *args, **kwargs)
            except Exception as e:  # noqa: BLE001 - as above
                if not gpu_failure(e):
                    raise
                say(e)
            return _fallback_context().run(f, self, *args, **kwargs)
        return call

    return wrap
