"""Fetching chunks: a set of chunk ids in, the missing ones read from the remote's packs by
ranged reads coalesced per pack (never one request per chunk), verified, and stored.

A delta chunk comes with any base the local store lacks. Each chunk is decoded and hashed
before it is written: a record whose bytes do not match its id is an IntegrityError naming the
remote pack, and nothing of the fetch is stored. Lazy checkout can call `fetch_chunks` with the
chunks of the files it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from modelvc.errors import CorruptChunkError, MissingChunkError
from modelvc.ids import hash_bytes_raw
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.store import layout
from modelvc.store.codecs import CODEC_DELTA, decode_chunk
from modelvc.store.delta import decode_delta
from modelvc.transfer.connect import Connection
from modelvc.transfer.ranges import Wanted, read_records


@dataclass
class ChunkFetch:
    chunks: int = 0
    stored_bytes: int = 0


def fetch_chunks(repo: Repo, conn: Connection, chunk_ids: set[bytes], progress: Progress = NO_PROGRESS) -> ChunkFetch:
    """Store every chunk of `chunk_ids` the local store lacks, from the remote."""
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
            for row in _verified_records(repo, conn, list(wanted.values()), bases, progress):
                writer.append_many([row])
                result.chunks += 1
                result.stored_bytes += len(row[3])
    finally:
        progress.finish()
    return result


def _verified_records(repo: Repo, conn: Connection, wanted: list[Wanted], bases: set[bytes],
                      progress: Progress) -> Iterator[tuple]:
    """(chunk id, codec, raw length, payload, base) of every wanted record, each decoded and
    hashed first (a delta after its base); CorruptChunkError names the first that fails, and
    the caller's writer then drops what it had not sealed."""
    raw_of: dict[bytes, bytes | memoryview] = {}  # fetched chunks that fetched deltas build on
    deltas: list[tuple[Wanted, memoryview]] = []
    for record, payload in read_records(conn.backend, wanted, conn.remote.url):
        progress.advance(len(payload))
        if record.location.codec == CODEC_DELTA:
            deltas.append((record, payload))
            continue
        raw = _checked(record, conn, decode_chunk, record.location.codec, payload, record.location.raw_len)
        if record.record_id in bases:
            raw_of[record.record_id] = raw
        yield _row(record, payload)
    while deltas:  # a delta whose base is a delta comes after it
        waiting = []
        pending_ids = {record.record_id for record, _ in deltas}
        for record, payload in deltas:
            base_id = record.location.base
            assert base_id is not None
            if base_id in raw_of:
                base = raw_of[base_id]
            elif base_id in pending_ids:
                waiting.append((record, payload))
                continue
            else:
                base = repo.chunks.read(base_id)
            raw = _checked(record, conn, decode_delta, payload, record.location.raw_len, base)
            if record.record_id in bases:
                raw_of[record.record_id] = raw
            yield _row(record, payload)
        if len(waiting) == len(deltas):
            raise CorruptChunkError(f"delta chunks on the remote {conn.remote.url} form a loop of bases")
        deltas = waiting


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
