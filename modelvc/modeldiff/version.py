"""One side of a comparison: a file's bytes, its layout, and (when stored) its chunk list.

The chunk list lets a diff decide that a tensor is unchanged without reading it: chunk ids
are the blake3 of the chunk's bytes, so equal id lists over a byte range mean equal bytes.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from modelvc.errors import IntegrityError
from modelvc.formats import ByteSource, Layout
from modelvc.ids import short
from modelvc.progress import NO_PROGRESS, Progress

ChunkList = tuple[tuple[str, int, int], ...]


@dataclass(frozen=True)
class FileVersion:
    source: ByteSource  # random access to the file's bytes
    layout: Layout | None  # from read_layout; None = not a model file
    chunks: ChunkList | None = None  # (chunk id hex, offset, length), covering the file in order

    @classmethod
    def read(cls, source: ByteSource, name: str = "", chunks: ChunkList | None = None) -> FileVersion:
        """A version whose layout is read from the source's header (name labels an .npy)."""
        from modelvc.formats.detect import read_layout

        return cls(source, read_layout(source, name), chunks)


class ChunkMap:
    """Chunk ids by byte range: which chunks exactly cover [start, end), if any do."""

    def __init__(self, chunks: ChunkList, size: int) -> None:
        self.chunks = chunks
        self.starts = [offset for _, offset, _ in chunks]
        self.ends = [offset + length for _, offset, length in chunks]
        position = 0
        for chunk_id, offset, length in chunks:
            if offset != position or length <= 0:
                raise ValueError(f"chunk {short(chunk_id)} at {offset} "
                                 f"does not follow the chunk before it at {position}")
            position += length
        if position != size:
            raise ValueError(f"chunks cover {position} bytes of a {size}-byte file")

    def covering(self, start: int, end: int) -> ChunkList | None:
        """The chunks that make up exactly [start, end), or None when the range does not
        begin and end on chunk boundaries."""
        first = bisect.bisect_left(self.starts, start)
        if first == len(self.starts) or self.starts[first] != start:
            return None
        last = bisect.bisect_left(self.ends, end)
        if last == len(self.ends) or self.ends[last] != end or last < first:
            return None
        return self.chunks[first : last + 1]


def chunks_verdict(old: ChunkList, old_start: int, new: ChunkList, new_start: int) -> bool | None:
    """Whether two chunk-framed byte ranges hold equal bytes, as far as the ids can tell.

    Equal id lists: equal bytes. A chunk at the same place (relative offset and length) in
    both ranges with a different id: different bytes. Otherwise the cuts differ (other
    chunking parameters) and only the bytes can tell: None.
    """
    if [chunk_id for chunk_id, _, _ in old] == [chunk_id for chunk_id, _, _ in new]:
        return True
    old_cuts = {(offset - old_start, length): chunk_id for chunk_id, offset, length in old}
    for chunk_id, offset, length in new:
        other = old_cuts.get((offset - new_start, length))
        if other is not None and other != chunk_id:
            return False
    return None


@dataclass
class CountingSource:
    """Counts the bytes a comparison reads, whatever the caller's source counts itself."""

    inner: ByteSource
    bytes_read: int = 0
    chunk_map: ChunkMap | None = field(default=None, repr=False)
    progress: Progress = field(default=NO_PROGRESS, repr=False)

    @property
    def size(self) -> int:
        return self.inner.size

    def read(self, offset: int, length: int) -> bytes:
        data = self.inner.read(offset, length)
        self.bytes_read += len(data)
        self.progress.advance(len(data))
        if len(data) != length:
            raise IntegrityError(
                f"short read: {len(data)} of {length} bytes at offset {offset} of a {self.inner.size}-byte file"
            )
        return data


def open_side(version: FileVersion, progress: Progress = NO_PROGRESS) -> CountingSource:
    chunk_map = None
    if version.chunks is not None and version.layout is not None:
        chunk_map = ChunkMap(version.chunks, version.source.size)
    return CountingSource(version.source, chunk_map=chunk_map, progress=progress)
