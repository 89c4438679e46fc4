"""Delta chunks: a tensor block stored as its difference from the same block of the parent version.

When every weight moves a little (a fine-tune step, an EMA update), no block is identical to
the previous version's, but their bit patterns are close. CODEC_DELTA stores the difference
of the bit patterns, element by element, as integers modulo 2**(8*itemsize), zigzag-mapped
(0, -1, 1, -2 ... -> 0, 1, 2, 3 ...) so that small differences of either sign have mostly zero
high bytes, then byte-plane-compressed like a float chunk (planes.encode_planes).

Measured on 1 MiB of bf16 weights (standard_normal * 0.02) after w + N(0, 1e-4): plain byte
planes 0.670 of raw, XOR of the bit patterns 0.273, this difference 0.236; after N(0, 1e-5):
0.125 and 0.115. The subtraction wins because a small change that crosses a carry (0x7f ->
0x80) flips many bits under XOR but is a difference of 1.

Payload: exactly a CODEC_PLANES payload (planes.py) of the zigzagged differences; its itemsize
byte says the element size. The base chunk is named in the pack record and index (its id,
so the encoding stays content-addressed). Only whole elements are differenced: when the base
is shorter the missing part counts as zeros, when longer its excess is ignored; the trailing
partial element, if any, is stored as is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from modelvc.store.planes import UNSIGNED_OF_SIZE as _UNSIGNED
from modelvc.store.planes import corrupt, decode_planes, encode_planes

if TYPE_CHECKING:  # numpy is imported where blocks are coded: planning bases needs none of it
    import numpy as np

_SIGNED = {2: "<i2", 4: "<i4", 8: "<i8"}

# Accept a delta at once when it is this small a fraction of the raw block; otherwise the
# plain encoding is tried too and the smaller wins.
DELTA_GOOD_ENOUGH = 0.55
# Or when it is at most this fraction of the base block's own plain (byte planes) coding.
DELTA_UNDER_BASE = 0.9


def _elements(data: bytes | memoryview | np.ndarray, count: int, itemsize: int) -> np.ndarray:
    """The first `count` elements of data as unsigned integers, zero-padded if data is short."""
    import numpy as np

    raw = np.frombuffer(data, dtype=np.uint8)
    if len(raw) >= count * itemsize:  # the usual case: a view, no copy
        return raw[:count * itemsize].view(_UNSIGNED[itemsize])
    out = np.zeros(count * itemsize, dtype=np.uint8)
    usable = min(len(raw), count * itemsize)
    out[:usable] = raw[:usable]
    return out.view(_UNSIGNED[itemsize])


def encode_delta(raw: bytes | memoryview, base: bytes | memoryview, itemsize: int) -> bytes | None:
    """The CODEC_DELTA payload of raw against base, or None when it would not compress."""
    import numpy as np

    count = len(raw) // itemsize
    if count == 0:
        return None
    whole = count * itemsize
    buffer = np.empty(len(raw), dtype=np.uint8)  # zigzagged differences, then the raw tail
    difference = buffer[:whole].view(_UNSIGNED[itemsize])
    np.subtract(np.frombuffer(raw, dtype=_UNSIGNED[itemsize], count=count), _elements(base, count, itemsize),
                out=difference)
    sign = np.right_shift(difference.view(_SIGNED[itemsize]), 8 * itemsize - 1)  # 0 or -1 (all ones)
    np.left_shift(difference, 1, out=difference)
    np.bitwise_xor(difference, sign.view(_UNSIGNED[itemsize]), out=difference)
    buffer[whole:] = np.frombuffer(raw, dtype=np.uint8)[whole:]
    return encode_planes(buffer.data, itemsize)


def decode_delta(payload: bytes | memoryview, raw_length: int, base: bytes | memoryview) -> memoryview:
    import numpy as np

    if len(payload) < 1 or payload[0] not in _UNSIGNED:
        raise corrupt("delta without a valid itemsize")
    itemsize = payload[0]
    data = decode_planes(payload, raw_length)  # zigzagged differences, then the tail as it is
    count = raw_length // itemsize
    values = np.frombuffer(data, dtype=_UNSIGNED[itemsize], count=count)
    sign = values & 1
    np.negative(sign, out=sign)  # 0 or all ones
    np.right_shift(values, 1, out=values)
    np.bitwise_xor(values, sign, out=values)
    np.add(values, _elements(base, count, itemsize), out=values)
    return data


class DeltaBase(NamedTuple):
    """The chunk of the previous version a span may be stored against, and the tensor it is in."""

    chunk: bytes
    tensor: str


def _row_shape(shape: tuple[int, ...] | None) -> tuple[int, ...] | None:
    return None if shape is None else tuple(shape[1:])


def plan_bases(spans, layout, previous_layout, previous_chunks: list[tuple[str, int]]) -> list[DeltaBase | None]:
    """For each span, the chunk of the previous version to store it as a delta against, if any.

    A span qualifies when it holds floats and starts inside a tensor that the previous
    version had under the same name, dtype and row size (so appended rows still line up),
    and the previous version has a chunk starting at the same offset within that tensor.
    That covers tensor blocks and runs of small tensors merged into one span. Any base
    gives exact bytes back (the result is hashed); a poor match only compresses worse, and
    then the plain encoding wins.
    """
    bases: list[DeltaBase | None] = [None] * len(spans)
    if layout is None or previous_layout is None:
        return bases
    old_tensors = {s.name: s for s in previous_layout.segments if s.kind == "tensor"}
    starts: dict[int, str] = {}
    position = 0
    for chunk_id, length in previous_chunks:
        starts[position] = chunk_id
        position += length
    tensors = [s for s in layout.segments if s.kind == "tensor" and s.length > 0]
    index = 0
    for number, span in enumerate(spans):
        if span.itemsize is None:
            continue
        while index < len(tensors) and tensors[index].end <= span.offset:
            index += 1
        if index == len(tensors):
            break
        tensor = tensors[index]
        if tensor.offset > span.offset:
            continue
        old = old_tensors.get(tensor.name)
        if old is None or old.dtype != tensor.dtype or _row_shape(old.shape) != _row_shape(tensor.shape):
            continue
        relative = span.offset - tensor.offset
        if relative >= old.length:
            continue
        base_id = starts.get(old.offset + relative)
        if base_id is not None:
            bases[number] = DeltaBase(bytes.fromhex(base_id), tensor.name)
    return bases
