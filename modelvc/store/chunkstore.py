"""The chunk store: write chunks into packs, read them back verified."""

from __future__ import annotations

import threading
from collections.abc import Container, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from modelvc.errors import CorruptChunkError, CorruptObjectError, MissingChunkError
from modelvc.ids import ChunkId, ObjectId, hash_bytes_raw
from modelvc.objects import Manifest
from modelvc.store import layout
from modelvc.store.backend import DirectoryBackend
from modelvc.store.badchunks import load_bad_records, save_bad_records
from modelvc.store.chunkindex import ChunkIndex
from modelvc.store.packs import RECORD_HEADER, Location, PackReader, PackWriter, SealedPack, header_mismatch
from modelvc.store.parallel import WorkerPool

if TYPE_CHECKING:
    from modelvc.store.consolidate import PackSet

DEFAULT_PACK_BYTES = 256 << 20
MAX_CHAIN_READ = 64  # far above any depth a writer makes; guards against a corrupt loop


class ChunkStore:
    """Chunks in the packs of a local store; `packs_dir` is its packs/ directory."""

    def __init__(self, packs_dir: Path, pack_max_bytes: int = DEFAULT_PACK_BYTES,
                 bad_list: Path | None = None, pool: WorkerPool | None = None) -> None:
        self.backend = DirectoryBackend(packs_dir.parent)
        assert self.backend.local_path(layout.PACKS.rstrip("/")) == packs_dir, "packs live in packs/"
        self.packs_dir = packs_dir
        self.pack_max_bytes = pack_max_bytes
        self.bad_list = bad_list or packs_dir.parent / "bad-chunks"  # see modelvc.store.badchunks
        self._index: ChunkIndex | None = None
        self._index_lock = threading.Lock()
        self._bad_lock = threading.Lock()
        self.reader = PackReader(self.backend)
        self.packs_sealed = 0  # by this store's writers since the owner last looked (gc --auto)
        self.pool = pool or WorkerPool()  # the threads that hash, code and verify chunks

    @property
    def index(self) -> ChunkIndex:
        index = self._index  # read once: a writer's reload() may clear it at any moment
        if index is None:
            with self._index_lock:
                index = self._index
                if index is None:
                    index = self._index = self._new_index()
        return index

    def _new_index(self) -> ChunkIndex:
        return ChunkIndex(self.backend, bad=load_bad_records(self.bad_list))

    def reload(self) -> None:
        self._index = None

    def add_sealed(self, sealed: list[SealedPack]) -> None:
        """Make packs this process sealed visible: added to the loaded index when nothing else
        changed on disk, else the index is forgotten and read again at the next lookup."""
        if not sealed:
            return
        with self._index_lock:
            index = self._index
            if index is not None and not index.add_sealed(sealed, load_bad_records(self.bad_list)):
                self._index = None

    def reload_if_packs_changed(self) -> None:
        """Forget the index if the packs on disk are not those it was read from (another
        process added or removed some); the next lookup reads it again."""
        with self._index_lock:
            index = self._index  # read once: a writer's reload() may clear it meanwhile
            if index is not None and layout.complete_packs(self.backend) != index.listing:
                self._index = None

    def _index_after_packs_changed(self, stale: ChunkIndex) -> ChunkIndex | None:
        """A fresh index when the packs on disk are no longer those `stale` was read from.

        gc (in another process) replaces packs while readers hold no lock: a reader that
        finds a pack gone reloads once and looks again, instead of reporting a chunk that
        merely moved as missing. None when nothing changed: then the chunk is really missing.
        """
        with self._index_lock:
            current = self._index
            if current is not None and current is not stale:
                return current  # another thread has reloaded already
            if layout.complete_packs(self.backend) == stale.listing:
                return None
            current = self._index = self._new_index()
            return current

    def has(self, chunk_id: ChunkId) -> bool:
        return self.index.contains(chunk_id)

    def has_good(self, chunk_id: ChunkId) -> bool:
        """Whether the chunk is stored in a record not known to be corrupt."""
        return self.index.contains_good(chunk_id)

    def locate(self, chunk_id: ChunkId) -> Location:
        return _locate(self.index, chunk_id)

    def read(self, chunk_id: ChunkId, known: dict[bytes, bytes | memoryview] | None = None) -> bytes | memoryview:
        """A chunk's raw bytes, decoded and checked against its id.

        A delta chunk is rebuilt from its chain of bases; only the final bytes are hashed,
        which checks every link of the chain at once. `known`: raw bytes of chunks already
        read and verified, where a chain may stop (gc's rechaining reads whole chains).
        """
        index = self.index
        try:
            return self._read(index, chunk_id, known)
        except MissingChunkError:
            fresh = self._index_after_packs_changed(index)
            if fresh is None:
                raise
            return self._read(fresh, chunk_id, known)

    def verified_in_sequence(self, chunk_ids: Iterable[ChunkId]) -> dict[ChunkId, int]:
        """The length of each of `chunk_ids` whose full (not delta) record reads back right when
        its pack is read in runs of neighbouring records: a lookup and a read per chunk cost
        three times as much for thousands of small chunks (fsck). The others (deltas, missing
        or damaged records) are left out, for read() to report."""
        from modelvc.store.codecs import CODEC_DELTA, decode_chunk

        index = self.index
        by_pack: dict[str, list[tuple[int, ChunkId, Location]]] = {}
        for chunk_id in chunk_ids:
            location = index.locate(chunk_id)
            if location is not None and location.codec != CODEC_DELTA:
                by_pack.setdefault(location.pack, []).append((location.offset, chunk_id, location))
        verified: dict[ChunkId, int] = {}
        for pack, records in by_pack.items():
            records.sort()
            for run in _runs(records):
                first, last = run[0][2], run[-1][2]
                try:
                    data = memoryview(self.reader.read_range(pack, first.offset, _record_end(last) - first.offset))
                except (CorruptChunkError, MissingChunkError):  # gone (gc) or cut short: read() tells
                    continue
                for offset, chunk_id, location in run:
                    start = offset - first.offset
                    if header_mismatch(RECORD_HEADER.unpack_from(data, start), location, chunk_id):
                        continue
                    start += RECORD_HEADER.size
                    try:
                        raw = decode_chunk(location.codec, data[start:start + location.payload_len], location.raw_len)
                    except CorruptChunkError:
                        continue
                    if len(raw) == location.raw_len and hash_bytes_raw(raw) == chunk_id:
                        verified[chunk_id] = location.raw_len
        return verified

    def _read(self, index: ChunkIndex, chunk_id: ChunkId,
              known: dict[bytes, bytes | memoryview] | None = None) -> bytes | memoryview:
        location = _locate(index, chunk_id)
        try:
            raw = self._decode(index, chunk_id, location, known or {})
            if len(raw) != location.raw_len or hash_bytes_raw(raw) != chunk_id:
                raise CorruptChunkError(
                    f"chunk {chunk_id.hex()[:10]} is corrupt: its bytes do not match its id "
                    f"(pack {location.pack}, offset {location.offset})",
                    hint="run 'mvc fsck' to see which versions it breaks")
        except CorruptChunkError:
            self._mark_bad(index, chunk_id, location.pack)
            raise
        return raw

    def _mark_bad(self, index: ChunkIndex, chunk_id: ChunkId, pack: str) -> None:
        """List a record that failed its verified read, so that the next add stores the chunk anew."""
        with self._bad_lock:
            records = load_bad_records(self.bad_list)
            if (chunk_id, pack) not in records:
                try:
                    save_bad_records(self.bad_list, records | {(chunk_id, pack)})
                except OSError:  # a read-only store: the error being raised still says it all
                    pass
            index.bad = index.bad | {(chunk_id, pack)}

    def _decode(self, index: ChunkIndex, chunk_id: ChunkId, location: Location,
                known: dict[bytes, bytes | memoryview]) -> bytes | memoryview:
        """The chunk's bytes: a full record decoded, or a delta chain applied in one pass.

        The chain's records are found first, from the chunk down to its full base (or a chunk
        in `known`); then the base is decoded and each link's differences added to it, oldest
        first. No recursion; a record that does not decode is named in the error.
        """
        from modelvc.store.codecs import decode_chunk
        from modelvc.store.delta import decode_delta

        chain = chain_records(index, chunk_id, location, known)
        data: bytes | memoryview
        bottom_id, bottom = chain[-1]
        if bottom.base is not None:  # a delta of a chunk in `known`
            data = known[bottom.base]
        else:
            chain = chain[:-1]
            payload = self.reader.read_record(bottom, bottom_id)
            with _naming(bottom_id, bottom):
                data = decode_chunk(bottom.codec, payload, bottom.raw_len)
        for link_id, link in reversed(chain):
            payload = self.reader.read_record(link, link_id)
            with _naming(link_id, link):
                data = decode_delta(payload, link.raw_len, data)
        return data

    def check_lengths(self, file_id: ObjectId, manifest: Manifest) -> None:
        """Refuse a manifest that gives a stored chunk another length than the chunk's own.

        Written out, such a file would get the wrong size (its chunks land at wrong offsets).
        A chunk the store lacks is left to the read that needs it.
        """
        index = self.index
        for chunk_hex, length in manifest.chunks:
            stored = index.raw_length(bytes.fromhex(chunk_hex))
            if stored is not None and stored != length:
                raise CorruptObjectError(
                    f"object {file_id[:10]} is corrupt: it lists chunk {chunk_hex[:10]} as {length} bytes, "
                    f"but the stored chunk has {stored}",
                    hint="run 'mvc fsck' to see which versions it breaks")

    def chain_depth(self, chunk_id: ChunkId) -> int:
        """How many deltas must be applied to read this chunk (0 for a full chunk)."""
        depth = 0
        location = self.index.locate(chunk_id)
        while location is not None and location.base is not None and depth < MAX_CHAIN_READ:
            depth += 1
            location = self.index.locate(location.base)
        return depth

    def pack_set(self) -> PackSet:
        """Its packs, as consolidation (modelvc.store.consolidate) takes them."""
        from modelvc.store.consolidate import PackSet

        return PackSet(self.backend, layout.PACK_PREFIX, self.reader, self.pack_max_bytes)

    def writer(self) -> ChunkWriter:
        return ChunkWriter(self)

    def close(self) -> None:
        self.reader.close()
        self.pool.close()


RUN_GAP_BYTES = 1 << 20  # records not asked for, up to this many bytes between two asked for, are read through
RUN_MAX_BYTES = 16 << 20  # a run read at once holds at most about this many bytes


def _record_end(location: Location) -> int:
    return location.offset + RECORD_HEADER.size + location.payload_len


def _runs(records: list[tuple[int, ChunkId, Location]]) -> Iterator[list[tuple[int, ChunkId, Location]]]:
    """Records sorted by offset, in runs read at once: a long gap or a run's size starts a new one."""
    run: list[tuple[int, ChunkId, Location]] = []
    for record in records:
        if run and (record[0] - _record_end(run[-1][2]) > RUN_GAP_BYTES
                    or _record_end(record[2]) - run[0][0] > RUN_MAX_BYTES):
            yield run
            run = []
        run.append(record)
    if run:
        yield run


@contextmanager
def _naming(chunk_id: ChunkId, location: Location) -> Iterator[None]:
    """Name the record in a payload's decoding error (the codecs do not know which chunk it is)."""
    try:
        yield
    except CorruptChunkError as exc:
        raise CorruptChunkError(f"chunk {chunk_id.hex()[:10]} is corrupt: {exc.message} "
                                f"(pack {location.pack}, offset {location.offset})",
                                hint="run 'mvc fsck' to see which versions it breaks") from None


def _looping(chunk_id: ChunkId) -> CorruptChunkError:
    return CorruptChunkError(f"chunk {chunk_id.hex()[:10]} is a delta with a missing or looping chain of bases")


def chain_records(index: ChunkIndex, chunk_id: ChunkId, location: Location,
                  known: Container[bytes]) -> list[tuple[ChunkId, Location]]:
    """The records to read for a chunk, from it down to a full record or a delta of a chunk
    in `known`, each link's base the next (push picks the records it sends the same way).

    While gc rechains deltas (rechain.py) a chunk may have two records, its old delta and its
    new one, whose bases point opposite ways along the chain: when the records first found
    lead a chain back onto a chunk it has passed, the chunks' other records are tried
    (depth-first), so a readable chain is always found if there is one.
    """
    from modelvc.store.codecs import CODEC_DELTA

    chain: list[tuple[ChunkId, Location]] = [(chunk_id, location)]
    walked = [chunk_id]
    untried: list[list[Location] | None] = [None]  # per link: its chunk's other records, once listed
    while True:
        link_id, link = chain[-1]
        if link.codec != CODEC_DELTA or link.base in known:
            return chain
        base = link.base
        following = None
        if base is not None and len(chain) <= MAX_CHAIN_READ and base not in walked:
            following = index.locate(base)
            if following is None:
                raise MissingChunkError(
                    f"chunk {base.hex()[:10]}, the base of delta chunk {link_id.hex()[:10]}, is missing",
                    hint="run 'mvc fsck' to see which versions it breaks")
        if following is not None and base is not None:
            chain.append((base, following))
            walked.append(base)
            untried.append(None)
            continue
        while True:  # a dead end: another record of the deepest chunk that has one left
            if untried[-1] is None:
                last_id, last = chain[-1]
                untried[-1] = [other for other in index.locate_all(last_id) if other != last]
            if untried[-1]:
                chain[-1] = (chain[-1][0], untried[-1].pop(0))
                break
            if len(chain) == 1:
                raise _looping(chunk_id)
            chain.pop()
            walked.pop()
            untried.pop()


def _locate(index: ChunkIndex, chunk_id: ChunkId) -> Location:
    location = index.locate(chunk_id)
    if location is None:
        raise MissingChunkError(f"chunk {chunk_id.hex()[:10]} is missing from the store",
                                hint="run 'mvc fsck' to see which versions it breaks")
    return location


class ChunkWriter:
    """Appends new chunks to packs; chunks become visible to readers when `close` seals them.

    A full pack is sealed (fsync, rename, index) by a background thread while the next one
    fills: the fsync of 256 MiB takes a good part of a second, during which the pipeline
    would otherwise stand still. `close` waits for every seal and reports the first failure.
    """

    def __init__(self, store: ChunkStore) -> None:
        self.store = store
        self._pack: PackWriter | None = None
        self._pending: set[bytes] = set()
        self._sealing: list[tuple[threading.Thread, list[BaseException]]] = []
        self._sealed: list[SealedPack] = []  # appended to by the sealing threads too
        self.new_chunks = 0
        self.new_raw_bytes = 0
        self.new_stored_bytes = 0

    def needs(self, chunk_id: ChunkId) -> bool:
        return chunk_id not in self._pending and not self.store.has_good(chunk_id)

    def append(self, chunk_id: ChunkId, codec: int, raw_len: int, payload: bytes,
               base: bytes | None = None) -> None:
        self.append_many([(chunk_id, codec, raw_len, payload, base)])

    def append_many(self, records: list[tuple[ChunkId, int, int, bytes, bytes | None]]) -> None:
        """Append (chunk id, codec, raw length, payload, base) records, those of each pack in one
        write; a chunk already appended is skipped. A full pack is sealed in the background."""
        taken: list[tuple[ChunkId, int, int, bytes, bytes | None]] = []
        projected = self._pack.size if self._pack is not None else 0  # the open pack's size after `taken`
        for record in records:
            chunk_id, _, raw_len, payload, _ = record
            if chunk_id in self._pending:
                continue
            if self._pack is None:
                self._pack = PackWriter(self.store.backend, self.store.pack_max_bytes)
                projected = self._pack.size
            taken.append(record)
            self._pending.add(chunk_id)
            self.new_chunks += 1
            self.new_raw_bytes += raw_len
            self.new_stored_bytes += len(payload)
            projected += RECORD_HEADER.size + len(payload)
            if projected >= self._pack.max_bytes:
                self._pack.append_many(taken)
                taken = []
                self._seal_in_background(self._pack)
                self._pack = None
        if taken:
            assert self._pack is not None
            self._pack.append_many(taken)

    def _seal_in_background(self, pack: PackWriter) -> None:
        errors: list[BaseException] = []

        def seal() -> None:
            try:
                pack.finish()
            except BaseException as exc:  # noqa: BLE001 - handed to close()
                errors.append(exc)
                pack.abort()
            else:
                self._note_sealed(pack)

        thread = threading.Thread(target=seal, name="mvc-seal", daemon=False)
        thread.start()
        self._sealing.append((thread, errors))

    def _wait_for_seals(self) -> None:
        sealing, self._sealing = self._sealing, []
        failures = []
        for thread, errors in sealing:
            thread.join()
            failures.extend(errors)
        if failures:
            raise failures[0]

    def _note_sealed(self, pack: PackWriter) -> None:
        if pack.sealed is not None:
            self._sealed.append(pack.sealed)

    def close(self) -> None:
        """Seal the open pack and make every chunk written so far visible (added to the
        store's loaded index, without reading back the indexes it read before)."""
        try:
            try:
                if self._pack is not None:
                    pack, self._pack = self._pack, None
                    try:
                        pack.finish()
                    except BaseException:
                        pack.abort()
                        raise
                    self._note_sealed(pack)
            finally:
                self._wait_for_seals()
        except BaseException:
            self.store.reload()
            raise
        finally:
            if self.new_chunks:
                self.store.packs_sealed += 1
        sealed, self._sealed = self._sealed, []
        self.store.add_sealed(sealed)

    def abort(self) -> None:
        if self._pack is not None:
            self._pack.abort()
            self._pack = None
        try:
            self._wait_for_seals()
        except BaseException:  # noqa: BLE001 - the error that caused the abort matters more
            pass

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
            self.store.reload()
