"""Compiled forms of a model's hot path for serving, each with the plain Python one as its fallback.

A small model on a CPU spends much of its time in the Python between its kernels (a U-Net step is
about 300 small operations), and that Python holds the interpreter lock that every other request's
Python waits for. TorchScript runs the same operations, in the same order (the same numbers, bit for
bit, which the labs' tests check), from C++ and without the lock. It is marked deprecated in favour
of torch.compile, which needs a C++ compiler at run time and minutes of compiling: a teacher's laptop
may have neither. Where compiling fails, the Python function or module is used as it is.
"""
from __future__ import annotations

import warnings

import torch


def script(fn):
    """torch.jit.script(fn) (a function written in TorchScript's subset of Python), or fn."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.script(fn)
    except Exception:  # noqa: BLE001 - any failure to compile leaves the Python function, which is correct
        return fn


def frozen(module: torch.nn.Module, *example: torch.Tensor):
    """The module's forward traced on `example` inputs and frozen (weights folded in as constants), or
    the module itself. Only for a forward whose operations do not depend on its inputs' values (its
    shapes may change: a batch of any size)."""
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            return torch.jit.freeze(torch.jit.trace(module.eval(), example, check_trace=False))
    except Exception:  # noqa: BLE001
        return module
