"""A backend that counts what goes over the wire: the requests and bytes of a transfer's summary."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

from modelvc.store.backend import Backend, KeyList, KeyStat, Tagged, ValueList


@dataclass
class Traffic:
    """Calls made to a remote and the payload bytes each way."""

    requests: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0


class CountingBackend:
    """Every call to the wrapped backend counts as one request (a `read_ranges` of one key is one
    call, as the store coalesces it); thread-safe, since chunk reads run in parallel."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.traffic = Traffic()
        self._lock = threading.Lock()

    def _count(self, sent: int = 0, received: int = 0) -> None:
        with self._lock:
            self.traffic.requests += 1
            self.traffic.bytes_sent += sent
            self.traffic.bytes_received += received

    def list(self, prefix: str) -> list[str]:
        self._count()
        return self.inner.list(prefix)

    def list_after(self, prefix: str, start_after: str, limit: int | None = None) -> KeyList:
        self._count()
        return self.inner.list_after(prefix, start_after, limit)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = self.inner.read(key, offset, length)
        self._count(received=len(data))
        return data

    def read_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> ValueList:
        parts = self.inner.read_ranges(key, ranges)
        self._count(received=sum(len(part) for part in parts))
        return parts

    def read_tagged(self, key: str) -> Tagged:
        found = self.inner.read_tagged(key)
        self._count(received=len(found.data))
        return found

    def write(self, key: str, data: bytes) -> None:
        self.inner.write(key, data)
        self._count(sent=len(data))

    def write_if_absent(self, key: str, data: bytes) -> bool:
        created = self.inner.write_if_absent(key, data)
        self._count(sent=len(data))
        return created

    def swap_tagged(self, key: str, tag: str | None, data: bytes) -> bool:
        swapped = self.inner.swap_tagged(key, tag, data)
        self._count(sent=len(data))
        return swapped

    def compare_and_swap(self, key: str, expected: bytes | None, data: bytes) -> bool:
        swapped = self.inner.compare_and_swap(key, expected, data)
        self._count(sent=len(data))
        return swapped

    def stat(self, key: str) -> KeyStat:
        self._count()
        return self.inner.stat(key)

    def delete(self, key: str) -> None:
        self._count()
        self.inner.delete(key)
