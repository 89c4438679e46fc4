"""safetensors: an 8-byte little-endian header length, a JSON header, then raw tensors.

The JSON maps each tensor name to {dtype, shape, data_offsets: [begin, end]}, offsets
relative to the first byte after the header. An optional "__metadata__" holds str -> str.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from modelvc.formats import ByteSource, Layout, Segment
from modelvc.formats.base import MAX_HEADER_BYTES, MalformedLayout, assemble, read_exact
from modelvc.formats.dtypes import itemsize

HEADER_NAME = "<header>"


def read_safetensors_layout(source: ByteSource, name: str = "") -> Layout:
    size = source.size
    (header_len,) = struct.unpack("<Q", read_exact(source, 0, 8))
    if header_len < 2 or header_len > MAX_HEADER_BYTES or 8 + header_len > size:
        raise MalformedLayout("safetensors header length out of range")
    raw = read_exact(source, 8, header_len)
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise MalformedLayout(f"safetensors header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise MalformedLayout("safetensors header is not an object")

    data_start = 8 + header_len
    data_size = size - data_start
    metadata: dict[str, Any] = {}
    parts = [Segment(HEADER_NAME, 0, data_start, "header")]
    for tensor_name, entry in header.items():
        if tensor_name == "__metadata__":
            metadata["__metadata__"] = _check_metadata(entry)
            continue
        parts.append(_tensor_segment(tensor_name, entry, data_start, data_size))
    return assemble("safetensors", size, parts, metadata=metadata)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("duplicate key in header")
    return result


def _check_metadata(entry: Any) -> dict[str, str]:
    if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
        raise MalformedLayout("__metadata__ must map strings to strings")
    return dict(entry)


def _tensor_segment(name: str, entry: Any, data_start: int, data_size: int) -> Segment:
    if not isinstance(entry, dict):
        raise MalformedLayout(f"tensor {name!r}: entry is not an object")
    dtype = entry.get("dtype")
    shape = entry.get("shape")
    offsets = entry.get("data_offsets")
    size_of = itemsize(dtype) if isinstance(dtype, str) else None
    if size_of is None:
        raise MalformedLayout(f"tensor {name!r}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        raise MalformedLayout(f"tensor {name!r}: bad shape")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        raise MalformedLayout(f"tensor {name!r}: bad data_offsets")
    begin, end = offsets
    if begin > end or end > data_size:
        raise MalformedLayout(f"tensor {name!r}: data_offsets outside the data section")
    numel = 1
    for dim in shape:
        numel *= dim
    if numel * size_of != end - begin:
        raise MalformedLayout(f"tensor {name!r}: shape does not match its byte range")
    return Segment(name, data_start + begin, end - begin, "tensor", dtype, tuple(shape))


def _is_count(value: Any) -> bool:
    return type(value) is int and value >= 0
