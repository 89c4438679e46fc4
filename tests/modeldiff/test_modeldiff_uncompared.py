"""Tensors whose values cannot be compared are listed as "uncompared", saying why; strided
views are compared by the storage they span. Never a changed tensor that reads as unchanged."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np

from modelvc.modeldiff import compare_models
from tests.modeldiff.pairs import version
from tests.modelfiles import TorchView, write_npy, write_torch_zip


def _pair(tmp_path, old_tensors, new_tensors, stats=False):
    old, _ = version(write_torch_zip(tmp_path / "a.pt", old_tensors))
    new, _ = version(write_torch_zip(tmp_path / "b.pt", new_tensors))
    return compare_models(old, new, stats=stats)


def test_a_tensor_whose_stride_changed_is_uncompared(tmp_path):
    values = np.arange(12, dtype=np.float32)
    diff = _pair(tmp_path, {"w": TorchView(values, 0, (3, 4), (4, 1))}, {"w": TorchView(values, 0, (3, 4), (1, 3))})
    (change,) = diff.tensors
    assert (change.status, change.decided_by) == ("uncompared", "none")
    assert (change.old_shape, change.new_shape) == ((3, 4), (3, 4))
    assert change.note == "not compared: stored row-major in the old version and with stride (1, 3) in the new one"
    assert diff.counts == {"added": 0, "deleted": 0, "dtype": 0, "shape": 0, "modified": 0, "uncompared": 1,
                           "unchanged": 0}  # fmt: skip
    assert diff.has_changes
    assert diff.to_dict()["tensors"][0]["note"] == change.note


def test_a_partial_strided_view_is_compared_by_the_storage_it_spans(tmp_path):
    base = np.arange(24, dtype=np.float32)
    outside = base.copy()
    outside[4] = -1.0  # between the view's elements 3 and 5, never one of them
    inside = base.copy()
    inside[5] = -1.0

    def view(storage):
        return {"v": TorchView(storage, 3, (2, 3), (12, 2))}

    (same,) = _pair(tmp_path, view(base), view(base.copy())).tensors
    assert (same.status, same.note) == ("unchanged", None)
    note = "compared by the 68 bytes of storage its stride (12, 2) spans, which may hold elements outside it"
    for storage in (outside, inside):
        (change,) = _pair(tmp_path, view(base), view(storage), stats=True).tensors
        assert (change.status, change.decided_by, change.note) == ("modified", "bytes", note)
        assert change.stats is None
        assert change.stats_note == "a strided view over part of its storage: no element statistics"


def test_a_transposed_view_gets_exact_statistics(tmp_path):
    old = np.arange(12, dtype=np.float32).reshape(4, 3)
    new = old.copy()
    new[1, 2] += 2.0
    diff = _pair(tmp_path, {"t": TorchView(old.T.copy().reshape(-1), 0, (4, 3), (1, 4))},
                 {"t": TorchView(new.T.copy().reshape(-1), 0, (4, 3), (1, 4))}, stats=True)  # fmt: skip
    (change,) = diff.tensors
    assert (change.status, change.note) == ("modified", None)
    assert (change.stats.numel, change.stats.changed, change.stats.max_abs_diff) == (12, 1, 2.0)


def test_fortran_and_row_major_arrays_are_not_paired_by_bytes(tmp_path):
    values = np.arange(6, dtype=np.float32).reshape(2, 3)
    old, _ = version(write_npy(tmp_path / "a.npy", values), "w.npy")
    new, _ = version(write_npy(tmp_path / "b.npy", np.asfortranarray(values)), "w.npy")
    (change,) = compare_models(old, new).tensors
    assert change.status == "uncompared"
    assert change.note == "not compared: stored row-major in the old version and with stride (1, 2) in the new one"


def _zip(members: list[tuple[str, bytes, int, int]]) -> bytes:
    """A zip of (name, member bytes as stored, method, uncompressed size), CRCs left zero."""
    out = io.BytesIO()
    central = []
    for name, data, method, usize in members:
        offset = out.tell()
        raw = name.encode()
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 33, 0, len(data), usize, len(raw), 0))
        out.write(raw + data)
        central.append(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 33, 0,
                                   len(data), usize, len(raw), 0, 0, 0, 0, 0, offset) + raw)  # fmt: skip
    cd_offset = out.tell()
    out.write(b"".join(central))
    cd_size = out.tell() - cd_offset
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members), cd_size, cd_offset, 0))
    return out.getvalue()


def _npy(tmp_path, array) -> bytes:
    return write_npy(tmp_path / "m.npy", array)


def test_a_compressed_member_that_cannot_be_inflated_is_uncompared(tmp_path):
    array = np.arange(64, dtype=np.float32)
    good = _npy(tmp_path, array)
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    cut = packer.compress(good[:-100]) + packer.flush(zlib.Z_SYNC_FLUSH)  # header whole, data cut, no end
    old, _ = version(_zip([("w.npy", zlib.compress(good)[2:-4], 8, len(good))]), "a.npz")
    new, _ = version(_zip([("w.npy", cut, 8, len(good))]), "b.npz")
    assert [t.name for t in new.layout.tensors()] == ["w"]
    (change,) = compare_models(old, new).tensors
    assert (change.status, change.decided_by) == ("uncompared", "none")
    assert change.note == ("not compared: its compressed data could not be read: "
                           "compressed data is truncated before its 384 bytes")


def test_a_member_of_an_unknown_compression_method_is_uncompared_never_removed(tmp_path):
    data = _npy(tmp_path, np.ones(4, np.float32))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("w.npy", data, compress_type=zipfile.ZIP_LZMA)
        archive.writestr("b.npy", data)
    old, _ = version(_zip([("w.npy", data, 0, len(data)), ("b.npy", data, 0, len(data))]), "a.npz")
    new, _ = version(buffer.getvalue(), "b.npz")
    diff = compare_models(old, new)
    why = "w.npy is compressed with zip method 14, which mvc does not read"
    assert [(t.name, t.status, t.note) for t in diff.tensors] == [
        ("b", "unchanged", None),
        ("w", "uncompared", f"not compared: the new version's {why}"),
    ]
    both, _ = version(buffer.getvalue(), "b.npz")
    diff = compare_models(both, new)
    assert [(t.name, t.status, t.note) for t in diff.tensors] == [
        ("b", "unchanged", None),
        ("w", "uncompared", f"not compared: {why}"),
    ]
