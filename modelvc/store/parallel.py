"""A pool of worker threads and an ordered, bounded map over it.

blake3, zstandard and numpy release the GIL on large buffers, so threads keep both cores
busy; the bounded window keeps memory constant whatever the file size. Each Repo owns its
pool: no thread starts before there is work, and Repo.close() stops them.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from concurrent.futures import Future, ThreadPoolExecutor

T = TypeVar("T")
R = TypeVar("R")


def worker_count() -> int:
    """One thread per core, at most 8 (beyond that the pack writer is the bottleneck)."""
    return max(1, min(8, os.cpu_count() or 1))


class WorkerPool:
    """Threads for chunk work, started on first use and stopped by close() (reusable after).

    With `tune_allocator`, starting them also makes the process-wide allocator setting of
    keep_freed_buffers: for a caller that owns its process (the CLI), never by default.
    Made when the work starts, not at the process's start: made before the imports and
    the index load, it let the peak RSS of adding a 170 MB file vary from 90 MB to 130 MB.
    """

    def __init__(self, workers: int | None = None, tune_allocator: bool = False) -> None:
        self.workers = workers or worker_count()
        self.tune_allocator = tune_allocator
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def executor(self) -> ThreadPoolExecutor:
        from concurrent.futures import ThreadPoolExecutor  # 10 ms to import: only once there is work

        with self._lock:
            if self._executor is None:
                if self.tune_allocator:
                    keep_freed_buffers()
                self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="mvc")
            return self._executor

    def close(self) -> None:
        """Wait for the work in hand and stop the threads."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


def keep_freed_buffers() -> None:
    """Let glibc reuse freed megabyte buffers instead of returning them to the kernel.

    A process-wide setting, so the library makes it only when asked (WorkerPool's
    tune_allocator, which the CLI sets).

    Every chunk coded allocates and frees a few buffers of about a megabyte. By default
    glibc serves such sizes with mmap and gives them back on free, so each chunk pays for
    fresh zeroed pages: 127,000 page faults and 0.2 s of a 0.6 s restore of 542 MB (far
    worse on virtual machines, where a fresh page also faults in the hypervisor). Serving
    them from the heap, and trimming it only beyond 256 MiB, makes them reused. No-op where
    glibc's mallopt is absent.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 << 20)
    mallopt(m_trim_threshold, 256 << 20)


def ordered_map(func: Callable[[T], R], items: Iterable[T], window: int | None = None,
                weight: Callable[[T], int] | None = None, max_weight: int | None = None,
                pool: WorkerPool | None = None) -> Iterator[R]:
    """Yield func(item) in input order, with at most `window` items in flight.

    With `weight` and `max_weight`, the items in flight also weigh at most `max_weight`
    together (one item at least is always in flight): a bound on memory in bytes rather than
    in items, so that a deep window of small items and a few big items cost the same.
    Without a pool, one is started for this call and stopped at its end.
    """
    if pool is None:
        own = WorkerPool()
        try:
            yield from ordered_map(func, items, window, weight, max_weight, own)
        finally:
            own.close()
        return
    window = window or 2 * pool.workers + 2
    executor = pool.executor()
    pending: deque[tuple[Future[R], int]] = deque()
    in_flight = 0
    try:
        for item in items:
            cost = weight(item) if weight is not None else 0
            while pending and (len(pending) >= window
                               or (max_weight is not None and in_flight + cost > max_weight)):
                future, done_cost = pending.popleft()
                in_flight -= done_cost
                yield future.result()
            pending.append((executor.submit(func, item), cost))
            in_flight += cost
        while pending:
            future, done_cost = pending.popleft()
            in_flight -= done_cost
            yield future.result()
    finally:
        for future, _ in pending:
            future.cancel()
        for future, _ in pending:
            if not future.cancelled():
                try:
                    future.result()
                except BaseException:  # noqa: BLE001 - the first error was already raised
                    pass
