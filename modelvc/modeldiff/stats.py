"""How much a tensor's values moved: streamed over blocks, so memory stays bounded.

Values are decoded to float64 exactly (bf16 by shifting its bits into a float32, fp16 and
fp8 e5m2 through numpy's float16, fp8 e4m3 through a 256-entry table; integers are exact up
to 2**53) and sums accumulate in float64.

Conventions:
- an element is "changed" when its bit pattern differs (so -0.0 -> +0.0 is a change of
  size 0, and a NaN that keeps its exact bits is not a change);
- elements where either side is NaN are left out of every |delta| figure and norm (their
  difference has no size); `nan_changed` counts the changed ones among them;
- `rel_l2` = ||new - old|| / ||old||, None when ||old|| is zero (inf would not survive JSON).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from modelvc.formats import ByteSource
from modelvc.formats.dtypes import GGML_BLOCKS, ITEMSIZES
from modelvc.modeldiff.results import TensorStats

# Elements per read: 1 Mi elements is 4 MiB of F32 per side.
DEFAULT_BLOCK_ELEMENTS = 1 << 20
# Elements per pass of numpy work: small enough that the float64 temporaries (512 KiB
# each) stay in cache across the several passes; twice as fast as 1 Mi element passes.
CACHE_BLOCK_ELEMENTS = 1 << 16

_BITS: dict[int, np.dtype[Any]] = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}
_INTEGERS = {
    "I8": "<i1", "I16": "<i2", "I32": "<i4", "I64": "<i8",
    "U8": "<u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "<u1",
}  # fmt: skip
FLOAT_DTYPES = frozenset({"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"})


def _e4m3_table() -> np.ndarray:
    """float8 e4m3fn: bias 7, subnormals below exponent 1, no infinities, NaN at S.1111.111."""
    codes = np.arange(256, dtype=np.int64)
    sign = np.where(codes & 0x80, -1.0, 1.0)
    exponent = (codes >> 3) & 0xF
    mantissa = (codes & 0x7).astype(np.float64)
    normal = (1.0 + mantissa / 8.0) * np.exp2(exponent - 7.0)
    subnormal = (mantissa / 8.0) * 2.0**-6
    table = sign * np.where(exponent == 0, subnormal, normal)
    table[(codes & 0x7F) == 0x7F] = np.nan
    return table


_E4M3 = _e4m3_table()


# How each dtype's bytes are viewed before conversion: floats as themselves, bf16 and fp8
# as their bit patterns (converted by the functions below), integers as themselves.
_STORAGE: dict[str, str] = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "BF16": "<u2",
                            "F8_E5M2": "<u1", "F8_E4M3": "<u1", **_INTEGERS}  # fmt: skip


def _bf16_to_float64(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << 16).view("<f4").astype(np.float64)


def _e5m2_to_float64(bits: np.ndarray) -> np.ndarray:
    # e5m2 is the top byte of an IEEE binary16: same sign, exponent and bias.
    return (bits.astype(np.uint16) << 8).view("<f2").astype(np.float64)


_CONVERTERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "BF16": _bf16_to_float64,
    "F8_E5M2": _e5m2_to_float64,
    "F8_E4M3": lambda bits: _E4M3[bits],
}


def _elements(raw: bytes | memoryview, dtype: str) -> np.ndarray:
    return np.frombuffer(raw, dtype=_STORAGE[dtype])


def _to_float64(elements: np.ndarray, dtype: str) -> np.ndarray:
    converter = _CONVERTERS.get(dtype)
    return converter(elements) if converter else elements.astype(np.float64)


def decode(raw: bytes | memoryview, dtype: str) -> np.ndarray:
    """Little-endian elements of `dtype` as float64 (exact for every float type here)."""
    return _to_float64(_elements(raw, dtype), dtype)


def _sum_of_squares(values: np.ndarray) -> float:
    # einsum: a single pass in float64, several times faster than np.dot here.
    return float(np.einsum("i,i->", values, values))


def stats_unavailable(dtype: str | None) -> str | None:
    """Why a tensor of `dtype` gets no statistics, or None when it can have them."""
    if dtype in _STORAGE:
        return None
    if dtype in GGML_BLOCKS and dtype not in ITEMSIZES:
        return f"quantized type {dtype}: values are packed in blocks, no per-element statistics"
    return f"no statistics for dtype {dtype}"


class StatsAccumulator:
    """Feed equal-length blocks of the old and new bytes of one tensor, then ask the result."""

    def __init__(self, dtype: str) -> None:
        reason = stats_unavailable(dtype)
        if reason is not None:
            raise ValueError(reason)
        self.dtype = dtype
        self.itemsize = ITEMSIZES[dtype]
        self.is_float = dtype in FLOAT_DTYPES
        self.numel = 0
        self.changed = 0
        self.nan_changed = 0
        self.comparable = 0
        self.max_abs = 0.0
        self.sum_abs = 0.0
        self.old_sq = 0.0
        self.diff_sq = 0.0

    def add(self, old: bytes, new: bytes) -> None:
        if len(old) != len(new) or len(old) % self.itemsize:
            raise ValueError(f"blocks of {len(old)} and {len(new)} bytes for {self.dtype}")
        step = CACHE_BLOCK_ELEMENTS * self.itemsize
        old_view, new_view = memoryview(old), memoryview(new)
        for start in range(0, len(old), step):
            self._add_block(old_view[start : start + step], new_view[start : start + step])

    def _add_block(self, old: memoryview, new: memoryview) -> None:
        bits = _BITS[self.itemsize]
        differs = np.frombuffer(old, dtype=bits) != np.frombuffer(new, dtype=bits)
        changed = int(np.count_nonzero(differs))
        self.numel += differs.size
        self.changed += changed
        old_values = decode(old, self.dtype)
        new_elements = _elements(new, self.dtype)
        # Few changes: convert and subtract only the changed elements. Many: whole arrays,
        # with the unchanged deltas held at 0 (so an unchanged inf gives no inf - inf).
        dense = changed * 2 > differs.size
        new_values = _to_float64(new_elements if dense else new_elements[differs], self.dtype)
        old_sq = _sum_of_squares(old_values)
        # A sum of squares is NaN exactly when a value is NaN; an unchanged new value is
        # NaN only where the old one is. So two cheap tests find every NaN that matters.
        if self.is_float and (math.isnan(old_sq) or math.isnan(_sum_of_squares(new_values))):
            whole_new = new_values if dense else _to_float64(new_elements, self.dtype)
            self._add_with_nans(old_values, whole_new, differs)
            return
        self.comparable += old_values.size
        self.old_sq += old_sq
        if dense:
            delta = np.subtract(new_values, old_values, out=np.zeros_like(old_values), where=differs)
        else:
            delta = new_values - old_values[differs]
        self._add_deltas(delta)

    def _add_with_nans(self, old_values: np.ndarray, new_values: np.ndarray, differs: np.ndarray) -> None:
        keep = ~(np.isnan(old_values) | np.isnan(new_values))
        self.nan_changed += int(np.count_nonzero(differs & ~keep))
        old_values, new_values, differs = old_values[keep], new_values[keep], differs[keep]
        self.comparable += old_values.size
        self.old_sq += _sum_of_squares(old_values)
        self._add_deltas(new_values[differs] - old_values[differs])

    def _add_deltas(self, delta: np.ndarray) -> None:
        if delta.size:
            magnitude = np.abs(delta, out=delta)
            self.max_abs = max(self.max_abs, float(magnitude.max()))
            self.sum_abs += float(magnitude.sum())
            self.diff_sq += _sum_of_squares(magnitude)

    def result(self) -> TensorStats:
        old_l2 = math.sqrt(self.old_sq)
        diff_l2 = math.sqrt(self.diff_sq)
        return TensorStats(
            numel=self.numel,
            changed=self.changed,
            nan_changed=self.nan_changed,
            max_abs_diff=self.max_abs if self.comparable else None,
            mean_abs_diff=self.sum_abs / self.comparable if self.comparable else None,
            rel_l2=diff_l2 / old_l2 if old_l2 > 0 else None,
            old_l2=old_l2,
            diff_l2=diff_l2,
        )


def compute_stats(
    old_source: ByteSource,
    old_offset: int,
    new_source: ByteSource,
    new_offset: int,
    dtype: str,
    nbytes: int,
    *,
    block_elements: int = DEFAULT_BLOCK_ELEMENTS,
) -> TensorStats:
    """Statistics of a tensor of `nbytes` bytes at the given offsets of the two sources."""
    accumulator = StatsAccumulator(dtype)
    step = max(1, block_elements) * accumulator.itemsize
    for start in range(0, nbytes, step):
        length = min(step, nbytes - start)
        accumulator.add(old_source.read(old_offset + start, length), new_source.read(new_offset + start, length))
    return accumulator.result()
