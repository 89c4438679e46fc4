"""Fetching chunks: a set of chunk ids in, the missing ones read from the remote's packs by
ranged reads coalesced per pack (never one request per chunk), verified, and stored.

A delta chunk comes with any base the local store lacks. Each chunk is decoded and hashed
before it is written: a record whose bytes do not match its id is an IntegrityError naming the
remote pack, and nothing of the fetch is stored. Lazy checkout can call `fetch_chunks` with the
chunks of the files it needs, and a `sink` that writes each verified chunk into those files at
once (ops/filling.py): one decode and one hash per chunk, the file writes overlapping the download.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from modelvc.errors import CorruptChunkError, MissingChunkError
from modelvc.ids import hash_bytes_raw
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.promisor import ChunkSink
from modelvc.repo import Repo
from modelvc.store import layout
from modelvc.store.codecs import CODEC_DELTA, decode_chunk
from modelvc.store.delta import decode_delta
from modelvc.store.parallel import ordered_map
from modelvc.transfer.connect import Connection
from modelvc.transfer.ranges import Wanted, read_records

DECODING_BYTES = 256 << 20  # raw bytes decoded at once at most, beside those kept as bases


@dataclass
class ChunkFetch:
    chunks: int = 0
    stored_bytes: int = 0


def fetch_chunks(repo: Repo, conn: Connection, chunk_ids: set[bytes], progress: Progress = NO_PROGRESS,
                 sink: ChunkSink | None = None) -> ChunkFetch:
    """Store every chunk of `chunk_ids` the local store lacks, from the remote; `sink` is given
    each one's raw bytes once verified (on a worker thread)."""
    local, remote = repo.chunks, conn.view.chunks
    wanted: dict[bytes, Wanted] = {}
    pending = [chunk_id for chunk_id in chunk_ids if not local.has_good(chunk_id)]
    while pending:
        chunk_id = pending.pop()
        if chunk_id in wanted:
            continue
        location = remote.locate(chunk_id)
        if location is None:
            raise MissingChunkError(f"chunk {chunk_id.hex()[:10]} is on neither the remote {conn.remote.url} "
                                    "nor the local store", hint="nothing corrupt was stored; the remote needs repair")
        wanted[chunk_id] = Wanted(chunk_id, location)
        if location.base is not None and location.base not in wanted and not local.has_good(location.base):
            pending.append(location.base)
    result = ChunkFetch()
    if not wanted:
        return result
    bases = {record.location.base for record in wanted.values() if record.location.base is not None}
    progress.start("Fetching", sum(record.location.payload_len for record in wanted.values()))
    try:
        with local.writer() as writer:
            for row in _verified_records(repo, conn, list(wanted.values()), bases, progress, sink):
                writer.append_many([row])
                result.chunks += 1
                result.stored_bytes += len(row[3])
    finally:
        progress.finish()
    return result


def _verified_records(repo: Repo, conn: Connection, wanted: list[Wanted], bases: set[bytes],
                      progress: Progress, sink: ChunkSink | None) -> Iterator[tuple]:
    """(chunk id, codec, raw length, payload, base) of every wanted record, each decoded and
    hashed first (a delta after its base); CorruptChunkError names the first that fails, and
    the caller's writer then drops what it had not sealed.

    Decoding and hashing run on the repository's worker threads (zstd and blake3 release the
    GIL) while later packs are still downloading; records come out in the order they were read.
    Deltas wait until every record has been read, then go in rounds: each round decodes, in
    parallel, the deltas whose base is at hand, so a delta never runs before its base.
    """
    pool = repo.chunks.pool
    raw_of: dict[bytes, bytes | memoryview] = {}  # fetched chunks that fetched deltas build on
    deltas: list[tuple[Wanted, memoryview]] = []

    def fulls() -> Iterator[tuple[Wanted, memoryview]]:
        for record, payload in read_records(conn.backend, wanted, conn.remote.url):
            progress.advance(len(payload))
            if record.location.codec == CODEC_DELTA:
                deltas.append((record, payload))
            else:
                yield record, payload

    def check_full(item: tuple[Wanted, memoryview]) -> tuple[Wanted, memoryview, bytes | memoryview]:
        record, payload = item
        raw = _checked(record, conn, decode_chunk, record.location.codec, payload, record.location.raw_len)
        if sink is not None:
            sink(record.record_id, raw)
        return record, payload, raw

    for record, payload, raw in ordered_map(check_full, fulls(), weight=_raw_len, max_weight=DECODING_BYTES,
                                            pool=pool):
        if record.record_id in bases:
            raw_of[record.record_id] = raw
        yield _row(record, payload)

    def check_delta(item: tuple[Wanted, memoryview]) -> tuple[Wanted, memoryview, bytes | memoryview]:
        record, payload = item
        base_id = record.location.base
        assert base_id is not None
        base = raw_of[base_id] if base_id in raw_of else repo.chunks.read(base_id)  # read here: in parallel
        raw = _checked(record, conn, decode_delta, payload, record.location.raw_len, base)
        if sink is not None:
            sink(record.record_id, raw)
        return record, payload, raw

    while deltas:  # a delta whose base is a delta comes in a later round
        ready: list[tuple[Wanted, memoryview]] = []
        waiting: list[tuple[Wanted, memoryview]] = []
        pending_ids = {record.record_id for record, _ in deltas}
        for record, payload in deltas:
            (waiting if record.location.base in pending_ids else ready).append((record, payload))
        if not ready:
            raise CorruptChunkError(f"delta chunks on the remote {conn.remote.url} form a loop of bases")
        for record, payload, raw in ordered_map(check_delta, ready, weight=_raw_len, max_weight=DECODING_BYTES,
                                                pool=pool):
            if record.record_id in bases:
                raw_of[record.record_id] = raw
            yield _row(record, payload)
        deltas = waiting


def _raw_len(item: tuple) -> int:
    return item[0].location.raw_len


def _checked(record: Wanted, conn: Connection, decode: Callable, *args: object) -> bytes | memoryview:
    """decode(*args), the chunk's raw bytes, after checking they hash to its id."""
    where = f"{layout.pack_key(record.location.pack)} on the remote {conn.remote.url}, offset {record.location.offset}"
    try:
        raw = decode(*args)
    except CorruptChunkError as exc:
        raise CorruptChunkError(f"chunk {record.record_id.hex()[:10]} in {where} is corrupt: {exc.message}",
                                hint="nothing corrupt was stored; the remote needs repair") from None
    if len(raw) != record.location.raw_len or hash_bytes_raw(raw) != record.record_id:
        raise CorruptChunkError(f"chunk {record.record_id.hex()[:10]} in {where} is corrupt: its bytes do not "
                                "match its id", hint="nothing corrupt was stored; the remote needs repair")
    return raw


def _row(record: Wanted, payload: memoryview) -> tuple:
    location = record.location
    return (record.record_id, location.codec, location.raw_len, payload, location.base)
