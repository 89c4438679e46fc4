"""What every reader shares: bounded reads, the distrust exception, and turning the segments a
reader found into a Layout that covers the file exactly.

Readers import this module, never detect.py: detect.py imports the readers, so the
dependency runs one way.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable
from typing import Any

from modelvc.formats import ByteSource, Layout, Segment

# Headers bigger than this are not headers we want to parse (safetensors caps at 100 MB).
MAX_HEADER_BYTES = 256 * 1024 * 1024


class MalformedLayout(Exception):
    """A reader met bytes it does not trust; read_layout turns it into None."""


# What parsing a malformed or hostile file can raise: such a file is no model file of ours,
# never an internal error. Anything else is a bug and reaches the CLI's last resort.
MALFORMED_ERRORS: tuple[type[BaseException], ...] = (
    MalformedLayout, ValueError, LookupError, TypeError, ArithmeticError, EOFError, RecursionError,
    struct.error, zlib.error)


def read_exact(source: ByteSource, offset: int, length: int) -> bytes:
    """Read exactly `length` bytes or declare the file malformed (never past the end)."""
    if offset < 0 or length < 0 or offset + length > source.size:
        raise MalformedLayout(f"range {offset}+{length} outside a {source.size}-byte file")
    data = source.read(offset, length)
    if len(data) != length:
        raise MalformedLayout(f"short read at {offset}: {len(data)} of {length} bytes")
    return bytes(data)


def assemble(
    file_format: str,
    size: int,
    parts: Iterable[Segment],
    *,
    metadata: dict[str, Any] | None = None,
    tensor_table: tuple[Segment, ...] | None = None,
    warnings: Iterable[str] = (),
    unread: Iterable[tuple[str, str]] = (),
) -> Layout:
    """Sort the known segments, reject overlaps, and name every uncovered range "other".

    Zero-length tensor segments are kept (an empty tensor is still a tensor a diff must
    see); zero-length segments of other kinds are dropped.
    """
    ordered = sorted(parts, key=lambda s: (s.offset, s.length > 0))
    segments: list[Segment] = []
    cursor = 0
    for segment in ordered:
        if segment.offset < 0 or segment.length < 0 or segment.end > size:
            raise MalformedLayout(f"segment {segment.name!r} outside the file")
        if segment.offset < cursor:
            raise MalformedLayout(f"segment {segment.name!r} overlaps the one before it")
        if segment.offset > cursor:
            segments.append(Segment("<gap>", cursor, segment.offset - cursor, "other"))
        if segment.length > 0 or segment.kind == "tensor":
            segments.append(segment)
        cursor = segment.end
    if cursor < size:
        segments.append(Segment("<trailing>", cursor, size - cursor, "other"))
    return Layout(
        format=file_format,
        size=size,
        segments=tuple(segments),
        metadata=metadata or {},
        tensor_table=tensor_table,
        warnings=tuple(warnings),
        unread=tuple(unread),
    )
