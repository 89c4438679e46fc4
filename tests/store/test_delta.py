"""Delta chunks: exact round trips for every float width, odd lengths, short and long bases."""

from __future__ import annotations

import numpy as np
import pytest

from modelvc.samples import bf16_bits
from modelvc.store.codecs import encode_chunk
from modelvc.store.delta import decode_delta, encode_delta


def weights(count: int, seed: int) -> np.ndarray:
    return (0.02 * np.random.default_rng(seed).standard_normal(count)).astype(np.float32)


def nudged(values: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    return (values + sigma * np.random.default_rng(seed).standard_normal(values.size)).astype(np.float32)


@pytest.mark.parametrize("kind", ["bf16", "f16", "f32", "f64"])
@pytest.mark.parametrize("extra", [0, 1, 3])  # a trailing partial element
def test_round_trip_every_width_and_odd_lengths(kind, extra):
    base_values, new_values = weights(40_000, 1), None
    new_values = nudged(base_values, 1e-4, 2)
    convert = {"bf16": lambda v: bf16_bits(v), "f16": lambda v: v.astype(np.float16),
               "f32": lambda v: v, "f64": lambda v: v.astype(np.float64)}[kind]
    itemsize = convert(base_values).itemsize
    base = convert(base_values).tobytes()
    raw = convert(new_values).tobytes() + b"\x07\x01\x02"[:extra]
    payload = encode_delta(raw, base, itemsize)
    assert payload is not None
    assert decode_delta(payload, len(raw), base) == raw


def test_bases_shorter_and_longer_than_the_block():
    values = weights(10_000, 3)
    base = bf16_bits(values[:6000]).tobytes()  # the tensor grew: the old block was shorter
    raw = bf16_bits(nudged(values, 1e-4, 4)).tobytes()
    assert decode_delta(encode_delta(raw, base, 2), len(raw), base) == raw
    long_base = bf16_bits(weights(20_000, 5)).tobytes()
    payload = encode_delta(raw, long_base, 2)
    assert payload is None or decode_delta(payload, len(raw), long_base) == raw


def test_extreme_differences_wrap_exactly():
    base = np.array([0, 0xFFFF, 0x8000, 0x7FFF, 1] * 4000, dtype=np.uint16)
    new = np.array([0xFFFF, 0, 0x7FFF, 0x8000, 1] * 4000, dtype=np.uint16)
    payload = encode_delta(new.tobytes(), base.tobytes(), 2)
    assert payload is not None
    assert decode_delta(payload, new.nbytes, base.tobytes()) == new.tobytes()


def test_a_small_nudge_stores_far_less_than_plain_planes():
    values = weights(1 << 19, 6)
    base, raw = bf16_bits(values).tobytes(), bf16_bits(nudged(values, 1e-4, 7)).tobytes()
    delta = len(encode_delta(raw, base, 2))
    plain = len(encode_chunk(raw, 2)[1])
    assert delta < 0.4 * plain
    assert delta / len(raw) < 0.26


def test_identical_block_is_nearly_free():
    raw = bf16_bits(weights(1 << 16, 8)).tobytes()
    assert len(encode_delta(raw, raw, 2)) < 100


def test_plan_bases_matches_blocks_by_tensor_and_offset():
    from modelvc.formats import Layout, Segment
    from modelvc.store.chunker import ChunkSpan
    from modelvc.store.delta import plan_bases

    def layout(segments):
        return Layout("safetensors", segments[-1].end, tuple(segments))

    old = layout([Segment("<header>", 0, 100, "header"),
                  Segment("emb", 100, 4000, "tensor", "BF16", (1000, 2)),
                  Segment("w", 4100, 800, "tensor", "F32", (200,)),
                  Segment("gone", 4900, 100, "tensor", "BF16", (50,))])
    old_chunks = [("aa" * 32, 100), ("bb" * 32, 2048), ("cc" * 32, 1952), ("dd" * 32, 800), ("ee" * 32, 100)]
    new = layout([Segment("<header>", 0, 120, "header"),  # a longer header shifts everything
                  Segment("emb", 120, 4400, "tensor", "BF16", (1100, 2)),  # rows appended
                  Segment("w", 4520, 400, "tensor", "F16", (200,)),  # dtype changed
                  Segment("fresh", 4920, 100, "tensor", "BF16", (50,))])
    spans = [ChunkSpan(0, 120, None), ChunkSpan(120, 2048, 2), ChunkSpan(2168, 2048, 2), ChunkSpan(4216, 304, 2),
             ChunkSpan(4520, 400, 2), ChunkSpan(4920, 100, 2)]
    bases = plan_bases(spans, new, old, old_chunks)
    assert bases == [None, (bytes.fromhex("bb" * 32), "emb"), (bytes.fromhex("cc" * 32), "emb"), None, None, None]


def test_a_chain_read_from_the_store_rebuilds_every_link_with_lengths_that_change(tmp_path):
    """A chain of four deltas, the block shrinking and growing along it, read back exactly through
    the store's chain walk; a flipped payload byte in a middle link fails that link and every
    chunk built on it, naming the damaged record, and leaves the links below it readable."""
    from modelvc.errors import CorruptChunkError
    from modelvc.ids import hash_bytes_raw
    from modelvc.store.chunkstore import ChunkStore
    from modelvc.store.codecs import CODEC_DELTA, CODEC_PLANES

    values = [weights(12_000, 20)]
    for seed in range(21, 25):
        values.append(nudged(values[-1], 1e-4, seed))
    lengths = [12_000, 12_000, 9_000, 12_000, 11_000]
    blocks = [bf16_bits(v[:n]).tobytes() for v, n in zip(values, lengths, strict=True)]
    blocks[3] += b"\x05"  # a trailing partial element
    ids = [hash_bytes_raw(block) for block in blocks]
    payloads = [encode_delta(block, base, 2) for base, block in zip(blocks, blocks[1:], strict=False)]
    assert all(payload is not None for payload in payloads)

    store = ChunkStore(tmp_path / "packs")
    with store.writer() as writer:
        codec, payload = encode_chunk(blocks[0], 2)
        writer.append(ids[0], codec, len(blocks[0]), payload)
        for number, payload in enumerate(payloads, start=1):
            writer.append(ids[number], CODEC_DELTA, len(blocks[number]), payload, ids[number - 1])
    assert store.locate(ids[0]).codec == CODEC_PLANES
    assert [store.chain_depth(chunk_id) for chunk_id in ids] == [0, 1, 2, 3, 4]
    assert [bytes(store.read(chunk_id)) for chunk_id in ids] == blocks

    location = store.locate(ids[2])
    pack = tmp_path / "packs" / f"{location.pack}.pack"
    data = bytearray(pack.read_bytes())
    data[location.payload_offset + location.payload_len - 1] ^= 0x01
    pack.write_bytes(bytes(data))
    store.reload()
    assert bytes(store.read(ids[1])) == blocks[1]  # below the damage: intact
    for chunk_id in ids[2:]:  # the damaged link and every chunk built on it
        with pytest.raises(CorruptChunkError) as caught:
            store.read(chunk_id)
        assert caught.value.message.startswith(f"chunk {ids[2].hex()[:10]} is corrupt: corrupt chunk payload: ")
        assert caught.value.message.endswith(f"(pack {location.pack}, offset {location.offset})")
