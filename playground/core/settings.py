"""Settings: environment variables, overridden by the command line (`python app.py --help`).

| variable              | flag         | default                                                      |
|-----------------------|--------------|--------------------------------------------------------------|
| PLAYGROUND_HOST       | --host       | 127.0.0.1 locally, 0.0.0.0 on a Space                        |
| PLAYGROUND_PORT       | --port       | 7860 (GRADIO_SERVER_PORT is honoured)                        |
| PLAYGROUND_DEVICE     | --device     | auto: cuda, then mps, then cpu                               |
| PLAYGROUND_OFFLINE    | --offline    | auto: offline when the hub is unreachable                    |
| PLAYGROUND_TABS       | --tabs       | all: home,vae,gan,diffusion,prompt,transformer,clip,fewshot  |
| PLAYGROUND_CACHE      | --cache-dir  | ~/.cache/genai-playground                                    |
| PLAYGROUND_THREADS    | --threads    | 1: torch threads per request (0: every core)                 |

Threads: each request's model work runs on one core by default, so a class's requests run side by side
on separate cores instead of every request splitting every core (oversubscribed OpenMP teams, spinning
on each other). Measured with `python -m demos.load` (README: "Benchmarks and load"). Writing an
LLM answer (one long job, its own queue group) still uses every core.
"""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ALL_TABS = ("home", "vae", "gan", "diffusion", "prompt", "transformer", "clip", "fewshot")


def on_space() -> bool:
    """True on a Hugging Face Space (the platform sets SPACE_ID)."""
    return bool(os.environ.get("SPACE_ID"))


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"            # 0.0.0.0 on a Space, so the platform's proxy reaches us
    port: int = 7860
    device: str = "auto"               # auto | cpu | cuda | cuda:N | mps
    offline: str = "auto"              # auto | yes | no  (yes: never touch the hub)
    tabs: tuple[str, ...] = ALL_TABS   # which tabs to build, in this order
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "genai-playground")
    threads: int = 1                   # torch threads per request; 0: every core


def _parse_tabs(text: str) -> tuple[str, ...]:
    names = tuple(t.strip().lower() for t in text.split(",") if t.strip())
    bad = [t for t in names if t not in ALL_TABS]
    if bad:
        raise ValueError(f"unknown tab(s) {bad}; choose from {', '.join(ALL_TABS)}")
    return names or ALL_TABS


def _parse_threads(text: str) -> int:
    try:
        n = int(str(text).strip())
    except ValueError:
        raise ValueError(f"threads must be a whole number (0: every core), not {text!r}") from None
    return max(0, min(n, 256))


def _parse_offline(text: str) -> str:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "on"):
        return "yes"
    if t in ("0", "false", "no", "off"):
        return "no"
    if t in ("", "auto"):
        return "auto"
    raise ValueError(f"offline must be auto, yes or no, not {text!r}")


def from_env(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    s = Settings(host="0.0.0.0" if env.get("SPACE_ID") else "127.0.0.1")
    if "PLAYGROUND_HOST" in env:
        s = replace(s, host=env["PLAYGROUND_HOST"])
    port = env.get("PLAYGROUND_PORT") or env.get("GRADIO_SERVER_PORT")
    if port:
        s = replace(s, port=int(port))
    if "PLAYGROUND_DEVICE" in env:
        s = replace(s, device=env["PLAYGROUND_DEVICE"])
    if "PLAYGROUND_OFFLINE" in env:
        s = replace(s, offline=_parse_offline(env["PLAYGROUND_OFFLINE"]))
    if env.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on"):
        s = replace(s, offline="yes")
    if "PLAYGROUND_TABS" in env:
        s = replace(s, tabs=_parse_tabs(env["PLAYGROUND_TABS"]))
    if "PLAYGROUND_CACHE" in env:
        s = replace(s, cache_dir=Path(env["PLAYGROUND_CACHE"]))
    if env.get("PLAYGROUND_THREADS", "").strip():
        s = replace(s, threads=_parse_threads(env["PLAYGROUND_THREADS"]))
    return s


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python app.py",
        description="GenAI Playground: VAE, GAN, diffusion, prompting and CLIP, live in the browser.",
        epilog="Each flag can also be set by the environment variable in brackets.",
    )
    p.add_argument("--host", help="address to bind [PLAYGROUND_HOST] (127.0.0.1; 0.0.0.0 on a Space)")
    p.add_argument("--port", type=int, help="port to serve on [PLAYGROUND_PORT] (7860)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps [PLAYGROUND_DEVICE] (auto)")
    p.add_argument("--offline", nargs="?", const="yes", metavar="auto|yes|no",
                   help="never contact the model hub [PLAYGROUND_OFFLINE] (auto: offline when unreachable)")
    p.add_argument("--tabs", help=f"comma-separated tabs to show [PLAYGROUND_TABS] ({','.join(ALL_TABS)})")
    p.add_argument("--cache-dir", help="where embeddings and converted models are cached [PLAYGROUND_CACHE]")
    p.add_argument("--threads", help="torch threads per request, 0 for every core [PLAYGROUND_THREADS] (1)")
    return p


def from_args(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Environment first, then the command line on top."""
    parser = build_parser()
    a = parser.parse_args(argv)
    s = from_env(env)
    try:
        if a.host:
            s = replace(s, host=a.host)
        if a.port is not None:
            s = replace(s, port=a.port)
        if a.device:
            s = replace(s, device=a.device)
        if a.offline is not None:
            s = replace(s, offline=_parse_offline(a.offline))
        if a.tabs:
            s = replace(s, tabs=_parse_tabs(a.tabs))
        if a.cache_dir:
            s = replace(s, cache_dir=Path(a.cache_dir))
        if a.threads is not None:
            s = replace(s, threads=_parse_threads(a.threads))
    except ValueError as e:
        parser.error(str(e))
    return s
