"""One model call for many students: a micro-batcher that services call instead of the model.

    decode = Batcher(lambda zs: list(model.decode(torch.stack(zs))), name="vae decode")
    image = decode(z)          # from any thread: waits, shares one forward pass with concurrent callers

Each request validates its own input in its own thread (so one student's bad input fails only that
student's call) and then hands only the model work to the batcher. A worker thread takes the first
waiting item, gathers whatever else arrives within `max_wait` seconds (up to `max_size` items), runs
`fn` once on the list and hands each caller its own result. `fn` must map a list to a list of the same
length, item by item, so that an item's result does not depend on the others in its batch; batched
and unbatched results are then equal up to floating-point rounding (BLAS blocks a batch of 8
differently from a batch of 1: about 1e-7 on these models), which the services' tests check.

Alone, a caller waits at most `max_wait` more than the model call itself; with many callers the model
runs once per batch instead of once per caller, which is where a class's waiting time goes.

`share=N` (for a deterministic `fn` whose items are hashable, e.g. (class, scale, seed)): equal items
in one batch are run once, and the results of the last N distinct items are kept, so a class that
opened the same lesson link and pressed the same button waits for one model call, not thirty. The
callers then share one result object: they must not change it.
"""
from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Generic, TypeVar

from playground.core import cache, device, fair

T = TypeVar("T")
_NONE = object()            # "not kept" (a kept result may itself be None)
R = TypeVar("R")


class Batcher(Generic[T, R]):
    def __init__(self, fn: Callable[[list[T]], list[R]], *, max_size: int = 32, max_wait: float = 0.004,
                 name: str = "batch", share: int = 0):
        self.fn, self.max_size, self.max_wait, self.name, self.share = fn, max_size, max_wait, name, share
        self._recent: cache.Recent[T, R] = cache.Recent(share)      # share: the last results
        self._dupes = 0                     # equal items of one batch answered by its first (worker only)
        self._queue: queue.SimpleQueue[tuple[T, Future]] = queue.SimpleQueue()
        self._start = threading.Lock()
        self._worker: threading.Thread | None = None
        self.sizes: list[int] = []          # the size of every batch run (benchmarks read it)

    @property
    def shared(self) -> int:
        """Calls answered from another caller's run (benchmarks read it)."""
        return self._recent.hits + self._dupes

    def __call__(self, item: T) -> R:
        if self.share and (kept := self._recent.get(item, _NONE)) is not _NONE:
            return kept
        fut: Future = Future()
        self._queue.put((item, fut))
        self._ensure_worker()
        return fut.result()

    def _ensure_worker(self) -> None:
        if self._worker is None or not self._worker.is_alive():
            with self._start:
                if self._worker is None or not self._worker.is_alive():
                    self._worker = threading.Thread(target=self._run, name=f"batcher: {self.name}", daemon=True)
                    self._worker.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_size:
                left = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait())
                except queue.Empty:
                    break
            self.sizes.append(len(batch))
            if len(self.sizes) > 10_000:
                del self.sizes[:5_000]
            try:
                device.request_threads()
                items = [item for item, _ in batch]
                known = self._known(items) if self.share else {}
                todo = [i for i in dict.fromkeys(items) if i not in known] if self.share else items
                with fair.job(wanted=lambda: not self._queue.empty()):      # others wait behind this batch
                    results = self.fn(todo) if todo else []
                if len(results) != len(todo):
                    raise RuntimeError(f"{self.name}: {len(todo)} items gave {len(results)} results")
                if self.share:
                    results = self._keep(dict(zip(todo, results)), known, items)
            except BaseException as e:  # noqa: BLE001 - every caller of this batch sees the failure
                for _, fut in batch:
                    fut.set_exception(e)
                continue
            for (_, fut), r in zip(batch, results):
                fut.set_result(r)

    def _known(self, items: list[T]) -> dict[T, R]:
        """Results already made for some of these items (an equal item ran since they were queued)."""
        return {i: r for i in items if (r := self._recent.get(i, _NONE)) is not _NONE}

    def _keep(self, made: dict[T, R], known: dict[T, R], items: list[T]) -> list[R]:
        """Remember the newest results (at most `share`) and give every item of the batch its own."""
        for item, r in made.items():
            self._recent.put(item, r)
        self._dupes += sum(i not in known for i in items) - len(made)
        return [made[i] if i in made else known[i] for i in items]
