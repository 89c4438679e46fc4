"""Loose metadata objects: one zstd-compressed file per manifest, tree, commit or tag.

There are few of them compared with chunks (one per file version, tree or commit), so they
live as files under objects/ab/cdef..., which keeps gc of them a simple unlink.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from modelvc import objects as objmod
from modelvc.errors import CorruptObjectError, MissingObjectError
from modelvc.fsutil import atomic_write, durable_step
from modelvc.ids import hash_bytes, short

T = TypeVar("T")
_CACHE_SIZE = 512


class ObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: OrderedDict[str, objmod.StoredObject] = OrderedDict()
        self._lock = threading.Lock()

    def path_of(self, object_id: str) -> Path:
        return self.root / object_id[:2] / object_id[2:]

    def has(self, object_id: str) -> bool:
        return self.path_of(object_id).exists()

    def put(self, obj: objmod.StoredObject) -> str:
        import zstandard

        data = objmod.encode(obj)
        object_id = hash_bytes(data)
        if not self.has(object_id):
            atomic_write(self.path_of(object_id), zstandard.ZstdCompressor(level=3).compress(data))
        self._remember(object_id, obj)
        return object_id

    def get(self, object_id: str) -> objmod.StoredObject:
        with self._lock:
            cached = self._cache.get(object_id)
            if cached is not None:
                self._cache.move_to_end(object_id)
                return cached
        obj = objmod.decode(self.read_verified(object_id), object_id)
        self._remember(object_id, obj)
        return obj

    def get_typed(self, object_id: str, kind: type[T]) -> T:
        obj = self.get(object_id)
        if not isinstance(obj, kind):
            raise CorruptObjectError(
                f"object {short(object_id)} is a {type(obj).__name__.lower()}, expected a {kind.__name__.lower()}")
        return obj

    def read_verified(self, object_id: str) -> bytes:
        """The canonical bytes of an object, after checking they hash to its id."""
        import zstandard

        try:
            stored = self.path_of(object_id).read_bytes()
        except FileNotFoundError:
            raise MissingObjectError(f"object {short(object_id)} is missing from the store",
                                     hint="run 'mvc fsck' to see what it breaks") from None
        try:
            data = zstandard.ZstdDecompressor().decompress(stored)
        except zstandard.ZstdError as exc:
            raise CorruptObjectError(f"object {short(object_id)} is corrupt ({exc})",
                                     hint="run 'mvc fsck' to see what it breaks") from exc
        if hash_bytes(data) != object_id:
            raise CorruptObjectError(f"object {short(object_id)} is corrupt: its content does not match its id",
                                     hint="run 'mvc fsck' to see what it breaks")
        return data

    def ids_with_prefix(self, prefix: str) -> list[str]:
        directory = self.root / prefix[:2]
        if len(prefix) < 2 or not directory.is_dir():
            return []
        rest = prefix[2:]
        return sorted(prefix[:2] + name for name in os.listdir(directory)
                      if name.startswith(rest) and not name.startswith("."))

    def all_ids(self) -> Iterator[str]:
        if not self.root.is_dir():
            return
        for sub in sorted(os.listdir(self.root)):
            if len(sub) != 2:
                continue
            for name in sorted(os.listdir(self.root / sub)):
                if not name.startswith("."):
                    yield sub + name

    def delete(self, object_id: str) -> None:
        durable_step("unlink")
        self.path_of(object_id).unlink(missing_ok=True)
        with self._lock:
            self._cache.pop(object_id, None)

    def _remember(self, object_id: str, obj: objmod.StoredObject) -> None:
        with self._lock:
            self._cache[object_id] = obj
            self._cache.move_to_end(object_id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
