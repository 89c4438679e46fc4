"""The storage seam: the few operations the store needs from wherever its bytes live.

Everything under `.mvc` that is data (packs, pack indexes, loose objects, refs) is a key, a
`/`-separated path such as `packs/pack-<hex>.idx` or `objects/ab/cdef...` (modelvc.store.layout
names them). A backend holds keys and their bytes and offers only what object storage (S3,
Azure Blob) can also offer: no append, no rename, no partial overwrite. That keeps one contract
for the local directory, the in-memory backend of the tests, and the remotes to come; one test
suite (tests/store/test_backend_contract.py) holds every implementation to it.

- `write` is atomic and idempotent: a key never holds a torn value, and writing a key that
  already holds other bytes is refused (ContentConflictInBackend), since data is named by its
  content and two contents under one name mean a bug or damage.
- `write_if_absent` creates a key only if no one has (a retried upload is one object).
- `compare_and_swap` moves a ref: it succeeds only if the key still holds `expected` (None: is
  absent), the way a conditional put (If-Match / If-None-Match) does.

What remotes need besides (every backend offers it, the same contract tests it):
- `read_ranges` reads several ranges of one key in one call (object stores coalesce and
  parallelise them), `list_after` pages a listing from a key on (S3's start-after);
- `read_tagged` returns a value with its version tag (an object store's ETag; locally a hash of
  the bytes) and `swap_tagged` writes only if the key still has that tag: a push reads a ref
  once and moves it by If-Match on what it read, with no second read in between.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from modelvc.fsutil import atomic_writer, durable_step, fsync_dir, is_atomic_temp

# For annotations inside backend classes, where `list` is the method of that name.
KeyList = list[str]
ValueList = list[bytes | memoryview]  # read_ranges: an object store's buffers are not copied


class NotFoundInBackend(KeyError):
    """A key the backend does not hold. Callers turn it into the user-facing error that fits
    (a missing object, a missing pack); it is a bug only if it escapes them."""


class BackendUnavailable(Exception):
    """A backend that cannot be reached or refuses us (network, credentials, a missing bucket):
    callers turn it into the user's error naming the remote."""


class ContentConflictInBackend(Exception):
    """A `write` of different bytes to a key that already holds some (data never changes)."""


@dataclass(frozen=True)
class KeyStat:
    """What a backend knows of a key without reading it: gc needs the age, stats the size."""

    size: int
    mtime: float


@dataclass(frozen=True)
class Tagged:
    """A value and the version tag it had when read: what `swap_tagged` compares."""

    data: bytes
    tag: str


class Backend(Protocol):
    """The operations every store backend offers (see the module docstring)."""

    def list(self, prefix: str) -> list[str]:
        """The keys starting with `prefix`, sorted; never a write still in progress."""

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        """The bytes of `key`, or `length` of them from `offset` (fewer at the end of the value)."""

    def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key` atomically; a no-op if it holds the same bytes already."""

    def write_if_absent(self, key: str, data: bytes) -> bool:
        """Store `data` only if `key` is absent; whether this call created it."""

    def compare_and_swap(self, key: str, expected: bytes | None, data: bytes) -> bool:
        """Store `data` if `key` holds `expected` (None: is absent); whether it did."""

    def delete(self, key: str) -> None:
        """Remove `key`; NotFoundInBackend if it is absent."""

    def stat(self, key: str) -> KeyStat:
        """Size and modification time of `key`; NotFoundInBackend if it is absent."""

    def read_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> ValueList:
        """For each (offset, length), what `read(key, offset, length)` returns, in one call."""

    def list_after(self, prefix: str, start_after: str, limit: int | None = None) -> KeyList:
        """The sorted keys starting with `prefix` that sort after `start_after`, at most `limit`."""

    def read_tagged(self, key: str) -> Tagged:
        """The bytes of `key` and their version tag; NotFoundInBackend if it is absent."""

    def swap_tagged(self, key: str, tag: str | None, data: bytes) -> bool:
        """Store `data` if `key` still has version `tag` (None: is absent); whether it did."""


def content_tag(data: bytes) -> str:
    """The version tag of local backends: the bytes' hash (a ref holding the same bytes again is
    the same state of it, so a swap from either is right)."""
    import blake3

    return blake3.blake3(data).hexdigest()


def page_after(keys: KeyList, start_after: str, limit: int | None) -> KeyList:
    """`list_after` from a sorted listing: the keys after `start_after`, at most `limit`."""
    after = [key for key in keys if key > start_after]
    return after if limit is None else after[:limit]


def total_size(backend: Backend, keys: list[str]) -> int:
    """Bytes held under `keys`; one removed since it was listed (gc in another process) counts 0."""
    total = 0
    for key in keys:
        try:
            total += backend.stat(key).size
        except NotFoundInBackend:
            continue
    return total


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise ValueError(f"not a backend key: {key!r}")
    return key


def _slice(data: bytes, offset: int, length: int | None) -> bytes:
    if offset < 0 or (length is not None and length < 0):
        raise ValueError("a range starts and extends at or after 0")
    return data[offset:] if length is None else data[offset:offset + length]


class _LocalReads:
    """The operations a local backend derives from its own read and list: a read costs no
    request, a listing is complete and sorted, and a value's version tag is its hash."""

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        raise NotImplementedError

    def list(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def read_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> ValueList:
        return [self.read(key, offset, length) for offset, length in ranges]

    def list_after(self, prefix: str, start_after: str, limit: int | None = None) -> KeyList:
        return page_after(self.list(prefix), start_after, limit)

    def read_tagged(self, key: str) -> Tagged:
        data = self.read(key)
        return Tagged(data, content_tag(data))


class DirectoryBackend(_LocalReads):
    """Keys as files under a directory (the local `.mvc`), written through fsutil.atomic_writer.

    The dot-names of atomic writes in progress are never listed. Compare-and-swap holds an
    flock on the key's directory, which serialises it between threads and processes alike.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._root_text = os.fspath(self.root)

    def local_path(self, key: str) -> Path:
        """The file of a key: the pack data path reads and writes it with pread/writev."""
        return self.root / _check_key(key)

    def _file(self, key: str) -> str:
        """local_path as text: reads and stats of thousands of keys skip building Paths."""
        return f"{self._root_text}/{_check_key(key)}"

    def list(self, prefix: str) -> list[str]:
        directory, _, start = prefix.rpartition("/")
        base = self.root / directory if directory else self.root
        keys = []
        for dirpath, subdirs, files in os.walk(base):
            relative = os.path.relpath(dirpath, self.root).replace(os.sep, "/")
            stem = "" if relative == "." else relative + "/"
            subdirs[:] = sorted(d for d in subdirs if (stem + d + "/").startswith(prefix)
                                or prefix.startswith(stem + d + "/"))
            keys += [stem + name for name in files
                     if (stem + name).startswith(prefix) and not is_atomic_temp(name)]
        return sorted(keys)

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("a range starts and extends at or after 0")
        try:
            with open(self._file(key), "rb") as handle:
                if offset:
                    handle.seek(offset)
                return handle.read() if length is None else handle.read(length)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundInBackend(key) from None

    def write(self, key: str, data: bytes) -> None:
        if not self.write_if_absent(key, data) and self.read(key) != data:
            raise ContentConflictInBackend(key)

    def write_if_absent(self, key: str, data: bytes) -> bool:
        path = self.local_path(key)
        if path.exists():
            return False
        try:
            with atomic_writer(path, exclusive=True) as handle:
                handle.write(data)
        except FileExistsError:
            return False
        return True

    def compare_and_swap(self, key: str, expected: bytes | None, data: bytes) -> bool:
        return self._swap_if(key, lambda current: current == expected, data)

    def _swap_if(self, key: str, holds: Callable[[bytes | None], bool], data: bytes) -> bool:
        """Write `data` if what `key` holds now (None: absent) passes `holds`, under an flock of
        the key's directory, which serialises swaps between threads and processes alike."""
        path = self.local_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        with _flocked(path.parent):
            try:
                current: bytes | None = path.read_bytes()
            except FileNotFoundError:
                current = None
            if not holds(current):
                return False
            with atomic_writer(path) as handle:
                handle.write(data)
        return True

    def delete(self, key: str) -> None:
        path = self.local_path(key)
        durable_step("unlink")
        try:
            path.unlink()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundInBackend(key) from None

    def stat(self, key: str) -> KeyStat:
        try:
            found = os.stat(self._file(key))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFoundInBackend(key) from None
        if not stat.S_ISREG(found.st_mode):  # a directory is only a prefix of keys
            raise NotFoundInBackend(key)
        return KeyStat(found.st_size, found.st_mtime)

    def sync_dir(self, prefix: str) -> None:
        """Make the deletes under a prefix's directory durable (one fsync after many unlinks)."""
        fsync_dir(self.root / prefix.rpartition("/")[0])

    def swap_tagged(self, key: str, tag: str | None, data: bytes) -> bool:
        return self._swap_if(key, lambda current: (None if current is None else content_tag(current)) == tag, data)


@contextlib.contextmanager
def _flocked(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing drops the lock


class MemoryBackend(_LocalReads):
    """Keys in a dict: the second implementation, which keeps the contract honest in tests."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()

    def list(self, prefix: str) -> list[str]:
        with self._lock:
            return sorted(key for key in self._values if key.startswith(prefix))

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        with self._lock:
            found = self._values.get(_check_key(key))
        if found is None:
            raise NotFoundInBackend(key)
        return _slice(found[0], offset, length)

    def write(self, key: str, data: bytes) -> None:
        with self._lock:
            found = self._values.get(_check_key(key))
            if found is not None and found[0] != data:
                raise ContentConflictInBackend(key)
            if found is None:
                self._values[key] = (bytes(data), time.time())

    def write_if_absent(self, key: str, data: bytes) -> bool:
        with self._lock:
            if _check_key(key) in self._values:
                return False
            self._values[key] = (bytes(data), time.time())
            return True

    def compare_and_swap(self, key: str, expected: bytes | None, data: bytes) -> bool:
        with self._lock:
            found = self._values.get(_check_key(key))
            if (None if found is None else found[0]) != expected:
                return False
            self._values[key] = (bytes(data), time.time())
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            if self._values.pop(_check_key(key), None) is None:
                raise NotFoundInBackend(key)

    def stat(self, key: str) -> KeyStat:
        with self._lock:
            found = self._values.get(_check_key(key))
        if found is None:
            raise NotFoundInBackend(key)
        return KeyStat(len(found[0]), found[1])

    def swap_tagged(self, key: str, tag: str | None, data: bytes) -> bool:
        with self._lock:
            found = self._values.get(_check_key(key))
            if (None if found is None else content_tag(found[0])) != tag:
                return False
            self._values[key] = (bytes(data), time.time())
            return True
