"""Compare two versions of a model file tensor by tensor.

Tensors are matched by name. For a tensor of the same dtype and shape in both versions the
cheapest sufficient evidence decides whether it changed:
1. chunk ids: when the tensor's byte range starts and ends on chunk boundaries in both
   versions, equal id lists mean equal bytes, and a chunk cut at the same place in both
   with a different id means different bytes (ids are content hashes): nothing is read.
   (Modelvc cuts inside a tensor at fixed steps from its first byte, so equal dtype and
   shape give equal cuts; cuts that differ, from other chunking parameters, fall through.)
2. otherwise the bytes, streamed in blocks and compared until the first difference.
Statistics, when asked for, read the whole of each changed tensor once more, in blocks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from modelvc.formats import Layout, Segment
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
    comparer = _TensorComparer(old_side, new_side, stats, max(1, block_bytes), stats_block_elements)
    planned: list[TensorChange | _Plan] = []
    for name, segment in new_tensors.items():
        before = old_tensors.get(name)
        if before is None:
            planned.append(_one_sided(name, "added", None, segment))
        else:
            planned.append(comparer.plan(name, before, segment))
    planned += [_one_sided(name, "deleted", s, None) for name, s in old_tensors.items() if name not in new_tensors]
    progress.start("comparing tensors", sum(comparer.most_bytes(p) for p in planned if isinstance(p, _Plan)))
    changes = [comparer.finish(p) if isinstance(p, _Plan) else p for p in planned]
    progress.finish()
    counts = {status: 0 for status in STATUSES}
    for change in changes:
        counts[change.status] += 1
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
        if old.shape != new.shape or old.length != new.length:
            return _with(base, "shape", "header", self._note(f"shape changed from {old.shape} to {new.shape}"))
        if old.length == 0:
            return _with(base, "unchanged", "empty")
        return _Plan(base, old, new, self._chunks_say_same(old, new))

    def most_bytes(self, plan: _Plan) -> int:
        """The most that finishing `plan` may read, from both sides together."""
        total = 0
        if plan.same is None:
            total += 2 * plan.new.length
        if self.stats and plan.same is not True and self._stats_reason(plan.new.dtype) is None:
            total += 2 * plan.new.length
        return total

    def finish(self, plan: _Plan) -> TensorChange:
        old, new, same, decided_by = plan.old, plan.new, plan.same, "chunks"
        if same is None:
            same, decided_by = self._bytes_equal(old, new), "bytes"
        if same:
            return _with(plan.base, "unchanged", decided_by)
        if not self.stats:
            return _with(plan.base, "modified", decided_by)
        reason = self._stats_reason(new.dtype)
        if reason is not None:
            return _with(plan.base, "modified", decided_by, reason)
        from modelvc.modeldiff.stats import DEFAULT_BLOCK_ELEMENTS, compute_stats

        tensor_stats = compute_stats(self.old, old.offset, self.new, new.offset, new.dtype or "", new.length,
                                     block_elements=self.stats_block_elements or DEFAULT_BLOCK_ELEMENTS)  # fmt: skip
        return _with(plan.base, "modified", decided_by, None, tensor_stats)

    @staticmethod
    def _stats_reason(dtype: str | None) -> str | None:
        from modelvc.modeldiff.stats import stats_unavailable

        return stats_unavailable(dtype)

    def _note(self, text: str) -> str | None:
        return f"{text}: no element statistics" if self.stats else None

    def _chunks_say_same(self, old: Segment, new: Segment) -> bool | None:
        """True/False when both versions' chunk boundaries frame the tensor, else None."""
        if self.old.chunk_map is None or self.new.chunk_map is None:
            return None
        old_chunks = self.old.chunk_map.covering(old.offset, old.end)
        if old_chunks is None:
            return None
        new_chunks = self.new.chunk_map.covering(new.offset, new.end)
        if new_chunks is None:
            return None
        return chunks_verdict(old_chunks, old.offset, new_chunks, new.offset)

    def _bytes_equal(self, old: Segment, new: Segment) -> bool:
        for start in range(0, old.length, self.block_bytes):
            length = min(self.block_bytes, old.length - start)
            if self.old.read(old.offset + start, length) != self.new.read(new.offset + start, length):
                return False
        return True


def _with(
    base: TensorChange,
    status: str,
    decided_by: str,
    note: str | None = None,
    stats: TensorStats | None = None,
) -> TensorChange:
    return replace(base, status=status, decided_by=decided_by, stats_note=note, stats=stats)
