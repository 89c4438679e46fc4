"""Readers of model file layouts.

Each reader lists a file's segments (header, tensors, other bytes) from its header alone,
never loading tensor data and never executing anything. A file a reader cannot parse is
simply "unknown" (None): it is still versioned, with plain content-defined chunking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


class ByteSource(Protocol):
    """Random access to a file's bytes: a working file, or a stored version of one."""

    @property
    def size(self) -> int: ...

    def read(self, offset: int, length: int) -> bytes: ...


@dataclass(frozen=True)
class Deflated:
    """A deflate-compressed zip member: a tensor inside one is read by inflating the stream
    that starts at `data_offset` of the file (its offset then counts decompressed bytes)."""

    data_offset: int
    compressed_size: int
    uncompressed_size: int


@dataclass(frozen=True)
class Segment:
    name: str
    offset: int
    length: int
    kind: str  # "tensor" | "header" | "other"
    dtype: str | None = None  # canonical: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U8 BOOL, or GGUF quant names
    shape: tuple[int, ...] | None = None
    # Tensor-table entries only. `stride` (in elements) when the tensor is not row-major
    # contiguous (a PyTorch view, a Fortran-order array): offset and length then cover the
    # span of storage it reaches. `deflated` when its bytes are inside a compressed member.
    stride: tuple[int, ...] | None = None
    deflated: Deflated | None = None

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True)
class Layout:
    format: str  # "safetensors" | "gguf" | "pytorch" | "npz" | "zip" | "npy"
    size: int
    segments: tuple[Segment, ...]  # sorted, non-overlapping, covering [0, size) exactly
    metadata: dict[str, Any] = field(default_factory=dict)
    # The tensors as the model sees them, when they are not simply the tensor segments
    # (a PyTorch checkpoint: several tensors may be views into one storage).
    tensor_table: tuple[Segment, ...] | None = None
    warnings: tuple[str, ...] = ()
    # Tensors the reader found but cannot give bytes for (an unsupported compression
    # method, an unknown element type): (name, why), so a diff lists them as not compared.
    unread: tuple[tuple[str, str], ...] = ()

    def tensors(self) -> list[Segment]:
        if self.tensor_table is not None:
            return list(self.tensor_table)
        return [s for s in self.segments if s.kind == "tensor"]


def row_major(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """Contiguous in row-major order with no gaps (dimensions of size 1 may carry any stride)."""
    if any(dim == 0 for dim in shape):
        return True
    expected = 1
    for dim, step in zip(reversed(shape), reversed(stride), strict=True):
        if dim != 1 and step != expected:
            return False
        expected *= dim
    return True


def dense_permutation(shape: tuple[int, ...], stride: tuple[int, ...]) -> bool:
    """Every element of the span the view reaches belongs to it exactly once (a transpose,
    a Fortran-order array): element-wise figures over the span are the view's own."""
    if any(dim == 0 for dim in shape):
        return True
    expected = 1
    for step, dim in sorted((step, dim) for dim, step in zip(shape, stride, strict=True) if dim != 1):
        if step != expected:
            return False
        expected *= dim
    return True


def span_elements(shape: tuple[int, ...], stride: tuple[int, ...]) -> int:
    """Elements of storage from a view's first element to its last, both included."""
    if any(dim == 0 for dim in shape):
        return 0
    return 1 + sum((dim - 1) * step for dim, step in zip(shape, stride, strict=True))


class FileSource:
    """A ByteSource over a file on disk, read with pread; counts what it reads."""

    def __init__(self, path: str) -> None:
        import os

        self._os = os
        self._fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self._fd).st_size
        self.bytes_read = 0

    def read(self, offset: int, length: int) -> bytes:
        data = self._os.pread(self._fd, max(0, min(length, self.size - offset)), offset)
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self._os.close(self._fd)

    def __enter__(self) -> FileSource:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
