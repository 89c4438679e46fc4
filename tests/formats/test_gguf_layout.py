import struct

import numpy as np
import pytest
from blake3 import blake3

from modelvc.formats import Segment
from modelvc.formats.detect import read_layout
from tests.modelfiles import BytesSource, Typed, assert_valid_layout, write_gguf

VOCAB = [f"tok{i}" for i in range(100)]
Q4_RAW = bytes(range(72))  # (64 / 32) blocks * 18 bytes * 2 rows


def sample(tmp_path, version=3, alignment=32):
    kv = {
        "general.architecture": "llama",
        "general.name": "tiny",
        "llama.context_length": Typed("uint32", 2048),
        "eps": Typed("float32", 0.5),
        "flag": True,
        "small": [1, 2, 3],
        "nested": Typed("array", [[1, 2], ["a"]], "array"),
        "tokenizer.ggml.tokens": VOCAB,
        "tokenizer.ggml.scores": Typed("array", [0.25] * 70, "float32"),
    }
    tensors = {
        "tok.weight": np.arange(32, dtype=np.float32).reshape(4, 8),
        "blk.0.q": ("Q4_0", (64, 2), Q4_RAW),
        "norm": np.ones(3, dtype=np.float16),
    }
    return write_gguf(tmp_path / "m.gguf", tensors, kv, version=version, alignment=alignment)


def tensor_info_offset_at(data: bytes, name: str, n_dims: int) -> int:
    """File position of the u64 data offset in the tensor info of `name`."""
    encoded = struct.pack("<Q", len(name)) + name.encode()
    return data.index(encoded) + len(encoded) + 4 + 8 * n_dims + 4


@pytest.mark.parametrize("version", [2, 3])
def test_segments_and_metadata_are_exact(tmp_path, version):
    data = sample(tmp_path, version)
    data_start = len(data) - (128 + 96 + 32)  # blobs padded to 32: 128, 72->96, 6->32
    layout = read_layout(BytesSource(data), "m.gguf")
    assert layout.format == "gguf"
    assert_valid_layout(layout)
    assert layout.segments == (
        Segment("<header>", 0, data_start, "header"),
        Segment("tok.weight", data_start, 128, "tensor", "F32", (8, 4)),
        Segment("blk.0.q", data_start + 128, 72, "tensor", "Q4_0", (64, 2)),
        Segment("<gap>", data_start + 200, 24, "other"),
        Segment("norm", data_start + 224, 6, "tensor", "F16", (3,)),
        Segment("<trailing>", data_start + 230, 26, "other"),
    )
    assert data[data_start + 128 : data_start + 200] == Q4_RAW
    encoded_vocab = b"".join(struct.pack("<Q", len(t)) + t.encode() for t in VOCAB)
    assert layout.metadata == {
        "general.architecture": "llama",
        "general.name": "tiny",
        "llama.context_length": 2048,
        "eps": 0.5,
        "flag": True,
        "small": [1, 2, 3],
        "nested": [[1, 2], ["a"]],
        "tokenizer.ggml.tokens": {"type": "string", "len": 100, "blake3": blake3(encoded_vocab).hexdigest()},
        "tokenizer.ggml.scores": {
            "type": "float32", "len": 70, "blake3": blake3(struct.pack("<f", 0.25) * 70).hexdigest(),
        },
    }


def test_custom_alignment_and_header_only_reads(tmp_path):
    big = np.zeros(1 << 20, dtype=np.float32)
    data = write_gguf(tmp_path / "a.gguf", {"a": np.ones(3, np.int8), "big": big}, alignment=256)
    source = BytesSource(data)
    layout = read_layout(source, "a.gguf")
    data_start = len(data) - 256 - (4 << 20)
    assert data_start % 256 == 0
    assert layout.metadata == {"general.alignment": 256}
    assert layout.tensors() == [
        Segment("a", data_start, 3, "tensor", "I8", (3,)),
        Segment("big", data_start + 256, 4 << 20, "tensor", "F32", (1 << 20,)),
    ]
    assert source.bytes_read < 1 << 20 + 64  # one header window at most, never the data
    assert source.reads <= 3


def test_no_tensors(tmp_path):
    data = write_gguf(tmp_path / "e.gguf", {}, {"k": "v"})
    layout = read_layout(BytesSource(data))
    assert layout.segments == (Segment("<header>", 0, len(data), "header"),)


def patched(data: bytes, position: int, fmt: str, value) -> bytes:
    return data[:position] + struct.pack(fmt, value) + data[position + struct.calcsize(fmt) :]


def test_malformed_files_give_none(tmp_path):
    data = sample(tmp_path)
    assert read_layout(BytesSource(data)) is not None
    offset_of_q = tensor_info_offset_at(data, "blk.0.q", 2)
    offset_of_norm = tensor_info_offset_at(data, "norm", 1)
    bad = {
        "version 1": patched(data, 4, "<I", 1),
        "version 4": patched(data, 4, "<I", 4),
        "2**60 tensors": patched(data, 8, "<Q", 2**60),
        "2**60 key/values": patched(data, 16, "<Q", 2**60),
        "first key length 2**62": patched(data, 24, "<Q", 2**62),
        "overlap": patched(data, offset_of_norm, "<Q", 96),
        "misaligned": patched(data, offset_of_norm, "<Q", 232),
        "past the end": patched(data, offset_of_norm, "<Q", 2**40),
        "unknown ggml type": patched(data, offset_of_q - 4, "<I", 4),
        "q4 row not whole blocks": patched(data, offset_of_q - 20, "<Q", 48),
        "absurd dims": patched(data, offset_of_q - 4 - 16 - 4, "<I", 2**31),
    }
    vocab_count_at = data.index(b"tokenizer.ggml.tokens") + len("tokenizer.ggml.tokens") + 4 + 4
    bad["vocab count 2**61"] = patched(data, vocab_count_at, "<Q", 2**61)
    bad["non-utf8 name"] = data.replace(b"blk.0.q", b"blk.\xff.q")
    for label, variant in bad.items():
        assert read_layout(BytesSource(variant)) is None, label
    for cut in (4, 20, 30, 200, offset_of_q, len(data) - 300, len(data) - 27):
        assert read_layout(BytesSource(data[:cut])) is None, cut


def test_duplicate_tensor_names_and_bad_alignment(tmp_path):
    same = write_gguf(tmp_path / "d.gguf", {"a": np.ones(2, np.float32), "b": np.ones(2, np.float32)})
    assert [t.name for t in read_layout(BytesSource(same)).tensors()] == ["a", "b"]
    renamed = same.replace(b"\x01\x00\x00\x00\x00\x00\x00\x00b", b"\x01\x00\x00\x00\x00\x00\x00\x00a")
    assert read_layout(BytesSource(renamed)) is None
    odd = write_gguf(tmp_path / "o.gguf", {"a": np.ones(2, np.float32)}, {"general.alignment": Typed("uint32", 24)})
    assert read_layout(BytesSource(odd)) is None
    even = write_gguf(tmp_path / "e.gguf", {"a": np.ones(2, np.float32)}, {"general.alignment": Typed("uint32", 16)})
    assert read_layout(BytesSource(even)).tensors()[0].offset % 16 == 0
