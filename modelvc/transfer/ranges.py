"""Reading records out of a remote's packs: ranged reads coalesced per pack, packs in parallel.

Records wanted from one pack are sorted by offset and merged into spans when the gap between
them is small (reading a few unwanted bytes costs less than another request); each pack's spans
go out as one `read_ranges` call, and several packs are read at once. Every record's header is
checked against the index row it was located by before its payload is handed on.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from modelvc.errors import CorruptChunkError
from modelvc.store import layout
from modelvc.store.backend import Backend, NotFoundInBackend
from modelvc.store.packs import RECORD_HEADER, Location, header_mismatch

GAP_BYTES = 256 << 10  # read through a gap up to this size rather than start a new range
SPAN_BYTES = 32 << 20  # a span is cut at about this size (memory, and parallel transfers)
PACKS_AT_ONCE = 8


@dataclass(frozen=True)
class Wanted:
    """A record to read: its id (chunk or object) and where the remote's index puts it."""

    record_id: bytes
    location: Location


def _spans(records: list[Wanted]) -> list[tuple[int, int, list[Wanted]]]:
    """(offset, length, records inside) of the coalesced spans of one pack's records."""
    spans: list[tuple[int, int, list[Wanted]]] = []
    for record in sorted(records, key=lambda r: r.location.offset):
        start = record.location.offset
        end = start + RECORD_HEADER.size + record.location.payload_len
        if spans:
            first, length, inside = spans[-1]
            if start - (first + length) <= GAP_BYTES and end - first <= SPAN_BYTES:
                spans[-1] = (first, max(length, end - first), [*inside, record])
                continue
        spans.append((start, end - start, [record]))
    return spans


def read_records(backend: Backend, wanted: list[Wanted], label: str) -> Iterator[tuple[Wanted, memoryview]]:
    """(record, payload) of every wanted record, pack by pack as reads complete; a truncated or
    mismatched record is a CorruptChunkError naming the remote key."""
    by_pack: dict[str, list[Wanted]] = {}
    for record in wanted:
        by_pack.setdefault(record.location.pack, []).append(record)

    def read_pack(pack: str) -> list[tuple[Wanted, memoryview]]:
        key = layout.pack_key(pack)
        spans = _spans(by_pack[pack])
        try:
            parts = backend.read_ranges(key, [(offset, length) for offset, length, _ in spans])
        except NotFoundInBackend:
            raise CorruptChunkError(f"{key} is missing on the remote {label} (its index lists it)") from None
        found = []
        for (offset, _, inside), data in zip(spans, parts, strict=True):
            view = memoryview(data)
            for record in inside:
                found.append((record, _payload(view, offset, record, key, label)))
        return found

    if not by_pack:
        return
    with ThreadPoolExecutor(min(PACKS_AT_ONCE, len(by_pack))) as pool:
        for found in pool.map(read_pack, sorted(by_pack)):
            yield from found


def _payload(span: memoryview, span_offset: int, record: Wanted, key: str, label: str) -> memoryview:
    location = record.location
    start = location.offset - span_offset
    end = start + RECORD_HEADER.size + location.payload_len
    if end > len(span):
        raise CorruptChunkError(f"{key} on the remote {label} is truncated at offset {location.offset}")
    wrong = header_mismatch(RECORD_HEADER.unpack_from(span, start), location, record.record_id)
    if wrong:
        raise CorruptChunkError(f"{key} on the remote {label} has a corrupt record header at offset "
                                f"{location.offset} ({wrong} differs from its index)")
    return span[start + RECORD_HEADER.size:end]
