"""A stand-in for Hugging Face's `spaces` package (ZeroGPU), for tests: put `tests/stand_in` on
sys.path before importing the code under test. `GPU(duration=...)` records each call and its
duration; set `QUOTA["left"]` to 0 to make the next calls fail as a spent quota does, with the
package's own message. Generator functions stay generator functions, as with the real package."""
from __future__ import annotations

import functools
import inspect

QUOTA = {"left": 10_000.0}      # seconds of GPU time this visitor has left
CALLS: list[dict] = []          # {"fn": name, "duration": seconds asked for}


from spaces import config  # noqa: E402,F401  (spaces.config.Config.zero_gpu, as in the real package)


def _check(name: str, duration: float) -> None:
    CALLS.append({"fn": name, "duration": duration})
    if QUOTA["left"] < duration:
        raise RuntimeError(f"You have exceeded your GPU quota ({duration:.0f}s requested vs. "
                           f"{QUOTA['left']:.0f}s left). Try again later.")
    QUOTA["left"] -= duration


def GPU(fn=None, *, duration: float = 60):  # noqa: N802 - the real package's name
    def wrap(f):
        if inspect.isgeneratorfunction(f):
            @functools.wraps(f)
            def gen(*args, **kwargs):
                _check(f.__name__, duration)
                yield from f(*args, **kwargs)
            return gen

        @functools.wraps(f)
        def call(*args, **kwargs):
            _check(f.__name__, duration)
            return f(*args, **kwargs)
        return call

    return wrap(fn) if fn is not None else wrap
