"""The values a model comparison returns: plain dataclasses, each with a JSON-ready `to_dict`.

JSON has no infinity or NaN, so `to_dict` spells non-finite floats as the strings "inf",
"-inf" and "nan"; shapes become lists.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

# "uncompared": the tensor is there but its values could not be compared (see its note);
# counted only when some tensor is, so that the counts of a plain diff keep their keys.
STATUSES = ("added", "deleted", "dtype", "shape", "modified", "uncompared", "unchanged")  # docs/cli.md's words


def json_value(value: Any) -> Any:
    """A value JSON can hold: tuples become lists, non-finite floats become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, (list, tuple)):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value


@dataclass(frozen=True)
class TensorStats:
    """How much a tensor's values moved between two versions of equal dtype and shape.

    `changed` counts elements whose bit patterns differ. The |delta| figures and the norms
    leave out `nan_changed`: changed elements where either side is NaN (their difference
    has no size). `rel_l2` is None when the old tensor's norm is zero.
    """

    numel: int
    changed: int
    nan_changed: int
    max_abs_diff: float | None
    mean_abs_diff: float | None
    rel_l2: float | None
    old_l2: float
    diff_l2: float

    @property
    def fraction_changed(self) -> float:
        return self.changed / self.numel if self.numel else 0.0

    def to_dict(self) -> dict[str, Any]:
        return json_value(
            {
                "numel": self.numel,
                "modified_count": self.changed,
                "modified_fraction": self.fraction_changed,
                "nan_modified_count": self.nan_changed,
                "max_abs_diff": self.max_abs_diff,
                "mean_abs_diff": self.mean_abs_diff,
                "rel_l2": self.rel_l2,
                "old_l2": self.old_l2,
                "diff_l2": self.diff_l2,
            }
        )


@dataclass(frozen=True)
class TensorChange:
    """One tensor name and what happened to it.

    `decided_by` says how the status was found: "header" (added, deleted, dtype, shape:
    no data needed), "empty" (no bytes), "chunks" (chunk ids), "bytes" (data compared),
    "inflated" (data of a compressed member, decompressed and compared), "none" (uncompared).
    `stats_note` says why `stats` is None when statistics were asked for; `note` what the
    reader should know about how (or why not) the values were compared.
    """

    name: str
    status: str
    old_dtype: str | None
    new_dtype: str | None
    old_shape: tuple[int, ...] | None
    new_shape: tuple[int, ...] | None
    old_bytes: int | None
    new_bytes: int | None
    stats: TensorStats | None = None
    stats_note: str | None = None
    decided_by: str = "header"
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return json_value(
            {
                "name": self.name,
                "status": self.status,
                "old_dtype": self.old_dtype,
                "new_dtype": self.new_dtype,
                "old_shape": self.old_shape,
                "new_shape": self.new_shape,
                "old_size": self.old_bytes,
                "new_size": self.new_bytes,
                "stats": self.stats.to_dict() if self.stats else None,
                "stats_note": self.stats_note,
                "decided_by": self.decided_by,
                "note": self.note,
            }
        )


@dataclass(frozen=True)
class MetaChange:
    """A header metadata key whose value differs; None on the side where it is absent."""

    key: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return json_value({"key": self.key, "old": self.old, "new": self.new})


@dataclass(frozen=True)
class ModelDiff:
    old_format: str | None  # None: not a model file of a known format
    new_format: str | None
    tensors: list[TensorChange]
    counts: dict[str, int]
    metadata: list[MetaChange]
    bytes_read: int
    notes: list[str] = field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.metadata) or any(t.status != "unchanged" for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "old_format": self.old_format,
            "new_format": self.new_format,
            "counts": dict(self.counts),
            "tensors": [t.to_dict() for t in self.tensors],
            "metadata": [m.to_dict() for m in self.metadata],
            "read_bytes": self.bytes_read,
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class TensorInfo:
    """`offset` is in the file, or in the inflated member when `deflated`; `stride` is set
    for a tensor stored other than row-major (then `bytes` is the storage span it reaches)."""

    name: str
    dtype: str | None
    shape: tuple[int, ...] | None
    bytes: int
    offset: int
    stride: tuple[int, ...] | None = None
    deflated: bool = False

    @property
    def numel(self) -> int:
        return math.prod(self.shape) if self.shape is not None else 0

    def to_dict(self) -> dict[str, Any]:
        return json_value(
            {"name": self.name, "dtype": self.dtype, "shape": self.shape,
             "size": self.bytes, "offset": self.offset, "numel": self.numel,
             "stride": self.stride, "deflated": self.deflated}
        )  # fmt: skip


@dataclass(frozen=True)
class ModelSummary:
    """What `mvc show REV:PATH` tells about one model file, read from its header alone."""

    format: str | None
    size: int
    tensors: list[TensorInfo]
    metadata: dict[str, Any]
    warnings: list[str]

    @property
    def total_numel(self) -> int:
        return sum(t.numel for t in self.tensors)

    @property
    def total_tensor_bytes(self) -> int:
        return sum(t.bytes for t in self.tensors)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "size": self.size,
            "tensor_count": len(self.tensors),
            "total_numel": self.total_numel,
            "total_tensor_bytes": self.total_tensor_bytes,
            "tensors": [t.to_dict() for t in self.tensors],
            "metadata": json_value(self.metadata),
            "warnings": list(self.warnings),
        }
