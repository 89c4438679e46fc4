"""Metadata objects (manifests, trees, commits, tags): written in batches into metadata packs.

An object is a record of a pack of the `meta-` family (store/layout.py): the same record and
index format as chunks, the record's id being the object's id (the blake3 of its canonical
encoding), its payload a zstd frame. The objects of one operation (an `add` of many files, a
commit's tree and commit, gc's repacking) are collected by `batch()` and sealed together: one
fsync of the pack and one of its index, instead of one per object, before anything that
refers to them (the index file, a ref) is written.

A batch of at most LOOSE_MAX objects is written as loose files `objects/ab/cdef...` instead:
it costs the same fsyncs as a pack of its own, and adds no pack that every command would
have to read the index of. Repositories of formats 1 and 2 (whose older readers know only
loose objects) are written loose whatever the batch size, until gc upgrades a format 2
repository to 3 (ops/gc.py). Every read looks in the packs, then in the loose files, and
verifies: decompress, hash, compare with the id.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from modelvc import objects as objmod
from modelvc.errors import CorruptChunkError, CorruptObjectError, MissingChunkError, MissingObjectError
from modelvc.fsutil import is_atomic_temp
from modelvc.ids import ObjectId, hash_bytes, hash_bytes_raw, short
from modelvc.store import layout
from modelvc.store.backend import DirectoryBackend, NotFoundInBackend
from modelvc.store.chunkindex import ChunkIndex
from modelvc.store.packs import Location, PackReader, PackWriter, SealedPack

if TYPE_CHECKING:
    import zstandard

    from modelvc.store.consolidate import PackSet

T = TypeVar("T")
_CACHE_SIZE = 512
# Measured in-process, best of 100 on the shared 2-core machine: 1-3 objects take 2-4 ms
# loose or packed alike (the fsyncs dominate, medians were noise); 50 objects take 73 ms loose
# and 12 ms as one pack. A pack per commit (tree and commit) would make every command read
# one more index per commit ever made until gc merges them, loose files cost nothing to
# readers: batches of up to 2 objects (a commit, a tag, a one-file add) are written loose.
LOOSE_MAX = 2
PACK_MAX_BYTES = 256 << 20
BULK_BUDGET_BYTES = 256 << 20  # canonical bytes bulk_verified holds at most (then reads one by one)
ZSTD_LEVEL = 3
# A tree of 50,000 entries (7 MB) takes 58 ms and 2.19 MB at level 3, 26 ms and 1.93 MB at
# level 1 (hex ids and paths: level 3's longer search finds nothing more). Small objects keep 3.
LARGE_OBJECT_BYTES = 256 << 10
LARGE_OBJECT_ZSTD_LEVEL = 1
_HINT = "run 'mvc fsck' to see what it breaks"


class ObjectStore:
    """Metadata objects of a local store; `root` is its objects/ directory (packs/ beside it).

    `packed`: whether batches may go into packs (format 3); set again by Repo when the config
    changes.
    """

    def __init__(self, root: Path, packed: bool = True) -> None:
        self.backend = DirectoryBackend(root.parent)
        self.root = root
        self.packed = packed
        self.reader = PackReader(self.backend)
        self._index: ChunkIndex | None = None
        self._index_lock = threading.Lock()
        self._batch: dict[str, bytes] | None = None  # id -> canonical bytes, until the batch ends
        self._cache: OrderedDict[str, objmod.StoredObject] = OrderedDict()
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread's zstd decompressor, made once
        self._verified: dict[str, bytes] | None = None  # set by `bulk_verified`
        self.loose_written = 0  # loose objects this process wrote: the auto-packing's cue
        self.packs_sealed = 0  # metadata packs its batches sealed: the auto-consolidation's cue

    # -- the packs' index -----------------------------------------------------------------
    @property
    def index(self) -> ChunkIndex:
        with self._index_lock:
            if self._index is None:
                self._index = ChunkIndex(self.backend, family=layout.META_PREFIX)
            return self._index

    def reload(self) -> None:
        with self._index_lock:
            self._index = None

    def reload_if_packs_changed(self) -> bool:
        """Read the indexes again if another process added or removed metadata packs."""
        with self._index_lock:
            if self._index is None or layout.complete_packs(self.backend, layout.META_PREFIX) == self._index.listing:
                return False
            self._index = None
            return True

    def path_of(self, object_id: ObjectId) -> Path:
        """Where the object's loose file is (or would be)."""
        return self.backend.local_path(layout.object_key(object_id))

    # -- writing --------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Collect the objects put in the block and write them together when it ends.

        When any batch ends without error, everything put so far (an outer batch's objects
        too) is written: what follows it (a ref update) may rely on all of it being durable.
        Objects still pending when the outermost batch fails are not written.
        """
        outermost = self._batch is None
        if outermost:
            self._batch = {}
        try:
            yield
            pending, self._batch = self._batch, ({} if not outermost else None)
            self._write(pending or {})
        finally:
            if outermost:
                self._batch = None

    def put(self, obj: objmod.StoredObject) -> str:
        object_id = self.put_encoded(objmod.encode(obj))
        self._remember(object_id, obj)
        return object_id

    def put_encoded(self, data: bytes) -> str:
        """Store an object given as its canonical encoding (a commit's tree, encoded from the
        index's columns without building the Tree)."""
        object_id = hash_bytes(data)
        if self._batch is not None:
            if object_id not in self._batch and not self.has(object_id):
                self._batch[object_id] = data
        elif not self.has(object_id):
            self._write({object_id: data})
        return object_id

    def _write(self, pending: dict[str, bytes]) -> None:
        if not pending:
            return
        import zstandard

        small, large = zstandard.ZstdCompressor(level=ZSTD_LEVEL), None

        def compress(data: bytes) -> bytes:
            nonlocal large
            if len(data) < LARGE_OBJECT_BYTES:
                return small.compress(data)
            large = large or zstandard.ZstdCompressor(level=LARGE_OBJECT_ZSTD_LEVEL)
            return large.compress(data)

        if not self.packed or len(pending) <= LOOSE_MAX:
            for object_id, data in pending.items():
                self.backend.write_if_absent(layout.object_key(object_id), compress(data))
            self.loose_written += len(pending)
            return
        from modelvc.store.codecs import CODEC_ZSTD

        sealed: list[SealedPack] = []
        writer = PackWriter(self.backend, PACK_MAX_BYTES, layout.META_PREFIX)
        try:
            for object_id, data in pending.items():
                writer.append(bytes.fromhex(object_id), CODEC_ZSTD, len(data), compress(data))
                if writer.full:
                    writer.finish()
                    sealed += [writer.sealed] if writer.sealed else []
                    writer = PackWriter(self.backend, PACK_MAX_BYTES, layout.META_PREFIX)
            writer.finish()
            sealed += [writer.sealed] if writer.sealed else []
        except BaseException:
            writer.abort()
            self.reload()
            raise
        self.packs_sealed += len(sealed)
        with self._index_lock:  # the new packs join the loaded index, unless others changed too
            if self._index is not None and not self._index.add_sealed(sealed):
                self._index = None

    # -- reading --------------------------------------------------------------------------
    def has(self, object_id: ObjectId) -> bool:
        if self._batch is not None and object_id in self._batch:
            return True
        if _is_hex_id(object_id) and self.index.contains(bytes.fromhex(object_id)):
            return True
        try:
            self.backend.stat(layout.object_key(object_id))
        except NotFoundInBackend:
            return False
        return True

    def get(self, object_id: ObjectId) -> objmod.StoredObject:
        with self._lock:
            cached = self._cache.get(object_id)
            if cached is not None:
                self._cache.move_to_end(object_id)
                return cached
        verified = self._verified  # read once: bulk_verified's end may clear it meanwhile
        if verified is not None and object_id in verified:  # a walk over all history reads each
            return objmod.decode(self.read_verified(object_id), object_id)  # once: not cached
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
        if self._batch is not None and object_id in self._batch:
            return self._batch[object_id]
        if self._verified is not None:
            data = self._verified.pop(object_id, None)  # each is read once by a walk: its memory goes
            if data is not None:
                return data
        return self._verify(object_id, self._read_stored(object_id))

    def _verify(self, object_id: ObjectId, stored: bytes | memoryview) -> bytes:
        decompressor = self._decompressor()
        try:
            data = decompressor.decompress(stored)
        except _zstd_error() as exc:
            raise CorruptObjectError(f"object {short(object_id)} is corrupt ({exc})", hint=_HINT) from exc
        if hash_bytes(data) != object_id:
            raise CorruptObjectError(f"object {short(object_id)} is corrupt: its content does not match its id",
                                     hint=_HINT)
        return data

    def _decompressor(self) -> zstandard.ZstdDecompressor:
        """This thread's decompressor: making one per read cost more than most reads."""
        try:
            return self._local.decompressor
        except AttributeError:
            import zstandard

            self._local.decompressor = zstandard.ZstdDecompressor()
            return self._local.decompressor

    @contextlib.contextmanager
    def bulk_verified(self, budget_bytes: int = BULK_BUDGET_BYTES) -> Iterator[None]:
        """Within the block, objects of the metadata packs are read by whole packs, each
        verified once (decompressed, hashed) as the pack is read in sequence, instead of one
        lookup and read per object: for walks over all history (fsck, stats). At most
        `budget_bytes` of them are held (the rest are read one by one); a record that fails
        verification is left out, so reading it by id reports it as usual."""
        self._verified = {}
        try:
            self.reload_if_packs_changed()
            index = self.index
            held = 0
            for name in index.packs:
                for object_id, data in self._verified_records(name):
                    self._verified[object_id] = data
                    held += len(data)
                    if held >= budget_bytes:
                        break
                if held >= budget_bytes:
                    break
            yield
        finally:
            self._verified = None

    def _verified_records(self, name: str) -> Iterator[tuple[str, bytes]]:
        """(id, canonical bytes) of each record of a pack whose header agrees with its index
        row and whose payload decompresses to bytes that hash to its id; the others are left out."""
        from modelvc.store.packs import IDX_HEADER_SIZE, IDX_ROW, RECORD_HEADER, RECORD_MAGIC, read_idx_rows

        try:
            rows, count = read_idx_rows(self.backend, name)
            pack = memoryview(self.backend.read(layout.pack_key(name)))
        except (NotFoundInBackend, CorruptChunkError):  # gone since listed, or damaged: read one by one
            return
        decompress = self._decompressor().decompress
        header_size = RECORD_HEADER.size
        unpack_header = RECORD_HEADER.unpack_from
        by_offset = sorted(IDX_ROW.iter_unpack(rows[IDX_HEADER_SIZE:IDX_HEADER_SIZE + count * IDX_ROW.size]),
                           key=itemgetter(1))
        for raw_id, offset, payload_len, raw_len, codec, _, base in by_offset:
            start = offset + header_size
            if start + payload_len > len(pack):
                continue
            magic, found_codec, _, found_raw, found_payload, found_id, found_base = unpack_header(pack, offset)
            if (magic, found_codec, found_raw, found_payload, found_id, found_base) != \
                    (RECORD_MAGIC, codec, raw_len, payload_len, raw_id, base):
                continue
            try:
                data = decompress(pack[start:start + payload_len])
            except _zstd_error():
                continue
            if hash_bytes_raw(data) == raw_id:
                yield raw_id.hex(), data

    def _read_stored(self, object_id: ObjectId) -> bytes | memoryview:
        """The stored (compressed) bytes: from a pack, else the loose file. A pack added or
        removed (by gc) since the indexes were read is noticed and looked in once more."""
        for retry in (False, True):
            packed = self._read_packed(object_id)
            if packed is not None:
                return packed
            try:
                return self.backend.read(layout.object_key(object_id))
            except NotFoundInBackend:
                pass
            if retry or not self.reload_if_packs_changed():
                break
        raise MissingObjectError(f"object {short(object_id)} is missing from the store", hint=_HINT)

    def _read_packed(self, object_id: ObjectId) -> memoryview | None:
        if not _is_hex_id(object_id):
            return None
        raw_id = bytes.fromhex(object_id)
        location = self.index.locate(raw_id)
        if location is None:
            return None
        try:
            return self.reader.read_record(location, raw_id)
        except MissingChunkError:  # its pack was removed (gc): the caller looks again
            return None
        except CorruptChunkError as exc:
            raise CorruptObjectError(f"object {short(object_id)} is corrupt ({exc.message})", hint=_HINT) from None

    # -- automatic packing ----------------------------------------------------------------
    def pack_set(self) -> PackSet:
        """Its packs, as consolidation (modelvc.store.consolidate) takes them."""
        from modelvc.store.consolidate import PackSet

        return PackSet(self.backend, layout.META_PREFIX, self.reader, PACK_MAX_BYTES)

    def count_loose(self, limit: int) -> int:
        """How many loose objects there are, counting stops past `limit` (a directory listing
        per fan-out directory: about 3 ms for 1,024 objects in 256 directories)."""
        count = 0
        try:
            with os.scandir(self.root) as fans:
                for fan in fans:
                    if len(fan.name) == 2 and fan.is_dir():
                        with os.scandir(fan.path) as entries:
                            count += sum(1 for entry in entries if not is_atomic_temp(entry.name))
                    if count > limit:
                        break
        except FileNotFoundError:
            return 0
        return count

    def pack_loose(self) -> int:
        """Write every loose object into one metadata pack, sealed (pack, then its index)
        before any loose file is removed, so a kill at any step loses nothing; how many were
        packed. Each is verified as it is read: a damaged one stays loose for fsck to report."""
        from modelvc.store.codecs import CODEC_ZSTD

        packed = []
        writer = PackWriter(self.backend, PACK_MAX_BYTES, layout.META_PREFIX)
        try:
            for object_id in self.loose_ids():
                try:
                    stored = self.backend.read(layout.object_key(object_id))
                    data = self._verify(object_id, stored)
                except (NotFoundInBackend, CorruptObjectError):
                    continue
                writer.append(bytes.fromhex(object_id), CODEC_ZSTD, len(data), stored)
                packed.append(object_id)
                if writer.full:
                    writer.finish()
                    writer = PackWriter(self.backend, PACK_MAX_BYTES, layout.META_PREFIX)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        finally:
            self.reload()
        for object_id in packed:
            self.delete_loose(object_id)
        for fan in {object_id[:2] for object_id in packed}:  # empty fan-out directories: fewer to list
            with contextlib.suppress(OSError):
                os.rmdir(self.root / fan)
        self.loose_written = 0
        return len(packed)

    # -- listing --------------------------------------------------------------------------
    def ids_with_prefix(self, prefix: str) -> list[str]:
        """Every stored object whose id starts with `prefix` (at least two hex digits)."""
        if len(prefix) < 2:
            return []
        found = set(self._loose_ids(layout.object_key(prefix)))
        if _is_hex(prefix):
            self.reload_if_packs_changed()
            even = prefix[:len(prefix) // 2 * 2]
            nibble = int(prefix[-1], 16) if len(prefix) % 2 else None
            found.update(raw.hex() for raw in self.index.ids_with_prefix(bytes.fromhex(even), nibble))
        return sorted(found)

    def all_ids(self) -> list[str]:
        """Every stored object, packed or loose."""
        self.reload_if_packs_changed()
        return sorted({raw.hex() for raw in self.index.ids_with_prefix(b"")} | set(self.loose_ids()))

    def count(self) -> int:
        """How many objects are stored, packed or loose (len(all_ids()) without sorting
        and spelling out tens of thousands of ids: stats)."""
        self.reload_if_packs_changed()
        packed = self.index.ids_with_prefix(b"")
        return len(packed) + sum(1 for object_id in self.loose_ids()
                                 if not _is_hex_id(object_id) or bytes.fromhex(object_id) not in packed)

    def location(self, object_id: ObjectId) -> Location | None:
        """Where a packed object's record is (None for a loose or missing one)."""
        return self.index.locate(bytes.fromhex(object_id)) if _is_hex_id(object_id) else None

    def loose_ids(self) -> list[str]:
        """Ids of the loose objects (gc packs them in format 3)."""
        return self._loose_ids(layout.OBJECTS)

    def read_loose(self, object_id: ObjectId) -> bytes:
        """A loose object's stored (compressed) bytes, after verifying them."""
        self.read_verified(object_id)
        return self.backend.read(layout.object_key(object_id))

    def _loose_ids(self, key_prefix: str) -> list[str]:
        ids = (layout.object_id_of(key) for key in self.backend.list(key_prefix))
        return [object_id for object_id in ids if object_id is not None and not object_id.startswith(".")]

    def delete_loose(self, object_id: ObjectId) -> None:
        try:
            self.backend.delete(layout.object_key(object_id))
        except NotFoundInBackend:
            pass
        with self._lock:
            self._cache.pop(object_id, None)

    def forget(self, object_ids: set[str]) -> None:
        """Drop objects from the cache (gc removed them)."""
        with self._lock:
            for object_id in object_ids:
                self._cache.pop(object_id, None)

    def close(self) -> None:
        self.reader.close()

    def _remember(self, object_id: ObjectId, obj: objmod.StoredObject) -> None:
        with self._lock:
            self._cache[object_id] = obj
            self._cache.move_to_end(object_id)
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)


_HEX = frozenset("0123456789abcdef")


def _zstd_error() -> type[Exception]:
    import zstandard

    return zstandard.ZstdError


def _is_hex(text: str) -> bool:
    return bool(text) and set(text) <= _HEX


def _is_hex_id(object_id: str) -> bool:
    return len(object_id) == 64 and _is_hex(object_id)
