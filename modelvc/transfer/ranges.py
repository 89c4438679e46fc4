"""Reading records out of a remote's packs: ranged reads coalesced per pack, packs in parallel.

Records wanted from one pack are sorted by offset and merged into spans when the gap between
them is small (reading a few unwanted bytes costs less than another request); spans, of any
pack, are read several at once. Every record's header is
checked against the index row it was located by before its payload is handed on.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import islice

from modelvc.errors import CorruptChunkError
from modelvc.store import layout
from modelvc.store.backend import Backend, NotFoundInBackend
from modelvc.store.packs import RECORD_HEADER, Location, header_mismatch

GAP_BYTES = 256 << 10  # read through a gap up to this size rather than start a new range
SPAN_BYTES = 8 << 20  # a span is cut at about this size (memory, and decoding starts sooner)
READS_AT_ONCE = 6  # spans on the wire at once


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
    """(record, payload) of every wanted record, span by span as reads complete; a truncated or
    mismatched record is a CorruptChunkError naming the remote key.

    Spans go out a few at a time and are handed on in the order they arrive, so the caller
    decodes the first while later ones are still on the wire (with every span requested at
    once, they would all arrive together at the end). The order of spans is thus not fixed;
    records within a span keep their pack order.
    """
    by_pack: dict[str, list[Wanted]] = {}
    for record in wanted:
        by_pack.setdefault(record.location.pack, []).append(record)
    reads = [(pack, span) for pack in sorted(by_pack) for span in _spans(by_pack[pack])]

    def read_span(pack: str, span: tuple[int, int, list[Wanted]]) -> list[tuple[Wanted, memoryview]]:
        key = layout.pack_key(pack)
        offset, length, inside = span
        try:
            (data,) = backend.read_ranges(key, [(offset, length)])
        except NotFoundInBackend:
            raise CorruptChunkError(f"{key} is missing on the remote {label} (its index lists it)") from None
        view = memoryview(data)
        return [(record, _payload(view, offset, record, key, label)) for record in inside]

    if not reads:
        return
    queued = iter(reads)
    with ThreadPoolExecutor(min(READS_AT_ONCE, len(reads))) as pool:
        running = {pool.submit(read_span, *read) for read in islice(queued, READS_AT_ONCE)}
        try:
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                running |= {pool.submit(read_span, *read) for read in islice(queued, len(done))}
                for future in done:
                    yield from future.result()
        finally:
            for future in running:
                future.cancel()


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
