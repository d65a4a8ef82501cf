"""Load test: N simulated students using every tab at once, on loopback only.

    python -m demos.load                       # 8 students for 60 s
    python -m demos.load --students 20 --seconds 120 --max-requests 2000

Starts `python app.py --offline` on 127.0.0.1, then each student (a gradio_client thread) loops
over every built lab's API calls (and the echo) in a shuffled order until the time or request
budget runs out. Reports requests, errors, p50/p95 latency per endpoint and overall, and the
server's peak resident memory. Bounded: at most 64 students, 600 s and 20,000 requests.
"""
from __future__ import annotations

import argparse
import random
import threading
import time
from collections import defaultdict

from demos.common import lab_calls, rss_mb, serve, summary, table


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=8)
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--max-requests", type=int, default=5000)
    a = p.parse_args(argv)
    students = max(1, min(a.students, 64))
    seconds = max(1.0, min(a.seconds, 600.0))
    budget = max(1, min(a.max_requests, 20_000))
    from gradio_client import Client

    calls = lab_calls()
    lat: dict[str, list[float]] = defaultdict(list)
    errs: dict[str, int] = defaultdict(int)
    first_error: dict[str, str] = {}
    lock = threading.Lock()
    sent = [0]
    peak = [0.0]

    with serve("--offline") as (url, proc, _):
        stop = time.perf_counter() + seconds

        def student(k: int) -> None:
            rng = random.Random(k)
            client = Client(url, verbose=False)
            while time.perf_counter() < stop:
                order = calls[:]
                rng.shuffle(order)
                for _, api, args in order:
                    with lock:
                        if sent[0] >= budget or time.perf_counter() >= stop:
                            return
                        sent[0] += 1
                    t0 = time.perf_counter()
                    try:
                        client.predict(*args, api_name=api)
                        with lock:
                            lat[api].append((time.perf_counter() - t0) * 1000)
                    except Exception as e:  # noqa: BLE001 - counted and reported
                        with lock:
                            errs[api] += 1
                            first_error.setdefault(api, f"{type(e).__name__}: {e}"[:300])

        def watch() -> None:
            while time.perf_counter() < stop + 5 and proc.poll() is None:
                peak[0] = max(peak[0], rss_mb(proc.pid))
                time.sleep(0.5)

        threads = [threading.Thread(target=student, args=(k,), daemon=True) for k in range(students)]
        w = threading.Thread(target=watch, daemon=True)
        t_start = time.perf_counter()
        w.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 120)
        wall = time.perf_counter() - t_start

    rows = []
    for _, api, _ in calls:
        s = summary(lat[api])
        rows.append([api, s["n"], errs[api], s["p50"], s["p95"]])
    everything = [v for vs in lat.values() for v in vs]
    s = summary(everything)
    total_err = sum(errs.values())
    rows.append(["all", s["n"], total_err, s["p50"], s["p95"]])
    print(f"# Load: {students} students, {wall:.0f} s, {s['n'] + total_err} requests "
          f"({(s['n'] + total_err) / wall:.1f}/s), peak server memory {peak[0]:.0f} MB\n")
    print(table(["endpoint", "ok", "errors", "p50 ms", "p95 ms"], rows))
    for api, msg in first_error.items():
        print(f"\nfirst error of {api}: {msg}")
    return {"requests": s["n"] + total_err, "errors": total_err, "p50": s["p50"], "p95": s["p95"], "peak_mb": peak[0]}


if __name__ == "__main__":
    main()
