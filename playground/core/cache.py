"""The load-once cache: every model, index and data set that is shared between users goes here.

    model = cache.once(("vae", path), lambda: checkpoint.load(path))

The first caller of a key runs the factory; concurrent callers of the same key wait for it and then
share the result; callers of other keys are not blocked (one lock per key), so a slow first load in
one lab never stalls another. A factory that raises leaves nothing behind: the next call tries again.
"""
from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_guard = threading.Lock()                       # protects the two dicts below
_locks: dict[Hashable, threading.Lock] = {}     # one lock per key
_values: dict[Hashable, Any] = {}


def once(key: Hashable, factory: Callable[[], T]) -> T:
    """The value for `key`, made by `factory()` on first use and shared afterwards (thread-safe)."""
    try:
        return _values[key]
    except KeyError:
        pass
    with _guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _values:
            _values[key] = factory()
            settle()
        return _values[key]


SETTLE = False      # set by the server (serve: app.py, a lab served alone): tests and scripts that clear the
                    # cache keep the collector's usual view


def serve() -> None:
    """The server starts: from now on, what loads once leaves the collector's view (settle)."""
    global SETTLE
    SETTLE = True
    settle()


def settle() -> None:
    """In the server: move every object alive now out of the garbage collector's view (gc.freeze). A
    model, an index or a data set just loaded stays for the life of the server, and a full collection
    that walks its objects stops every thread. Measured in the server under a class's load: full
    collections of up to 0.76 s (8.4 s of collection in a 90 s run); frozen after each load, at most
    0.165 s (4.7 s). Frozen objects are still freed when nothing refers to them; only a reference cycle
    among them is never collected, which is why the cache's users outside the server are left alone."""
    if SETTLE:
        gc.freeze()


def peek(key: Hashable, default: Any = None) -> Any:
    """The cached value, or `default` when it has not been made (never runs a factory)."""
    return _values.get(key, default)


def clear(prefix: Hashable | None = None) -> None:
    """Forget cached values: all, or those whose key is `prefix` or a tuple starting with it (tests)."""
    with _guard:
        for k in list(_values):
            if prefix is None or k == prefix or (isinstance(k, tuple) and k[:1] == (prefix,)):
                del _values[k]


_MISSING = object()
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """The values of the last `size` keys put, for a deterministic function's results (thread-safe; the
    least recently read or put goes first). `hits` counts the reads that found their key."""

    def __init__(self, size: int):
        self.size, self.hits = size, 0
        self._items: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, default: Any = None) -> V | Any:
        with self._lock:
            if key not in self._items:
                return default
            self._items.move_to_end(key)
            self.hits += 1
            return self._items[key]

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def make(self, key: K, factory: Callable[[], V]) -> V:
        """The kept value for `key`, or `factory()` kept and returned (made outside the lock: two callers
        of a missing key may both make it; the last one put is kept)."""
        value = self.get(key, _MISSING)
        if value is _MISSING:
            value = factory()
            self.put(key, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def keys(self) -> list[K]:
        with self._lock:
            return list(self._items)
