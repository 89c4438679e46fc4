"""Every supported format: a pair of files whose differences are known exactly."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelvc.errors import IntegrityError
from modelvc.modeldiff import STATUSES, FileVersion, compare_models
from tests.modeldiff.pairs import segment_chunks, version
from tests.modelfiles import (
    BytesSource,
    TorchView,
    write_gguf,
    write_npy,
    write_npz,
    write_safetensors,
    write_torch_zip,
)


def _tensors() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    keep_a = rng.standard_normal((8, 16)).astype(np.float32)
    reshaped = rng.standard_normal((4, 6)).astype(np.float32)
    retyped = rng.standard_normal((3, 5)).astype(np.float32)
    tuned = (rng.integers(-40, 40, (10, 10)) / 4).astype(np.float32)  # quarters: +0.5 is exact
    keep_b = np.arange(7, dtype=np.int64) * 3
    tuned_new = tuned.copy()
    tuned_new[3, 7] += 0.5
    old = {"keep_a": keep_a, "gone": np.arange(5, dtype=np.float32), "reshaped": reshaped,
           "retyped": retyped, "tuned": tuned, "keep_b": keep_b}  # fmt: skip
    new = {"keep_a": keep_a.copy(), "reshaped": reshaped.reshape(6, 4), "retyped": retyped.astype(np.float16),
           "tuned": tuned_new, "keep_b": keep_b.copy(), "fresh": np.ones((2, 2), np.float32)}  # fmt: skip
    return old, new


EXPECTED = {"keep_a": "unchanged", "gone": "deleted", "reshaped": "shape", "retyped": "dtype",
            "tuned": "modified", "keep_b": "unchanged", "fresh": "added"}  # fmt: skip
EXPECTED_COUNTS = {"added": 1, "deleted": 1, "dtype": 1, "shape": 1, "modified": 1, "unchanged": 2}


def _build(file_format: str, tensors: dict[str, np.ndarray], path) -> bytes:
    if file_format == "safetensors":
        return write_safetensors(path, tensors)
    if file_format == "gguf":
        return write_gguf(path, tensors)
    if file_format == "npz":
        return write_npz(path, tensors)
    if file_format == "npz-compressed":
        return write_npz(path, tensors, compressed=True)
    if file_format == "pytorch-transposed":
        return write_torch_zip(path, {"state_dict": {k: _transposed(v) for k, v in tensors.items()}})
    return write_torch_zip(path, {"state_dict": tensors})


def _transposed(array: np.ndarray):
    """A 2-D array as the transposed view torch.save writes for `w.t()`: its storage holds
    the array column by column, and the view's stride is (1, rows)."""
    if array.ndim != 2:
        return array
    return TorchView(array.T.copy().reshape(-1), 0, array.shape, (1, array.shape[0]))


FORMATS = ["safetensors", "gguf", "npz", "npz-compressed", "pytorch", "pytorch-transposed"]


@pytest.mark.parametrize("chunked", [False, True], ids=["bytes", "chunks"])
@pytest.mark.parametrize("file_format", FORMATS)
def test_known_differences_give_exact_statuses(tmp_path, file_format, chunked):
    old_tensors, new_tensors = _tensors()
    old_data = _build(file_format, old_tensors, tmp_path / "old")
    new_data = _build(file_format, new_tensors, tmp_path / "new")
    old, _ = version(old_data, chunks=segment_chunks(old_data, 64) if chunked else None)
    new, _ = version(new_data, chunks=segment_chunks(new_data, 64) if chunked else None)

    diff = compare_models(old, new)

    prefix = "state_dict." if file_format.startswith("pytorch") else ""
    assert {t.name: t.status for t in diff.tensors} == {prefix + k: v for k, v in EXPECTED.items()}
    assert diff.counts == EXPECTED_COUNTS
    assert diff.old_format == diff.new_format == file_format.split("-")[0]
    assert diff.notes == []
    by_name = {t.name.removeprefix(prefix): t for t in diff.tensors}
    assert (by_name["retyped"].old_dtype, by_name["retyped"].new_dtype) == ("F32", "F16")
    assert (by_name["retyped"].old_bytes, by_name["retyped"].new_bytes) == (60, 30)
    shapes = {(4, 6), (6, 4)}
    assert {by_name["reshaped"].old_shape, by_name["reshaped"].new_shape} == shapes
    assert by_name["reshaped"].old_shape != by_name["reshaped"].new_shape
    assert by_name["fresh"].old_dtype is None and by_name["fresh"].new_bytes == 16
    assert by_name["gone"].new_shape is None and by_name["gone"].old_bytes == 20
    way = "chunks" if chunked else "inflated" if file_format == "npz-compressed" else "bytes"
    assert {by_name[n].decided_by for n in ("keep_a", "keep_b")} == {way}
    # A changed deflated member has other chunk ids, which only say its compressed bytes differ.
    assert by_name["tuned"].decided_by == ("inflated" if file_format == "npz-compressed" else way)
    assert by_name["tuned"].stats is None and by_name["tuned"].stats_note is None
    assert diff.has_changes
    # New file order first, then the removed tensors.
    assert [t.name.removeprefix(prefix) for t in diff.tensors][-1] == "gone"


@pytest.mark.parametrize("file_format", FORMATS)
def test_stats_of_the_changed_tensor_in_every_format(tmp_path, file_format):
    old_tensors, new_tensors = _tensors()
    old, _ = version(_build(file_format, old_tensors, tmp_path / "old"))
    new, _ = version(_build(file_format, new_tensors, tmp_path / "new"))

    diff = compare_models(old, new, stats=True)

    changes = {t.name.removeprefix("state_dict."): t for t in diff.tensors}
    stats = changes["tuned"].stats
    assert stats is not None
    assert (stats.numel, stats.changed, stats.nan_changed) == (100, 1, 0)
    assert stats.max_abs_diff == 0.5
    assert stats.mean_abs_diff == 0.5 / 100
    assert stats.fraction_changed == 1 / 100
    norm = float(np.linalg.norm(old_tensors["tuned"].astype(np.float64)))
    assert stats.rel_l2 == pytest.approx(0.5 / norm, rel=1e-12)
    assert changes["retyped"].stats is None
    assert changes["retyped"].stats_note == "dtype changed from F32 to F16: no element statistics"
    assert changes["reshaped"].stats_note.startswith("shape changed from ")
    assert changes["keep_a"].stats is None and changes["keep_a"].stats_note is None
    json.dumps(diff.to_dict(), allow_nan=False)


def test_identical_files_have_no_changes(tmp_path):
    old_tensors, _ = _tensors()
    data = write_safetensors(tmp_path / "a", old_tensors)
    old, _ = version(data)
    new, _ = version(bytes(data))
    diff = compare_models(old, new, stats=True)
    assert diff.counts == {s: (6 if s == "unchanged" else 0) for s in STATUSES if s != "uncompared"}
    assert not diff.has_changes
    assert diff.metadata == []


def _npy_pair(tmp_path, old_array, new_array, old_name="w.npy", new_name="w.npy"):
    old, _ = version(write_npy(tmp_path / "old.npy", old_array), old_name)
    new, _ = version(write_npy(tmp_path / "new.npy", new_array), new_name)
    return compare_models(old, new, stats=True)


def test_npy_each_status(tmp_path):
    base = np.arange(24, dtype=np.float32).reshape(4, 6)
    changed = base.copy()
    changed[0, 1] = -3.0
    cases = {
        "unchanged": base.copy(),
        "modified": changed,
        "shape": base.reshape(6, 4),
        "dtype": base.astype(np.float64),
    }
    for status, new_array in cases.items():
        diff = _npy_pair(tmp_path, base, new_array)
        assert [(t.name, t.status) for t in diff.tensors] == [("w", status)]
        assert diff.counts[status] == 1 and sum(diff.counts.values()) == 1
    stats = _npy_pair(tmp_path, base, changed).tensors[0].stats
    assert (stats.numel, stats.changed, stats.max_abs_diff) == (24, 1, 4.0)
    assert stats.mean_abs_diff == 4.0 / 24


def test_npy_named_differently_is_removed_and_added(tmp_path):
    array = np.zeros(3, np.float32)
    diff = _npy_pair(tmp_path, array, array, "a.npy", "b.npy")
    assert [(t.name, t.status) for t in diff.tensors] == [("b", "added"), ("a", "deleted")]


def test_quantized_gguf_tensor_gets_no_stats_and_says_why(tmp_path):
    old_raw = bytes(range(34))
    new_raw = bytes(range(1, 35))
    old, _ = version(write_gguf(tmp_path / "a", {"q": ("Q8_0", (32,), old_raw)}))
    new, _ = version(write_gguf(tmp_path / "b", {"q": ("Q8_0", (32,), new_raw)}))
    (change,) = compare_models(old, new, stats=True).tensors
    assert (change.status, change.old_dtype, change.new_bytes) == ("modified", "Q8_0", 34)
    assert change.stats is None
    assert change.stats_note == "quantized type Q8_0: values are packed in blocks, no per-element statistics"


def test_not_a_model_file_on_one_side(tmp_path):
    data = write_safetensors(tmp_path / "a", {"w": np.ones(3, np.float32)})
    old, _ = version(b"just some text, not a model file")
    new, _ = version(data)
    diff = compare_models(old, new)
    assert (diff.old_format, diff.new_format) == (None, "safetensors")
    assert [(t.name, t.status) for t in diff.tensors] == [("w", "added")]
    assert diff.notes == ["the old version is not a model file of a known format"]
    assert diff.bytes_read == 0


def test_format_change_is_noted(tmp_path):
    tensors = {"w": np.arange(4, dtype=np.float32)}
    old, _ = version(write_safetensors(tmp_path / "a", tensors))
    new, _ = version(write_npz(tmp_path / "b", tensors))
    diff = compare_models(old, new)
    assert [(t.name, t.status, t.decided_by) for t in diff.tensors] == [("w", "unchanged", "bytes")]
    assert diff.notes == ["the format changed from safetensors to npz"]


def test_empty_tensors_are_unchanged_without_reading(tmp_path):
    tensors = {"empty": np.zeros((0, 4), np.float32)}
    old, old_source = version(write_safetensors(tmp_path / "a", tensors))
    new, new_source = version(write_safetensors(tmp_path / "b", tensors))
    (change,) = compare_models(old, new, stats=True).tensors
    assert (change.status, change.decided_by, change.stats) == ("unchanged", "empty", None)
    assert old_source.reads == new_source.reads == 0


def test_file_version_read_takes_the_layout_from_the_header(tmp_path):
    source = BytesSource(write_npy(tmp_path / "x.npy", np.zeros(3, np.float32)))
    file_version = FileVersion.read(source, "weights/x.npy")
    assert (file_version.layout.format, [t.name for t in file_version.layout.tensors()]) == ("npy", ["x"])
    assert file_version.chunks is None


class _TruncatingSource(BytesSource):
    """Serves the header, then comes up short: a stored version whose data went missing."""

    def read(self, offset: int, length: int) -> bytes:
        data = super().read(offset, length)
        return data if offset < 8 else data[:-1]


def test_a_short_read_is_an_integrity_error(tmp_path):
    data = write_safetensors(tmp_path / "a", {"w": np.arange(4, dtype=np.float32)})
    old, _ = version(data)
    source = _TruncatingSource(data)
    new = FileVersion(source, old.layout)
    header = 8 + int.from_bytes(data[:8], "little")
    message = f"short read: 15 of 16 bytes at offset {header} of a {len(data)}-byte file"
    with pytest.raises(IntegrityError, match=message):
        compare_models(old, new)
