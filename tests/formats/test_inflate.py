"""InflatingSource: a deflated zip member's bytes, inflated only as far as reads reach."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from modelvc.formats import Deflated
from modelvc.formats.inflate import BadDeflateStream, InflatingSource
from tests.modelfiles import BytesSource


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def member(payload: bytes, compressed: bytes, lead: bytes = b"LEAD") -> tuple[BytesSource, Deflated]:
    source = BytesSource(lead + compressed + b"TAIL")
    return source, Deflated(len(lead), len(compressed), len(payload))


PAYLOAD = np.random.default_rng(3).integers(0, 16, 3_000_000, dtype=np.uint8).tobytes()


def test_forward_blocks_backward_restart_and_clipping():
    source, where = member(PAYLOAD, deflate(PAYLOAD))
    inflated = InflatingSource(source, where)
    assert inflated.size == len(PAYLOAD)
    blocks = [inflated.read(start, 1 << 20) for start in range(0, len(PAYLOAD), 1 << 20)]
    assert b"".join(blocks) == PAYLOAD
    assert inflated.read(10, 5) == PAYLOAD[10:15]  # behind the position: starts over
    assert inflated.read(2_999_990, 100) == PAYLOAD[2_999_990:]  # clipped at the end
    assert inflated.read(len(PAYLOAD), 4) == b"" and inflated.read(5, 0) == b""


def test_a_header_read_inflates_only_the_start():
    compressed = deflate(PAYLOAD)
    source, where = member(PAYLOAD, compressed)
    assert InflatingSource(source, where).read(0, 128) == PAYLOAD[:128]
    assert source.bytes_read <= 1024 < len(compressed)


@pytest.mark.parametrize(
    "compressed, message",
    [
        (deflate(PAYLOAD[:1000]), "compressed data ends before its 3000000 bytes"),
        (deflate(PAYLOAD)[:5000], "compressed data is truncated before its 3000000 bytes"),
        (b"\xff" * 64, "compressed data is corrupt (Error -3 while decompressing data: invalid block type)"),
    ],
    ids=["short stream", "cut stream", "garbage"],
)
def test_bad_streams_raise_bad_deflate_stream(compressed, message):
    source, where = member(PAYLOAD, compressed)
    with pytest.raises(BadDeflateStream) as caught:
        InflatingSource(source, where).read(0, len(PAYLOAD))
    assert str(caught.value) == message
