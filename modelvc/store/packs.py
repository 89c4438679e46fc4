"""Pack files: chunk payloads appended to a few big files, each with a sorted index file.

A pack `pack-<name>.pack` is a header followed by records (a fixed record header, then the
payload). Its index `pack-<name>.idx` lists every record sorted by chunk id. The index is
written last: a pack without an index is an interrupted write, ignored by readers and
deleted by gc. The name is the blake3 of the pack's bytes (modelvc.store.layout owns names).

Packs are read and written through the directory backend's files (pread, writev and early
writeback on the local disk); indexes and scans go through the backend's own operations.
"""

from __future__ import annotations

import os
import struct
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelvc.errors import CorruptChunkError, MissingChunkError
from modelvc.fsutil import durable_step, fsync_dir, naming
from modelvc.ids import ChunkId, hash_bytes_raw
from modelvc.store import layout
from modelvc.store.backend import Backend, ContentConflictInBackend, DirectoryBackend

PACK_MAGIC = b"MVCPACK\x01"
IDX_MAGIC = b"MVCIDX\x00\x01"
RECORD_MAGIC = b"CK"
# magic, codec, reserved, raw length, payload length, chunk id, base chunk id (zeros: none)
RECORD_HEADER = struct.Struct("<2sBBII32s32s")
NO_BASE = bytes(32)

WRITEBACK_BYTES = 32 << 20

# An index row: chunk id, record offset, payload length, raw length, codec, padding, base id.
IDX_HEADER_SIZE = 16  # magic, then the row count (u64)
IDX_ROW = struct.Struct("<32sQIIB3s32s")

if TYPE_CHECKING:
    import numpy as np


def idx_dtype() -> np.dtype:
    """IDX_ROW as a numpy record type, for the commands that scan whole indexes."""
    import numpy as np

    return np.dtype([("id", "V32"), ("offset", "<u8"), ("payload_len", "<u4"),
                     ("raw_len", "<u4"), ("codec", "u1"), ("pad", "V3"), ("base", "V32")])


@dataclass(frozen=True)
class SealedPack:
    """A pack this process has just sealed, with its index's bytes: a loaded ChunkIndex adds
    it without reading the index back."""

    name: str
    index_data: bytes


@dataclass(frozen=True)
class Location:
    pack: str
    offset: int  # of the record header
    payload_len: int
    raw_len: int
    codec: int
    base: bytes | None

    @property
    def payload_offset(self) -> int:
        return self.offset + RECORD_HEADER.size


_sync_file_range: Callable[[int, int, int, int], int] | None | bool = False
_SYNC_FILE_RANGE_WRITE = 2


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a range of a file to disk without waiting (Linux sync_file_range).

    Durability still comes from the fsync that follows; this only lets the disk work while
    the rest of the file is produced. A no-op where the call does not exist.
    """
    global _sync_file_range
    if _sync_file_range is False:
        _sync_file_range = _load_sync_file_range()
    if callable(_sync_file_range) and length > 0:
        _sync_file_range(fd, offset, length, _SYNC_FILE_RANGE_WRITE)


def _load_sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        function = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function


def pack_names(packs_dir: Path, family: str = layout.PACK_PREFIX) -> list[str]:
    """Names of the complete packs of a family in a local packs directory (those whose index exists)."""
    return layout.complete_packs(DirectoryBackend(packs_dir.parent), family)


def read_idx_rows(backend: Backend, name: str) -> tuple[bytes, int]:
    """A pack index's bytes, checked against its checksum, and its number of rows.

    Row i is IDX_ROW at IDX_HEADER_SIZE + i * IDX_ROW.size; rows are sorted by chunk id.
    NotFoundInBackend when the index is gone (gc in another process).
    """
    data = backend.read(layout.idx_key(name))
    if len(data) < IDX_HEADER_SIZE + 32 or data[:8] != IDX_MAGIC:
        raise CorruptChunkError(f"pack index {name}.idx is corrupt (bad header)")
    (count,) = struct.unpack_from("<Q", data, 8)
    body_end = IDX_HEADER_SIZE + count * IDX_ROW.size
    if body_end + 32 != len(data) or hash_bytes_raw(data[:body_end]) != data[body_end:]:
        raise CorruptChunkError(f"pack index {name}.idx is corrupt (checksum mismatch)")
    return data, count


def read_idx(backend: Backend, name: str) -> np.ndarray:
    import numpy as np

    data, count = read_idx_rows(backend, name)
    return np.frombuffer(data, dtype=idx_dtype(), count=count, offset=IDX_HEADER_SIZE)


def write_idx(backend: Backend, name: str, records: list[tuple]) -> bytes:
    """Write an index of IDX_ROW rows (a few thousand per pack), sorted by chunk id; its bytes,
    as read_idx_rows reads them (the writer's own index adds them without reading them back).

    The same pack always has the same index, so one written before (a retried write of the
    same pack) is kept as it is.
    """
    rows = b"".join(IDX_ROW.pack(*record) for record in sorted(records, key=lambda r: r[0]))
    body = IDX_MAGIC + struct.pack("<Q", len(records)) + rows
    data = body + hash_bytes_raw(body)
    try:
        backend.write(layout.idx_key(name), data)
        return data
    except ContentConflictInBackend:
        raise CorruptChunkError(f"pack index {name}.idx is corrupt: it differs from its pack's records",
                                hint="run 'mvc fsck' to see which versions it breaks") from None


class PackWriter:
    """Appends records to a new pack; `finish` names it and makes it visible by writing the index.

    Records go straight to the descriptor (one writev each, no buffering copy), and the disk
    writes are started every WRITEBACK_BYTES, so that the fsync sealing the pack finds most of
    it already written instead of the whole pack at once. The bytes are hashed as they go, for
    the pack's name.
    """

    def __init__(self, backend: DirectoryBackend, max_bytes: int, family: str = layout.PACK_PREFIX) -> None:
        from blake3 import blake3

        self.backend = backend
        self.max_bytes = max_bytes
        self.family = family
        self.tmp_path = backend.local_path(layout.temp_pack_key(family))
        self.tmp_path.parent.mkdir(parents=True, exist_ok=True)
        with naming(self.tmp_path.parent, str(self.tmp_path)):
            self._fd: int | None = os.open(self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        self._hasher = blake3()
        self.size = 0
        self._written_back = 0
        self._records: list[tuple] = []
        self.sealed: SealedPack | None = None  # set by finish
        try:
            self._write([PACK_MAGIC])
        except BaseException:  # no one holds this writer yet to abort it
            self.abort()
            raise

    def _write(self, parts: list[bytes | memoryview]) -> None:
        assert self._fd is not None, "the pack is already finished"
        total = sum(len(part) for part in parts)
        for part in parts:
            self._hasher.update(part)
        with naming(self.tmp_path.parent):
            written = os.writev(self._fd, parts)
            if written < total:  # a short write: finish the rest piece by piece
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest):]
        self.size += total
        if self.size - self._written_back >= WRITEBACK_BYTES:
            start_writeback(self._fd, self._written_back, self.size - self._written_back)
            self._written_back = self.size

    def append(self, chunk_id: ChunkId, codec: int, raw_len: int, payload: bytes | memoryview,
               base: bytes | None = None) -> None:
        self.append_many([(chunk_id, codec, raw_len, payload, base)])

    def append_many(self, records: Sequence[tuple[ChunkId, int, int, bytes | memoryview, bytes | None]]) -> None:
        """Append (chunk id, codec, raw length, payload, base) records in one write.

        One record goes out as its header and payload (a big chunk is not copied); several, as
        one joined buffer: small chunks of many files cost one write and one hash update, not
        one of each per header and payload."""
        parts: list[bytes | memoryview] = []
        offset = self.size
        for chunk_id, codec, raw_len, payload, base in records:
            parts.append(RECORD_HEADER.pack(RECORD_MAGIC, codec, 0, raw_len, len(payload), chunk_id,
                                            base or NO_BASE))
            parts.append(payload)
            self._records.append((chunk_id, offset, len(payload), raw_len, codec, b"\0\0\0", base or NO_BASE))
            offset += RECORD_HEADER.size + len(payload)
        if parts:
            self._write(parts if len(parts) <= 2 else [b"".join(parts)])

    def append_records(self, block: bytes | memoryview, rows: list[tuple]) -> None:
        """Append whole records copied from another pack as they are (consolidation).

        `rows` are index rows of the records in `block`, with offsets counted from its start;
        the caller has checked each record's header against its row.
        """
        offset = self.size
        self._write([block])
        self._records += [(row[0], row[1] + offset, *row[2:]) for row in rows]

    @property
    def full(self) -> bool:
        return self.size >= self.max_bytes

    @property
    def empty(self) -> bool:
        return not self._records

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def finish(self) -> str | None:
        """Seal the pack: fsync, rename into place under its content's name, then write its
        index (the commit point). The name, or None for a pack with no records.

        The same bytes written again (a retried write) land on the same name: the rename
        replaces a file with an identical one, and the index is already there.
        """
        assert self._fd is not None, "the pack is already finished"
        try:
            durable_step("seal")
            with naming(self.tmp_path.parent):
                os.fsync(self._fd)
        finally:
            self._close()
        if not self._records:
            self.tmp_path.unlink(missing_ok=True)
            return None
        name = layout.pack_name(self._hasher.digest(), self.family)
        final = self.backend.local_path(layout.pack_key(name))
        indexed_before = self.backend.local_path(layout.idx_key(name)).exists()
        durable_step("rename")
        os.replace(self.tmp_path, final)
        try:
            fsync_dir(final.parent)
            self.sealed = SealedPack(name, write_idx(self.backend, name, self._records))
        except BaseException:  # a pack without its index is invisible: do not leave it behind
            if not indexed_before:  # (one indexed before is the same pack, complete: it stays)
                final.unlink(missing_ok=True)
            raise
        return name

    def abort(self) -> None:
        self._close()
        self.tmp_path.unlink(missing_ok=True)


def header_mismatch(header: tuple, location: Location, chunk_id: ChunkId | None = None) -> str | None:
    """The first field of an unpacked RECORD_HEADER that disagrees with the index row, or None."""
    magic, codec, _, raw_len, payload_len, record_id, base = header
    if magic == RECORD_MAGIC and codec == location.codec and raw_len == location.raw_len \
            and payload_len == location.payload_len and base == (location.base or NO_BASE) \
            and (chunk_id is None or record_id == chunk_id):
        return None  # first, without building the list below: fsck checks every record's header
    expected = (("magic", magic, RECORD_MAGIC), ("codec", codec, location.codec),
                ("raw length", raw_len, location.raw_len), ("payload length", payload_len, location.payload_len),
                ("base id", base, location.base or NO_BASE),
                ("chunk id", record_id, record_id if chunk_id is None else chunk_id))
    return next((name for name, found, wanted in expected if found != wanted), None)


class PackReader:
    """Positional reads from packs, safe from several threads (os.pread, cached descriptors)."""

    def __init__(self, backend: DirectoryBackend) -> None:
        self.backend = backend
        self._fds: dict[str, int] = {}
        self._lock = threading.Lock()

    def _fd(self, pack: str) -> int:
        with self._lock:
            fd = self._fds.get(pack)
            if fd is None:
                try:
                    fd = os.open(self.backend.local_path(layout.pack_key(pack)), os.O_RDONLY)
                except FileNotFoundError:
                    raise MissingChunkError(f"pack {pack} is missing") from None
                self._fds[pack] = fd
            return fd

    def read_record(self, location: Location, chunk_id: ChunkId | None = None) -> memoryview:
        """The payload of a record, after checking its header matches the index row
        (and holds `chunk_id`, when given).

        A view into the one buffer read (header and payload), so the payload is not copied.
        """
        fd = self._fd(location.pack)
        data = os.pread(fd, RECORD_HEADER.size + location.payload_len, location.offset)
        if len(data) != RECORD_HEADER.size + location.payload_len:
            raise CorruptChunkError(f"pack {location.pack} is truncated at offset {location.offset}")
        header = RECORD_HEADER.unpack_from(data)
        wrong = header_mismatch(header, location, chunk_id)
        if wrong:
            raise CorruptChunkError(f"pack {location.pack} has a corrupt record header at offset "
                                    f"{location.offset} ({wrong} differs from its index)")
        return memoryview(data)[RECORD_HEADER.size:]

    def read_range(self, pack: str, offset: int, length: int) -> bytes:
        """`length` bytes of a pack from `offset` (whole records, for consolidation)."""
        data = os.pread(self._fd(pack), length, offset)
        if len(data) != length:
            raise CorruptChunkError(f"pack {pack} is truncated at offset {offset + len(data)}")
        return data

    def close(self) -> None:
        with self._lock:
            for fd in self._fds.values():
                os.close(fd)
            self._fds.clear()


def scan_pack(backend: Backend, name: str) -> list[tuple[bytes, int, int, int, int, bytes]]:
    """Walk a pack's records from the start: (id, offset, payload_len, raw_len, codec, base).

    Used by fsck to cross-check an index, and to tell how much of a damaged pack is readable.
    Reads only the record headers (ranged reads); NotFoundInBackend when the pack is gone.
    """
    key = layout.pack_key(name)
    records = []
    size = backend.stat(key).size
    if backend.read(key, 0, len(PACK_MAGIC)) != PACK_MAGIC:
        raise CorruptChunkError(f"{name}.pack is not a modelvc pack")
    offset = len(PACK_MAGIC)
    while offset < size:
        header = backend.read(key, offset, RECORD_HEADER.size)
        if len(header) < RECORD_HEADER.size:
            break
        magic, codec, _, raw_len, payload_len, chunk_id, base = RECORD_HEADER.unpack(header)
        if magic != RECORD_MAGIC or offset + RECORD_HEADER.size + payload_len > size:
            break
        records.append((chunk_id, offset, payload_len, raw_len, codec, base))
        offset += RECORD_HEADER.size + payload_len
    return records
