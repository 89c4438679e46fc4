"""Helpers for the modeldiff tests: chunk lists cut like modelvc's, and versions of files."""

from __future__ import annotations

from itertools import pairwise

from blake3 import blake3

from modelvc.formats.detect import read_layout
from modelvc.modeldiff import FileVersion
from tests.modelfiles import BytesSource


def chunk_at(data: bytes, start: int, end: int) -> tuple[str, int, int]:
    return blake3(data[start:end]).hexdigest(), start, end - start


def segment_chunks(data: bytes, block: int) -> tuple[tuple[str, int, int], ...]:
    """Cut at every segment boundary, and inside a segment every `block` bytes from its
    first byte: the cuts modelvc makes, computed here independently of the store."""
    layout = read_layout(BytesSource(data))
    assert layout is not None
    chunks = []
    for segment in layout.segments:
        for start in range(segment.offset, segment.end, block):
            chunks.append(chunk_at(data, start, min(start + block, segment.end)))
    return tuple(chunks)


def fixed_chunks(data: bytes, block: int, first: int = 0) -> tuple[tuple[str, int, int], ...]:
    """Cut every `block` bytes counting from `first` (a first chunk of `first` bytes),
    blind to the layout."""
    cuts = sorted({0, len(data), *range(first, len(data), block)})
    return tuple(chunk_at(data, a, b) for a, b in pairwise(cuts) if b > a)


def version(data: bytes, name: str = "", chunks=None) -> tuple[FileVersion, BytesSource]:
    """A FileVersion over counted bytes; the source's counters are reset after the layout
    is read, so they show what the comparison itself reads."""
    source = BytesSource(data)
    result = FileVersion(source, read_layout(source, name), chunks)
    source.bytes_read = 0
    source.reads = 0
    return result, source
