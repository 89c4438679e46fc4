"""The union of all pack indexes: where each chunk is, whatever the number of packs.

The rows come from the family's combined index, when it can be trusted, and from the index
of each pack it does not cover (sealed since it was written): a handful of files whatever
the number of packs. Every table of rows stays as read (bytes, sorted by chunk id); a lookup
table maps a chunk id to (table, row). A store of up to SMALL_INDEX_ROWS chunks (about
64 GB of 1 MiB blocks) uses a dict, built in a few milliseconds without numpy, whose import alone costs
0.13 s: most commands on such stores then never load numpy. A larger store uses one numpy
table sorted by the first 8 bytes of the id, searched by bisection, which a dict of
millions of entries would not match in memory or load time (a million chunks: about
90 MB and a fraction of a second).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modelvc.ids import ChunkId
from modelvc.store import layout
from modelvc.store.backend import Backend, NotFoundInBackend
from modelvc.store.badchunks import BadRecords
from modelvc.store.combined import COMBINED_ROW, PACK_NUMBER_OFFSET, combined_dtype, load_combined
from modelvc.store.packs import IDX_HEADER_SIZE, IDX_ROW, NO_BASE, Location, SealedPack, idx_dtype, read_idx_rows

if TYPE_CHECKING:
    import numpy as np

SMALL_INDEX_ROWS = 1 << 16
# Bisecting one table costs about what putting ROWS_PER_BISECTION rows into the dict does
# (measured: 0.9 us a bisection, over tables of 3 to 50,000 rows; 0.35 us a row): lookups
# bisect every table until they have cost what building the lookup table would, then build it.
ROWS_PER_BISECTION = 3

_ID_LENGTH = 32
_TABLE_SHIFT = 32  # a (table, row) pair packed into one int: table << 32 | row
_PACK_NUMBER = struct.Struct("<I")

Lookup = Callable[[bytes], "int | None"]  # chunk id -> packed (table, row), None when absent


@dataclass(frozen=True)
class _Table:
    """Rows sorted by chunk id: one pack's index (`pack` is its number) or the combined
    index (`pack` is None: each row carries its pack's number)."""

    data: bytes
    start: int
    count: int
    stride: int
    pack: int | None


class ChunkIndex:
    """Chunk id -> Location over every complete pack of a family; add_sealed() after this
    process sealed packs, reload() after packs were added or removed otherwise."""

    def __init__(self, backend: Backend, small_limit: int = SMALL_INDEX_ROWS,
                 bad: BadRecords = frozenset(), family: str = layout.PACK_PREFIX) -> None:
        self.backend = backend
        self.family = family  # chunk packs, or the metadata packs (store/objects.py)
        self.small_limit = small_limit
        self.bad = bad
        self.reload()

    def reload(self) -> None:
        self.listing = layout.complete_packs(self.backend, self.family)  # what reload saw on disk
        combined = load_combined(self.backend, self.family, self.listing)
        self.combined_packs = combined.packs if combined else []
        self.packs: list[str] = list(self.combined_packs)  # a Location's pack is packs[number]
        self._tables: list[_Table] = []
        if combined is not None:
            self._tables.append(_Table(combined.data, combined.rows_start, combined.count, COMBINED_ROW.size, None))
        covered = set(self.combined_packs)
        for name in self.listing:
            if name in covered:
                continue
            try:
                data, count = read_idx_rows(self.backend, name)
            except NotFoundInBackend:  # removed by gc (in another process) since listed
                continue
            self._tables.append(_Table(data, IDX_HEADER_SIZE, count, IDX_ROW.size, len(self.packs)))
            self.packs.append(name)
        self._count = sum(table.count for table in self._tables)
        self._where: dict[bytes, int] | None = None  # the dict lookup's table, while small
        self._duplicates: set[bytes] = set()  # ids with several records (a rechaining in progress)
        self._bisections_left = self._count // ROWS_PER_BISECTION
        self._built = False
        self._base_find: Lookup = self._bisected_or_table_lookup
        self._prefer_records()

    def add_sealed(self, sealed: list[SealedPack], bad: BadRecords | None = None) -> bool:
        """Add packs this process just sealed, from the index bytes it wrote, reading no index.

        Only when the packs on disk are exactly those read before plus `sealed` (one listing);
        otherwise (another process added packs, gc removed some) nothing changes and False says
        the caller must read the whole index again. `bad`: the bad-records list as it is now.
        A fresh record of a chunk whose old record is listed as bad is preferred, as after a
        reload.
        """
        known = set(self.listing)
        new = list({pack.name: pack for pack in sealed if pack.name not in known}.values())
        on_disk = layout.complete_packs(self.backend, self.family)
        if on_disk != sorted(known | {pack.name for pack in new}):
            return False
        added: list[_Table] = []
        for pack in new:
            (count,) = struct.unpack_from("<Q", pack.index_data, 8)
            added.append(_Table(pack.index_data, IDX_HEADER_SIZE, count, IDX_ROW.size, len(self.packs)))
            self.packs.append(pack.name)
        first = len(self._tables)
        self._tables.extend(added)  # before any lookup can hand out a place in them
        self._count += sum(table.count for table in added)
        if not self._built:  # still looked up by bisection, the new tables included
            self._bisections_left += sum(table.count for table in added) // ROWS_PER_BISECTION
        elif self._where is not None and self._count <= self.small_limit:
            for number, table in enumerate(added, first):
                self._where.update(self._dict_rows(number, table))
            self._duplicates |= self._dict_duplicates()
        elif self._count <= self.small_limit:
            self._base_find = self._dict_lookup()
        else:  # a numpy table is sorted again from the rows in memory (no index is read)
            self._where = None
            self._base_find = self._sorted_lookup()
        self.listing = on_disk
        if bad is not None:
            self.bad = bad | self.bad
        self._prefer_records()
        return True

    def _prefer_records(self) -> None:
        """Make a chunk with a record listed as bad resolve to another record of it, if any, and
        a chunk with several records (gc rechaining deltas, reverse.py) to a whole one if it has
        one: the newest version then reads without a delta even before gc drops the old record
        (set in one assignment: other threads may be looking up meanwhile)."""
        good = {}
        for chunk_id in {chunk_id for chunk_id, _ in self.bad} | self._duplicates:
            places = [place for place in self._places(chunk_id)
                      if (chunk_id, self.packs[self._pack_number(place)]) not in self.bad]
            whole = [place for place in places if self._row(place)[6] == NO_BASE]
            if whole or places:
                good[chunk_id] = (whole or places)[-1]
        find = self._base_find
        self._find = (lambda chunk_id: good[chunk_id] if chunk_id in good else find(chunk_id)) if good else find

    def _places(self, chunk_id: ChunkId) -> list[int]:
        """Every row holding `chunk_id`, by bisection over each table (sorted by chunk id)."""
        places = []
        for number, table in enumerate(self._tables):
            row = self._first_row_from(table, chunk_id)
            while row < table.count and self._id_at(table, row) == chunk_id:
                places.append((number << _TABLE_SHIFT) + row)
                row += 1
        return places

    @staticmethod
    def _id_at(table: _Table, row: int) -> bytes:
        start = table.start + row * table.stride
        return table.data[start:start + _ID_LENGTH]

    def _first_row_from(self, table: _Table, key: bytes) -> int:
        """The first row of a table whose id is not below `key` (bisection)."""
        low, high = 0, table.count
        while low < high:
            middle = (low + high) // 2
            if self._id_at(table, middle) < key:
                low = middle + 1
            else:
                high = middle
        return low

    def ids_with_prefix(self, prefix: bytes, odd_nibble: int | None = None) -> set[bytes]:
        """Ids that start with `prefix` (and then the half byte `odd_nibble`, for a prefix of an
        odd number of hex digits): a bisection in each table's sorted rows, no whole-store scan."""
        found: set[bytes] = set()
        if not prefix and odd_nibble is None:  # every id (stats counts them): sliced table by table
            for table in self._tables:
                data, end = table.data, table.start + table.count * table.stride
                found.update([data[start:start + _ID_LENGTH] for start in range(table.start, end, table.stride)])
            return found
        for table in self._tables:
            row = self._first_row_from(table, prefix)
            while row < table.count:
                chunk_id = self._id_at(table, row)
                if not chunk_id.startswith(prefix):
                    break
                if odd_nibble is None or chunk_id[len(prefix)] >> 4 == odd_nibble:
                    found.add(chunk_id)
                row += 1
        return found

    def _bisected_or_table_lookup(self, chunk_id: ChunkId) -> int | None:
        """The first lookups bisect each table: a command that looks up a few chunks (commit -a
        of 3 small files in a store of 50,000) builds no lookup table, which would cost more
        than all its bisections. Once they have cost as much, the table is built, once."""
        tables = len(self._tables)
        if self._bisections_left >= tables:
            self._bisections_left -= tables
            return self._last_place(chunk_id)
        self._built = True
        self._base_find = self._dict_lookup() if self._count <= self.small_limit else self._sorted_lookup()
        self._prefer_records()
        return self._find(chunk_id)

    def _last_place(self, chunk_id: ChunkId) -> int | None:
        """The row holding `chunk_id` in the last table that has it, its last such row: the one
        the dict lookup finds."""
        for number in range(len(self._tables) - 1, -1, -1):
            table = self._tables[number]
            row = self._first_row_from(table, chunk_id)
            if row < table.count and self._id_at(table, row) == chunk_id:
                while row + 1 < table.count and self._id_at(table, row + 1) == chunk_id:
                    row += 1
                return (number << _TABLE_SHIFT) + row
        return None

    def _dict_lookup(self) -> Lookup:
        where: dict[bytes, int] = {}
        for number, table in enumerate(self._tables):
            where.update(self._dict_rows(number, table))
        self._where = where
        self._duplicates = self._dict_duplicates()
        return where.get

    def _dict_duplicates(self) -> set[bytes]:
        """Ids with more than one record, found only when the dict has fewer keys than rows."""
        if self._where is None or len(self._where) == self._count:
            return set()
        seen: set[bytes] = set()
        twice: set[bytes] = set()
        for number, table in enumerate(self._tables):
            for chunk_id, _ in self._dict_rows(number, table):
                (twice if chunk_id in seen else seen).add(chunk_id)
        return twice

    @staticmethod
    def _dict_rows(number: int, table: _Table) -> Iterator[tuple[bytes, int]]:
        """(chunk id, place) of each row of table `number`."""
        data, end = table.data, table.start + table.count * table.stride
        ids = (data[start:start + _ID_LENGTH] for start in range(table.start, end, table.stride))
        first = number << _TABLE_SHIFT
        return zip(ids, range(first, first + table.count), strict=True)

    def _sorted_lookup(self) -> Lookup:
        import numpy as np

        ids = self.entries()["id"].tobytes()
        keys = np.frombuffer(ids, dtype=">u8").reshape(-1, _ID_LENGTH // 8)[:, 0].astype(np.uint64)
        places = np.concatenate([(np.uint64(number) << np.uint64(_TABLE_SHIFT))
                                 + np.arange(table.count, dtype=np.uint64)
                                 for number, table in enumerate(self._tables)] or [np.zeros(0, np.uint64)])
        order = np.argsort(keys, kind="stable")
        keys, places = keys[order], places[order]
        same_key = np.flatnonzero(keys[1:] == keys[:-1])  # candidates only: the 8-byte keys may collide
        self._duplicates = {self._row(int(places[i]))[0] for i in same_key
                            if self._row(int(places[i]))[0] == self._row(int(places[i + 1]))[0]}

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

    def _row_start(self, place: int) -> tuple[_Table, int]:
        table = self._tables[place >> _TABLE_SHIFT]
        return table, table.start + (place & ((1 << _TABLE_SHIFT) - 1)) * table.stride

    def _row(self, place: int) -> tuple:
        table, start = self._row_start(place)
        return IDX_ROW.unpack_from(table.data, start)

    def _pack_number(self, place: int) -> int:
        table, start = self._row_start(place)
        if table.pack is not None:
            return table.pack
        return _PACK_NUMBER.unpack_from(table.data, start + PACK_NUMBER_OFFSET)[0]

    def __len__(self) -> int:
        return self._count

    def contains(self, chunk_id: ChunkId) -> bool:
        return self._find(chunk_id) is not None

    def contains_good(self, chunk_id: ChunkId) -> bool:
        """Whether the chunk has a record not listed as bad (else it must be stored again)."""
        place = self._find(chunk_id)
        return place is not None and (not self.bad or (chunk_id, self.packs[self._pack_number(place)]) not in self.bad)

    def locate(self, chunk_id: ChunkId) -> Location | None:
        place = self._find(chunk_id)
        if place is None:
            return None
        _, offset, payload_len, raw_len, codec, _, base = self._row(place)
        return Location(self.packs[self._pack_number(place)], offset, payload_len, raw_len, codec,
                        None if base == NO_BASE else base)

    def raw_length(self, chunk_id: ChunkId) -> int | None:
        """The chunk's raw length, or None when absent: locate() without building a Location
        (fsck checks every manifest's chunk lengths)."""
        place = self._find(chunk_id)
        return None if place is None else self._row(place)[3]

    def locate_all(self, chunk_id: ChunkId) -> list[Location]:
        """Every record of a chunk, whole ones first: a chunk has several while gc rechains it."""
        found = []
        for place in self._places(chunk_id):
            _, offset, payload_len, raw_len, codec, _, base = self._row(place)
            found.append(Location(self.packs[self._pack_number(place)], offset, payload_len, raw_len, codec,
                                  None if base == NO_BASE else base))
        return sorted(found, key=lambda location: location.base is not None)

    def rows(self) -> Iterator[tuple]:
        """Every row of every table as an IDX_ROW tuple, without numpy (whose import alone
        outweighs a whole-store pass over a small store)."""
        for table in self._tables:
            view = memoryview(table.data)[table.start:table.start + table.count * table.stride]
            if table.pack is not None:
                yield from IDX_ROW.iter_unpack(view)
            else:
                yield from (row[:-1] for row in COMBINED_ROW.iter_unpack(view))

    def entries(self) -> np.ndarray:
        """Every row of every table as one numpy table (table by table), for whole-store scans."""
        import numpy as np

        dtype = idx_dtype()
        tables = []
        for table in self._tables:
            if table.pack is not None:
                tables.append(np.frombuffer(table.data, dtype=dtype, count=table.count, offset=table.start))
                continue
            rows = np.frombuffer(table.data, dtype=combined_dtype(), count=table.count, offset=table.start)
            plain = np.empty(table.count, dtype=dtype)
            for name in dtype.names or ():
                plain[name] = rows[name]
            tables.append(plain)
        return np.concatenate(tables) if tables else np.zeros(0, dtype=dtype)

    def pack_numbers(self) -> np.ndarray:
        """For each row of entries(), the number of its pack in `self.packs`."""
        import numpy as np

        numbers = [np.full(table.count, table.pack, dtype=np.uint32) if table.pack is not None else
                   np.frombuffer(table.data, dtype=combined_dtype(), count=table.count, offset=table.start)["pack"]
                   .astype(np.uint32) for table in self._tables]
        return np.concatenate(numbers) if numbers else np.zeros(0, dtype=np.uint32)
