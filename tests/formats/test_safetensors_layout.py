import json
import struct

import numpy as np
import pytest

from modelvc.formats import Segment
from modelvc.formats.detect import read_layout
from tests.modelfiles import BytesSource, assert_valid_layout, bf16_bytes, write_safetensors


def raw_file(header: dict, data: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + data


def layout_of(data: bytes, name: str = "model.safetensors"):
    return read_layout(BytesSource(data), name)


def test_segments_are_exact(tmp_path):
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    bias = bf16_bytes(np.array([1.0, -2.0, 0.5], dtype=np.float32))
    data = write_safetensors(
        tmp_path / "m.safetensors",
        {"layer.weight": weight, "layer.bias": ("BF16", (3,), bias), "empty": np.zeros((0, 4), np.int64)},
        metadata={"format": "pt"},
    )
    header_end = 8 + struct.unpack("<Q", data[:8])[0]
    layout = layout_of(data)
    assert layout.format == "safetensors"
    assert layout.size == len(data) == header_end + 24 + 6
    assert layout.segments == (
        Segment("<header>", 0, header_end, "header"),
        Segment("layer.weight", header_end, 24, "tensor", "F32", (2, 3)),
        Segment("layer.bias", header_end + 24, 6, "tensor", "BF16", (3,)),
        Segment("empty", header_end + 30, 0, "tensor", "I64", (0, 4)),
    )
    assert layout.metadata == {"__metadata__": {"format": "pt"}}
    assert [t.name for t in layout.tensors()] == ["layer.weight", "layer.bias", "empty"]
    assert data[header_end : header_end + 24] == weight.tobytes()


def test_reads_only_the_header(tmp_path):
    data = write_safetensors(tmp_path / "big.safetensors", {"w": np.ones(1 << 20, np.float32)})
    source = BytesSource(data)
    layout = read_layout(source, "big.safetensors")
    assert layout is not None and layout.segments[1].length == 4 << 20
    assert source.bytes_read < 200


def test_out_of_order_offsets_gaps_and_trailing_bytes():
    header = {
        "a": {"dtype": "F32", "shape": [6], "data_offsets": [16, 40]},
        "b": {"dtype": "U8", "shape": [2, 4], "data_offsets": [0, 8]},
    }
    data = raw_file(header, bytes(40) + b"tail")
    start = len(data) - 44
    layout = layout_of(data)
    assert_valid_layout(layout)
    assert layout.segments == (
        Segment("<header>", 0, start, "header"),
        Segment("b", start, 8, "tensor", "U8", (2, 4)),
        Segment("<gap>", start + 8, 8, "other"),
        Segment("a", start + 16, 24, "tensor", "F32", (6,)),
        Segment("<trailing>", start + 40, 4, "other"),
    )


GOOD = {"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 8]}}


@pytest.mark.parametrize(
    "header",
    [
        {"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [0, 9]}},  # shape != range
        {"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [8, 16]}},  # past the data
        {"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [-8, 0]}},
        {"w": {"dtype": "F16", "shape": [2, 2], "data_offsets": [8, 0]}},
        {"w": {"dtype": "F99", "shape": [2, 2], "data_offsets": [0, 8]}},
        {"w": {"dtype": "F16", "shape": [True, 4], "data_offsets": [0, 8]}},
        {"w": {"dtype": "F16", "shape": [2, -2], "data_offsets": [0, 8]}},
        {"w": {"dtype": "F16", "shape": [2**62, 2**62], "data_offsets": [0, 8]}},
        {"w": {"dtype": "F16", "shape": "22", "data_offsets": [0, 8]}},
        {"w": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4]},
         "v": {"dtype": "U8", "shape": [4], "data_offsets": [2, 6]}},  # overlap
        {"w": [1, 2]},
        {"__metadata__": {"n": 3}, **GOOD},
        {"w": {"dtype": "F16", "shape": [4], "data_offsets": [0]}},
    ],
)
def test_malformed_headers_give_none(header):
    assert layout_of(raw_file(GOOD, bytes(8))) is not None
    assert layout_of(raw_file(header, bytes(8))) is None


def test_malformed_framing_gives_none():
    good = raw_file(GOOD, bytes(8))
    text_len = struct.unpack("<Q", good[:8])[0]
    for cut in (0, 5, 8, 9, 8 + text_len // 2, 8 + text_len + 7):
        assert layout_of(good[:cut]) is None, cut
    assert layout_of(struct.pack("<Q", 2**60) + good[8:]) is None
    assert layout_of(struct.pack("<Q", len(good)) + good[8:]) is None
    assert layout_of(struct.pack("<Q", 7) + b"[1,2,3]" + bytes(8)) is None  # not an object
    one = b'"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}'
    duplicate = b"{" + one + b"," + one + b"}"
    assert layout_of(struct.pack("<Q", len(duplicate)) + duplicate + b"x") is None
    bad_utf8 = b'{"w\xff":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}'
    assert layout_of(struct.pack("<Q", len(bad_utf8)) + bad_utf8 + b"x") is None
