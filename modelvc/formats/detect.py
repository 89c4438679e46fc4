"""Pick the reader for a file.

`read_layout` is the one entry point: it never raises on the file's bytes (a file it cannot
read is simply unknown: None), so a strange or hostile file can never stop an `mvc add`.
Readers raise `MalformedLayout` (formats/base.py) for anything they do not trust; it never
leaves this module.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import NamedTuple

from modelvc.formats import ByteSource, Layout
from modelvc.formats.base import MALFORMED_ERRORS, read_exact

LayoutReader = Callable[[ByteSource, str], Layout]


class ReaderEntry(NamedTuple):
    """A reader, known by the magic bytes its files start with. The module is imported only
    when a file matches, so commands which never read layouts do not pay for the readers."""

    matches: Callable[[bytes], bool]
    module: str
    function: str


# Magic bytes decide, first match wins; the name only labels tensors (an .npy's stem).
READERS: tuple[ReaderEntry, ...] = (
    ReaderEntry(lambda magic: magic.startswith(b"\x93NUMPY"), "modelvc.formats.npy", "read_npy_layout"),
    ReaderEntry(lambda magic: magic.startswith(b"GGUF"), "modelvc.formats.gguf", "read_gguf_layout"),
    ReaderEntry(lambda magic: magic.startswith((b"PK\x03\x04", b"PK\x05\x06")),
                "modelvc.formats.zipped", "read_zip_layout"),
    ReaderEntry(lambda magic: len(magic) > 8 and magic[8:9] == b"{",
                "modelvc.formats.safetensors", "read_safetensors_layout"),
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
        reader = reader_for(read_exact(source, 0, min(size, 16)))
        if reader is None:
            return None
        return reader(source, name)
    except MALFORMED_ERRORS:
        return None


def reader_for(magic: bytes) -> LayoutReader | None:
    """The reader of the first table entry whose magic matches, or None."""
    for entry in READERS:
        if entry.matches(magic):
            reader: LayoutReader = getattr(importlib.import_module(entry.module), entry.function)
            return reader
    return None
