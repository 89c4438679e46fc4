"""Moving a file's bytes into the chunk store and back out, streamed and in parallel."""

from __future__ import annotations

import bisect
import mmap
import os
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from modelvc.formats import Layout
from modelvc.ids import hash_bytes_raw
from modelvc.objects import Manifest
from modelvc.store.chunker import ChunkParams, ChunkSpan, plan_chunks
from modelvc.store.chunkstore import ChunkStore, ChunkWriter
from modelvc.store.parallel import ordered_map

Progress = Callable[[int], None]


class BufferSource:
    """A ByteSource over an in-memory or mmap'd buffer."""

    def __init__(self, buffer: memoryview) -> None:
        self.buffer = buffer
        self.size = len(buffer)

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.buffer[offset:offset + length])


@contextmanager
def mapped(path: Path) -> Iterator[memoryview]:
    """The whole file as a read-only memoryview, without reading it into memory."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size == 0:
            yield memoryview(b"")
            return
        mapping = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(mapping)
        try:
            yield view
        finally:
            view.release()
            try:
                mapping.close()
            except BufferError:  # a slice still referenced somewhere; GC closes it
                pass


def detect_layout(view: memoryview, name: str, params: ChunkParams) -> Layout | None:
    if not params.model_aware or len(view) == 0:
        return None
    from modelvc.formats.detect import read_layout

    return read_layout(BufferSource(view), name)


@dataclass(frozen=True)
class IngestResult:
    manifest: Manifest
    layout: Layout | None


def ingest_file(path: Path, params: ChunkParams, store: ChunkStore, writer: ChunkWriter | None,
                progress: Progress | None = None) -> IngestResult:
    """Chunk, hash and (with a writer) store a file; without a writer only compute its manifest."""
    from modelvc.store.codecs import encode_chunk

    with mapped(path) as view:
        layout = detect_layout(view, path.name, params)
        spans = plan_chunks(view, layout, params) if len(view) else []

        def work(span: ChunkSpan) -> tuple[bytes, int, int, bytes | None]:
            piece = view[span.offset:span.offset + span.length]
            chunk_id = hash_bytes_raw(piece)
            if writer is None or not writer.needs(chunk_id):
                return chunk_id, span.length, 0, None
            codec, payload = encode_chunk(piece, span.itemsize)
            return chunk_id, span.length, codec, payload

        chunks: list[tuple[str, int]] = []
        for chunk_id, length, codec, payload in ordered_map(work, spans):
            if payload is not None and writer is not None:
                writer.append(chunk_id, codec, length, payload)
            chunks.append((chunk_id.hex(), length))
            if progress:
                progress(length)
        del work
    return IngestResult(Manifest(sum(length for _, length in chunks), tuple(chunks)), layout)


def write_file(manifest: Manifest, handle: BinaryIO, store: ChunkStore,
               progress: Progress | None = None) -> None:
    """Write a file's bytes: chunks decoded and verified in parallel, written in order."""
    def fetch(chunk: tuple[str, int]) -> bytes:
        return store.read(bytes.fromhex(chunk[0]))

    for data in ordered_map(fetch, manifest.chunks):
        handle.write(data)
        if progress:
            progress(len(data))


class StoredFileSource:
    """Random access to a stored file version, reading only the chunks a range touches."""

    def __init__(self, manifest: Manifest, store: ChunkStore) -> None:
        self.manifest = manifest
        self.store = store
        self.size = manifest.size
        self._offsets = manifest.chunk_offsets()
        self.bytes_read = 0
        self._cache: tuple[int, bytes] | None = None

    def _chunk(self, index: int) -> bytes:
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
