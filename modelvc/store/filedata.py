"""Moving a file's bytes into the chunk store and back out, streamed and in parallel.

Work is handed to the thread pool in batches of consecutive chunks (about BATCH_BYTES), so
the per-task overhead is small next to the hashing and coding, and at most IN_FLIGHT_BYTES
of the file are being worked on at once: memory stays bounded whatever the file size.
"""

from __future__ import annotations

import bisect
import fcntl
import os
import stat
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from modelvc.formats import Layout
from modelvc.ids import ChunkId, hash_bytes_raw
from modelvc.objects import Manifest
from modelvc.store.chunker import CdcRegion, ChunkParams, ChunkSpan, cdc_window_spans, plan_regions
from modelvc.store.chunkstore import ChunkStore, ChunkWriter
from modelvc.store.fileread import (
    DescriptorSource,
    cached_pages,
    check_unchanged,
    pages_spanned,
    read_ahead,
    read_exact,
    stable_file,
)
from modelvc.store.parallel import ordered_map

if TYPE_CHECKING:
    from modelvc.store.delta import DeltaBase

Advance = Callable[[int], None]  # told the bytes just processed (a Progress's advance)
T = TypeVar("T")

BATCH_BYTES = 8 << 20
IN_FLIGHT_BYTES = 64 << 20


def detect_layout(source: DescriptorSource, name: str, params: ChunkParams) -> Layout | None:
    if not params.model_aware or source.size == 0:
        return None
    from modelvc.formats.detect import read_layout

    return read_layout(source, name)


def batches(items: Sequence[T], lengths: Sequence[int], limit: int = BATCH_BYTES) -> list[list[T]]:
    """Consecutive items grouped into runs of about `limit` bytes (one task each)."""
    groups: list[list[T]] = []
    group: list[T] = []
    size = 0
    for item, length in zip(items, lengths, strict=True):
        group.append(item)
        size += length
        if size >= limit:
            groups.append(group)
            group, size = [], 0
    if group:
        groups.append(group)
    return groups


@dataclass(frozen=True)
class IngestResult:
    manifest: Manifest
    layout: Layout | None
    stat: os.stat_result  # the file's, before and after it was read


@dataclass(frozen=True)
class _Chunk:
    """One span after a worker has seen it: its id, and its encoding when the store needs it."""

    chunk_id: ChunkId
    length: int
    codec: int
    payload: bytes | None
    base: bytes | None = None


@dataclass(frozen=True)
class PreviousVersion:
    """The version of the same path that a new one may be stored as deltas against."""

    layout: Layout | None
    chunks: tuple[tuple[str, int], ...]


def encode_span(store: ChunkStore, piece: memoryview, itemsize: int | None, base: bytes | None,
                max_depth: int) -> tuple[int, bytes, bytes | None]:
    """(codec, payload, base): a delta against `base` when that is smaller, else the plain codec.

    The chain of deltas behind a base is kept under `max_depth`, so reading any block
    never applies more than that many deltas. A delta is taken without coding the block
    plainly too when it is small enough on its own, or clearly smaller than the base's own
    plain coding (a nudged block codes plainly about as well as its base did): fp32 nudges
    delta at about 0.7 of raw, under the 0.84 of plain planes.
    """
    from modelvc.errors import IntegrityError
    from modelvc.store.codecs import CODEC_DELTA, CODEC_PLANES, encode_chunk
    from modelvc.store.delta import DELTA_GOOD_ENOUGH, DELTA_UNDER_BASE, encode_delta

    delta = None
    stored_base = store.index.locate(base) if base is not None and itemsize is not None else None
    if base is not None and itemsize is not None and stored_base is not None and store.chain_depth(base) < max_depth:
        try:
            delta = encode_delta(piece, store.read(base), itemsize)
        except IntegrityError:  # never build on a damaged base; fsck will report it
            delta = None
        if delta is not None:
            base_plain = stored_base.payload_len if stored_base.codec == CODEC_PLANES else 0
            if (len(delta) <= DELTA_GOOD_ENOUGH * len(piece)
                    or (stored_base.raw_len == len(piece) and len(delta) <= DELTA_UNDER_BASE * base_plain)):
                return CODEC_DELTA, delta, base
    codec, payload = encode_chunk(piece, itemsize)
    if delta is not None and len(delta) < len(payload):
        return CODEC_DELTA, delta, base
    return codec, payload, None


def ingest_file(path: Path, params: ChunkParams, store: ChunkStore, writer: ChunkWriter | None,
                advance: Advance | None = None, previous: PreviousVersion | None = None,
                max_delta_depth: int = 0, shown_as: str | None = None,
                follow_links: bool = False) -> IngestResult:
    """Chunk, hash and (with a writer) store a file; without a writer only compute its manifest.

    Workers read each batch with pread into a buffer of their own, then hash each span and
    encode the new ones from that one copy, so what is stored is always what was hashed,
    whatever a writer does to the file meanwhile; the calling thread only appends payloads
    to the pack, in file order. A file that changed while it was read (its stat before and
    after differ, or a read came up short) raises FileChangedError naming it as `shown_as`.
    """
    shown = shown_as or str(path)
    with stable_file(path, shown, follow_links) as (fd, before):
        source = DescriptorSource(fd, before.st_size)
        layout = detect_layout(source, path.name, params)
        base_of: dict[int, DeltaBase] = {}
        if previous is not None and writer is not None and max_delta_depth > 0:
            from modelvc.store.delta import plan_bases

            # Only float spans get a base, and those the layout fixes: CDC regions need not be read.
            spans = [span for span in plan_regions(layout, before.st_size, params) if isinstance(span, ChunkSpan)]
            bases = plan_bases(spans, layout, previous.layout, list(previous.chunks))
            base_of = {span.offset: base for span, base in zip(spans, bases, strict=True) if base is not None}

        def work(batch: _Batch) -> list[_Chunk]:
            data = batch.data if batch.data is not None else read_exact(fd, batch.start, batch.end - batch.start, shown)
            view = memoryview(data)
            done = []
            given_up: set[str] = set()  # tensors a delta did not pay off for earlier in this batch
            for span in batch.spans:
                piece = view[span.offset - batch.start:span.end - batch.start]
                chunk_id = hash_bytes_raw(piece)
                if writer is None or not writer.needs(chunk_id):
                    done.append(_Chunk(chunk_id, span.length, 0, None))
                    continue
                planned = base_of.get(span.offset)
                offered = planned if planned is not None and planned.tensor not in given_up else None
                codec, payload, base = encode_span(store, piece, span.itemsize,
                                                   offered.chunk if offered else None, max_delta_depth)
                if offered is not None and base is None:
                    # The plain coding beat the delta, as it does for every block of a retrained
                    # tensor, each such try costing a base decoded and a delta coded for nothing:
                    # the tensor's later blocks in this batch are coded plainly. Batches are fixed
                    # by the file, so what is stored stays deterministic.
                    given_up.add(offered.tensor)
                done.append(_Chunk(chunk_id, span.length, codec, payload, base))
            return done

        def submitted(batches: Iterator[_Batch]) -> Iterator[_Batch]:
            for batch in batches:
                if batch.data is None:
                    read_ahead(fd, batch.start, batch.end - batch.start)
                yield batch

        chunks: list[tuple[str, int]] = []
        planned_batches = submitted(_planned_batches(fd, before.st_size, layout, params, shown))
        pool = store.pool if store is not None else None  # no store: hashing only
        for done in ordered_map(work, planned_batches, weight=_Batch.weight, max_weight=IN_FLIGHT_BYTES, pool=pool):
            for chunk in done:
                if chunk.payload is not None and writer is not None:
                    writer.append(chunk.chunk_id, chunk.codec, chunk.length, chunk.payload, chunk.base)
                chunks.append((chunk.chunk_id.hex(), chunk.length))
            if advance:
                advance(sum(chunk.length for chunk in done))
        del work
        check_unchanged(path, before, shown, follow_links)
    return IngestResult(Manifest(sum(length for _, length in chunks), tuple(chunks)), layout, before)


@dataclass(frozen=True)
class _Batch:
    """Consecutive spans handed to one worker, with their bytes when planning had to read them."""

    spans: list[ChunkSpan]
    data: bytes | None = None  # from spans[0].offset on, at least up to spans[-1].end

    @property
    def start(self) -> int:
        return self.spans[0].offset

    @property
    def end(self) -> int:
        return self.spans[-1].end

    def weight(self) -> int:
        return len(self.data) if self.data is not None else self.end - self.start


def _planned_batches(fd: int, size: int, layout: Layout | None, params: ChunkParams,
                     shown: str) -> Iterator[_Batch]:
    """The file's spans in batches of about BATCH_BYTES, planned as the file is read.

    Spans the layout fixes need no data until a worker reads them. A region FastCDC cuts is
    read here, a window at a time, and its window goes with its spans, so the cuts, the hash
    and the encoding of each chunk all come from one read.
    """
    group: list[ChunkSpan] = []
    group_bytes = 0
    for planned in plan_regions(layout, size, params):
        if isinstance(planned, ChunkSpan):
            group.append(planned)
            group_bytes += planned.length
            if group_bytes >= BATCH_BYTES:
                yield _Batch(group)
                group, group_bytes = [], 0
            continue
        if group:
            yield _Batch(group)
            group, group_bytes = [], 0
        yield from _cdc_batches(fd, planned, params, shown)
    if group:
        yield _Batch(group)


def _cdc_batches(fd: int, region: CdcRegion, params: ChunkParams, shown: str) -> Iterator[_Batch]:
    window = max(BATCH_BYTES, 2 * params.cdc_max)
    position = region.offset
    while position < region.end:
        data = read_exact(fd, position, min(window, region.end - position), shown)
        spans = cdc_window_spans(memoryview(data), position, region.end, params)
        yield _Batch(spans, data)
        position = spans[-1].end


@dataclass(frozen=True)
class LocalCopy:
    """A file on disk believed to hold `manifest`: a source of chunks that skips the store.

    Switching between nearby versions rewrites a file most of whose chunks the old file
    already holds. Nothing is trusted: each reused chunk is hashed like a stored one, and read
    from the store instead when the file no longer holds it.
    """

    path: Path
    manifest: Manifest

    def offsets_by_id(self) -> dict[bytes, int]:
        return {bytes.fromhex(chunk_id): offset
                for (chunk_id, _), offset in zip(self.manifest.chunks, self.manifest.chunk_offsets(), strict=True)}


# A record at least this fraction of its chunk saves no disk reads over the old file's copy.
STORED_AS_BIG_AS_RAW = 0.9


class _OldFile:
    """The open local copy, and which source of each chunk costs less.

    A chunk in the page cache is copied from the old file (a memory copy). One that is not
    would be read from the disk either way: from the old file at its full size, or from the
    store at its record's, 0.6 of it for bf16, plus the decoding. Where the disk is the
    bottleneck the smaller read wins, so the store is read unless its record saves nothing
    (stored raw) or needs its bases decoded too (a delta); without the kernel's page-cache
    count (cachestat, Linux 6.5) the old file is read, as it is always the source that needs
    no decoding. A chunk the store cannot give intact is taken from the old file whatever it
    costs.
    """

    def __init__(self, fd: int, offsets: dict[bytes, int], store: ChunkStore) -> None:
        self.fd = fd
        self.offsets = offsets
        self.store = store

    def read(self, chunk_id: ChunkId, length: int) -> bytes | memoryview:
        from modelvc.errors import IntegrityError

        offset = self.offsets.get(chunk_id)
        if offset is None:
            return self.store.read(chunk_id)
        if self._copy_costs_less(chunk_id, offset, length):
            data = _read_verified(self.fd, offset, length, chunk_id)
            return self.store.read(chunk_id) if data is None else data
        try:
            return self.store.read(chunk_id)
        except IntegrityError:
            data = _read_verified(self.fd, offset, length, chunk_id)
            if data is None:
                raise
            return data

    def _copy_costs_less(self, chunk_id: ChunkId, offset: int, length: int) -> bool:
        cached = cached_pages(self.fd, offset, length)
        if cached is None or cached >= pages_spanned(offset, length):
            return True
        location = self.store.index.locate(chunk_id)
        return (location is None or location.base is not None
                or location.payload_len >= STORED_AS_BIG_AS_RAW * location.raw_len)


def write_file(manifest: Manifest, handle: BinaryIO, store: ChunkStore,
               advance: Advance | None = None, local: LocalCopy | None = None,
               done: frozenset[int] = frozenset()) -> None:
    """Write a file's bytes: chunks decoded and verified in parallel, written in order.

    Into a regular file, workers write each chunk at its offset themselves (no copy through
    the calling thread), taking it from `local` where that still holds it. `done`: the
    indexes of chunks already at their offsets in it (ops/filling.py), left as they are.
    """
    fd = _positional_fd(handle)
    if fd is None:
        _write_stream(manifest, handle, store, advance)
        return
    base = handle.tell()
    offsets = manifest.chunk_offsets()
    indexes = [index for index in range(len(manifest.chunks)) if index not in done]
    groups = batches(indexes, [manifest.chunks[index][1] for index in indexes])
    with _opened(local, store) as old_file:

        def fetch_and_write(group: list[int]) -> int:
            written = 0
            for index in group:
                chunk_id_hex, length = manifest.chunks[index]
                chunk_id = bytes.fromhex(chunk_id_hex)
                data = store.read(chunk_id) if old_file is None else old_file.read(chunk_id, length)
                pwrite_all(fd, data, base + offsets[index])
                written += length
            return written

        def group_bytes(group: list[int]) -> int:
            return sum(manifest.chunks[index][1] for index in group)

        for written in ordered_map(fetch_and_write, groups, weight=group_bytes, max_weight=IN_FLIGHT_BYTES,
                                   pool=store.pool):
            if advance:
                advance(written)
    handle.seek(base + manifest.size)


@contextmanager
def _opened(local: LocalCopy | None, store: ChunkStore) -> Iterator[_OldFile | None]:
    """The local copy, open; None when there is none or it cannot be opened."""
    fd = -1
    if local is not None:
        try:
            fd = os.open(local.path, os.O_RDONLY)
        except OSError:
            local = None
    try:
        yield _OldFile(fd, local.offsets_by_id(), store) if local is not None else None
    finally:
        if fd >= 0:
            os.close(fd)


def _read_verified(fd: int, offset: int, length: int, chunk_id: ChunkId) -> bytes | None:
    """The chunk's bytes from a local file, or None unless they are exactly the chunk."""
    try:
        data = os.pread(fd, length, offset)
    except OSError:
        return None
    if len(data) != length or hash_bytes_raw(data) != chunk_id:
        return None
    return data


def _positional_fd(handle: BinaryIO) -> int | None:
    """The descriptor of `handle` when it is a regular file that accepts positional writes."""
    try:
        fd = handle.fileno()
        handle.flush()
        handle.tell()
        appending = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND  # pwrite would append
        return fd if stat.S_ISREG(os.fstat(fd).st_mode) and not appending else None
    except (AttributeError, OSError, ValueError):  # io.BytesIO and the like, pipes
        return None


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written


def _write_stream(manifest: Manifest, handle: BinaryIO, store: ChunkStore, advance: Advance | None) -> None:
    def fetch(chunk: tuple[str, int]) -> bytes | memoryview:
        return store.read(bytes.fromhex(chunk[0]))

    for data in ordered_map(fetch, manifest.chunks, window=16, pool=store.pool):
        handle.write(data)
        if advance:
            advance(len(data))


class StoredFileSource:
    """Random access to a stored file version, reading only the chunks a range touches."""

    def __init__(self, manifest: Manifest, store: ChunkStore) -> None:
        self.manifest = manifest
        self.store = store
        self.size = manifest.size
        self._offsets = manifest.chunk_offsets()
        self.bytes_read = 0
        self._cache: tuple[int, bytes | memoryview] | None = None

    def _chunk(self, index: int) -> bytes | memoryview:
        if self._cache is not None and self._cache[0] == index:
            return self._cache[1]
        data = self.store.read(bytes.fromhex(self.manifest.chunks[index][0]))
        self.bytes_read += len(data)
        self._cache = (index, data)
        return data

    def read(self, offset: int, length: int) -> bytes:
        end = min(offset + length, self.size)
        parts = []
        position = offset
        while position < end:
            index = bisect.bisect_right(self._offsets, position) - 1
            data = self._chunk(index)
            start = position - self._offsets[index]
            piece = data[start:start + (end - position)]
            parts.append(piece)
            position += len(piece)
        return b"".join(parts)
