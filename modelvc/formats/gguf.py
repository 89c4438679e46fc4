"""GGUF (versions 2 and 3, little-endian): llama.cpp's single-file model format.

Layout: magic "GGUF", u32 version, u64 tensor count, u64 key/value count, the key/values,
the tensor infos (name, dims, ggml type, offset relative to the data section), padding to
`general.alignment` (default 32), then the data section.

Metadata: every key/value is returned, except that an array of more than
SUMMARY_THRESHOLD items (a 150k-token vocabulary, its scores and merges) is summarized as
{"type": item type, "len": n, "blake3": hash of the array's encoded items as stored in the
file}. The hash, rather than the first few items, lets a diff tell that a vocabulary changed
even when only its end did, while keeping the metadata small.
"""

from __future__ import annotations

import struct
from typing import Any

from modelvc.formats import ByteSource, Layout, Segment
from modelvc.formats.base import MAX_HEADER_BYTES, MalformedLayout, assemble, read_exact
from modelvc.formats.dtypes import GGML_TYPES, ggml_nbytes

SUMMARY_THRESHOLD = 64
DEFAULT_ALIGNMENT = 32
MAX_DIMS = 8
MAX_STRING = 16 * 1024 * 1024
MAX_NESTING = 8
_WINDOW = 1024 * 1024

STRING, ARRAY = 8, 9
# value type -> (name, struct format or None for string/array)
VALUE_TYPES: dict[int, tuple[str, str | None]] = {
    0: ("uint8", "<B"),
    1: ("int8", "<b"),
    2: ("uint16", "<H"),
    3: ("int16", "<h"),
    4: ("uint32", "<I"),
    5: ("int32", "<i"),
    6: ("float32", "<f"),
    7: ("bool", "<?"),
    8: ("string", None),
    9: ("array", None),
    10: ("uint64", "<Q"),
    11: ("int64", "<q"),
    12: ("float64", "<d"),
}


class _Cursor:
    """Sequential reads over a ByteSource through a window, bounded by the file size."""

    def __init__(self, source: ByteSource, pos: int) -> None:
        self.source = source
        self.size = min(source.size, MAX_HEADER_BYTES)  # the header must end before this
        self.pos = pos
        self.buf = b""
        self.buf_start = 0

    def ensure(self, n: int) -> int:
        """Make [pos, pos+n) available; return its index in self.buf."""
        if n < 0 or self.pos + n > self.size:
            raise MalformedLayout("GGUF header runs past the end of the file")
        rel = self.pos - self.buf_start
        if 0 <= rel and rel + n <= len(self.buf):
            return rel
        self.buf = read_exact(self.source, self.pos, min(max(n, _WINDOW), self.size - self.pos))
        self.buf_start = self.pos
        return 0

    def unpack(self, fmt: str, n: int) -> Any:
        rel = self.ensure(n)
        self.pos += n
        return struct.unpack_from(fmt, self.buf, rel)[0]

    def u32(self) -> int:
        return self.unpack("<I", 4)

    def u64(self) -> int:
        return self.unpack("<Q", 8)

    def raw_string(self) -> bytes:
        length = self.u64()
        if length > MAX_STRING:
            raise MalformedLayout("GGUF string too long")
        rel = self.ensure(length)
        self.pos += length
        return self.buf[rel : rel + length]

    def skip(self, n: int) -> None:
        if n < 0 or self.pos + n > self.size:
            raise MalformedLayout("GGUF value runs past the end of the file")
        self.pos += n

    def skip_strings(self, count: int) -> None:
        """Skip `count` length-prefixed strings: a tight loop, as vocabularies are large."""
        size = self.size
        pos = self.pos
        buf, start = self.buf, self.buf_start
        end = start + len(buf)
        unpack = struct.unpack_from
        for _ in range(count):
            if pos + 8 > end:
                self.pos = pos
                self.ensure(8)
                buf, start = self.buf, self.buf_start
                end = start + len(buf)
            pos += 8 + unpack("<Q", buf, pos - start)[0]
            if pos > size:
                raise MalformedLayout("GGUF string array runs past the end of the file")
        self.pos = pos


def read_gguf_layout(source: ByteSource, name: str = "") -> Layout:
    size = source.size
    head = read_exact(source, 0, 24)
    magic, version, tensor_count, kv_count = struct.unpack("<4sIQQ", head)
    if magic != b"GGUF" or version not in (2, 3):
        raise MalformedLayout(f"GGUF version {version} not supported")
    # Each key/value takes at least 13 bytes, each tensor info at least 24: a count the
    # header cannot hold is rejected before anything is allocated for it.
    cursor = _Cursor(source, 24)
    if kv_count * 13 + tensor_count * 24 > cursor.size - 24:
        raise MalformedLayout("GGUF counts larger than the file")
    metadata: dict[str, Any] = {}
    for _ in range(kv_count):
        key = _decode(cursor.raw_string(), "key")
        if key in metadata:
            raise MalformedLayout(f"GGUF key {key!r} repeated")
        metadata[key] = _read_value(cursor, cursor.u32(), 0)
    alignment = _alignment(metadata)
    infos = [_read_tensor_info(cursor) for _ in range(tensor_count)]
    data_start = -(-cursor.pos // alignment) * alignment
    if not infos:
        data_start = min(data_start, size)
    parts = [Segment("<header>", 0, data_start, "header")]
    seen: set[str] = set()
    for tensor_name, shape, dtype, relative in infos:
        if tensor_name in seen:
            raise MalformedLayout(f"GGUF tensor {tensor_name!r} repeated")
        seen.add(tensor_name)
        nbytes = ggml_nbytes(dtype, shape)
        if nbytes is None or relative % alignment:
            raise MalformedLayout(f"GGUF tensor {tensor_name!r} has a bad size or offset")
        parts.append(Segment(tensor_name, data_start + relative, nbytes, "tensor", dtype, shape))
    return assemble("gguf", size, parts, metadata=metadata)


def _decode(raw: bytes, what: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedLayout(f"GGUF {what} is not UTF-8") from None


def _alignment(metadata: dict[str, Any]) -> int:
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if type(alignment) is not int or alignment <= 0 or alignment & (alignment - 1):
        raise MalformedLayout("general.alignment must be a power of two")
    if alignment > 1 << 20:
        raise MalformedLayout("general.alignment absurdly large")
    return alignment


def _read_tensor_info(cursor: _Cursor) -> tuple[str, tuple[int, ...], str, int]:
    tensor_name = _decode(cursor.raw_string(), "tensor name")
    n_dims = cursor.u32()
    if n_dims > MAX_DIMS:
        raise MalformedLayout(f"GGUF tensor {tensor_name!r} has {n_dims} dimensions")
    shape = tuple(cursor.u64() for _ in range(n_dims))
    type_id = cursor.u32()
    if type_id not in GGML_TYPES:
        raise MalformedLayout(f"GGUF tensor {tensor_name!r} has unknown ggml type {type_id}")
    return tensor_name, shape, GGML_TYPES[type_id][0], cursor.u64()


def _read_value(cursor: _Cursor, value_type: int, depth: int) -> Any:
    if value_type not in VALUE_TYPES:
        raise MalformedLayout(f"GGUF value type {value_type} unknown")
    if value_type == STRING:
        return cursor.raw_string().decode("utf-8", errors="replace")
    if value_type == ARRAY:
        return _read_array(cursor, depth + 1)
    fmt = VALUE_TYPES[value_type][1]
    assert fmt is not None  # only strings and arrays have none, read above
    return cursor.unpack(fmt, struct.calcsize(fmt))


def _array_header(cursor: _Cursor, depth: int) -> tuple[int, int]:
    """An array's item type and count, checked before anything is read or skipped."""
    if depth > MAX_NESTING:
        raise MalformedLayout("GGUF arrays nested too deeply")
    item_type = cursor.u32()
    count = cursor.u64()
    if item_type not in VALUE_TYPES:
        raise MalformedLayout(f"GGUF array item type {item_type} unknown")
    return item_type, count


def _read_array(cursor: _Cursor, depth: int) -> Any:
    item_type, count = _array_header(cursor, depth)
    item_name, fmt = VALUE_TYPES[item_type]
    min_item = 8 if fmt is None else struct.calcsize(fmt)
    if count * min_item > cursor.size - cursor.pos:
        raise MalformedLayout("GGUF array longer than the file")
    if count <= SUMMARY_THRESHOLD:
        return [_read_value(cursor, item_type, depth) for _ in range(count)]
    start = cursor.pos
    if fmt is not None:
        cursor.skip(count * min_item)
    elif item_type == STRING:
        cursor.skip_strings(count)
    else:
        for _ in range(count):
            _skip_array(cursor, depth + 1)
    return {"type": item_name, "len": count, "blake3": _hash_range(cursor.source, start, cursor.pos)}


def _skip_array(cursor: _Cursor, depth: int) -> None:
    item_type, count = _array_header(cursor, depth)
    fmt = VALUE_TYPES[item_type][1]
    if fmt is not None:
        cursor.skip(count * struct.calcsize(fmt))
    elif item_type == STRING:
        if count * 8 > cursor.size - cursor.pos:
            raise MalformedLayout("GGUF array longer than the file")
        cursor.skip_strings(count)
    else:
        if count * 12 > cursor.size - cursor.pos:
            raise MalformedLayout("GGUF array longer than the file")
        for _ in range(count):
            _skip_array(cursor, depth + 1)


def _hash_range(source: ByteSource, start: int, end: int) -> str:
    from blake3 import blake3

    hasher = blake3()
    step = 8 * 1024 * 1024
    for offset in range(start, end, step):
        hasher.update(read_exact(source, offset, min(step, end - offset)))
    return hasher.hexdigest()
