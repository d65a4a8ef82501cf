"""Short jobs first: a request that has run longer than `LONG` seconds yields the CPU to the others.

    with fair.job():            # around a request's work, in the thread that does it
        value = model(...)

A class sends mostly short calls (a slider, a seed) and now and then a long one (a whole diffusion
chain, a GIF). On two cores they share the CPU evenly, so a slider's call waits behind the chains
that happen to be running. Here every job starts at the thread's normal priority; a watchdog lowers
the priority of a job's thread (Linux nice value +NICE) once that job has run LONG seconds, and the job
gets its priority back when it ends. (LONG was set from `python -m demos.load` runs: with 0.25 s most
endpoints' p95 under load stayed 5-15 times their time alone, with 0.15 s 2-5 times. +10 and +19 gave
the same figures; +10 leaves a long job a tenth of a core, not a seventieth, when it holds the GIL
that the others wait for.) The operating system then runs the short jobs first and gives
the long ones what the short ones leave: an approximation of shortest-job-first that needs no
estimate of a job's length (a multilevel feedback queue with two levels). A long job is slowed only
while short ones are waiting; alone it runs at full speed.

With one torch thread per request (settings.threads) the job's model work runs in the thread that
is lowered. Linux sets a nice value per thread. Raising it back needs root or a nice limit of at
least 20 (`ulimit -e 20`, Docker's `--ulimit nice=20`); elsewhere (an unprivileged user by default,
macOS, Windows, a Space) `job()` does nothing and the CPU is shared evenly, as before.
PLAYGROUND_FAIR=0 turns it off.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

LONG = 0.15            # seconds a job runs before it counts as long (a slider's call takes 60-120 ms)
NICE = 10              # added to its thread's nice value from then on (CFS weight 110 against 1024)
TICK = 0.02            # how often the watchdog looks

_guard = threading.Lock()
_jobs: dict[int, list] = {}          # native thread id -> [started, lowered, nice value before, wanted]
_watchdog: threading.Thread | None = None
lowered: list[float] = []            # how long each lowered job had run when lowered (tests, benchmarks)


def _can() -> bool:
    """True where a thread's priority can be lowered and raised back (Linux, with the right to raise)."""
    if not hasattr(os, "setpriority") or not hasattr(threading, "get_native_id"):
        return False
    me = threading.get_native_id()
    try:
        base = os.getpriority(os.PRIO_PROCESS, me)
        os.setpriority(os.PRIO_PROCESS, me, base + 1)
        os.setpriority(os.PRIO_PROCESS, me, base)
        return True
    except OSError:
        try:
            os.setpriority(os.PRIO_PROCESS, me, base)
        except OSError:
            pass
        return False


ENABLED = os.environ.get("PLAYGROUND_FAIR", "1").strip() not in ("0", "false", "no") and _can()


def _watch() -> None:
    while True:
        time.sleep(TICK)
        now = time.monotonic()
        with _guard:
            for tid, entry in _jobs.items():
                wanted = entry[3] is not None and entry[3]()
                try:
                    if not entry[1] and now - entry[0] > LONG and not wanted:
                        os.setpriority(os.PRIO_PROCESS, tid, min(19, entry[2] + NICE))
                        entry[1] = True
                        lowered.append(now - entry[0])
                        del lowered[:-1000]
                    elif entry[1] and wanted:
                        os.setpriority(os.PRIO_PROCESS, tid, entry[2])
                        entry[1] = False
                except OSError:               # the thread has just ended
                    pass


@contextmanager
def job(wanted=None):
    """Mark the calling thread's work as one job (see the module docstring). Re-entrant: an inner job
    in the same thread is part of the outer one. `wanted()`, when given, is asked at each look: while
    it is true the job keeps (or gets back) its priority. A batcher says so while callers wait in its
    queue: they may be short jobs, and they wait for its current batch."""
    global _watchdog
    if not ENABLED:
        yield
        return
    tid = threading.get_native_id()
    with _guard:
        if tid in _jobs:                          # nested: the outer job owns the thread's priority
            inner = True
        else:
            inner = False
            _jobs[tid] = [time.monotonic(), False, os.getpriority(os.PRIO_PROCESS, tid), wanted]
            if _watchdog is None:
                _watchdog = threading.Thread(target=_watch, name="fair watchdog", daemon=True)
                _watchdog.start()
    try:
        yield
    finally:
        if not inner:
            with _guard:
                entry = _jobs.pop(tid)
                if entry[1]:
                    os.setpriority(os.PRIO_PROCESS, tid, entry[2])
