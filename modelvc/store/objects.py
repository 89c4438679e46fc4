"""Loose metadata objects: one zstd-compressed file per manifest, tree, commit or tag.

There are few of them compared with chunks (one per file version, tree or commit), so they
live as keys objects/ab/cdef... of the store's backend, which keeps gc of them one delete.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from modelvc import objects as objmod
from modelvc.errors import CorruptObjectError, MissingObjectError
from modelvc.ids import ObjectId, hash_bytes, short
from modelvc.store import layout
from modelvc.store.backend import DirectoryBackend, KeyStat, NotFoundInBackend

T = TypeVar("T")
_CACHE_SIZE = 512


class ObjectStore:
    """Metadata objects of a local store; `root` is its objects/ directory."""

    def __init__(self, root: Path) -> None:
        self.backend = DirectoryBackend(root.parent)
        self.root = root
        self._cache: OrderedDict[str, objmod.StoredObject] = OrderedDict()
        self._lock = threading.Lock()

    def path_of(self, object_id: ObjectId) -> Path:
        return self.backend.local_path(layout.object_key(object_id))

    def has(self, object_id: ObjectId) -> bool:
        try:
            self.backend.stat(layout.object_key(object_id))
        except NotFoundInBackend:
            return False
        return True

    def stat(self, object_id: ObjectId) -> KeyStat:
        """Size and age of a stored object (gc keeps young ones); NotFoundInBackend if absent."""
        return self.backend.stat(layout.object_key(object_id))

    def put(self, obj: objmod.StoredObject) -> str:
        import zstandard

        data = objmod.encode(obj)
        object_id = hash_bytes(data)
        if not self.has(object_id):
            self.backend.write_if_absent(layout.object_key(object_id),
                                         zstandard.ZstdCompressor(level=3).compress(data))
        self._remember(object_id, obj)
        return object_id

    def get(self, object_id: ObjectId) -> objmod.StoredObject:
        with self._lock:
            cached = self._cache.get(object_id)
            if cached is not None:
                self._cache.move_to_end(object_id)
                return cached
        obj = objmod.decode(self.read_verified(object_id), object_id)
        self._remember(object_id, obj)
        return obj

    def get_typed(self, object_id: ObjectId, kind: type[T]) -> T:
        obj = self.get(object_id)
        if not isinstance(obj, kind):
            raise CorruptObjectError(
                f"object {short(object_id)} is a {type(obj).__name__.lower()}, expected a {kind.__name__.lower()}")
        return obj

    def read_verified(self, object_id: ObjectId) -> bytes:
        """The canonical bytes of an object, after checking they hash to its id."""
        import zstandard

        try:
            stored = self.backend.read(layout.object_key(object_id))
        except NotFoundInBackend:
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
        if len(prefix) < 2:
            return []
        return self._ids(layout.object_key(prefix))

    def all_ids(self) -> Iterator[str]:
        yield from self._ids(layout.OBJECTS)

    def _ids(self, key_prefix: str) -> list[str]:
        ids = (layout.object_id_of(key) for key in self.backend.list(key_prefix))
        return [object_id for object_id in ids if object_id is not None and not object_id.startswith(".")]

    def delete(self, object_id: ObjectId) -> None:
        try:
            self.backend.delete(layout.object_key(object_id))
        except NotFoundInBackend:
            pass
        with self._lock:
            self._cache.pop(object_id, None)

    def _remember(self, object_id: ObjectId, obj: objmod.StoredObject) -> None:
        with self._lock:
            self._cache[object_id] = obj
            self._cache.move_to_end(object_id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
