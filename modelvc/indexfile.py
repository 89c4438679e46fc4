"""The index file's encoding (version 2): columns read and written in bulk.

One JSON object per entry, built through a dataclass constructor each, cost most of a
`status` over 50,000 files. Here each field of all entries is one column: the paths one
NUL-separated UTF-8 text, the manifest ids one run of raw bytes, the numbers arrays of
64-bit integers, so reading is a handful of C-level calls whatever the number of entries.
A blake3 trailer over the whole file turns any damage into a refused index, never a wrong
entry. See docs/format.md.
"""

from __future__ import annotations

import json
import sys
from array import array
from collections.abc import Iterator, Mapping, MutableSequence, Sequence
from itertools import repeat
from operator import and_, or_, rshift
from typing import Any

from modelvc.ids import blake3_hasher, hash_bytes_raw, is_full_id

MAGIC = b"MVCINDEX\n"
VERSION = 2
DIGEST_BYTES = 32
ID_BYTES = 32
FLAG_DEREFERENCE = 1
BOOT_SHIFT = 1  # flags >> 1: 1 + the position of the entry's unsynced boot id in "boots", 0 for none
_VALID_MODES = {mode: mode for mode in (0o100644, 0o100755, 0o120000)}


class IdColumn(MutableSequence[str]):
    """The manifest ids column: the file's raw ids in one bytearray, each turned into hex text
    only when read (status never does), replaced in place by `add` (a few of tens of thousands:
    no list of them is built) and written back as they are."""

    def __init__(self, raw: bytes | memoryview) -> None:
        self.raw = bytearray(raw)

    def __len__(self) -> int:
        return len(self.raw) // ID_BYTES

    def __getitem__(self, position):
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        if not 0 <= position < len(self):
            raise IndexError(position)
        return self.raw[ID_BYTES * position:ID_BYTES * position + ID_BYTES].hex()

    def __setitem__(self, position, manifest_id) -> None:
        if isinstance(position, slice) or not 0 <= position < len(self):
            raise IndexError(position)
        self.raw[ID_BYTES * position:ID_BYTES * position + ID_BYTES] = bytes.fromhex(manifest_id)

    def __delitem__(self, position) -> None:
        raise TypeError("an index's id column only has ids replaced")

    def insert(self, position, manifest_id) -> None:
        raise TypeError("an index's id column only has ids replaced")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __iter__(self) -> Iterator[str]:
        return iter(self.hex_list())

    def hex_list(self) -> list[str]:
        """Every id as hex text, by C-level calls only (the hex of all, split every 64 digits)."""
        return self.raw.hex(" ", ID_BYTES).split(" ") if self.raw else []


def encode_index(entries: Mapping[str, Any], tree_id: str | None, commit_id: str | None = None) -> bytes:
    """The file for `entries` (IndexEntry by path): in path order, so equal indexes give
    byte-identical files."""
    ordered = [entries[path] for path in sorted(entries)]
    columns = ([e.path for e in ordered], [e.manifest_id for e in ordered], [e.size for e in ordered],
               [e.mode for e in ordered], [e.mtime_ns for e in ordered], [e.ino for e in ordered],
               [e.unsynced_boot for e in ordered], [e.dereference for e in ordered])
    return encode_columns(columns, tree_id, commit_id)


def encode_columns(columns: tuple[Sequence, ...], tree_id: str | None, commit_id: str | None = None) -> bytes:
    """The file for entries given as decode_index's columns, their paths already sorted.
    `commit_id`: the commit whose tree `tree_id` is, when known (written only then: a reader
    that knows no "commit" ignores it)."""
    paths, ids, sizes, modes, mtimes, inos, unsynced, dereference = columns
    boots = sorted(set(unsynced) - {""})
    if boots or any(dereference):  # by C-level maps: after a checkout every entry names its boot
        boot_bits = {"": 0} | {boot: (number + 1) << BOOT_SHIFT for number, boot in enumerate(boots)}
        linked = map(FLAG_DEREFERENCE.__mul__, map(bool, dereference))
        flags = list(map(or_, map(boot_bits.__getitem__, unsynced), linked))
        if len(flags) != len(paths):
            raise ValueError("the index's columns differ in length")
    else:
        flags = [0] * len(paths)
    path_bytes = "\0".join(paths).encode("utf-8")
    id_bytes = ids.raw if isinstance(ids, IdColumn) else bytes.fromhex("".join(ids))
    unsigned = array("Q", sizes)
    for column in (inos, modes, flags):
        unsigned.extend(array("Q", column))
    times = array("q", mtimes)
    if sys.byteorder != "little":
        unsigned.byteswap()
        times.byteswap()
    header = {"version": VERSION, "count": len(paths), "paths_bytes": len(path_bytes), "boots": boots,
              "tree": tree_id}
    if commit_id is not None and tree_id is not None:
        header["commit"] = commit_id
    parts = [MAGIC, json.dumps(header, separators=(",", ":")).encode(), b"\n", path_bytes, id_bytes,
             memoryview(unsigned).cast("B"), memoryview(times).cast("B")]
    checksum = blake3_hasher()
    for part in parts:
        checksum.update(part)
    return b"".join([*parts, checksum.digest()])  # one copy of the 6 MB of 50,000 entries, not three


def trailer(raw: bytes) -> bytes:
    """The blake3 of everything before it: an index file's identity, known without hashing it
    again once it was checked."""
    return raw[-DIGEST_BYTES:]


def decode_index(raw: bytes) -> tuple[tuple[Any, ...], str | None, str | None]:
    """The columns of a version 2 index file (paths, manifest ids, sizes, modes, mtimes, inodes,
    unsynced boots, dereference flags), the tree id it records and the commit whose tree that
    is (None when not recorded); ValueError, KeyError or TypeError when the file is damaged
    (the caller refuses it)."""
    if len(raw) < len(MAGIC) + DIGEST_BYTES or hash_bytes_raw(memoryview(raw)[:-DIGEST_BYTES]) != trailer(raw):
        raise ValueError("its checksum does not match")
    body_bytes = len(raw) - DIGEST_BYTES  # read in place: no copy of a file of megabytes
    end = raw.index(b"\n", len(MAGIC), body_bytes)
    header = json.loads(raw[len(MAGIC):end])
    if header["version"] != VERSION:
        raise ValueError(f"unknown index version {header['version']!r}")
    count, paths_bytes, boots, tree_id = header["count"], header["paths_bytes"], header["boots"], header["tree"]
    if not all(isinstance(boot, str) and boot for boot in boots):
        raise ValueError("a boot id is not text")
    if tree_id is not None and not is_full_id(tree_id):
        raise ValueError("its tree id is not an object id")
    commit_id = header.get("commit") if tree_id is not None else None
    if commit_id is not None and not is_full_id(commit_id):
        raise ValueError("its commit id is not an object id")
    position = end + 1
    numbers_at = position + paths_bytes + count * ID_BYTES
    if body_bytes != numbers_at + 5 * 8 * count:
        raise ValueError(f"its length does not fit {count} entries")
    view = memoryview(raw)  # columns are read in place: slices of a 6 MB file copied cost page faults
    paths = str(view[position:position + paths_bytes], "utf-8").split("\0") if count else []
    if len(paths) != count:
        raise ValueError(f"it lists {len(paths)} paths for {count} entries")
    ids = IdColumn(view[position + paths_bytes:numbers_at])
    unsigned, mtimes = array("Q"), array("q")
    unsigned.frombytes(view[numbers_at:numbers_at + 4 * 8 * count])
    mtimes.frombytes(view[numbers_at + 4 * 8 * count:body_bytes])
    if sys.byteorder != "little":
        unsigned.byteswap()
        mtimes.byteswap()
    sizes, inos = unsigned[:count].tolist(), unsigned[count:2 * count].tolist()
    try:  # each mode one of three int objects, not 50,000 of them
        modes = list(map(_VALID_MODES.__getitem__, unsigned[2 * count:3 * count]))
    except KeyError:
        raise ValueError(f"a mode is none of {sorted(_VALID_MODES)}") from None
    flags = unsigned[3 * count:].tolist()
    boot_names = ["", *boots]
    if max(flags, default=0) >> BOOT_SHIFT >= len(boot_names):
        raise ValueError("an entry names a boot id the index does not list")
    if any(flags):
        unsynced = list(map(boot_names.__getitem__, map(rshift, flags, repeat(BOOT_SHIFT))))
        dereference = list(map(bool, map(and_, flags, repeat(FLAG_DEREFERENCE))))
    else:
        unsynced, dereference = [""] * count, [False] * count
    return (paths, ids, sizes, modes, mtimes.tolist(), inos, unsynced, dereference), tree_id, commit_id
