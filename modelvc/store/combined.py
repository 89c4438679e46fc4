"""The combined index of a pack family: the rows of many pack indexes in one file, sorted by id.

Git's multi-pack index is the model: a command's start-up reads one file (plus the indexes
of packs sealed since it was written) instead of one index per pack, so it does not grow
with the number of packs. It is derived data, written by consolidation (gc, and writers past
gc.auto_packs) through fsutil.atomic_writer; deleting it loses nothing. A reader trusts it
only when its checksum holds and every pack it names is complete on disk; otherwise the
per-pack indexes answer (`load_combined` returns None) and fsck says why (`combined_problem`).

Layout (docs/format.md): magic, pack count (u32), reserved (u32), row count (u64), the pack
names (u8 length, ASCII), the rows (COMBINED_ROW: an index row and the number of its pack),
sorted by chunk id then pack number, and the blake3 of everything before it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelvc.errors import CorruptChunkError
from modelvc.fsutil import atomic_writer
from modelvc.ids import hash_bytes_raw
from modelvc.store import layout
from modelvc.store.backend import Backend, DirectoryBackend, NotFoundInBackend
from modelvc.store.packs import IDX_ROW

if TYPE_CHECKING:
    import numpy as np

COMBINED_MAGIC = b"MVCMIDX\x01"
COMBINED_HEADER = struct.Struct("<8sIIQ")
COMBINED_ROW = struct.Struct("<32sQIIB3s32sI")  # IDX_ROW, then the pack's number in the name list
PACK_NUMBER_OFFSET = IDX_ROW.size


@dataclass(frozen=True)
class Combined:
    packs: list[str]  # the packs it covers; a row's pack number indexes this list
    data: bytes
    rows_start: int
    count: int


def parse_combined(data: bytes, family: str) -> Combined:
    """The combined index in `data`; CorruptChunkError when it is damaged."""
    key = layout.combined_key(family)
    if len(data) < COMBINED_HEADER.size + 32 or data[:8] != COMBINED_MAGIC:
        raise CorruptChunkError(f"{key} is corrupt (bad header)")
    if hash_bytes_raw(memoryview(data)[:-32]) != data[-32:]:
        raise CorruptChunkError(f"{key} is corrupt (checksum mismatch)")
    _, pack_count, _, count = COMBINED_HEADER.unpack_from(data)
    packs, offset = [], COMBINED_HEADER.size
    for _ in range(pack_count):
        length = data[offset] if offset < len(data) else 0
        name = data[offset + 1:offset + 1 + length].decode("ascii", "replace")
        if not layout.is_pack_name(name, family):
            raise CorruptChunkError(f"{key} is corrupt (a bad pack name)")
        packs.append(name)
        offset += 1 + length
    if offset + count * COMBINED_ROW.size + 32 != len(data):
        raise CorruptChunkError(f"{key} is corrupt (wrong length)")
    return Combined(packs, data, offset, count)


def read_combined(backend: Backend, family: str) -> Combined | None:
    """The family's combined index as written (None when there is none); CorruptChunkError
    when it is damaged."""
    try:
        data = backend.read(layout.combined_key(family))
    except NotFoundInBackend:
        return None
    return parse_combined(data, family)


def load_combined(backend: Backend, family: str, listing: list[str]) -> Combined | None:
    """The combined index if it can be trusted for the complete packs `listing`, else None."""
    try:
        combined = read_combined(backend, family)
    except CorruptChunkError:
        return None
    if combined is None or not set(combined.packs) <= set(listing):
        return None
    return combined


def combined_problem(backend: Backend, family: str, listing: list[str]) -> str | None:
    """Why the combined index is not used (damaged, or naming packs that are gone), or None."""
    try:
        combined = read_combined(backend, family)
    except CorruptChunkError as exc:
        return exc.message
    if combined is None:
        return None
    gone = sorted(set(combined.packs) - set(listing))
    if gone:
        return (f"{layout.combined_key(family)} is stale: it names {len(gone)} pack(s) that are gone "
                f"(such as {gone[0]})")
    return None


def combined_dtype() -> np.dtype:
    """COMBINED_ROW as a numpy record type: the fields of packs.idx_dtype, then `pack`."""
    import numpy as np

    return np.dtype([("id", "V32"), ("offset", "<u8"), ("payload_len", "<u4"), ("raw_len", "<u4"),
                     ("codec", "u1"), ("pad", "V3"), ("base", "V32"), ("pack", "<u4")])


def write_combined(backend: DirectoryBackend, family: str, packs: list[str],
                   entries: np.ndarray, pack_numbers: np.ndarray) -> None:
    """Write the combined index of `packs` from index rows and their packs' numbers in `packs`.

    Sorted by chunk id, then pack number; replaced atomically, so a reader sees the old file
    or the new one.
    """
    import numpy as np

    rows = np.zeros(len(entries), dtype=combined_dtype())
    for name in entries.dtype.names or ():
        rows[name] = entries[name]
    rows["pack"] = pack_numbers
    words = np.frombuffer(entries["id"].tobytes(), dtype=">u8").reshape(-1, 4) if len(entries) else \
        np.zeros((0, 4), dtype=">u8")
    order = np.lexsort((pack_numbers, words[:, 3], words[:, 2], words[:, 1], words[:, 0]))
    names = b"".join(bytes([len(name)]) + name.encode("ascii") for name in packs)
    body = COMBINED_HEADER.pack(COMBINED_MAGIC, len(packs), 0, len(rows)) + names + rows[order].tobytes()
    with atomic_writer(backend.local_path(layout.combined_key(family))) as handle:
        handle.write(body)
        handle.write(hash_bytes_raw(body))


def remove_combined(backend: Backend, family: str) -> bool:
    """Delete the combined index (it is derived data); whether there was one."""
    try:
        backend.delete(layout.combined_key(family))
    except NotFoundInBackend:
        return False
    return True
