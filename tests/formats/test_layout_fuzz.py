"""read_layout on damaged files: never raises, and anything it returns is a valid layout."""

import numpy as np
import pytest

from modelvc.formats.detect import read_layout
from tests.modelfiles import (
    BytesSource,
    TorchView,
    Typed,
    assert_valid_layout,
    bf16_tensor,
    write_gguf,
    write_malicious_torch_zip,
    write_npy,
    write_npz,
    write_safetensors,
    write_torch_zip,
)


def samples(tmp_path) -> dict[str, bytes]:
    weights = {"a": np.arange(8, dtype=np.float32).reshape(2, 4), "b": np.ones(3, np.int16)}
    base = np.arange(6, dtype=np.float32)
    return {
        "safetensors": write_safetensors(tmp_path / "s.safetensors", weights, {"k": "v"}),
        "gguf": write_gguf(tmp_path / "g.gguf", weights, {"name": "x", "v": [f"t{i}" for i in range(70)],
                                                          "n": Typed("array", [[1], [2, 3]], "array")}),
        "npy": write_npy(tmp_path / "n.npy", weights["a"]),
        "npz": write_npz(tmp_path / "z.npz", weights),
        "npz-deflated": write_npz(tmp_path / "c.npz", weights, compressed=True),
        "pytorch": write_torch_zip(tmp_path / "t.pt", {"sd": {"a": weights["a"], "h": bf16_tensor(base),
                                                              "v": TorchView(base, 2, (2,), (2,))}}),
        "malicious": write_malicious_torch_zip(tmp_path / "m.pt", tmp_path / "marker"),
    }


def check(data: bytes) -> None:
    layout = read_layout(BytesSource(data), "fuzz")
    if layout is not None:
        assert layout.size == len(data)
        assert_valid_layout(layout)


@pytest.mark.parametrize("kind", ["safetensors", "gguf", "npy", "npz", "npz-deflated", "pytorch", "malicious"])
def test_truncations_and_byte_flips(tmp_path, kind):
    data = samples(tmp_path)[kind]
    assert read_layout(BytesSource(data)) is not None
    rng = np.random.default_rng(sum(map(ord, kind)))
    for cut in sorted(set(rng.integers(0, len(data), 60).tolist())) + list(range(0, 40)):
        check(data[:cut])
    for _ in range(300):
        damaged = bytearray(data)
        for position in rng.integers(0, len(data), rng.integers(1, 5)):
            damaged[position] = int(rng.integers(0, 256))
        check(bytes(damaged))
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("magic", [b"", b"\x93NUMPY\x01\x00", b"GGUF\x03\x00\x00\x00", b"PK\x03\x04",
                                   b"\x10\x00\x00\x00\x00\x00\x00\x00{"])
def test_random_bytes_after_a_magic(magic):
    rng = np.random.default_rng(len(magic))
    for size in list(range(0, 64)) + rng.integers(64, 4096, 40).tolist():
        check(magic + rng.integers(0, 256, size, dtype=np.uint8).tobytes())
