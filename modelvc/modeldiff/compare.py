"""Compare two versions of a model file tensor by tensor.

Tensors are matched by name. For a tensor of the same dtype and shape in both versions the
cheapest sufficient evidence decides whether it changed:
1. chunk ids: when the tensor's byte range starts and ends on chunk boundaries in both
   versions, equal id lists mean equal bytes, and a chunk cut at the same place in both
   with a different id means different bytes (ids are content hashes): nothing is read.
   (Modelvc cuts inside a tensor at fixed steps from its first byte, so equal dtype and
   shape give equal cuts; cuts that differ, from other chunking parameters, fall through.)
2. otherwise the bytes, streamed in blocks and compared until the first difference. A
   tensor inside a deflated zip member (numpy.savez_compressed) is inflated as it is read;
   step 1 applies to it only as "the compressed members have equal chunk ids, so equal
   values": different compressed bytes may still inflate to equal values.
A tensor stored with a stride (a transposed PyTorch view, a Fortran-order array) is
compared by the bytes of the storage span it reaches, when both versions have the same
stride; with different strides its values are not compared, and the diff says so
("uncompared", with a note), as it does for tensors a reader could not read at all.
Statistics, when asked for, read the whole of each changed tensor once more, in blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from modelvc.formats import ByteSource, Layout, Segment, dense_permutation
from modelvc.formats.inflate import BadDeflateStream, InflatingSource
from modelvc.modeldiff.metadata import header_metadata, metadata_changes
from modelvc.modeldiff.results import STATUSES, ModelDiff, TensorChange, TensorStats
from modelvc.modeldiff.version import CountingSource, FileVersion, chunks_verdict, open_side
from modelvc.progress import NO_PROGRESS, Progress

DEFAULT_COMPARE_BLOCK = 8 * 1024 * 1024


def compare_models(
    old: FileVersion,
    new: FileVersion,
    *,
    stats: bool = False,
    block_bytes: int = DEFAULT_COMPARE_BLOCK,
    stats_block_elements: int | None = None,
    progress: Progress = NO_PROGRESS,
) -> ModelDiff:
    """What changed between two versions of one model file, tensor by tensor.

    Tensors come in the new file's order, then the removed ones in the old file's order.
    `bytes_read` counts only what this comparison read, not the header reads that made
    the layouts. Progress counts bytes read against the most that may be needed (a
    comparison that stops at a first difference finishes early). numpy is imported only
    when statistics are computed.
    """
    old_side, new_side = open_side(old, progress), open_side(new, progress)
    old_tensors, new_tensors = _tensors_by_name(old.layout), _tensors_by_name(new.layout)
    old_unread, new_unread = _unread(old.layout), _unread(new.layout)
    comparer = _TensorComparer(old_side, new_side, stats, max(1, block_bytes), stats_block_elements)
    planned: list[TensorChange | _Plan] = []
    for name, segment in new_tensors.items():
        before = old_tensors.get(name)
        if name in old_unread:
            planned.append(_uncompared(name, None, segment, f"the old version's {old_unread[name]}"))
        elif before is None:
            planned.append(_one_sided(name, "added", None, segment))
        else:
            planned.append(comparer.plan(name, before, segment))
    for name, segment in old_tensors.items():
        if name in new_unread:
            planned.append(_uncompared(name, segment, None, f"the new version's {new_unread[name]}"))
        elif name not in new_tensors:
            planned.append(_one_sided(name, "deleted", segment, None))
    for name, why in {**old_unread, **new_unread}.items():
        if name not in old_tensors and name not in new_tensors:
            planned.append(_uncompared(name, None, None, why))
    progress.start("comparing tensors", sum(comparer.most_bytes(p) for p in planned if isinstance(p, _Plan)))
    changes = [comparer.finish(p) if isinstance(p, _Plan) else p for p in planned]
    progress.finish()
    counts = {status: 0 for status in STATUSES}
    for change in changes:
        counts[change.status] += 1
    if not counts["uncompared"]:
        del counts["uncompared"]
    return ModelDiff(
        old_format=old.layout.format if old.layout else None,
        new_format=new.layout.format if new.layout else None,
        tensors=changes,
        counts=counts,
        metadata=metadata_changes(header_metadata(old.layout), header_metadata(new.layout)),
        bytes_read=old_side.bytes_read + new_side.bytes_read,
        notes=_notes(old.layout, new.layout),
    )


def _tensors_by_name(layout: Layout | None) -> dict[str, Segment]:
    result: dict[str, Segment] = {}
    for segment in layout.tensors() if layout is not None else []:
        result.setdefault(segment.name, segment)
    return result


def _unread(layout: Layout | None) -> dict[str, str]:
    """Tensors the reader found but could not read: name -> why."""
    return {name: why for name, why in layout.unread} if layout is not None else {}


def _uncompared(name: str, old: Segment | None, new: Segment | None, why: str) -> TensorChange:
    return replace(_one_sided(name, "uncompared", old, new), decided_by="none", note=f"not compared: {why}")


def _notes(old: Layout | None, new: Layout | None) -> list[str]:
    notes = []
    if old is None:
        notes.append("the old version is not a model file of a known format")
    if new is None:
        notes.append("the new version is not a model file of a known format")
    if old is not None and new is not None and old.format != new.format:
        notes.append(f"the format changed from {old.format} to {new.format}")
    return notes


def _one_sided(name: str, status: str, old: Segment | None, new: Segment | None) -> TensorChange:
    return TensorChange(
        name=name,
        status=status,
        old_dtype=old.dtype if old else None,
        new_dtype=new.dtype if new else None,
        old_shape=old.shape if old else None,
        new_shape=new.shape if new else None,
        old_bytes=old.length if old else None,
        new_bytes=new.length if new else None,
    )


@dataclass(frozen=True)
class _Plan:
    """A tensor of equal dtype and shape on both sides, and what the chunk ids said."""

    base: TensorChange
    old: Segment
    new: Segment
    same: bool | None  # None: the chunks cannot tell, the bytes must


class _TensorComparer:
    def __init__(self, old: CountingSource, new: CountingSource, stats: bool, block_bytes: int,
                 stats_block_elements: int | None) -> None:  # fmt: skip
        self.old, self.new = old, new
        self.stats, self.block_bytes, self.stats_block_elements = stats, block_bytes, stats_block_elements

    def plan(self, name: str, old: Segment, new: Segment) -> TensorChange | _Plan:
        """Everything the headers and chunk ids decide, without reading any data."""
        base = _one_sided(name, "", old, new)
        if old.dtype != new.dtype:
            return _with(base, "dtype", "header", self._note(f"dtype changed from {old.dtype} to {new.dtype}"))
        if old.shape != new.shape:
            return _with(base, "shape", "header", self._note(f"shape changed from {old.shape} to {new.shape}"))
        if old.stride != new.stride:
            why = f"stored {_order(old.stride)} in the old version and {_order(new.stride)} in the new one"
            return _uncompared(name, old, new, why)
        if old.length != new.length:  # an opaque dtype whose element size changed
            return replace(_with(base, "modified", "header", self._note("no dtype")),
                           note=f"size changed from {old.length} to {new.length} bytes")  # fmt: skip
        if old.length == 0:
            return _with(base, "unchanged", "empty")
        if old.deflated or new.deflated:
            return _Plan(base, old, new, True if self._members_same(old, new) else None)
        return _Plan(base, old, new, self._chunks_say_same((old.offset, old.end), (new.offset, new.end)))

    def most_bytes(self, plan: _Plan) -> int:
        """The most that finishing `plan` may read, from both sides together."""
        total = 0
        read_once = _most_read(plan.old) + _most_read(plan.new)
        if plan.same is None:
            total += read_once
        if self.stats and plan.same is not True and self._stats_reason(plan.new) is None:
            total += read_once
        return total

    def finish(self, plan: _Plan) -> TensorChange:
        old, new, same = plan.old, plan.new, plan.same
        old_bytes, new_bytes = _tensor_source(self.old, old), _tensor_source(self.new, new)
        decided_by = "chunks"
        note = _span_note(new)
        try:
            if same is None:
                same = self._bytes_equal(old_bytes, old, new_bytes, new)
                decided_by = "inflated" if old.deflated or new.deflated else "bytes"
            if same:  # equal spans: the view's own elements are equal too
                return _with(plan.base, "unchanged", decided_by)
            reason = self._stats_reason(new) if self.stats else None
            if not self.stats or reason is not None:
                return replace(_with(plan.base, "modified", decided_by, reason), note=note)
            from modelvc.modeldiff.stats import DEFAULT_BLOCK_ELEMENTS, compute_stats

            tensor_stats = compute_stats(old_bytes, old.offset, new_bytes, new.offset, new.dtype or "", new.length,
                                         block_elements=self.stats_block_elements or DEFAULT_BLOCK_ELEMENTS)
        except BadDeflateStream as exc:
            return _uncompared(plan.base.name, old, new, f"its compressed data could not be read: {exc}")
        return replace(_with(plan.base, "modified", decided_by, None, tensor_stats), note=note)

    @staticmethod
    def _stats_reason(segment: Segment) -> str | None:
        from modelvc.modeldiff.stats import stats_unavailable

        if segment.stride is not None and not dense_permutation(segment.shape or (), segment.stride):
            return "a strided view over part of its storage: no element statistics"
        return stats_unavailable(segment.dtype)

    def _note(self, text: str) -> str | None:
        return f"{text}: no element statistics" if self.stats else None

    def _chunks_say_same(self, old: tuple[int, int], new: tuple[int, int]) -> bool | None:
        """True/False when both versions' chunk boundaries frame the byte ranges, else None."""
        if self.old.chunk_map is None or self.new.chunk_map is None:
            return None
        old_chunks = self.old.chunk_map.covering(*old)
        if old_chunks is None:
            return None
        new_chunks = self.new.chunk_map.covering(*new)
        if new_chunks is None:
            return None
        return chunks_verdict(old_chunks, old[0], new_chunks, new[0])

    def _members_same(self, old: Segment, new: Segment) -> bool:
        """Both tensors at one place of deflated members whose compressed bytes have equal
        chunk ids: equal inflated bytes. (Different compressed bytes may still inflate to
        equal values, so anything else is left to the inflated bytes.)"""
        if old.deflated is None or new.deflated is None or old.offset != new.offset:
            return False
        old_member, new_member = old.deflated, new.deflated
        return self._chunks_say_same(
            (old_member.data_offset, old_member.data_offset + old_member.compressed_size),
            (new_member.data_offset, new_member.data_offset + new_member.compressed_size),
        ) is True  # fmt: skip

    def _bytes_equal(self, old_bytes: ByteSource, old: Segment, new_bytes: ByteSource, new: Segment) -> bool:
        for start in range(0, old.length, self.block_bytes):
            length = min(self.block_bytes, old.length - start)
            if old_bytes.read(old.offset + start, length) != new_bytes.read(new.offset + start, length):
                return False
        return True


def _tensor_source(side: CountingSource, segment: Segment) -> ByteSource:
    """Where the tensor's bytes are read from: the file, or its inflated zip member."""
    return side if segment.deflated is None else InflatingSource(side, segment.deflated)


def _most_read(segment: Segment) -> int:
    return segment.length if segment.deflated is None else segment.deflated.compressed_size


def _order(stride: tuple[int, ...] | None) -> str:
    return "row-major" if stride is None else f"with stride {stride}"


def _span_note(segment: Segment) -> str | None:
    """For a strided view over part of its storage, say what its status is about."""
    if segment.stride is None or dense_permutation(segment.shape or (), segment.stride):
        return None
    return (f"compared by the {segment.length} bytes of storage its stride {segment.stride} spans,"
            " which may hold elements outside it")  # fmt: skip


def _with(
    base: TensorChange,
    status: str,
    decided_by: str,
    note: str | None = None,
    stats: TensorStats | None = None,
) -> TensorChange:
    return replace(base, status=status, decided_by=decided_by, stats_note=note, stats=stats)
