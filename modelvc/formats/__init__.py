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

    size: int

    def read(self, offset: int, length: int) -> bytes: ...


@dataclass(frozen=True)
class Segment:
    name: str
    offset: int
    length: int
    kind: str  # "tensor" | "header" | "other"
    dtype: str | None = None  # canonical: F64 F32 F16 BF16 F8_E4M3 F8_E5M2 I64 I32 I16 I8 U8 BOOL, or GGUF quant names
    shape: tuple[int, ...] | None = None

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

    def tensors(self) -> list[Segment]:
        if self.tensor_table is not None:
            return list(self.tensor_table)
        return [s for s in self.segments if s.kind == "tensor"]


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

    def __enter__(self) -> "FileSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
