"""Pick the reader for a file, and the checks every reader shares.

`read_layout` is the one entry point: it never raises on the file's bytes (a file it cannot
read is simply unknown: None), so a strange or hostile file can never stop an `mvc add`.
Readers raise `MalformedLayout` for anything they do not trust; it never leaves this module.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from modelvc.formats import ByteSource, Layout, Segment

# Headers bigger than this are not headers we want to parse (safetensors caps at 100 MB).
MAX_HEADER_BYTES = 256 * 1024 * 1024


class MalformedLayout(Exception):
    """A reader met bytes it does not trust; read_layout turns it into None."""


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


def read_layout(source: ByteSource, name: str = "") -> Layout | None:
    """The layout of a model file, or None when the format is unknown or the file malformed.

    Only header bytes are read. I/O errors of the source propagate (they are not a property
    of the file's content); nothing else does.
    """
    try:
        size = int(source.size)
        if size < 8:
            return None
        magic = read_exact(source, 0, min(size, 16))
        reader = _pick_reader(magic)
        if reader is None:
            return None
        return reader(source, name)
    except OSError:
        raise
    except Exception:  # MalformedLayout, and anything a hostile header provokes
        return None


def _pick_reader(magic: bytes):
    """Magic bytes decide; the name only labels tensors (an .npy's stem). Imports are lazy
    so that commands which never read layouts do not pay for them."""
    if magic.startswith(b"\x93NUMPY"):
        from modelvc.formats.npy import read_npy_layout

        return read_npy_layout
    if magic.startswith(b"GGUF"):
        from modelvc.formats.gguf import read_gguf_layout

        return read_gguf_layout
    if magic.startswith(b"PK\x03\x04") or magic.startswith(b"PK\x05\x06"):
        from modelvc.formats.zipped import read_zip_layout

        return read_zip_layout
    if len(magic) > 8 and magic[8:9] == b"{":
        from modelvc.formats.safetensors import read_safetensors_layout

        return read_safetensors_layout
    return None
