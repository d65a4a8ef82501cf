"""The app's benchmark: prints markdown tables.

    python -m demos.bench              # start-up, imports, a session's start, memory, per-lab latencies vs echo
    python -m demos.bench --repeat 50  # more calls per endpoint
    python -m demos.bench --labs       # also run each lab's own benchmark (demos/bench_<lab>.py)

Every latency is shown with its ratio to Gradio's own echo round trip measured in the same run,
against the same server: the floor that no endpoint can beat.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time

from demos.common import ROOT, lab_calls, rss_mb, serve, share_tls_context, summary, table

IMPORT_PROBE = """
import time, os
os.environ['GRADIO_ANALYTICS_ENABLED'] = 'False'
t = time.perf_counter(); import torch; a = time.perf_counter() - t
t = time.perf_counter(); import gradio; b = time.perf_counter() - t
t = time.perf_counter(); import app; from playground.core import hub; hub.decide('yes'); demo = app.build_app(); c = time.perf_counter() - t
import statistics
from gradio.state_holder import SessionState
def median_s(fn):
    times = []
    for _ in range(7):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return statistics.median(times)
def eager():                       # what Gradio's SessionState did at a session's start (the baseline)
    bc = SessionState(demo).blocks_config
    return {k: bc.config_for_block(k, [], v) for k, v in bc.blocks.items() if k in demo.blocks}
d, e = median_s(eager), median_s(lambda: SessionState(demo))
print(a, b, c, d, e)
"""


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=20, help="calls per endpoint (after 2 warm-up calls)")
    p.add_argument("--labs", action="store_true", help="also run demos/bench_<lab>.py for each lab that has one")
    a = p.parse_args(argv)
    from gradio_client import Client

    share_tls_context()     # the client's own per-request cost is not the server's
    print(f"# GenAI Playground benchmark ({os.cpu_count()} CPUs, Python {sys.version.split()[0]})\n")
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    t_torch, t_gradio, t_app, t_eager, t_session = map(float, out[-5:])

    rows = [["import torch", f"{t_torch:.2f} s"], ["import gradio", f"{t_gradio:.2f} s"],
            ["import app + build every tab", f"{t_app:.2f} s"],
            ["a new session: Gradio's copy of every component's config (baseline)", f"{t_eager * 1000:.1f} ms"],
            ["a new session as served (configs built when first read)",
             f"{t_session * 1000:.2f} ms ({t_eager / t_session:.0f}x less)"]]
    with serve() as (_, _, t_auto):  # offline detected automatically (as on a machine with no network)
        pass
    rows.append(["start-up to first page (auto offline detection)", f"{t_auto:.2f} s"])
    with serve("--offline") as (url, proc, t_start):
        rows.append(["start-up to first page (--offline)", f"{t_start:.2f} s"])
        rows.append(["resident memory after start-up", f"{rss_mb(proc.pid):.0f} MB"])
        client = Client(url, verbose=False)
        lat_rows, floor = [], None
        for lab, api, args, _ in lab_calls():
            times, errors = [], 0
            for i in range(a.repeat + 2):
                t0 = time.perf_counter()
                try:
                    client.predict(*args, api_name=api)
                except Exception:  # noqa: BLE001 - counted, reported
                    errors += 1
                    continue
                if i >= 2:
                    times.append((time.perf_counter() - t0) * 1000)
            s = summary(times)
            if api == "/echo":
                floor = s["p50"]
            lat_rows.append([lab, api, s["n"], s["p50"], s["p95"], s["p50"] / floor if floor else float("nan"), errors])
        rows.append(["resident memory after every lab was used", f"{rss_mb(proc.pid):.0f} MB"])
    print("## Start-up and memory\n")
    print(table(["what", "measured"], rows))
    print("\n## API latency through gradio_client (ms; ratio = p50 / echo p50, same server, same run)\n")
    print(table(["lab", "endpoint", "n", "p50 ms", "p95 ms", "x echo", "errors"], lat_rows))
    if a.labs:
        for lab in ("vae", "gan", "diffusion", "prompt", "clip"):
            name = f"demos.bench_{lab}"
            if importlib.util.find_spec(name):
                print(f"\n## {lab} (python -m {name})\n", flush=True)
                subprocess.run([sys.executable, "-m", name], cwd=ROOT, env=env, check=False)


if __name__ == "__main__":
    main()
