import struct

import numpy as np
import pytest

from modelvc.formats import Segment
from modelvc.formats.detect import read_layout
from tests.modelfiles import BytesSource, write_npy


@pytest.mark.parametrize("version", [(1, 0), (2, 0), (3, 0)])
def test_versions_give_exact_segments(tmp_path, version):
    array = np.arange(12, dtype=np.float16).reshape(3, 4)
    data = write_npy(tmp_path / "w.npy", array, version=version)
    header_length = len(data) - array.nbytes
    assert data[6] == version[0]
    layout = read_layout(BytesSource(data), "models/weights.npy")
    assert layout.format == "npy"
    assert layout.segments == (
        Segment("<header>", 0, header_length, "header"),
        Segment("weights", header_length, 24, "tensor", "F16", (3, 4)),
    )
    assert layout.warnings == ()


def test_default_name_scalar_and_bool(tmp_path):
    scalar = write_npy(tmp_path / "s.npy", np.array(7, dtype=np.int64))
    layout = read_layout(BytesSource(scalar))
    assert layout.tensors() == [Segment("array", len(scalar) - 8, 8, "tensor", "I64", ())]
    flags = write_npy(tmp_path / "b.npy", np.array([True, False]))
    assert read_layout(BytesSource(flags), "b.npy").tensors()[0].dtype == "BOOL"


def test_fortran_order_is_warned(tmp_path):
    data = write_npy(tmp_path / "f.npy", np.asfortranarray(np.ones((2, 3), np.float32)))
    layout = read_layout(BytesSource(data), "f.npy")
    assert layout.tensors()[0].shape == (2, 3)
    assert layout.tensors()[0].stride == (1, 2)  # column-major: a diff must not pair it with a row-major one
    assert layout.warnings == ("f: stored in Fortran (column-major) order",)


@pytest.mark.parametrize("dtype", [np.dtype(">f4"), np.dtype([("x", "<i4"), ("y", "<f8")]), np.dtype("<U3")])
def test_dtypes_without_canonical_name_are_opaque(tmp_path, dtype):
    data = write_npy(tmp_path / "x.npy", np.zeros(4, dtype=dtype))
    layout = read_layout(BytesSource(data), "x.npy")
    header_length = len(data) - 4 * dtype.itemsize
    assert layout.segments == (
        Segment("<header>", 0, header_length, "header"),
        Segment("x", header_length, 4 * dtype.itemsize, "other"),
    )
    # Listed with no dtype, so that a diff still compares its bytes.
    assert layout.tensors() == [Segment("x", header_length, 4 * dtype.itemsize, "tensor", None, (4,))]
    assert len(layout.warnings) == 1 and "opaque" in layout.warnings[0]


def npy_with_header(text: str, data: bytes = bytes(16)) -> bytes:
    raw = text.encode("latin-1")
    raw += b" " * (-(10 + len(raw) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(raw)) + raw + data


def test_malformed_files_give_none(tmp_path):
    good = npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }")
    assert read_layout(BytesSource(good)) is not None
    for text in [
        "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }",  # data too short
        "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}",
        "{'descr': '<f4', 'fortran_order': 0, 'shape': (4,), }",
        "{'descr': '<f4', 'fortran_order': False, 'shape': [4], }",
        "['descr', '<f4']",
        "__import__('os').system('true')",
        "{'descr': '<f4', 'fortran_order': False, 'shape': (2**70,), }",
        "{" * 5000,
    ]:
        assert read_layout(BytesSource(npy_with_header(text))) is None, text
    assert read_layout(BytesSource(good[:9])) is None
    assert read_layout(BytesSource(good[:40])) is None
    assert read_layout(BytesSource(good[:8] + struct.pack("<H", 60000) + good[10:])) is None
    assert read_layout(BytesSource(good[:6] + b"\x07\x00" + good[8:])) is None


def test_data_beyond_the_array_is_trailing(tmp_path):
    data = write_npy(tmp_path / "t.npy", np.ones(2, np.uint8)) + b"xyz"
    layout = read_layout(BytesSource(data), "t.npy")
    assert layout.segments[-1] == Segment("<trailing>", len(data) - 3, 3, "other")


def test_header_literal_parser():
    from modelvc.formats.npy import parse_literal

    assert parse_literal("{'descr': [('x', '<i4'), ('y', '<f8')], 'fortran_order': True, 'shape': (3, -1,), }  \n") == {
        "descr": [("x", "<i4"), ("y", "<f8")], "fortran_order": True, "shape": (3, -1)
    }
    assert parse_literal('("a", None, 12L)') == ("a", None, 12)


class FailingSource:
    size = 100

    def read(self, offset, length):
        raise OSError("disk gone")


def test_io_errors_propagate():
    with pytest.raises(OSError, match="disk gone"):
        read_layout(FailingSource())
