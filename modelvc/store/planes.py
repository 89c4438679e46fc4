"""The byte-plane payload (CODEC_PLANES, and CODEC_DELTA's differences) and the zstd frames
every codec stores, shared by codecs.py and delta.py.

Layout. ``itemsize`` is 2, 4 or 8; ``n = raw_length // itemsize`` whole elements; plane ``k``
is byte ``k`` of every element in order (so for little-endian floats the last plane holds the
sign and the high exponent bits)::

    offset 0      u8   itemsize                      2, 4 or 8
    offset 1      u8   tail_length                   raw_length % itemsize
    offset 2      itemsize plane descriptors, 5 bytes each, plane 0 first:
                  u8   method                        0 = stored raw, 1 = one zstd frame
                  u32  stored_length, little-endian  n for a raw plane
    then          the stored planes back to back, plane 0 first
    then          tail_length raw bytes              the trailing partial element

The payload length is exactly ``2 + 5 * itemsize + sum(stored_length) + tail_length``. A
zstd plane's frame must declare a content size of ``n``. To decode: read the header, check
every length, decompress the zstd planes, and interleave: raw byte ``i * itemsize + k`` is
byte ``i`` of plane ``k``; append the tail. Any standard zstd decoder reads the frames:
the compression parameters below are not part of the format and may change.

Choices, measured with tests/bench/bench_codecs.py on one AMD EPYC core, 1 MiB chunks of
standard_normal * 0.02 weights (stored/raw, encode MB/s, decode MB/s):

    bf16   planes 0.670  546  933    plain zstd-1 0.780  547  590   zstd-3 0.780  467  574
    fp16   planes 0.843  583  820    plain zstd-1 0.918  533  631
    fp32   planes 0.835  676 1224    plain zstd-1 0.923  530  629   zstd-3 0.924  384  592

* Planes are compressed with zstd's "fast" strategy, min_match 7 and the smallest hash
  table (hash_log 6), not with a numbered level. The sign/exponent plane has about 2.7 bits
  of entropy per byte but no useful repeats: its gain comes from the entropy coder. Level 1
  wastes its time on a multitude of short matches (planes at level 1: bf16 0.684 at
  277 MB/s), level 3 is slower and worse (0.709 at 150 MB/s), and negative levels turn
  literal compression off (0.831). These parameters find few matches: 0.670 at 546 MB/s.
* Every plane is compressed and kept only if that saves at least 1/32 of it; the noise
  planes (low mantissa bytes) then go raw. zstd gives up on noise so fast with this small
  hash table (several GB/s) that judging a sample first measured no faster (within 3%).

Every function here may be called from a thread pool: zstd contexts are not thread-safe, so
each thread keeps its own (threading.local); numpy and zstd release the GIL on large buffers.
"""

from __future__ import annotations

import struct
import threading
from typing import TYPE_CHECKING

import zstandard

from modelvc.errors import CorruptChunkError

if TYPE_CHECKING:  # numpy is imported where planes are coded: a plain zstd chunk needs none of it
    import numpy as np

FLOAT_ITEMSIZES = (2, 4, 8)
UNSIGNED_OF_SIZE = {2: "<u2", 4: "<u4", 8: "<u8"}
_SHIFT_SPLIT_ITEMSIZES = (2, 4)

PLANE_RAW = 0
PLANE_ZSTD = 1

_PLANES_HEAD = struct.Struct("<BB")
_PLANE_DESC = struct.Struct("<BI")

_MIN_SAVING_SHIFT = 5  # keep a compressed form only if it saves at least 1/32 of the raw length

_local = threading.local()


def _plane_compressor() -> zstandard.ZstdCompressor:
    cctx = getattr(_local, "plane_cctx", None)
    if cctx is None:
        params = zstandard.ZstdCompressionParameters(
            strategy=zstandard.STRATEGY_FAST,
            min_match=7,
            hash_log=6,
            chain_log=6,
            search_log=1,
            window_log=20,
            write_content_size=True,
        )
        cctx = _local.plane_cctx = zstandard.ZstdCompressor(compression_params=params)
    return cctx


def _decompressor() -> zstandard.ZstdDecompressor:
    dctx = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


def worth_keeping(stored_length: int, raw_length: int) -> bool:
    """A compressed form is kept only if it saves at least 1/32 of the raw length."""
    return stored_length <= raw_length - (raw_length >> _MIN_SAVING_SHIFT) and stored_length < raw_length


def corrupt(detail: str) -> CorruptChunkError:
    """The error for a payload that does not decode to what its record says."""
    return CorruptChunkError(f"corrupt chunk payload: {detail}")


def encode_planes(raw: bytes | memoryview, itemsize: int) -> bytes | None:
    """CODEC_PLANES payload, or None when it would not save enough to be worth it."""
    raw_length = len(raw)
    count = raw_length // itemsize
    tail_length = raw_length - count * itemsize
    planes = split_planes(raw, count, itemsize)
    cctx = _plane_compressor()

    header: list[bytes | memoryview] = [_PLANES_HEAD.pack(itemsize, tail_length)]
    bodies: list[bytes | memoryview] = []
    any_compressed = False
    for plane in planes:
        stored: bytes | memoryview = plane.data
        method = PLANE_RAW
        compressed = cctx.compress(plane.data)
        if worth_keeping(len(compressed), count):
            stored, method = compressed, PLANE_ZSTD
            any_compressed = True
        header.append(_PLANE_DESC.pack(method, len(stored)))
        bodies.append(stored)
    if not any_compressed:
        return None
    if tail_length:
        bodies.append(memoryview(raw)[count * itemsize :])
    payload = b"".join(header + bodies)
    if not worth_keeping(len(payload), raw_length):
        return None
    return payload


def split_planes(raw: bytes | memoryview, count: int, itemsize: int) -> list[np.ndarray]:
    """Byte k of each of the first `count` elements, for each k.

    For 2- and 4-byte items, shifting whole integers is 3x and 1.5x faster than a strided
    transpose copy (tests/bench/bench_codecs.py); for 8-byte items the transpose wins.
    """
    import numpy as np

    if itemsize in _SHIFT_SPLIT_ITEMSIZES:
        words = np.frombuffer(raw, dtype=UNSIGNED_OF_SIZE[itemsize], count=count)
        return [(words >> (8 * k) if k else words).astype(np.uint8) for k in range(itemsize)]
    elements = np.frombuffer(raw, dtype=np.uint8, count=count * itemsize).reshape(count, itemsize)
    return list(elements.T.copy())


def join_planes(planes: list[np.ndarray], out: np.ndarray) -> None:
    """The inverse of split_planes, into `out` (count * itemsize bytes)."""
    import numpy as np

    itemsize = len(planes)
    if itemsize == 2:  # shifting and or-ing is 1.6x faster than two strided column writes
        words = out.view(np.uint16)
        np.left_shift(planes[1], 8, out=words, dtype=np.uint16)
        words |= planes[0]
        return
    elements = out.reshape(-1, itemsize)
    for k, plane in enumerate(planes):
        elements[:, k] = plane


def decompress_exact(frame: bytes | memoryview, expected: int, what: str) -> bytes:
    """Decompress one zstd frame that must hold exactly `expected` bytes."""
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise corrupt(f"{what}: bad zstd frame header ({exc})") from None
    if declared < 0:  # python-zstandard reports an absent content size as -1
        raise corrupt(f"{what}: zstd frame does not declare its content size")
    if declared != expected:
        raise corrupt(f"{what}: zstd frame declares {declared} bytes, expected {expected}")
    try:
        data = _decompressor().decompress(frame, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise corrupt(f"{what}: zstd error ({exc})") from None
    if len(data) != expected:
        raise corrupt(f"{what}: decompressed to {len(data)} bytes, expected {expected}")
    return data


def decode_planes(payload: bytes | memoryview, raw_length: int) -> memoryview:
    """The raw bytes of a CODEC_PLANES payload, in a new writable buffer."""
    import numpy as np

    view = memoryview(payload)
    if len(view) < _PLANES_HEAD.size:
        raise corrupt("planes header truncated")
    itemsize, tail_length = _PLANES_HEAD.unpack_from(view, 0)
    if itemsize not in FLOAT_ITEMSIZES:
        raise corrupt(f"planes itemsize {itemsize} is not 2, 4 or 8")
    if raw_length < itemsize or tail_length != raw_length % itemsize:
        raise corrupt(f"planes tail of {tail_length} bytes does not fit raw length {raw_length}")
    count = raw_length // itemsize
    position = _PLANES_HEAD.size + _PLANE_DESC.size * itemsize
    if len(view) < position:
        raise corrupt("planes descriptors truncated")
    descriptors = [
        _PLANE_DESC.unpack_from(view, _PLANES_HEAD.size + _PLANE_DESC.size * k) for k in range(itemsize)
    ]
    stored_total = sum(length for _, length in descriptors)
    if position + stored_total + tail_length != len(view):
        raise corrupt(
            f"planes payload is {len(view)} bytes, header describes {position + stored_total + tail_length}"
        )

    planes = []
    for k, (method, length) in enumerate(descriptors):
        stored = view[position : position + length]
        plane: bytes | memoryview
        position += length
        if method == PLANE_RAW:
            if length != count:
                raise corrupt(f"raw plane {k} is {length} bytes, expected {count}")
            plane = stored
        elif method == PLANE_ZSTD:
            plane = decompress_exact(stored, count, f"plane {k}")
        else:
            raise corrupt(f"plane {k} has unknown method {method}")
        planes.append(np.frombuffer(plane, dtype=np.uint8))
    out = np.empty(raw_length, dtype=np.uint8)
    join_planes(planes, out[: count * itemsize])
    if tail_length:
        out[count * itemsize :] = np.frombuffer(view[position:], dtype=np.uint8)
    return out.data
