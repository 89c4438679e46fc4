"""Statistics of a changed tensor: exact values for known changes, and streaming = whole."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from modelvc.modeldiff import compare_models
from modelvc.modeldiff.stats import StatsAccumulator, compute_stats, decode, stats_unavailable
from tests.modeldiff.pairs import version
from tests.modelfiles import BytesSource, bf16_bytes, write_safetensors

SHAPE = (12, 20)
NUMEL = 240
SPOT = (5, 11)


def _quarters(seed: int = 3) -> np.ndarray:
    """Multiples of 1/4 in [-15, 15]: exact in bf16, fp16 and f32, and so is +0.5."""
    return (np.random.default_rng(seed).integers(-60, 60, SHAPE) / 4).astype(np.float32)


def _encode(values: np.ndarray, dtype: str) -> bytes:
    if dtype == "BF16":
        return bf16_bytes(values)
    return values.astype({"F16": "<f2", "F32": "<f4", "F64": "<f8"}[dtype]).tobytes()


def _single_change_stats(tmp_path, dtype: str):
    old_values = _quarters()
    new_values = old_values.copy()
    new_values[SPOT] += 0.5
    old_raw, new_raw = _encode(old_values, dtype), _encode(new_values, dtype)
    assert sum(a != b for a, b in zip(old_raw, new_raw, strict=True)) >= 1
    old, _ = version(write_safetensors(tmp_path / "a", {"w": (dtype, SHAPE, old_raw)}))
    new, _ = version(write_safetensors(tmp_path / "b", {"w": (dtype, SHAPE, new_raw)}))
    (change,) = compare_models(old, new, stats=True).tensors
    assert change.status == "modified"
    return change.stats, old_values


@pytest.mark.parametrize("dtype", ["F32", "BF16", "F16", "F64"])
def test_one_element_changed_by_half(tmp_path, dtype):
    stats, old_values = _single_change_stats(tmp_path, dtype)
    expected_norm = float(np.sqrt(np.sum(old_values.astype(np.float64) ** 2)))
    assert stats.numel == NUMEL
    assert stats.changed == 1
    assert stats.nan_changed == 0
    assert stats.max_abs_diff == 0.5
    assert stats.mean_abs_diff == 0.5 / NUMEL
    assert stats.fraction_changed == 1 / NUMEL
    assert stats.diff_l2 == 0.5
    assert stats.old_l2 == pytest.approx(expected_norm, rel=1e-14)
    assert stats.rel_l2 == pytest.approx(0.5 / expected_norm, rel=1e-14)


def test_decoding_is_exact_for_every_float_type():
    values = np.array([0.0, -0.0, 1.0, -2.5, 65504.0, 2.0**-24, np.inf], dtype=np.float32)
    assert np.array_equal(decode(bf16_bytes(values[:4]), "BF16"), values[:4].astype(np.float64))
    assert np.array_equal(decode(values.astype("<f2").tobytes(), "F16"), values.astype(np.float64))
    assert np.array_equal(decode(values.tobytes(), "F32"), values.astype(np.float64))
    # float8 e4m3fn: 1.0, 448 (largest), 2**-9 (smallest subnormal), -1.75, NaN
    e4m3 = decode(bytes([0x38, 0x7E, 0x01, 0xBE, 0x7F]), "F8_E4M3")
    assert list(e4m3[:4]) == [1.0, 448.0, 2.0**-9, -1.75] and math.isnan(e4m3[4])
    # float8 e5m2: 1.0, 57344 (largest), 2**-16 (smallest subnormal), -inf
    assert list(decode(bytes([0x3C, 0x7B, 0x01, 0xFC]), "F8_E5M2")) == [1.0, 57344.0, 2.0**-16, -np.inf]
    assert list(decode(np.array([-5, 7], "<i8").tobytes(), "I64")) == [-5.0, 7.0]


def test_nan_and_signed_zero_conventions():
    old = np.array([np.nan, 1.0, 2.0, 0.0, 5.0, 6.0], dtype=np.float32)
    new = np.array([np.nan, np.nan, 3.0, -0.0, 5.0, 6.0], dtype=np.float32)
    accumulator = StatsAccumulator("F32")
    accumulator.add(old.tobytes(), new.tobytes())
    stats = accumulator.result()
    # Element 0: same NaN bits, not a change. Element 1: changed to NaN, no size.
    # Element 2: +1. Element 3: sign of zero, a change of size 0.
    assert (stats.numel, stats.changed, stats.nan_changed) == (6, 3, 1)
    assert stats.max_abs_diff == 1.0
    assert stats.mean_abs_diff == 1.0 / 4  # over the 4 elements with no NaN on either side
    assert stats.old_l2 == math.sqrt(4.0 + 0.0 + 25.0 + 36.0)
    assert stats.rel_l2 == 1.0 / math.sqrt(65.0)


def _stats_of(old: list[float], new: list[float]):
    accumulator = StatsAccumulator("F32")
    accumulator.add(np.array(old, np.float32).tobytes(), np.array(new, np.float32).tobytes())
    return accumulator.result()


def test_mostly_changed_blocks_follow_the_same_conventions():
    # More than half changed: whole-array arithmetic; an unchanged inf must not give inf - inf.
    stats = _stats_of([np.inf, 1.0, 2.0], [np.inf, 2.0, 4.0])
    assert (stats.changed, stats.nan_changed, stats.max_abs_diff, stats.mean_abs_diff) == (2, 0, 2.0, 1.0)
    assert (stats.diff_l2, stats.old_l2, stats.rel_l2) == (math.sqrt(5.0), math.inf, 0.0)
    stats = _stats_of([1.0, 2.0, np.inf, np.nan, 0.0], [np.nan, 3.0, np.inf, np.nan, 4.0])
    assert (stats.changed, stats.nan_changed, stats.max_abs_diff) == (3, 1, 4.0)
    assert stats.mean_abs_diff == 5.0 / 3  # elements 1, 2 and 4 have no NaN on either side
    assert stats.diff_l2 == math.sqrt(17.0)


def test_rel_l2_is_none_when_old_is_zero_and_inf_survives_json():
    zeros = np.zeros(4, np.float32)
    new = np.array([0.0, 0.0, 2.0, np.inf], dtype=np.float32)
    accumulator = StatsAccumulator("F32")
    accumulator.add(zeros.tobytes(), new.tobytes())
    stats = accumulator.result()
    assert stats.rel_l2 is None
    assert stats.max_abs_diff == math.inf
    assert json.loads(json.dumps(stats.to_dict(), allow_nan=False))["max_abs_diff"] == "inf"


def test_integer_tensors_get_stats():
    old = np.array([1, 2, 3, -4], dtype=np.int16)
    new = np.array([1, 7, 3, -6], dtype=np.int16)
    stats = compute_stats(BytesSource(old.tobytes()), 0, BytesSource(new.tobytes()), 0, "I16", 8)
    assert (stats.changed, stats.max_abs_diff, stats.mean_abs_diff) == (2, 5.0, 7.0 / 4)
    assert stats.rel_l2 == math.sqrt(29.0) / math.sqrt(30.0)


def test_which_dtypes_have_no_stats():
    assert stats_unavailable("F32") is None and stats_unavailable("BOOL") is None
    assert stats_unavailable("Q4_K") == "quantized type Q4_K: values are packed in blocks, no per-element statistics"
    assert stats_unavailable("C64") == "no statistics for dtype C64"
    with pytest.raises(ValueError, match="quantized type Q4_0"):
        StatsAccumulator("Q4_0")


@pytest.mark.parametrize("touched_fraction", [0.1, 0.8])  # the sparse and the dense path
@pytest.mark.parametrize("block_elements", [4096, 100_000])  # below and above the cache block
@pytest.mark.parametrize("dtype", ["F32", "BF16", "F16"])
def test_streamed_stats_equal_numpy_on_the_whole_array(dtype, block_elements, touched_fraction):
    rng = np.random.default_rng(11)
    numel = 300_001  # many blocks, and a short last one
    old = rng.standard_normal(numel).astype(np.float32)
    new = old.copy()
    touched = rng.choice(numel, int(numel * touched_fraction), replace=False)
    new[touched] += rng.standard_normal(touched.size).astype(np.float32) * 0.01
    old_raw, new_raw = _encode(old, dtype), _encode(new, dtype)
    # The reference decodes the whole arrays at once, independently of modelvc's decoders.
    if dtype == "BF16":
        as_values = lambda raw: (np.frombuffer(raw, "<u2").astype("<u4") << 16).view("<f4")  # noqa: E731
    else:
        as_values = lambda raw: np.frombuffer(raw, {"F16": "<f2", "F32": "<f4"}[dtype])  # noqa: E731
    old_values, new_values = as_values(old_raw).astype(np.float64), as_values(new_raw).astype(np.float64)
    delta = new_values - old_values
    item = len(old_raw) // numel
    bits = {2: "<u2", 4: "<u4"}[item]
    changed = int(np.count_nonzero(np.frombuffer(old_raw, bits) != np.frombuffer(new_raw, bits)))

    old_source, new_source = BytesSource(old_raw), BytesSource(new_raw)
    stats = compute_stats(old_source, 0, new_source, 0, dtype, len(old_raw), block_elements=block_elements)

    assert old_source.reads == new_source.reads == math.ceil(numel / block_elements)
    assert old_source.bytes_read == new_source.bytes_read == len(old_raw)
    assert changed > 1000
    assert (stats.numel, stats.changed) == (numel, changed)
    assert stats.max_abs_diff == float(np.abs(delta).max())
    assert stats.mean_abs_diff == pytest.approx(float(np.abs(delta).mean()), rel=1e-12)
    assert stats.rel_l2 == pytest.approx(float(np.linalg.norm(delta) / np.linalg.norm(old_values)), rel=1e-12)
    assert stats.old_l2 == pytest.approx(float(np.linalg.norm(old_values)), rel=1e-12)
