"""Chunk codecs: byte-identical round trips, the documented payload layout, never inflating,
and corrupt payloads reported as IntegrityError."""

from __future__ import annotations

import random
import struct
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import zstandard
from blake3 import blake3

from modelvc.errors import IntegrityError
from modelvc.store.codecs import (
    CODEC_DELTA,
    CODEC_NONE,
    CODEC_PLANES,
    CODEC_ZSTD,
    CODECS,
    codec_name,
    decode_chunk,
    encode_chunk,
)
from modelvc.store.delta import encode_delta

MIB = 1 << 20


def weights_f32(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(count, dtype=np.float32) * np.float32(0.02)).astype(np.float32)


def bf16_bytes(values: np.ndarray) -> bytes:
    bits = values.view(np.uint32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16).tobytes()


def noise(length: int, label: bytes = b"noise") -> bytes:
    return blake3(label).digest(length=length)


def text_bytes(length: int) -> bytes:
    words = [f"model.layers.{i}.self_attn.q_proj.weight" for i in range(200)]
    return " ".join(words * (length // 4000 + 1)).encode()[:length]


def round_trip(raw: bytes, itemsize: int | None) -> tuple[int, bytes]:
    codec, payload = encode_chunk(raw, itemsize)
    assert decode_chunk(codec, payload, len(raw)) == raw
    return codec, payload


# -- round trips and ratios -------------------------------------------------------------


def test_bf16_weights_use_planes_and_meet_the_ratio_target() -> None:
    raw = bf16_bytes(weights_f32(MIB // 2))
    codec, payload = round_trip(raw, 2)
    assert codec == CODEC_PLANES
    assert len(payload) / len(raw) <= 0.70


def test_fp32_weights_use_planes_and_meet_the_ratio_target() -> None:
    raw = weights_f32(MIB // 4).tobytes()
    codec, payload = round_trip(raw, 4)
    assert codec == CODEC_PLANES
    assert len(payload) / len(raw) <= 0.87


@pytest.mark.parametrize("dtype, itemsize", [(np.float16, 2), (np.float64, 8)])
def test_other_float_widths_round_trip_as_planes(dtype: type, itemsize: int) -> None:
    raw = weights_f32(50_000).astype(dtype).tobytes()
    codec, payload = round_trip(raw, itemsize)
    assert codec == CODEC_PLANES
    assert len(payload) < 0.9 * len(raw)


def test_planes_payload_follows_the_documented_layout() -> None:
    raw = bf16_bytes(weights_f32(4096))
    codec, payload = encode_chunk(raw, 2)
    assert codec == CODEC_PLANES
    count = len(raw) // 2
    assert payload[0] == 2 and payload[1] == 0
    method0, length0 = struct.unpack_from("<BI", payload, 2)
    method1, length1 = struct.unpack_from("<BI", payload, 7)
    # Low byte (mantissa) is noise and goes raw; high byte (sign, exponent) is compressed.
    assert (method0, length0) == (0, count)
    assert method1 == 1
    assert len(payload) == 12 + length0 + length1
    assert payload[12 : 12 + count] == raw[0::2]
    plane1 = zstandard.ZstdDecompressor().decompress(payload[12 + count :])
    assert plane1 == raw[1::2]


def test_trailing_partial_element_is_stored_as_raw_tail() -> None:
    raw = weights_f32(10_000).tobytes() + b"\x01\x02\x03"
    codec, payload = round_trip(raw, 4)
    assert codec == CODEC_PLANES
    assert payload[0] == 4 and payload[1] == 3
    assert payload[-3:] == b"\x01\x02\x03"


@pytest.mark.parametrize("itemsize", [2, 4, 8])
def test_chunks_of_odd_lengths_round_trip(itemsize: int) -> None:
    values = weights_f32(3000).astype(np.float64).tobytes()
    for length in (1, itemsize - 1, itemsize, itemsize + 1, 4097, 8191, len(values)):
        round_trip(values[:length], itemsize)


def test_memoryview_slices_and_typed_views_are_encoded_by_their_bytes() -> None:
    values = weights_f32(20_000)
    raw = values.tobytes()
    codec, payload = encode_chunk(memoryview(raw)[4000:44000], 4)
    assert decode_chunk(codec, memoryview(payload), 40000) == raw[4000:44000]
    typed = memoryview(values)  # format "f": len() counts items, not bytes
    codec, payload = encode_chunk(typed, 4)
    assert decode_chunk(codec, payload, len(raw)) == raw


def test_generic_compressible_data_uses_zstd() -> None:
    raw = text_bytes(300_000)
    codec, payload = round_trip(raw, None)
    assert codec == CODEC_ZSTD
    assert len(payload) < len(raw) // 10
    assert zstandard.frame_content_size(payload) == len(raw)


@pytest.mark.parametrize("itemsize", [None, 2, 4, 8])
def test_incompressible_chunk_is_stored_raw(itemsize: int | None) -> None:
    raw = noise(200_001)
    codec, payload = round_trip(raw, itemsize)
    assert codec == CODEC_NONE
    assert payload == raw


def test_empty_chunk() -> None:
    assert encode_chunk(b"", None) == (CODEC_NONE, b"")
    assert encode_chunk(b"", 4) == (CODEC_NONE, b"")
    assert decode_chunk(CODEC_NONE, b"", 0) == b""


def test_zero_filled_float_chunk_shrinks_to_almost_nothing() -> None:
    raw = bytes(MIB)
    codec, payload = round_trip(raw, 2)
    assert codec == CODEC_PLANES
    assert len(payload) < 200


def test_never_inflates_over_many_shapes_of_data() -> None:
    rng = random.Random(7)
    sources = {
        "noise": noise(70_000, b"never-inflate"),
        "text": text_bytes(70_000),
        "floats": weights_f32(17_500).tobytes(),
        "sparse": bytes(35_000) + noise(35_000, b"half"),
    }
    for _ in range(120):
        data = sources[rng.choice(sorted(sources))]
        start = rng.randrange(0, len(data))
        raw = data[start : start + rng.choice([1, 2, 3, 7, 50, 1000, 30_000])]
        itemsize = rng.choice([None, 2, 4, 8])
        codec, payload = round_trip(raw, itemsize)
        assert len(payload) <= len(raw)
        assert (codec == CODEC_NONE) == (payload == raw)


def test_invalid_itemsize_is_rejected() -> None:
    with pytest.raises(ValueError, match="itemsize must be one of"):
        encode_chunk(b"abcdefgh", 3)


def test_concurrent_use_from_threads_matches_serial_results() -> None:
    chunks = [bf16_bytes(weights_f32(100_000, seed=s)) for s in range(6)]
    chunks += [text_bytes(150_000 + s) for s in range(6)]
    itemsizes = [2] * 6 + [None] * 6
    serial = [encode_chunk(c, i) for c, i in zip(chunks, itemsizes, strict=True)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            parallel = list(pool.map(encode_chunk, chunks, itemsizes))
            assert parallel == serial
            decoded = list(pool.map(lambda s, c: decode_chunk(s[0], s[1], len(c)), serial, chunks))
            assert decoded == chunks


def test_registry_names_every_codec_by_its_on_disk_id() -> None:
    assert {codec_id: (codec.name, codec.needs_base) for codec_id, codec in CODECS.items()} == {
        0: ("none", False), 1: ("zstd", False), 2: ("planes", False), 3: ("delta", True)}
    assert (CODEC_NONE, CODEC_ZSTD, CODEC_PLANES, CODEC_DELTA) == (0, 1, 2, 3)
    assert all(codec.id == codec_id for codec_id, codec in CODECS.items())
    assert codec_name(CODEC_PLANES) == "planes" and codec_name(9) == "unknown-9"


def test_delta_decodes_through_the_table_with_its_base() -> None:
    base = bf16_bytes(weights_f32(4096))
    raw = bf16_bytes(weights_f32(4096) + np.float32(1e-4))
    payload = encode_delta(raw, base, 2)
    assert payload is not None
    assert decode_chunk(CODEC_DELTA, payload, len(raw), base) == raw


# -- corrupt payloads ----------------------------------------------------------------------


def corrupt_message(codec: int, payload: bytes, raw_length: int) -> str:
    with pytest.raises(IntegrityError) as info:
        decode_chunk(codec, payload, raw_length)
    assert info.value.exit_code == 7
    return str(info.value)


def planes_payload() -> tuple[bytes, bytes]:
    raw = bf16_bytes(weights_f32(4096))
    codec, payload = encode_chunk(raw, 2)
    assert codec == CODEC_PLANES
    return raw, payload


def test_raw_payload_of_wrong_length() -> None:
    assert corrupt_message(CODEC_NONE, b"abc", 4) == "corrupt chunk payload: raw payload is 3 bytes, expected 4"


def test_unknown_codec_and_delta_without_base() -> None:
    assert corrupt_message(9, b"abc", 3) == "corrupt chunk payload: unknown codec id 9"
    assert corrupt_message(CODEC_DELTA, b"abc", 3) == (
        "corrupt chunk payload: a delta chunk cannot be decoded without its base"
    )


def test_zstd_payload_errors() -> None:
    raw = text_bytes(100_000)
    codec, payload = encode_chunk(raw, None)
    assert codec == CODEC_ZSTD
    assert corrupt_message(CODEC_ZSTD, payload, len(raw) + 1) == (
        f"corrupt chunk payload: zstd payload: zstd frame declares {len(raw)} bytes, expected {len(raw) + 1}"
    )
    assert corrupt_message(CODEC_ZSTD, b"not zstd at all", 15).startswith(
        "corrupt chunk payload: zstd payload: bad zstd frame header"
    )
    assert corrupt_message(CODEC_ZSTD, payload[:-5], len(raw)).startswith(
        "corrupt chunk payload: zstd payload: zstd error"
    )
    assert corrupt_message(CODEC_ZSTD, payload + b"extra", len(raw)).startswith(
        "corrupt chunk payload: zstd payload: zstd error"
    )
    unsized = zstandard.ZstdCompressor(write_content_size=False).compress(raw)
    assert corrupt_message(CODEC_ZSTD, unsized, len(raw)) == (
        "corrupt chunk payload: zstd payload: zstd frame does not declare its content size"
    )


def test_planes_header_errors() -> None:
    raw, payload = planes_payload()
    n = len(raw)
    assert corrupt_message(CODEC_PLANES, b"\x02", n) == "corrupt chunk payload: planes header truncated"
    assert corrupt_message(CODEC_PLANES, b"\x03" + payload[1:], n) == (
        "corrupt chunk payload: planes itemsize 3 is not 2, 4 or 8"
    )
    assert corrupt_message(CODEC_PLANES, payload[:1] + b"\x01" + payload[2:], n) == (
        f"corrupt chunk payload: planes tail of 1 bytes does not fit raw length {n}"
    )
    assert corrupt_message(CODEC_PLANES, payload[:8], n) == "corrupt chunk payload: planes descriptors truncated"
    assert corrupt_message(CODEC_PLANES, payload + b"x", n) == (
        f"corrupt chunk payload: planes payload is {len(payload) + 1} bytes, header describes {len(payload)}"
    )
    assert corrupt_message(CODEC_PLANES, payload, n - 2) == (
        f"corrupt chunk payload: raw plane 0 is {n // 2} bytes, expected {n // 2 - 1}"
    )


def test_planes_descriptor_errors() -> None:
    raw, payload = planes_payload()
    n = len(raw)
    count = n // 2
    method1, length1 = struct.unpack_from("<BI", payload, 7)
    # Move one byte from plane 0 to plane 1: total length still matches.
    descriptors = struct.pack("<BI", 0, count - 1) + struct.pack("<BI", method1, length1 + 1)
    shifted = payload[:2] + descriptors + payload[12:]
    assert corrupt_message(CODEC_PLANES, shifted, n) == (
        f"corrupt chunk payload: raw plane 0 is {count - 1} bytes, expected {count}"
    )
    unknown = payload[:7] + struct.pack("<BI", 5, length1) + payload[12:]
    assert corrupt_message(CODEC_PLANES, unknown, n) == "corrupt chunk payload: plane 1 has unknown method 5"
    garbled = bytearray(payload)
    garbled[12 + count + 20 : 12 + count + 40] = bytes(20)
    message = corrupt_message(CODEC_PLANES, bytes(garbled), n)
    assert message.startswith("corrupt chunk payload: plane 1: ")


def test_random_damage_never_escapes_as_another_exception() -> None:
    raw, payload = planes_payload()
    rng = random.Random(11)
    outcomes = {"integrity": 0, "decoded": 0}
    for _ in range(400):
        damaged = bytearray(payload)
        for _ in range(rng.randint(1, 4)):
            position = rng.randrange(len(damaged) if rng.random() < 0.5 else 12)
            damaged[position] = rng.randrange(256)
        if rng.random() < 0.2:
            del damaged[rng.randrange(len(damaged)) :]
        try:
            decoded = decode_chunk(CODEC_PLANES, bytes(damaged), len(raw))
        except IntegrityError as exc:
            assert str(exc).startswith("corrupt chunk payload: ")
            outcomes["integrity"] += 1
        else:
            assert len(decoded) == len(raw)  # wrong bytes are caught by the caller's hash
            outcomes["decoded"] += 1
    assert outcomes["integrity"] > 100


def test_compression_saving_under_one_32nd_is_not_worth_keeping() -> None:
    slightly = noise(100_000) + bytes(2_000)  # zstd saves about 2%
    assert encode_chunk(slightly, None) == (CODEC_NONE, slightly)
    clearly = noise(100_000) + bytes(6_000)  # about 5.7%
    codec, payload = round_trip(clearly, None)
    assert codec == CODEC_ZSTD and len(payload) < 101_000
