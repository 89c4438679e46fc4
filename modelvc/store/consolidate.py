"""Consolidation: merge small packs into big ones, and keep the combined index current.

Records are copied as they are, in runs of whole records read in large blocks (no decoding,
no re-encoding; a delta keeps its base), after each record's header is checked against its
index row. The write order makes a kill at any step harmless: the new packs are sealed (pack,
then index), then the combined index is replaced, and only then are the old packs deleted
(index first, so readers stop using a pack before its data goes). Until then every chunk is
in an old pack, a new one, or both; any copy will do.

gc chooses what to drop (ops/gc.py); a writer past `gc.auto_packs` small packs calls
`auto_consolidate`, which never drops a record (unreachable data is gc's business).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelvc.errors import CorruptChunkError
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.store import layout
from modelvc.store.backend import DirectoryBackend, NotFoundInBackend
from modelvc.store.chunkindex import ChunkIndex
from modelvc.store.combined import remove_combined, write_combined
from modelvc.store.packs import RECORD_HEADER, Location, PackReader, PackWriter, header_mismatch

if TYPE_CHECKING:
    import numpy as np

COPY_BLOCK_BYTES = 8 << 20  # records are read and written in runs of about this size
GEOMETRIC_FACTOR = 2  # a kept pack is at least this many times all smaller ones together


@dataclass
class Consolidation:
    """What a consolidation wrote and removed."""

    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    records: int = 0
    copied_bytes: int = 0
    sources: dict[str, list[tuple[bytes, str]]] = field(default_factory=dict)  # new pack -> (chunk, old pack)


@dataclass(frozen=True)
class PackSet:
    """The packs of one family in a local store, and how to read them."""

    backend: DirectoryBackend
    family: str  # the prefix of the packs' names (layout.FAMILIES)
    reader: PackReader
    max_bytes: int

    def index(self) -> ChunkIndex:
        return ChunkIndex(self.backend, family=self.family)


def copy_records(packs: PackSet, selections: list[tuple[str, np.ndarray]], result: Consolidation,
                 progress: Progress = NO_PROGRESS) -> None:
    """Copy the records of `selections` (a source pack and the index rows to take from it) into
    new packs of at most `max_bytes` each, sealed before this returns."""
    writer: PackWriter | None = None
    taken: list[tuple[bytes, str]] = []

    def seal(writer: PackWriter) -> None:
        name = writer.finish()
        if name is not None:
            result.written.append(name)
            result.sources[name] = result.sources.get(name, []) + taken
        taken.clear()

    progress.start("Repacking", sum(int(rows["payload_len"].sum()) + len(rows) * RECORD_HEADER.size
                                    for _, rows in selections))
    try:
        for pack, rows in selections:
            for block, block_rows in _runs(packs, pack, rows):
                if writer is not None and not writer.empty and writer.size + len(block) > packs.max_bytes:
                    seal(writer)
                    writer = None
                if writer is None:
                    writer = PackWriter(packs.backend, packs.max_bytes, packs.family)
                writer.append_records(block, block_rows)
                taken.extend((row[0], pack) for row in block_rows)
                result.records += len(block_rows)
                result.copied_bytes += len(block)
                progress.advance(len(block))
        if writer is not None:
            seal(writer)
            writer = None
    finally:
        if writer is not None:
            writer.abort()
        progress.finish()


def _runs(packs: PackSet, pack: str, rows: np.ndarray):
    """(block of whole records, their rows with offsets from the block's start), in pack order."""
    limit = max(1, min(COPY_BLOCK_BYTES, packs.max_bytes))
    ordered = sorted(zip(rows["id"].tolist(), rows["offset"].tolist(), rows["payload_len"].tolist(),
                         rows["raw_len"].tolist(), rows["codec"].tolist(), rows["base"].tolist(), strict=True),
                     key=lambda row: row[1])
    first = 0
    while first < len(ordered):
        start = end = ordered[first][1]
        last = first
        while last < len(ordered) and ordered[last][1] == end and (last == first or end - start < limit):
            end += RECORD_HEADER.size + ordered[last][2]
            last += 1
        block = packs.reader.read_range(pack, start, end - start)
        block_rows = []
        for chunk_id, offset, payload_len, raw_len, codec, base in ordered[first:last]:
            location = Location(pack, offset, payload_len, raw_len, codec, None if base == bytes(32) else base)
            wrong = header_mismatch(RECORD_HEADER.unpack_from(block, offset - start), location, chunk_id)
            if wrong:
                raise CorruptChunkError(f"pack {pack} has a corrupt record header at offset {offset} "
                                        f"({wrong} differs from its index)", hint="run 'mvc fsck'")
            block_rows.append((chunk_id, offset - start, payload_len, raw_len, codec, b"\0\0\0", base))
        yield block, block_rows
        first = last


def replace_packs(packs: PackSet, old: list[str], result: Consolidation) -> None:
    """Make the new packs the only home of what the `old` ones held: the combined index of
    what stays first, then the old packs go (each index before its pack)."""
    packs.reader.close()
    write_combined_index(packs, exclude=set(old) - set(result.written))
    for name in old:
        if name in result.written:  # packs are named by content: a copy identical to its source is the source
            continue
        for key in (layout.idx_key(name), layout.pack_key(name)):
            try:
                packs.backend.delete(key)
            except NotFoundInBackend:
                continue
        result.removed.append(name)
    packs.backend.sync_dir(layout.PACKS)


def write_combined_index(packs: PackSet, exclude: frozenset[str] | set[str] = frozenset()) -> int:
    """Write the combined index of every complete pack but `exclude`; the number it covers.

    With fewer than two packs there is nothing to combine: any old combined index goes.
    """
    index = packs.index()
    covered = [name for name in index.packs if name not in exclude]
    if len(covered) < 2:
        remove_combined(packs.backend, packs.family)
        return 0
    import numpy as np

    numbers = {name: number for number, name in enumerate(sorted(covered))}
    remap = np.array([numbers.get(name, len(numbers)) for name in index.packs], dtype=np.uint32)
    entries, pack_of = index.entries(), remap[index.pack_numbers()]
    keep = pack_of < len(numbers)
    write_combined(packs.backend, packs.family, sorted(covered), entries[keep], pack_of[keep])
    return len(covered)


def pack_sizes(packs: PackSet, names: list[str]) -> dict[str, int]:
    """The size of each pack's data file (one gone since listed is left out)."""
    sizes = {}
    for name in names:
        try:
            sizes[name] = packs.backend.stat(layout.pack_key(name)).size
        except NotFoundInBackend:
            continue
    return sizes


def small_packs(packs: PackSet, names: list[str]) -> dict[str, int]:
    """The packs smaller than half of `max_bytes`, with their sizes: those worth merging."""
    return {name: size for name, size in pack_sizes(packs, names).items() if size < packs.max_bytes // 2}


def geometric_selection(sizes: dict[str, int], keep_at_most: int, max_bytes: int) -> list[str]:
    """The smallest packs to merge so that the rest grow geometrically (each at least
    GEOMETRIC_FACTOR times all smaller ones together, as git's geometric repack) and at most
    `keep_at_most` remain; their total bounded by `max_bytes`, which bounds the time taken."""
    ordered = sorted(sizes, key=lambda name: (sizes[name], name))
    cut, below = 0, 0
    for position, name in enumerate(ordered):
        if sizes[name] < GEOMETRIC_FACTOR * below:
            cut = position + 1
        below += sizes[name]
    cut = max(cut, len(ordered) - keep_at_most + 1)
    chosen: list[str] = []
    total = 0
    for name in ordered[:cut]:
        if chosen and total + sizes[name] > max_bytes:
            break
        chosen.append(name)
        total += sizes[name]
    return chosen if len(chosen) >= 2 else []


def consolidate(packs: PackSet, names: list[str], keep: Callable[[bytes, str], bool] | None = None,
                progress: Progress = NO_PROGRESS) -> Consolidation:
    """Merge the packs `names` into new ones, keeping the records `keep(chunk id, pack)` accepts
    (all by default), and remove them."""
    result = Consolidation()
    index = packs.index()
    wanted = set(names)
    entries, pack_of = index.entries(), index.pack_numbers()
    selections = []
    for number, name in enumerate(index.packs):
        if name in wanted:
            rows = entries[pack_of == number]
            if keep is not None:
                rows = rows[[keep(chunk_id.tobytes(), name) for chunk_id in rows["id"]]] if len(rows) else rows
            selections.append((name, rows))
    copy_records(packs, selections, result, progress)
    replace_packs(packs, [name for name, _ in selections], result)
    return result


def auto_consolidate(packs: PackSet, threshold: int) -> Consolidation | None:
    """Merge small packs when more than `threshold` of them (0: never), as git's `gc --auto`:
    everything is kept, only the number of packs shrinks; None when nothing was due."""
    if threshold <= 0:
        return None
    names = layout.complete_packs(packs.backend, packs.family)
    if len(names) <= threshold:
        return None
    sizes = small_packs(packs, names)
    if len(sizes) <= threshold:
        return None
    chosen = geometric_selection(sizes, threshold, packs.max_bytes)
    if not chosen:
        return None
    return consolidate(packs, chosen)
