"""A shared thread pool and an ordered, bounded map over it.

blake3, zstandard and numpy release the GIL on large buffers, so threads keep both cores
busy; the bounded window keeps memory constant whatever the file size.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def worker_count() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=worker_count(), thread_name_prefix="mvc")
        return _pool


def ordered_map(func: Callable[[T], R], items: Iterable[T], window: int | None = None) -> Iterator[R]:
    """Yield func(item) in input order, with at most `window` items in flight."""
    window = window or 2 * worker_count() + 2
    executor = _executor()
    pending: deque[Future[R]] = deque()
    try:
        for item in items:
            pending.append(executor.submit(func, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()
        for future in pending:
            if not future.cancelled():
                try:
                    future.result()
                except BaseException:  # noqa: BLE001 - the first error was already raised
                    pass
