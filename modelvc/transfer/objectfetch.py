"""Fetching metadata objects: every object of the remote's metadata packs the local store lacks,
by ranged reads of those packs (one call per pack), each verified against its id."""

from __future__ import annotations

import zstandard

from modelvc.errors import CorruptObjectError
from modelvc.ids import hash_bytes, short
from modelvc.repo import Repo
from modelvc.store import layout
from modelvc.store.backend import NotFoundInBackend
from modelvc.transfer.connect import Connection
from modelvc.transfer.ranges import Wanted, read_records


def fetch_missing_objects(repo: Repo, conn: Connection) -> dict[str, bytes]:
    """Object id -> canonical bytes of each remote object the local store does not have."""
    index = conn.view.objects
    wanted = []
    for row in index.rows():
        raw_id = row[0]
        if not repo.objects.has(raw_id.hex()):
            location = index.locate(raw_id)
            if location is not None:
                wanted.append(Wanted(raw_id, location))
    found: dict[str, bytes] = {}
    for record, payload in read_records(conn.backend, wanted, conn.remote.url):
        object_id = record.record_id.hex()
        found[object_id] = _verified(object_id, payload, f"{layout.pack_key(record.location.pack)} on the remote "
                                                         f"{conn.remote.url}")
    return found


def read_loose_object(conn: Connection, object_id: str) -> bytes | None:
    """An object stored loose (`objects/ab/cdef...`), verified, or None: a remote written by push
    has none, but a local `.mvc` used as a remote keeps its last few objects so."""
    key = layout.object_key(object_id)
    try:
        stored = conn.backend.read(key)
    except NotFoundInBackend:
        return None
    return _verified(object_id, stored, f"{key} on the remote {conn.remote.url}")


def _verified(object_id: str, stored: bytes | memoryview, where: str) -> bytes:
    try:
        data = zstandard.ZstdDecompressor().decompress(stored)
    except zstandard.ZstdError as exc:
        raise CorruptObjectError(f"object {short(object_id)} in {where} is corrupt ({exc})",
                                 hint="nothing was stored; the remote needs repair") from None
    if hash_bytes(data) != object_id:
        raise CorruptObjectError(f"object {short(object_id)} in {where} is corrupt: its content does not match "
                                 "its id", hint="nothing was stored; the remote needs repair")
    return data
