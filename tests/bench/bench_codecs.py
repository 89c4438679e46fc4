"""Benchmark of the chunk codecs: ratio and single-thread MB/s, printed as a table.

Run from the repository root:  python tests/bench/bench_codecs.py [--mib 32]

Data: 1 MiB chunks of fresh weights (standard_normal * 0.02; bf16 by rounding f32 to
nearest even), and generic bytes: a safetensors-style JSON header, Zipf-distributed words,
and pickle-like records. Rows:

* ``encode_chunk``       what modelvc stores (the codec it picks per chunk)
* ``planes level N``     the same byte planes, each compressed at level N when that helps
                         (the alternatives to modelvc's plane parameters)
* ``zstd level N``       plain zstd of the raw chunk, for comparison
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from modelvc.store import codecs  # noqa: E402

CHUNK = 1 << 20
GENERIC_CAP = 8 << 20  # generic samples are built by Python loops: keep them quick


def weights(total_bytes: int) -> dict[str, tuple[bytes, int]]:
    rng = np.random.default_rng(0)
    f32 = (rng.standard_normal(total_bytes // 2, dtype=np.float32) * np.float32(0.02)).astype(np.float32)
    bits = f32.view(np.uint32)
    bf16 = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return {
        "bf16": (bf16.tobytes(), 2),
        "fp16": (f32.astype(np.float16).tobytes(), 2),
        "fp32": (f32[: total_bytes // 4].tobytes(), 4),
    }


def zipf_words(total_bytes: int) -> bytes:
    rng = np.random.default_rng(2)
    letters = list("etaoinshrdlucmfwypvbgkjqxz")
    vocab = ["".join(rng.choice(letters, size=int(rng.integers(2, 10)))) for _ in range(5000)]
    ranks = rng.zipf(1.3, size=total_bytes // 5) % len(vocab)
    return " ".join(vocab[rank] for rank in ranks).encode()[:total_bytes]


def pickle_like(total_bytes: int) -> bytes:
    rng = np.random.default_rng(3)
    records = []
    size = 0
    index = 0
    while size < total_bytes:
        name = f"layers.{index % 80}.mlp.w{index % 3}".encode().ljust(20)
        fields = struct.pack("<IIf", index, int(rng.integers(0, 4096)), rng.standard_normal())
        record = b"\x8c\x14" + name + fields
        records.append(record)
        size += len(record)
        index += 1
    return b"".join(records)[:total_bytes]


def text_like(total_bytes: int) -> bytes:
    rng = np.random.default_rng(1)
    parts = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "input_layernorm"]
    header: dict[str, object] = {"__metadata__": {"format": "pt", "step": "12000"}}
    offset = 0
    entry_bytes = 110  # roughly, per tensor entry in JSON
    for layer in range(total_bytes // entry_bytes // len(parts) + 1):
        for part in parts:
            rows, cols = (int(rng.choice([2048, 4096, 11008])), int(rng.choice([2048, 4096])))
            length = rows * cols * 2
            header[f"model.layers.{layer}.{part}.weight"] = {
                "dtype": "BF16",
                "shape": [rows, cols],
                "data_offsets": [offset, offset + length],
            }
            offset += length
    return json.dumps(header).encode()[:total_bytes]


def best_seconds(action: Callable[[], object], repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - start)
    return best


def chunks_of(data: bytes) -> list[memoryview]:
    view = memoryview(data)
    return [view[i : i + CHUNK] for i in range(0, len(view), CHUNK)]


def stored_size(stored: object) -> int:
    if isinstance(stored, tuple):  # (codec, payload)
        return len(stored[1])
    if isinstance(stored, list):  # planes
        return sum(len(plane) for plane in stored)
    return len(stored)


def measure(name: str, data: bytes, encode: Callable, decode: Callable) -> None:
    chunks = chunks_of(data)
    encoded: list = []

    def run_encode() -> None:
        encoded[:] = [encode(chunk) for chunk in chunks]

    def run_decode() -> None:
        for chunk, stored in zip(chunks, encoded, strict=True):
            decode(stored, len(chunk))

    encode_s = best_seconds(run_encode)
    decode_s = best_seconds(run_decode)
    restored = b"".join(decode(stored, len(chunk)) for chunk, stored in zip(chunks, encoded, strict=True))
    assert restored == data, name
    stored_bytes = sum(stored_size(stored) for stored in encoded)
    mb = len(data) / 1e6
    print(
        f"  {name:<20} ratio {stored_bytes / len(data):6.4f}"
        f"   encode {mb / encode_s:7.0f} MB/s   decode {mb / decode_s:7.0f} MB/s"
    )


def planes_with(compressor: zstandard.ZstdCompressor, itemsize: int) -> tuple[Callable, Callable]:
    """Byte planes, each plane compressed and kept so when smaller."""
    dctx = zstandard.ZstdDecompressor()

    def encode(chunk: memoryview) -> list[bytes]:
        count = len(chunk) // itemsize
        planes = np.frombuffer(chunk, np.uint8, count=count * itemsize).reshape(count, itemsize).T.copy()
        stored = []
        for plane in planes:
            packed = compressor.compress(plane)
            stored.append(packed if len(packed) < count else plane.tobytes())
        return stored

    def decode(stored: list[bytes], raw_length: int) -> bytes:
        count = raw_length // itemsize
        out = np.empty((count, itemsize), np.uint8)
        for k, plane in enumerate(stored):
            out[:, k] = np.frombuffer(plane if len(plane) == count else dctx.decompress(plane), np.uint8)
        return out.tobytes()

    return encode, lambda stored, n: decode(stored, n)


def plain_zstd(level: int) -> tuple[Callable, Callable]:
    cctx = zstandard.ZstdCompressor(level=level)
    dctx = zstandard.ZstdDecompressor()
    return (lambda chunk: cctx.compress(chunk)), (lambda stored, n: dctx.decompress(stored))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=32, help="MiB of data per kind (default 32)")
    args = parser.parse_args()
    total = args.mib << 20

    picked: dict[str, set[int]] = {}

    def modelvc_codec(itemsize: int | None, kind: str) -> tuple[Callable, Callable]:
        def encode(chunk: memoryview) -> tuple[int, bytes]:
            result = codecs.encode_chunk(chunk, itemsize)
            picked.setdefault(kind, set()).add(result[0])
            return result

        return encode, lambda stored, n: codecs.decode_chunk(stored[0], stored[1], n)

    for kind, (data, itemsize) in weights(total).items():
        print(f"{kind} weights, {len(data) >> 20} MiB in 1 MiB chunks")
        measure("encode_chunk", data, *modelvc_codec(itemsize, kind))
        for level in (-1, 1, 3):
            compressor = zstandard.ZstdCompressor(level=level)
            measure(f"planes level {level}", data, *planes_with(compressor, itemsize))
        measure("zstd level 1", data, *plain_zstd(1))
        measure("zstd level 3", data, *plain_zstd(3))
        print(f"  codecs chosen by encode_chunk: {sorted(picked.get(kind, ()))}")
    generic = min(total, GENERIC_CAP)
    for kind, data in (
        ("JSON header", text_like(generic)),
        ("Zipf words", zipf_words(generic)),
        ("pickle-like", pickle_like(generic)),
    ):
        print(f"{kind}, {len(data) >> 20} MiB in 1 MiB chunks")
        measure("encode_chunk", data, *modelvc_codec(None, kind))
        for level in (1, 3, 6):
            measure(f"zstd level {level}", data, *plain_zstd(level))
        print(f"  codecs chosen by encode_chunk: {sorted(picked.get(kind, ()))}")


if __name__ == "__main__":
    main()
