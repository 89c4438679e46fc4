"""Where a file is cut into chunks. Dedup depends on these cuts, so they never change.

Scheme "mvc-model-1" (recorded in the repository config with its parameters):

* Unknown files (no layout): FastCDC over the whole file (pyfastcdc's compiled FastCDC
  2020, normalized chunking level 1, gear seed 0, the parameters below).
* Known layouts: a cut at every segment boundary, then inside each segment:
  - a tensor is cut into fixed blocks of ``block_size`` bytes counted from its first byte,
    the last block shorter, so block i holds the same elements in every version whatever
    moved before the tensor (a header that grew) and rows appended at the end leave the
    earlier blocks identical. A float tensor's blocks carry its itemsize for the codecs.
  - a header or other segment is cut by FastCDC inside the segment (so the cuts depend
    only on the segment's own bytes).
  - small segments: runs of consecutive non-header segments that are each shorter than
    ``small_tensor_merge`` bytes are packed, in order, into spans of at most
    ``small_tensor_merge`` bytes (a span closes when the next segment would not fit). Big
    tensors are never merged, so a change in one tensor never touches another big
    tensor's chunks; only the small neighbours in its run can share its chunk. A merged
    span is typed with an itemsize only if all its parts are float tensors of that size.
    Zero-length segments produce no span.

Parameters, measured on 32 MiB of random bytes with 20 random small edits (inserts,
deletes, overwrites), counting the bytes of new chunks and the per-chunk overhead (about
100 bytes of index and manifest per chunk):

    min/avg/max       mean chunk  overhead  new bytes per edit
    16K/64K/256K          77 KiB    0.128%        100 KiB
    32K/128K/512K        155 KiB    0.063%        216 KiB
    64K/256K/1M          287 KiB    0.034%        308 KiB
    128K/512K/2M         537 KiB    0.018%        555 KiB

64K/256K/1M is chosen: the overhead target is 0.1% of all data, and the 0.03% left by the
CDC part keeps room for what we cannot merge (each tensor's short last block, small
tensors between big ones); an edit then costs about 300 KiB, small next to any model file;
fewer chunks also means fewer per-chunk Python steps on the 0.8 GB/s path and a smaller
pack index (about 3.6 million chunks per TB). The max equals block_size, so no chunk is
larger than 1 MiB. ``small_tensor_merge`` is 256 KiB: a run of 8 KiB norm weights becomes
spans of about 250 KiB (0.04% overhead), while one changed tensor re-stores at most
256 KiB of its neighbours. pyfastcdc cuts a memoryview slice without copying it (its
cut_buf works on the buffer in place; measured: 26 KB peak allocation for 64 MiB).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from modelvc.errors import ConfigError, FormatVersionError, MvcError

if TYPE_CHECKING:  # the formats are imported where files are cut, not by every reader of ChunkParams (fsck)
    from modelvc.formats import Layout, Segment

SCHEME = "mvc-model-1"
PLAIN_SCHEME = "fastcdc-1"  # format version 1: FastCDC over every file, no layouts
SCHEMES = (SCHEME, PLAIN_SCHEME)
_NORMALIZED_CHUNKING = 1
_GEAR_SEED = 0

# pyfastcdc's accepted ranges
_CDC_MIN_RANGE = (64, 1 << 20)
_CDC_AVG_RANGE = (256, 4 << 20)
_CDC_MAX_RANGE = (1024, 16 << 20)


@dataclass(frozen=True)
class ChunkParams:
    """Chunking parameters: part of the repository format, never changed once recorded."""

    scheme: str = SCHEME
    block_size: int = 1 << 20
    cdc_min: int = 64 << 10
    cdc_avg: int = 256 << 10
    cdc_max: int = 1 << 20
    small_tensor_merge: int = 256 << 10

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            expected = str if field.name == "scheme" else int
            if type(value) is not expected:
                raise ValueError(f"{field.name} must be {expected.__name__}, not {value!r}")
        if self.scheme not in SCHEMES:
            raise ValueError(f"unknown chunking scheme {self.scheme!r} (this modelvc knows {', '.join(SCHEMES)})")
        if self.block_size <= 0 or self.block_size % 8:
            raise ValueError(f"block_size must be a positive multiple of 8, not {self.block_size}")
        for name, (low, high) in (
            ("cdc_min", _CDC_MIN_RANGE),
            ("cdc_avg", _CDC_AVG_RANGE),
            ("cdc_max", _CDC_MAX_RANGE),
        ):
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be within [{low}, {high}], not {value}")
        if not self.cdc_min <= self.cdc_avg <= self.cdc_max:
            raise ValueError("cdc sizes must satisfy cdc_min <= cdc_avg <= cdc_max")
        if self.small_tensor_merge < 0:
            raise ValueError(f"small_tensor_merge must be >= 0, not {self.small_tensor_merge}")

    @property
    def model_aware(self) -> bool:
        """Whether files are cut along their model layout (else FastCDC over the whole file)."""
        return self.scheme == SCHEME

    @classmethod
    def for_format(cls, version: int) -> ChunkParams:
        return cls(scheme=PLAIN_SCHEME) if version == 1 else cls()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChunkParams:
        """Read parameters from a repository config; refuse anything this version cannot honour.

        Keys or a scheme this version does not know mean a newer modelvc (FormatVersionError);
        a missing key or a bad value means a damaged config (ConfigError).
        """
        if not isinstance(d, dict):
            raise ConfigError(f"chunking must be an object, not {d!r}")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(d) - known)
        scheme = d.get("scheme", SCHEME)
        if unknown or (isinstance(scheme, str) and scheme not in SCHEMES):
            detail = (f"have unknown keys {unknown}" if unknown else
                      f"are not supported: unknown chunking scheme {d['scheme']!r} "
                      f"(this modelvc knows {', '.join(SCHEMES)})")
            raise FormatVersionError(
                f"chunking parameters in the repository config {detail}",
                hint="the repository may have been written by a newer modelvc",
            )
        missing = sorted(known - set(d))
        if missing:
            raise ConfigError(f"chunking: missing keys {missing}")
        try:
            return cls(**d)
        except ValueError as exc:
            raise ConfigError(f"chunking: {exc}") from None


@dataclass(frozen=True)
class ChunkSpan:
    offset: int
    length: int
    itemsize: int | None  # 2, 4 or 8 when the span holds float values, for the codecs

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class CdcRegion:
    """A range of a file that FastCDC cuts: its spans depend on its bytes."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


def plan_chunks(data: bytes | memoryview, layout: Layout | None, params: ChunkParams) -> list[ChunkSpan]:
    """Cut a whole file into spans covering [0, len(data)) in order, without copying it."""
    view = memoryview(data)
    if view.format != "B" or view.ndim != 1:
        view = view.cast("B")
    spans: list[ChunkSpan] = []
    for planned in plan_regions(layout, len(view), params):
        if isinstance(planned, CdcRegion):
            spans.extend(_cdc_spans(view, planned.offset, planned.length, params))
        else:
            spans.append(planned)
    return spans


def plan_regions(layout: Layout | None, size: int, params: ChunkParams) -> Iterator[ChunkSpan | CdcRegion]:
    """The file's spans in order, where the layout alone fixes them, and the regions FastCDC
    cuts in between: what can be planned without reading the file's data."""
    if layout is None:
        if size:
            yield CdcRegion(0, size)
        return
    _check_layout(layout, size)

    pending: list[Segment] = []
    pending_length = 0
    for segment in layout.segments:
        if segment.length == 0:
            continue
        if segment.kind != "header" and segment.length < params.small_tensor_merge:
            if pending and pending_length + segment.length > params.small_tensor_merge:
                yield _merged_span(pending)
                pending, pending_length = [], 0
            pending.append(segment)
            pending_length += segment.length
            continue
        if pending:
            yield _merged_span(pending)
            pending, pending_length = [], 0
        if segment.kind == "tensor":
            yield from _block_spans(segment, params.block_size)
        else:
            yield CdcRegion(segment.offset, segment.length)
    if pending:
        yield _merged_span(pending)


def cdc_window_spans(window: memoryview, offset: int, region_end: int, params: ChunkParams) -> list[ChunkSpan]:
    """FastCDC spans of a window of a region read piece by piece, the window starting at a cut.

    A cut FastCDC finds depends only on the bytes from the start of its chunk up to the cut,
    so every span of the window but the last is final; the last is final only at the end of
    the region (else the next window starts where it starts). Taking the spans of consecutive
    windows this way gives exactly the spans of the whole region cut at once.
    """
    spans = list(_cdc_spans(window, 0, len(window), params))
    if offset + len(window) < region_end:
        if len(window) <= params.cdc_max:
            raise ValueError(f"a window of {len(window)} bytes may hold no final cut (cdc_max {params.cdc_max})")
        spans.pop()
    return [ChunkSpan(offset + span.offset, span.length, None) for span in spans]


def _check_layout(layout: Layout, size: int) -> None:
    """A layout must tile the file exactly; anything else is a reader bug, not user data."""
    if layout.size != size:
        raise ValueError(f"layout describes {layout.size} bytes but the data has {size}")
    cursor = 0
    for segment in layout.segments:
        if segment.offset != cursor or segment.length < 0:
            raise ValueError(
                f"layout segment {segment.name!r} at {segment.offset} (+{segment.length}) "
                f"does not continue at byte {cursor}"
            )
        cursor = segment.end
    if cursor != size:
        raise ValueError(f"layout segments end at byte {cursor}, the data at {size}")


def _segment_itemsize(segment: Segment) -> int | None:
    from modelvc.formats.dtypes import float_itemsize

    return float_itemsize(segment.dtype) if segment.kind == "tensor" else None


def _merged_span(parts: list[Segment]) -> ChunkSpan:
    itemsizes = {_segment_itemsize(part) for part in parts}
    itemsize = itemsizes.pop() if len(itemsizes) == 1 else None
    return ChunkSpan(parts[0].offset, parts[-1].end - parts[0].offset, itemsize)


def _block_spans(segment: Segment, block_size: int) -> Iterator[ChunkSpan]:
    itemsize = _segment_itemsize(segment)
    for start in range(segment.offset, segment.end, block_size):
        yield ChunkSpan(start, min(block_size, segment.end - start), itemsize)


def _cdc_spans(view: memoryview, offset: int, length: int, params: ChunkParams) -> Iterator[ChunkSpan]:
    if length == 0:
        return
    if length <= params.cdc_min:  # FastCDC never cuts before cdc_min: one chunk, no chunker to build
        yield ChunkSpan(offset, length, None)
        return
    chunker = _fastcdc(params)
    for chunk in chunker.cut_buf(view[offset : offset + length]):
        yield ChunkSpan(offset + chunk.offset, chunk.length, None)


def _fastcdc(params: ChunkParams) -> Any:
    """pyfastcdc's compiled chunker; its pure-Python fallback is far too slow to use."""
    try:
        from pyfastcdc.cy import FastCDC
    except ImportError:
        raise MvcError(
            "the compiled FastCDC chunker (pyfastcdc.cy) cannot be imported",
            hint="reinstall pyfastcdc from a binary wheel for this platform",
        ) from None
    return FastCDC(
        params.cdc_avg,
        min_size=params.cdc_min,
        max_size=params.cdc_max,
        normalized_chunking=_NORMALIZED_CHUNKING,
        seed=_GEAR_SEED,
    )
