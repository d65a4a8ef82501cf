"""Helpers shared by the benchmark and load scripts: start the app as a user would, percentiles,
markdown tables, and each lab's API calls."""
from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120.0) -> float:
    """Poll until `url` answers 200; returns the seconds waited."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


@contextmanager
def serve(*args: str, env: dict | None = None):
    """`python app.py --port P ARGS` in a subprocess on loopback. Yields (url, process, seconds to first page)."""
    port = free_port()
    e = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1", **(env or {}))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port), *args],
                            cwd=ROOT, env=e, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url)
        yield url, proc, time.perf_counter() - t0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def share_tls_context() -> None:
    """Build httpx's default TLS context once per process instead of once per request.

    gradio_client opens a fresh httpx client for every call and every result file it fetches, and each
    one loads the CA bundle: about 25 ms of CPU, which was 70 % of the load script's CPU on loopback
    (py-spy), taken from the two cores the server it measures runs on. A browser builds no such thing
    per request. One context shared by all clients is safe: `ssl.SSLContext` is thread-safe once built.
    """
    import httpx._transports.default as transport

    if getattr(transport.create_ssl_context, "shared", False):
        return
    build, made = transport.create_ssl_context, {}

    def shared(verify=True, cert=None, trust_env=True):
        if verify is not True or cert is not None:
            return build(verify=verify, cert=cert, trust_env=trust_env)
        if trust_env not in made:
            made[trust_env] = build(verify=verify, cert=cert, trust_env=trust_env)
        return made[trust_env]

    shared.shared = True
    transport.create_ssl_context = shared


def rss_mb(pid: int) -> float:
    import psutil

    p = psutil.Process(pid)
    return sum(q.memory_info().rss for q in [p, *p.children(recursive=True)]) / 2**20


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its children."""
    import psutil

    p = psutil.Process(pid)
    return sum(sum(q.cpu_times()[:2]) for q in [p, *p.children(recursive=True)])


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": pct(values, 0.5), "p95": pct(values, 0.95),
            "mean": statistics.fmean(values) if values else float("nan")}


def table(headers: list[str], rows: list[list]) -> str:
    def fmt(x):
        return f"{x:.3g}" if isinstance(x, float) else str(x)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def lab_calls(tabs: list[str] | None = None) -> list[tuple[str, str, tuple, float]]:
    """(lab key, api_name, args, weight) for every lab service's `load_calls()` (entries
    `(api_name, args)` or `(api_name, args, weight)`: how often a class does it; default 1), plus the
    echo floor."""
    from playground import labs
    from playground.core import settings

    cfg = settings.from_env()
    calls = [("home", "/echo", ("ping",), 1.0)]
    for lab in labs.LABS:
        if lab.key == "home" or (tabs and lab.key not in tabs):
            continue
        svc = labs.service(lab, cfg)
        for api_name, args, *weight in (svc.load_calls() if hasattr(svc, "load_calls") else []):
            api = api_name if api_name.startswith("/") else "/" + api_name
            calls.append((lab.key, api, tuple(args), float(weight[0]) if weight else 1.0))
    return calls
