"""Chunk codecs: how a chunk's raw bytes are stored in a pack (never what identifies them).

A chunk's id is the blake3 of its raw bytes; the codec is only a storage choice, recorded
as a one-byte codec id beside the payload. Every payload decodes to exactly the raw bytes.

`CODECS` is the table of every codec, keyed by its id; adding a codec is a class and an entry
here. Codec ids are part of the on-disk format, never renumbered:

* ``0`` none: the payload is the raw bytes.
* ``1`` zstd: the payload is one zstd frame (with its content size) of the raw bytes.
* ``2`` planes: byte planes of a float array (layout and measurements in planes.py).
* ``3`` delta: the difference from a base chunk, as byte planes (delta.py).

Choices, measured with tests/bench/bench_codecs.py on one AMD EPYC core, 1 MiB chunks of
standard_normal * 0.02 weights (stored/raw, encode MB/s, decode MB/s):

    bf16   planes 0.670  546  933    plain zstd-1 0.780  547  590   zstd-3 0.780  467  574
    fp16   planes 0.843  583  820    plain zstd-1 0.918  533  631
    fp32   planes 0.835  676 1224    plain zstd-1 0.923  530  629   zstd-3 0.924  384  592

* Float chunks are stored as planes (planes.py says how the planes are compressed).
* Generic (non-float) chunks use zstd level 1. Against level 3 it is as good or better on
  JSON headers (0.110 vs 0.112) and pickle-like records (0.304 vs 0.374), 8% worse on
  English-like text (0.272 vs 0.252), and 1.3-2.5x faster; unknown formats can be large,
  so speed wins.
* Whole chunk: a compressed form is kept only if it saves at least 1/32 of the raw
  length, otherwise the chunk is stored as none, which is also the fastest to read.
  A payload is therefore never larger than the raw bytes.

Both entry points are called from a thread pool: zstd contexts are not thread-safe, so each
thread keeps its own (threading.local); numpy and zstd release the GIL on large buffers.
Measured with blake3 hashing included, bf16: one thread encodes about 380 MB/s and decodes
about 545 MB/s, two threads about 700 and 1000 MB/s on the 2-core machine.
"""

from __future__ import annotations

import threading
from typing import ClassVar

import zstandard

from modelvc.store import delta
from modelvc.store.planes import FLOAT_ITEMSIZES, corrupt, decode_planes, decompress_exact, encode_planes, worth_keeping

Buffer = bytes | memoryview

GENERIC_ZSTD_LEVEL = 1


class Codec:
    """One way of storing a chunk's raw bytes, known in packs and indexes by its id."""

    id: ClassVar[int]
    name: ClassVar[str]
    # True when the payload is decoded against another chunk, the base, read first.
    needs_base: ClassVar[bool] = False

    def decode(self, payload: Buffer, raw_length: int, base: Buffer | None = None) -> Buffer:
        """The raw bytes; CorruptChunkError on any inconsistency (the caller still hashes them)."""
        raise NotImplementedError


class NoneCodec(Codec):
    """The payload is the raw bytes."""

    id = 0
    name = "none"

    def decode(self, payload: Buffer, raw_length: int, base: Buffer | None = None) -> Buffer:
        if len(payload) != raw_length:
            raise corrupt(f"raw payload is {len(payload)} bytes, expected {raw_length}")
        return payload


class ZstdCodec(Codec):
    """One zstd frame of the raw bytes, with its content size."""

    id = 1
    name = "zstd"

    def encode(self, raw: Buffer) -> bytes | None:
        """The frame, or None when it would not save enough to be worth it."""
        compressed = _generic_compressor().compress(raw)
        return compressed if worth_keeping(len(compressed), len(raw)) else None

    def decode(self, payload: Buffer, raw_length: int, base: Buffer | None = None) -> Buffer:
        return decompress_exact(payload, raw_length, "zstd payload")


class PlanesCodec(Codec):
    """Byte planes of a float array (planes.py)."""

    id = 2
    name = "planes"

    def decode(self, payload: Buffer, raw_length: int, base: Buffer | None = None) -> Buffer:
        return decode_planes(payload, raw_length)


class DeltaCodec(Codec):
    """The difference from a base chunk of the previous version, as byte planes (delta.py)."""

    id = 3
    name = "delta"
    needs_base = True

    def decode(self, payload: Buffer, raw_length: int, base: Buffer | None = None) -> Buffer:
        if base is None:
            raise corrupt("a delta chunk cannot be decoded without its base")
        return delta.decode_delta(payload, raw_length, base)


_ZSTD = ZstdCodec()
CODECS: dict[int, Codec] = {codec.id: codec for codec in (NoneCodec(), _ZSTD, PlanesCodec(), DeltaCodec())}

# The ids by name, as the rest of the code imports them.
CODEC_NONE = NoneCodec.id
CODEC_ZSTD = ZstdCodec.id
CODEC_PLANES = PlanesCodec.id
CODEC_DELTA = DeltaCodec.id
CODEC_NAMES = {codec_id: codec.name for codec_id, codec in CODECS.items()}

_local = threading.local()


def _generic_compressor() -> zstandard.ZstdCompressor:
    cctx = getattr(_local, "generic_cctx", None)
    if cctx is None:
        cctx = _local.generic_cctx = zstandard.ZstdCompressor(level=GENERIC_ZSTD_LEVEL)
    return cctx


def _byte_view(data: Buffer) -> Buffer:
    """A view whose len() counts bytes, whatever the format of the memoryview passed in."""
    if isinstance(data, memoryview) and (data.format != "B" or data.ndim != 1):
        return data.cast("B")
    return data


def codec_for(codec_id: int) -> Codec:
    """The codec of a stored chunk; CorruptChunkError for an id no codec has."""
    codec = CODECS.get(codec_id)
    if codec is None:
        raise corrupt(f"unknown codec id {codec_id}")
    return codec


def codec_name(codec_id: int) -> str:
    return CODEC_NAMES.get(codec_id, f"unknown-{codec_id}")


def encode_chunk(raw: Buffer, itemsize: int | None) -> tuple[int, bytes]:
    """Return (codec id, payload) for a chunk; itemsize marks (part of) a float tensor.

    The payload is never larger than the raw bytes: a chunk that does not compress is
    stored as CODEC_NONE. Delta coding needs a base and is chosen by the caller (filedata.py).
    """
    raw = _byte_view(raw)
    raw_length = len(raw)
    if raw_length == 0:
        return CODEC_NONE, b""
    if itemsize is not None:
        if itemsize not in FLOAT_ITEMSIZES:
            raise ValueError(f"itemsize must be one of {FLOAT_ITEMSIZES} or None, not {itemsize!r}")
        if raw_length >= itemsize:
            payload = encode_planes(raw, itemsize)
            if payload is not None:
                return CODEC_PLANES, payload
            return CODEC_NONE, bytes(raw)
    compressed = _ZSTD.encode(raw)
    if compressed is not None:
        return CODEC_ZSTD, compressed
    return CODEC_NONE, bytes(raw)


def decode_chunk(codec_id: int, payload: Buffer, raw_length: int, base: Buffer | None = None) -> Buffer:
    """The raw bytes of a stored chunk (a delta's with its base's raw bytes); CorruptChunkError on
    any inconsistency. The caller still hashes the result: a payload can be well-formed and wrong.
    """
    return codec_for(codec_id).decode(_byte_view(payload), raw_length, base)
