"""The union of all pack indexes: where each chunk is, whatever the number of packs.

Every pack's index rows stay as read (bytes, sorted by chunk id); a lookup table maps a
chunk id to (pack, row). A store of up to SMALL_INDEX_ROWS chunks (about 64 GB of 1 MiB
blocks) uses a dict, built in a few milliseconds without numpy, whose import alone costs
0.13 s: most commands on such stores then never load numpy. A larger store uses one numpy
table sorted by the first 8 bytes of the id, searched by bisection, which a dict of
millions of entries would not match in memory or load time (a million chunks: about
90 MB and a fraction of a second).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from modelvc.ids import ChunkId
from modelvc.store import layout
from modelvc.store.backend import Backend, NotFoundInBackend
from modelvc.store.badchunks import BadRecords
from modelvc.store.packs import IDX_HEADER_SIZE, IDX_ROW, NO_BASE, Location, idx_dtype, read_idx_rows

if TYPE_CHECKING:
    import numpy as np

SMALL_INDEX_ROWS = 1 << 16

_ID_LENGTH = 32
_PACK_SHIFT = 32  # a (pack, row) pair packed into one int: pack << 32 | row

Lookup = Callable[[bytes], "int | None"]  # chunk id -> packed (pack, row), None when absent


class ChunkIndex:
    """Chunk id -> Location over every complete pack; reload() after packs are added or removed."""

    def __init__(self, backend: Backend, small_limit: int = SMALL_INDEX_ROWS,
                 bad: BadRecords = frozenset(), family: str = layout.PACK_PREFIX) -> None:
        self.backend = backend
        self.family = family  # chunk packs, or the metadata packs (store/objects.py)
        self.small_limit = small_limit
        self.bad = bad
        self.reload()

    def reload(self) -> None:
        self.packs: list[str] = []
        self._rows: list[tuple[bytes, int]] = []
        for name in layout.complete_packs(self.backend, self.family):
            try:
                rows = read_idx_rows(self.backend, name)
            except NotFoundInBackend:  # removed by gc (in another process) since listed
                continue
            self.packs.append(name)
            self._rows.append(rows)
        self._count = sum(count for _, count in self._rows)
        if self._count <= self.small_limit:
            self._find = self._dict_lookup()
        else:
            self._find = self._sorted_lookup()
        self._prefer_good_records()

    def _prefer_good_records(self) -> None:
        """Make a chunk with a record listed as bad resolve to another record of it, if any."""
        good = {}
        for chunk_id in {chunk_id for chunk_id, _ in self.bad}:
            places = [place for number in range(len(self._rows))
                      if (place := self._place_in_pack(number, chunk_id)) is not None
                      and (chunk_id, self.packs[number]) not in self.bad]
            if places:
                good[chunk_id] = places[-1]
        if good:
            find = self._find
            self._find = lambda chunk_id: good[chunk_id] if chunk_id in good else find(chunk_id)

    def _place_in_pack(self, number: int, chunk_id: ChunkId) -> int | None:
        """Bisection over one pack's rows, which are sorted by chunk id."""
        data, count = self._rows[number]
        low = self._first_row_from(number, chunk_id)
        start = IDX_HEADER_SIZE + low * IDX_ROW.size
        if low < count and data[start:start + _ID_LENGTH] == chunk_id:
            return (number << _PACK_SHIFT) + low
        return None

    def _first_row_from(self, number: int, chunk_id: bytes) -> int:
        """The first row of one pack whose id is not below `chunk_id` (its count if none)."""
        data, count = self._rows[number]
        low, high = 0, count
        while low < high:
            middle = (low + high) // 2
            start = IDX_HEADER_SIZE + middle * IDX_ROW.size
            if data[start:start + _ID_LENGTH] < chunk_id:
                low = middle + 1
            else:
                high = middle
        return low

    def ids_with_prefix(self, prefix: bytes, odd_nibble: int | None = None) -> set[bytes]:
        """Ids that start with `prefix` (and then the half byte `odd_nibble`, for a prefix of an
        odd number of hex digits): a bisection in each pack's sorted rows, no whole-store scan."""
        found = set()
        for number, (data, count) in enumerate(self._rows):
            row = self._first_row_from(number, prefix)
            while row < count:
                start = IDX_HEADER_SIZE + row * IDX_ROW.size
                chunk_id = data[start:start + _ID_LENGTH]
                if not chunk_id.startswith(prefix):
                    break
                if odd_nibble is None or chunk_id[len(prefix)] >> 4 == odd_nibble:
                    found.add(chunk_id)
                row += 1
        return found

    def _dict_lookup(self) -> Lookup:
        where: dict[bytes, int] = {}
        for number, (data, count) in enumerate(self._rows):
            ids = (data[start:start + _ID_LENGTH]
                   for start in range(IDX_HEADER_SIZE, IDX_HEADER_SIZE + count * IDX_ROW.size, IDX_ROW.size))
            where.update(zip(ids, range(number << _PACK_SHIFT, (number << _PACK_SHIFT) + count), strict=True))
        return where.get

    def _sorted_lookup(self) -> Lookup:
        import numpy as np

        ids = self.entries()["id"].tobytes()
        keys = np.frombuffer(ids, dtype=">u8").reshape(-1, _ID_LENGTH // 8)[:, 0].astype(np.uint64)
        places = np.concatenate([(np.uint64(number) << np.uint64(_PACK_SHIFT)) + np.arange(count, dtype=np.uint64)
                                 for number, (_, count) in enumerate(self._rows)] or [np.zeros(0, np.uint64)])
        order = np.argsort(keys, kind="stable")
        keys, places = keys[order], places[order]

        def find(chunk_id: ChunkId) -> int | None:
            key = np.uint64(int.from_bytes(chunk_id[:8], "big"))
            index = int(np.searchsorted(keys, key, side="left"))
            while index < len(keys) and keys[index] == key:
                place = int(places[index])
                if self._row(place)[0] == chunk_id:
                    return place
                index += 1
            return None

        return find

    def _row(self, place: int) -> tuple:
        data, _ = self._rows[place >> _PACK_SHIFT]
        return IDX_ROW.unpack_from(data, IDX_HEADER_SIZE + (place & ((1 << _PACK_SHIFT) - 1)) * IDX_ROW.size)

    def __len__(self) -> int:
        return self._count

    def contains(self, chunk_id: ChunkId) -> bool:
        return self._find(chunk_id) is not None

    def contains_good(self, chunk_id: ChunkId) -> bool:
        """Whether the chunk has a record not listed as bad (else it must be stored again)."""
        place = self._find(chunk_id)
        return place is not None and (not self.bad or (chunk_id, self.packs[place >> _PACK_SHIFT]) not in self.bad)

    def locate(self, chunk_id: ChunkId) -> Location | None:
        place = self._find(chunk_id)
        if place is None:
            return None
        _, offset, payload_len, raw_len, codec, _, base = self._row(place)
        return Location(self.packs[place >> _PACK_SHIFT], offset, payload_len, raw_len, codec,
                        None if base == NO_BASE else base)

    def entries(self) -> np.ndarray:
        """Every row of every pack as one numpy table (pack by pack), for whole-store scans."""
        import numpy as np

        dtype = idx_dtype()
        tables = [np.frombuffer(data, dtype=dtype, count=count, offset=IDX_HEADER_SIZE) for data, count in self._rows]
        return np.concatenate(tables) if tables else np.zeros(0, dtype=dtype)

    def pack_numbers(self) -> np.ndarray:
        """For each row of entries(), the number of its pack in `self.packs`."""
        import numpy as np

        return np.repeat(np.arange(len(self._rows), dtype=np.uint32),
                         [count for _, count in self._rows]).astype(np.uint32)
