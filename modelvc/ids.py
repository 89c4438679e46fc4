"""Ids: the blake3 of raw bytes.

One convention everywhere: an object's id (manifest, tree, commit, tag) is an `ObjectId`, the
64 lowercase hex digits people see and refs hold; a chunk's id is a `ChunkId`, the 32 raw bytes
the chunk index and packs hold (a manifest's encoding writes it as hex, read back with
`bytes.fromhex`).
"""

from __future__ import annotations

import re
from typing import Any, TypeAlias

ObjectId: TypeAlias = str
ChunkId: TypeAlias = bytes

ID_BYTES = 32
ID_HEX = 64
SHORT_HEX = 10
MIN_PREFIX = 4
# "No object": the old side of a ref's creation and the new side of its deletion, as in git.
ZERO_ID = "0" * ID_HEX

_HEX_RE = re.compile(r"^[0-9a-f]+$")


def hash_bytes(data: bytes | memoryview) -> str:
    """The id of a byte string (a chunk, or an object's canonical encoding)."""
    return _blake3()(data).hexdigest()


def hash_bytes_raw(data: bytes | memoryview) -> bytes:
    return _blake3()(data).digest()


def blake3_hasher() -> Any:
    """A blake3 hasher to update part by part (the digest of parts joined, without joining them)."""
    return _blake3()()


_hasher = None


def _blake3():
    """blake3's constructor, imported on first use: an import statement per call cost about
    3 µs, as much as hashing a small object (fsck hashes one per object and chunk)."""
    global _hasher
    if _hasher is None:
        from blake3 import blake3

        _hasher = blake3
    return _hasher


def is_full_id(text: str) -> bool:
    return len(text) == ID_HEX and bool(_HEX_RE.match(text))


def is_hex_prefix(text: str) -> bool:
    return MIN_PREFIX <= len(text) <= ID_HEX and bool(_HEX_RE.match(text))


def short(object_id: str) -> str:
    return object_id[:SHORT_HEX]
