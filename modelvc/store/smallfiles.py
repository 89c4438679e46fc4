"""Many files into the store at once: small files in batches, big ones streamed one by one.

For a file of a few KiB the streaming path of a big file (store/filedata.py) costs far more
than hashing and coding it: a thread-pool round trip, a layout read by preads of its own, a
pack write per chunk, a progress update. A file of at most SMALL_FILE_BYTES is instead read
whole by one pread, its layout (when it has one) read from those bytes and its spans cut
from them by plan_chunks: the cuts ingest_file makes, so a file has the same chunks
whichever path stores it. A worker takes a batch of such files; the calling thread appends
a batch's new chunks to the pack in one write and reports the batch's bytes at once.

The guarantees are ingest_file's: a file is opened once, its chunks are hashed and coded
from the one buffer read, and a file that moved, grew, shrank or vanished while read is a
FileChangedError. A small file is stored without deltas: planning them reads the previous
version's manifest and layout from the store, more work than its few KiB could save.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path

from modelvc.formats import Layout
from modelvc.ids import ChunkId, hash_bytes_raw
from modelvc.objects import Manifest
from modelvc.store.chunker import ChunkParams, plan_chunks
from modelvc.store.chunkstore import ChunkStore, ChunkWriter
from modelvc.store.filedata import IN_FLIGHT_BYTES, Advance, IngestResult, PreviousVersion, ingest_file
from modelvc.store.fileread import check_unchanged, read_ahead, read_whole, stable_file

SMALL_FILE_BYTES = 64 << 10  # the FastCDC minimum: a file of unknown format this small is one chunk
BATCH_FILES = 64  # open at once by a worker
BATCH_BYTES = 2 << 20

Record = tuple[ChunkId, int, int, bytes, bytes | None]  # what ChunkWriter.append_many takes


@dataclass(frozen=True)
class FileToStore:
    path: str
    shown: str  # its name in messages (the repository path)
    size: int  # as the caller's stat saw it: decides the path taken, not what is stored
    follow_links: bool = False

    @property
    def small(self) -> bool:
        return self.size <= SMALL_FILE_BYTES


def ingest_files(files: Sequence[FileToStore], params: ChunkParams, store: ChunkStore, writer: ChunkWriter,
                 advance: Advance | None = None,
                 previous_of: Callable[[FileToStore], PreviousVersion | None] | None = None,
                 max_delta_depth: int = 0) -> Iterator[tuple[FileToStore, IngestResult]]:
    """Store `files`, yielding each with its result in the order given.

    A big file is streamed by ingest_file, with the previous version `previous_of` names as
    its delta base; runs of small files go through workers in batches.
    """
    for small, run in groupby(files, key=lambda file: file.small):
        if small:
            yield from _ingest_small(list(run), params, store, writer, advance)
            continue
        for file in run:
            previous = previous_of(file) if previous_of is not None else None
            yield file, ingest_file(Path(file.path), params, store, writer, advance, previous, max_delta_depth,
                                    shown_as=file.shown, follow_links=file.follow_links)


def _ingest_small(files: list[FileToStore], params: ChunkParams, store: ChunkStore, writer: ChunkWriter,
                  advance: Advance | None) -> Iterator[tuple[FileToStore, IngestResult]]:
    from modelvc.store.parallel import ordered_map

    def work(batch: list[FileToStore]) -> list[tuple[IngestResult, list[Record]] | None]:
        with ExitStack() as stack:
            opened = [stack.enter_context(stable_file(file.path, file.shown, file.follow_links)) for file in batch]
            for fd, before in opened:  # read from a cold cache in parallel, not one file after another
                read_ahead(fd, 0, min(before.st_size, SMALL_FILE_BYTES))
            return [read_and_code(file, fd, before, params, writer)
                    for file, (fd, before) in zip(batch, opened, strict=True)]

    batches = _batches(files)
    if len(batches) == 1:  # a few files (commit -a of 3): no worker thread to start, nor its module to import
        done_batches: Iterable[list[tuple[IngestResult, list[Record]] | None]] = [work(batches[0])]
    else:
        done_batches = ordered_map(work, batches, weight=lambda batch: sum(file.size for file in batch),
                                   max_weight=IN_FLIGHT_BYTES, pool=store.pool)
    for batch, done in zip(batches, done_batches, strict=True):
        writer.append_many([record for coded in done if coded is not None for record in coded[1]])
        if advance:
            advance(sum(coded[0].manifest.size for coded in done if coded is not None))
        for file, coded in zip(batch, done, strict=True):
            if coded is None:  # it grew past SMALL_FILE_BYTES since the caller's stat: stream it
                yield file, ingest_file(Path(file.path), params, store, writer, advance, shown_as=file.shown,
                                        follow_links=file.follow_links)
            else:
                yield file, coded[0]


def _batches(files: list[FileToStore]) -> list[list[FileToStore]]:
    groups: list[list[FileToStore]] = []
    group: list[FileToStore] = []
    size = 0
    for file in files:
        group.append(file)
        size += file.size
        if len(group) == BATCH_FILES or size >= BATCH_BYTES:
            groups.append(group)
            group, size = [], 0
    if group:
        groups.append(group)
    return groups


def read_and_code(file: FileToStore, fd: int, before: os.stat_result, params: ChunkParams,
                  writer: ChunkWriter | None) -> tuple[IngestResult, list[Record]] | None:
    """A small file's result and the records of the chunks `writer` lacks, from one read of
    `fd` (the file opened by stable_file, which gave `before`).

    None when the file opened is no longer small (the caller streams it instead).
    """
    from modelvc.store.codecs import encode_chunk

    if before.st_size > SMALL_FILE_BYTES:
        return None
    data = read_whole(fd, before.st_size, file.shown)
    check_unchanged(file.path, before, file.shown, file.follow_links)
    layout = _layout(data, os.path.basename(file.path), params)
    view = memoryview(data)
    chunks: list[tuple[str, int]] = []
    records: list[Record] = []
    for span in plan_chunks(view, layout, params):
        piece = view[span.offset:span.end]
        chunk_id = hash_bytes_raw(piece)
        chunks.append((chunk_id.hex(), span.length))
        if writer is not None and writer.needs(chunk_id):
            codec, payload = encode_chunk(piece, span.itemsize)
            records.append((chunk_id, codec, span.length, payload, None))
    return IngestResult(Manifest(len(data), tuple(chunks)), layout, before), records


class _BufferSource:
    """The ByteSource of a file already read whole: its layout costs no more reads."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:  # no reader asks for these (formats/base.py read_exact)
            return b""
        return self.data[offset:offset + length]


def _layout(data: bytes, name: str, params: ChunkParams) -> Layout | None:
    if not params.model_aware or not data:
        return None
    from modelvc.formats.detect import read_layout

    return read_layout(_BufferSource(data), name)
