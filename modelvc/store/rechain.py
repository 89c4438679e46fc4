"""Rechaining (gc): store each delta chain so that its newest version is whole and older ones
are deltas of newer ones (reverse deltas, as git's repack chooses bases freely).

`add` stores a new block as a delta against the same block of the previous version: cheap to
write, but the newest version, the one most often read, then has the longest chain to apply,
and applying one link costs about twice decoding a whole block (zstd-decoding the difference
planes is most of it: 1.01 vs 0.52 ms per MiB of bf16). gc turns such chains around.

A chain here is a component of the graph whose edges are delta records (a block and its base),
live chunks only. Its newest chunk (the one in the newest commit by generation, a staged one
above all) becomes its root, stored whole; every other chunk a delta of its neighbour on the
way to the root, a breadth-first walk over the same edges (so a delta is only ever taken
between blocks that were already related), restarting from a whole block where the depth
would pass `delta_max_depth`. A chunk that already has a record matching that plan keeps it;
the others get a new record, written into new packs, and
their old records are superseded: gc drops them when it rewrites their packs, after the new
packs are sealed. Until then a chunk has two records and readers take either
(ChunkIndex prefers a whole one; ChunkStore never walks a chain back onto itself).

Only chains whose every record is older than gc's grace period are rechained, so that the
superseded records can be dropped in the same run.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from modelvc.errors import IntegrityError
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.store.chunkindex import ChunkIndex
from modelvc.store.chunkstore import ChunkStore
from modelvc.store.packs import NO_BASE, RECORD_HEADER, Location, PackWriter, SealedPack

MAX_IN_FLIGHT_BYTES = 256 << 20  # raw bytes of the chains being re-encoded at once
MAX_CACHED_BYTES = 64 << 20  # raw bytes of one chain's chunks kept while it is re-encoded

Record = tuple[bytes, int, int, bytes, bytes | None]  # chunk id, codec, raw length, payload, base


@dataclass
class Chain:
    """One chain's plan: its chunks from the root outwards, and each one's new base (None: whole)."""

    nodes: list[bytes]
    bases: dict[bytes, bytes | None]
    rewrite: list[bytes]  # chunks with no record matching the plan, in `nodes` order
    records: dict[bytes, list[Location]]  # every record of every chunk, as planned from
    raw_bytes: int = 0


@dataclass
class Rechaining:
    """What rechaining wrote, and the old records that gc may now drop."""

    chains: int = 0
    records: int = 0
    packs: list[str] = field(default_factory=list)
    superseded: set[tuple[bytes, str]] = field(default_factory=set)  # (chunk id, pack)


def plan_chains(index: ChunkIndex, live: set[bytes], newness: Callable[[bytes], int], max_depth: int,
                old_enough: Callable[[str], bool]) -> Iterator[Chain]:
    """The chains worth changing: those whose plan differs from what is stored."""
    import numpy as np

    table = index.entries()
    deltas = table[table["base"] != np.void(NO_BASE)]
    neighbours: dict[bytes, set[bytes]] = {}
    for chunk_id, base in zip(deltas["id"].tolist(), deltas["base"].tolist(), strict=True):
        if chunk_id in live and base in live and chunk_id != base:
            neighbours.setdefault(chunk_id, set()).add(base)
            neighbours.setdefault(base, set()).add(chunk_id)
    visited: set[bytes] = set()
    for start in sorted(neighbours):
        if start in visited:
            continue
        component = _component(start, neighbours)
        visited |= component
        records = {chunk_id: index.locate_all(chunk_id) for chunk_id in component}
        if not all(old_enough(location.pack) for found in records.values() for location in found):
            continue
        root = max(component, key=lambda chunk_id: (newness(chunk_id), chunk_id))
        nodes, bases = _plan_from(root, neighbours, max_depth)
        rewrite = [chunk_id for chunk_id in nodes if not _matching(records[chunk_id], bases[chunk_id])]
        if rewrite or any(len(found) > 1 for found in records.values()):
            yield Chain(nodes, bases, rewrite, records, sum(records[c][0].raw_len for c in rewrite))


def _component(start: bytes, neighbours: dict[bytes, set[bytes]]) -> set[bytes]:
    found, pending = {start}, [start]
    while pending:
        for other in neighbours[pending.pop()]:
            if other not in found:
                found.add(other)
                pending.append(other)
    return found


def _plan_from(root: bytes, neighbours: dict[bytes, set[bytes]],
               max_depth: int) -> tuple[list[bytes], dict[bytes, bytes | None]]:
    """Breadth-first from the root: each chunk a delta of the one it was reached from, whole
    where the depth would pass max_depth."""
    bases: dict[bytes, bytes | None] = {root: None}
    depth = {root: 0}
    nodes = [root]
    pending = deque([root])
    while pending:
        chunk_id = pending.popleft()
        for other in sorted(neighbours[chunk_id]):
            if other in bases:
                continue
            depth[other] = depth[chunk_id] + 1 if depth[chunk_id] < max_depth else 0
            bases[other] = chunk_id if depth[other] else None
            nodes.append(other)
            pending.append(other)
    return nodes, bases


def _matching(records: list[Location], base: bytes | None) -> Location | None:
    """A record already stored as planned: a whole one for a root, else a delta of `base`."""
    return next((location for location in records if location.base == base), None)


def rechain(store: ChunkStore, chains: Iterator[Chain], progress: Progress = NO_PROGRESS) -> Rechaining:
    """Write the planned records into new packs (sealed before this returns) and list the
    records they supersede. Every chain's chunks are read verified before they are re-encoded."""
    from modelvc.store.parallel import ordered_map

    result = Rechaining()
    writer: PackWriter | None = None

    def seal(writer: PackWriter) -> None:
        name = writer.finish()
        if name is not None:
            result.packs.append(name)
            if writer.sealed is not None:
                sealed.append(writer.sealed)

    sealed: list[SealedPack] = []
    planned = list(chains)
    progress.start("Rechaining", sum(chain.raw_bytes for chain in planned))
    try:
        for chain, records in ordered_map(lambda chain: (chain, _encode(store, chain)), planned,
                                          weight=lambda chain: chain.raw_bytes, max_weight=MAX_IN_FLIGHT_BYTES,
                                          pool=store.pool):
            progress.advance(chain.raw_bytes)
            if records is None:  # a chunk does not read back: left as it is, for fsck to report
                continue
            for record in records:
                if (writer is not None and not writer.empty
                        and writer.size + RECORD_HEADER.size + len(record[3]) > store.pack_max_bytes):
                    seal(writer)
                    writer = None
                if writer is None:
                    writer = PackWriter(store.backend, store.pack_max_bytes)
                writer.append_many([record])
            result.chains += 1
            result.records += len(records)
            result.superseded |= _superseded(chain, {record[0]: record[4] for record in records})
        if writer is not None:
            seal(writer)
            writer = None
    finally:
        if writer is not None:
            writer.abort()
        progress.finish()
    store.add_sealed(sealed)
    return result


def _superseded(chain: Chain, written: dict[bytes, bytes | None]) -> set[tuple[bytes, str]]:
    """The old records of every chunk of the chain but the one each keeps (none if rewritten)."""
    dropped = set()
    for chunk_id in chain.nodes:
        found = chain.records[chunk_id]
        kept = None if chunk_id in written else _matching(found, chain.bases[chunk_id])
        packs_kept = {kept.pack} if kept is not None else set()
        dropped |= {(chunk_id, location.pack) for location in found if location.pack not in packs_kept}
    return dropped


def _encode(store: ChunkStore, chain: Chain) -> list[Record] | None:
    """The new records of a chain's chunks: a delta of the planned base when that is smaller
    than the plain coding, else the plain coding (a chain may restart early, never late).
    None when a chunk of the chain does not read back verified."""
    if not chain.rewrite:
        return []
    try:
        return _encoded(store, chain)
    except IntegrityError:
        return None


def _encoded(store: ChunkStore, chain: Chain) -> list[Record]:
    from modelvc.store.codecs import CODEC_DELTA, encode_chunk
    from modelvc.store.delta import DELTA_GOOD_ENOUGH, encode_delta

    itemsize = _itemsize(store, chain)
    known: dict[bytes, bytes | memoryview] = {}  # chunks read, where the next reads' chains stop

    def raw(chunk_id: bytes) -> bytes | memoryview:
        if chunk_id not in known:
            known[chunk_id] = store.read(chunk_id, known)
            while len(known) > 2 and sum(len(data) for data in known.values()) > MAX_CACHED_BYTES:
                del known[next(iter(known))]  # the oldest: a long history's chain is read bit by bit
        return known[chunk_id]

    records: list[Record] = []
    for chunk_id in chain.rewrite:
        base = chain.bases[chunk_id]
        base_data = raw(base) if base is not None else None
        data = raw(chunk_id)
        delta = encode_delta(data, base_data, itemsize) if base_data is not None else None
        if delta is not None and len(delta) <= DELTA_GOOD_ENOUGH * len(data):
            records.append((chunk_id, CODEC_DELTA, len(data), delta, base))
            continue
        codec, payload = encode_chunk(data, itemsize)
        if delta is not None and len(delta) < len(payload):
            records.append((chunk_id, CODEC_DELTA, len(data), delta, base))
        else:
            records.append((chunk_id, codec, len(data), payload, None))
    return records


def _itemsize(store: ChunkStore, chain: Chain) -> int:
    """The element size of a chain's blocks, as its delta payloads record it (all alike: a
    delta is only taken between blocks of one tensor's dtype)."""
    for found in chain.records.values():
        for location in found:
            if location.base is not None:
                return store.reader.read_record(location)[0]
    raise AssertionError("a chain has at least one delta")
