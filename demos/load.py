"""Load test: a simulated class using every tab at once, on loopback only. Prints markdown tables.

    python -m demos.load                                        # class mode: 30 students, think 2-5 s, 120 s
    python -m demos.load --mode stress --students 30 --seconds 90   # no think time: as fast as they can

Starts `python app.py --offline` on 127.0.0.1. First, one student alone calls every endpoint a few
times in turn (`--alone`, default 5): the "alone" latencies. Then every student opens the page at
once (gradio_client reads the app's config and API listing; timed and reported apart), and the class:
- class mode: each student (a `Page`: gradio_client for the call, then the answer's pictures fetched
  as a browser does) picks an action from the classroom mix (each lab
  service's `load_calls()`, weighted by their third element: a slider is dragged far more often than
  a whole chain is sampled), waits for its answer, thinks 2-5 s (`--think`), and picks again;
- stress mode: each student loops over every call in a shuffled order with no pause.
Seeds (`--seeds`): every integer parameter the app's API listing names a seed gets a fresh random
seed on each call by default (`own`: each student explores for themselves), also in the alone
calls, so that a service that keeps recent results is measured on new work. `--seeds shared` sends
the calls' own seeds under load (a class that opened the same lesson link and pressed the same
button): the alone figures still use fresh seeds.
Per endpoint: calls, errors, p50 alone, p50 and p95 under load, and p95 under load / p50 alone; the
server's peak resident memory and the CPU time it used during the class (with its children): the
cost of a class's requests, which the latencies follow once the cores are busy. Bounded: at most 64
students, 600 s and 20,000 requests.
"""
from __future__ import annotations

import argparse
import os
import random
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx

from demos.common import cpu_seconds, lab_calls, rss_mb, serve, share_tls_context, summary, table

class Page:
    """One student's page: the call through gradio_client, then the answer's files (pictures, a GIF)
    fetched as a browser fetches a page's images: over kept-alive connections, up to 6 at a time
    (HTTP/1.1's usual limit per host). gradio_client's own download opens a new connection per file,
    one file after another: 13 round trips for a search that shows 12 pictures."""

    FETCHES = 6

    def __init__(self, url: str):
        from gradio_client import Client

        self.client = Client(url, verbose=False, download_files=False)
        self.http = httpx.Client(limits=httpx.Limits(max_connections=self.FETCHES), timeout=120)
        self.fetch = ThreadPoolExecutor(self.FETCHES, thread_name_prefix="fetch")
        self.root = url

    def files(self, value) -> list[str]:
        """The URLs of every file in an answer (Gradio's FileData: a dict with a path)."""
        if isinstance(value, dict):
            if isinstance(value.get("path"), str):
                return [value.get("url") or f"{self.root}gradio_api/file={value['path']}"]
            return [u for v in value.values() for u in self.files(v)]
        if isinstance(value, (list, tuple)):
            return [u for v in value for u in self.files(v)]
        return []

    def get(self, url: str) -> int:
        try:
            r = self.http.get(url)
        except (httpx.ReadError, httpx.RemoteProtocolError):   # the server closed an idle kept-alive
            r = self.http.get(url)                             # connection as we reused it: a browser
        r.raise_for_status()                                   # sends such a GET again, once
        return len(r.content)

    def timed(self, api: str, args) -> float:
        t0 = time.perf_counter()
        out = self.client.predict(*args, api_name=api)
        list(self.fetch.map(self.get, self.files(out)))
        return (time.perf_counter() - t0) * 1000


def seed_slots(client, calls) -> dict[str, list[int]]:
    """{api: positions of its integer arguments that the API listing labels a seed}."""
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    slots = {}
    for _, api, args, _ in calls:
        params = named.get(api, {}).get("parameters", [])
        slots[api] = [i for i, (p, v) in enumerate(zip(params, args)) if "seed" in
                      f"{p.get('parameter_name', '')} {p.get('label', '')}".lower()
                      and isinstance(v, int) and not isinstance(v, bool)]
    return slots


def reseeded(args, slots: list[int], rng: random.Random) -> tuple:
    return tuple(rng.randrange(10_000) if i in slots else v for i, v in enumerate(args))


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=("class", "stress"), default="class")
    p.add_argument("--students", type=int, default=30)
    p.add_argument("--seconds", type=float, default=None, help="class: 120, stress: 90")
    p.add_argument("--think", type=float, nargs=2, default=(2.0, 5.0), metavar=("MIN", "MAX"))
    p.add_argument("--alone", type=int, default=5, help="calls per endpoint by one student alone, first")
    p.add_argument("--max-requests", type=int, default=5000)
    p.add_argument("--tabs", default=None, help="comma-separated labs to load (default: all)")
    p.add_argument("--seeds", choices=("own", "shared"), default="own",
                   help="under load: a fresh seed per call (own) or the calls' own seeds (shared)")
    a = p.parse_args(argv)
    students = max(1, min(a.students, 64))
    seconds = max(1.0, min(a.seconds or (120.0 if a.mode == "class" else 90.0), 600.0))
    budget = max(1, min(a.max_requests, 20_000))
    share_tls_context()
    calls = lab_calls(a.tabs.split(",") if a.tabs else None)          # (lab, api, args, weight)
    alone: dict[str, list[float]] = defaultdict(list)
    lat: dict[str, list[float]] = defaultdict(list)
    errs: dict[str, int] = defaultdict(int)
    first_error: dict[str, str] = {}
    lock = threading.Lock()
    sent = [0]
    peak = [0.0]

    with serve("--offline") as (url, proc, _):
        solo = Page(url)
        slots, fresh = seed_slots(solo.client, calls), random.Random(1234)
        for _, api, args, _ in calls:                                  # warm every model first
            try:
                solo.timed(api, args)
            except Exception as e:  # noqa: BLE001
                first_error.setdefault(api, f"alone: {type(e).__name__}: {e}"[:300])
        for _ in range(max(0, a.alone)):
            for _, api, args, _ in calls:
                try:
                    alone[api].append(solo.timed(api, reseeded(args, slots[api], fresh)))
                except Exception:  # noqa: BLE001 - counted in the class run below, not here
                    pass
        def record(k: int, api: str, args, rng: random.Random) -> None:
            if a.seeds == "own":
                args = reseeded(args, slots[api], rng)
            try:
                ms = pages[k].timed(api, args)
                with lock:
                    lat[api].append(ms)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errs[api] += 1
                    first_error.setdefault(api, f"{type(e).__name__}: {e}"[:300])

        def take_turn() -> bool:
            with lock:
                if sent[0] >= budget or time.perf_counter() >= stop:
                    return False
                sent[0] += 1
            return True

        # every student opens the page at once (the app's config and API listing), before the class
        opened: list[float] = []

        def open_page(_: int) -> Page:
            t0 = time.perf_counter()
            page = Page(url)
            with lock:
                opened.append((time.perf_counter() - t0) * 1000)
            return page

        with ThreadPoolExecutor(students) as pool:
            pages = list(pool.map(open_page, range(students)))
        stop = time.perf_counter() + seconds                            # the class starts now

        def student(k: int) -> None:
            rng = random.Random(k)
            if a.mode == "class":
                time.sleep(rng.uniform(0, a.think[1]))                  # students do not start in step
                weights = [w for *_, w in calls]
                while take_turn():
                    _, api, args, _ = rng.choices(calls, weights)[0]
                    record(k, api, args, rng)
                    time.sleep(rng.uniform(*a.think))
            else:
                while True:
                    order = calls[:]
                    rng.shuffle(order)
                    for _, api, args, _ in order:
                        if not take_turn():
                            return
                        record(k, api, args, rng)

        def watch() -> None:
            while time.perf_counter() < stop + 5 and proc.poll() is None:
                peak[0] = max(peak[0], rss_mb(proc.pid))
                time.sleep(0.5)

        threads = [threading.Thread(target=student, args=(k,), daemon=True) for k in range(students)]
        w = threading.Thread(target=watch, daemon=True)
        t_start, cpu_start = time.perf_counter(), cpu_seconds(proc.pid)
        w.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 180)
        wall = time.perf_counter() - t_start
        cpu = cpu_seconds(proc.pid) - cpu_start if proc.poll() is None else float("nan")

    rows, worst = [], 0.0
    for _, api, _, _ in calls:
        s, solo_s = summary(lat[api]), summary(alone[api])
        ratio = s["p95"] / solo_s["p50"] if solo_s["n"] and s["n"] else float("nan")
        worst = max(worst, ratio) if ratio == ratio else worst
        rows.append([api, s["n"] + errs[api], errs[api], solo_s["p50"], s["p50"], s["p95"], ratio])
    everything = [v for vs in lat.values() for v in vs]
    s = summary(everything)
    total_err = sum(errs.values())
    rows.append(["all", s["n"] + total_err, total_err, float("nan"), s["p50"], s["p95"], float("nan")])
    mode = (f"class mode, think {a.think[0]:g}-{a.think[1]:g} s" if a.mode == "class" else "stress mode, no think time")
    mode += f", {a.seeds} seeds"
    print(f"# Load: {students} students, {mode}, {wall:.0f} s, {s['n'] + total_err} requests "
          f"({(s['n'] + total_err) / wall:.1f}/s), peak server memory {peak[0]:.0f} MB, server CPU "
          f"{cpu:.0f} s ({cpu / wall / os.cpu_count() * 100:.0f} % of {os.cpu_count()} cores; "
          f"{cpu * 1000 / max(1, s['n'] + total_err):.0f} ms a request)\n")
    print(table(["endpoint", "calls", "errors", "p50 alone ms", "p50 load ms", "p95 load ms", "p95 / alone"], rows))
    o = summary(opened)
    print(f"\n{students} students opening the page at once, before the class: p50 {o['p50']:.0f} ms, "
          f"p95 {o['p95']:.0f} ms, slowest {max(opened, default=float('nan')):.0f} ms (the app's config and API "
          "listing through gradio_client).")
    print(f"\nworst p95 / alone: {worst:.1f}")
    for api, msg in first_error.items():
        print(f"\nfirst error of {api}: {msg}")
    return {"requests": s["n"] + total_err, "errors": total_err, "p50": s["p50"], "p95": s["p95"],
            "peak_mb": peak[0], "worst_ratio": worst, "server_cpu_s": cpu, "open_p95": o["p95"]}


if __name__ == "__main__":
    main()
