"""NumPy .npy: magic, version, a little header dict (descr, fortran_order, shape), raw data.

Version 1.0 has a 2-byte header length, 2.0 and 3.0 a 4-byte one (3.0 allows UTF-8 in the
header). The header is a Python literal; a tiny parser of the few literal forms numpy
writes reads it (ast.literal_eval would do, but it compiles the text and emits Python
warnings on odd input).
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import PurePosixPath

from modelvc.formats import ByteSource, Layout, Segment, row_major
from modelvc.formats.base import MalformedLayout, assemble, read_exact
from modelvc.formats.dtypes import from_numpy_descr, itemsize

MAGIC = b"\x93NUMPY"
PREAMBLE_V1 = 10  # magic(6) + version(2) + u16 length
PREAMBLE_V2 = 12  # magic(6) + version(2) + u32 length
# numpy itself refuses headers over 10 kB by default.
MAX_NPY_HEADER = 100_000


@dataclass(frozen=True)
class NpyHeader:
    header_length: int  # bytes from the magic to the first data byte
    descr: str
    dtype: str | None  # canonical, None when the descr has no canonical name
    shape: tuple[int, ...]
    fortran_order: bool

    @property
    def nbytes(self) -> int | None:
        size_of = itemsize(self.dtype) if self.dtype else None
        if size_of is None:
            return None
        numel = 1
        for dim in self.shape:
            numel *= dim
        return numel * size_of


def read_npy_header(source: ByteSource, offset: int, available: int) -> NpyHeader:
    """Parse the header of an .npy stored at `offset`, within `available` bytes."""
    if available < PREAMBLE_V1:
        raise MalformedLayout("npy shorter than its preamble")
    preamble = read_exact(source, offset, min(PREAMBLE_V2, available))
    if preamble[:6] != MAGIC:
        raise MalformedLayout("not an npy header")
    major = preamble[6]
    if major == 1:
        (text_len,) = struct.unpack_from("<H", preamble, 8)
        start = PREAMBLE_V1
    elif major in (2, 3):
        if len(preamble) < PREAMBLE_V2:
            raise MalformedLayout("npy shorter than its preamble")
        (text_len,) = struct.unpack_from("<I", preamble, 8)
        start = PREAMBLE_V2
    else:
        raise MalformedLayout(f"npy version {major} unknown")
    if text_len > MAX_NPY_HEADER or start + text_len > available:
        raise MalformedLayout("npy header length out of range")
    raw = read_exact(source, offset + start, text_len)
    try:
        text = raw.decode("utf-8" if major == 3 else "latin-1")
    except UnicodeDecodeError:
        raise MalformedLayout("npy header is not UTF-8") from None
    return _check_header(parse_literal(text), start + text_len)


_TOKEN = re.compile(
    r"""\s*(?:(?P<str>'[^'\\]*'|"[^"\\]*")|(?P<int>[-+]?\d+)L?|(?P<name>True|False|None)|(?P<punct>[{}()\[\],:]))"""
)
_NAMES = {"True": True, "False": False, "None": None}
_CLOSE = {"{": "}", "(": ")", "[": "]"}
MAX_LITERAL_DEPTH = 16


def parse_literal(text: str) -> object:
    """Dicts, tuples, lists, strings without escapes, integers, True/False/None."""
    tokens: list[tuple[str, str]] = []
    position = 0
    stripped_end = len(text.rstrip())
    while position < stripped_end:
        match = _TOKEN.match(text, position)
        if match is None:
            raise MalformedLayout("npy header is not a literal")
        kind = match.lastgroup
        assert kind is not None  # each alternative of _TOKEN is a named group
        tokens.append((kind, match.group(kind)))
        position = match.end()
    value, index = _parse_value(tokens, 0, 0)
    if index != len(tokens):
        raise MalformedLayout("npy header has text after its literal")
    return value


def _parse_value(tokens: list[tuple[str, str]], index: int, depth: int) -> tuple[object, int]:
    if index >= len(tokens) or depth > MAX_LITERAL_DEPTH:
        raise MalformedLayout("npy header literal is incomplete or too deep")
    kind, text = tokens[index]
    if kind == "str":
        return text[1:-1], index + 1
    if kind == "int":
        if len(text) > 30:
            raise MalformedLayout("npy header integer too long")
        return int(text), index + 1
    if kind == "name":
        return _NAMES[text], index + 1
    if text not in _CLOSE:
        raise MalformedLayout(f"unexpected {text!r} in npy header")
    close = _CLOSE[text]
    items: list[object] = []
    index += 1
    while True:
        if index < len(tokens) and tokens[index][1] == close:
            break
        if text == "{":
            key, index = _parse_value(tokens, index, depth + 1)
            if index >= len(tokens) or tokens[index][1] != ":":
                raise MalformedLayout("npy header dict without ':'")
            value, index = _parse_value(tokens, index + 1, depth + 1)
            items.append((key, value))
        else:
            item, index = _parse_value(tokens, index, depth + 1)
            items.append(item)
        if index < len(tokens) and tokens[index][1] == ",":
            index += 1
        elif index >= len(tokens) or tokens[index][1] != close:
            raise MalformedLayout("npy header literal is malformed")
    index += 1
    if text == "(":
        return tuple(items), index
    if text == "[":
        return items, index
    try:
        return dict(items), index  # type: ignore[arg-type]
    except TypeError:
        raise MalformedLayout("npy header dict with an unhashable key") from None


def _check_header(header: object, header_length: int) -> NpyHeader:
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise MalformedLayout("npy header must have exactly descr, fortran_order, shape")
    descr, fortran, shape = header["descr"], header["fortran_order"], header["shape"]
    if not isinstance(fortran, bool) or not isinstance(shape, tuple):
        raise MalformedLayout("npy header has bad field types")
    if not all(type(d) is int and d >= 0 for d in shape):
        raise MalformedLayout("npy shape must be non-negative integers")
    descr_text = descr if isinstance(descr, str) else repr(descr)
    dtype = from_numpy_descr(descr) if isinstance(descr, str) else None
    return NpyHeader(header_length, descr_text, dtype, shape, fortran)


def npy_tensor(source: ByteSource, offset: int, length: int, tensor_name: str) -> tuple[NpyHeader, Segment, list[str]]:
    """The header of an .npy occupying [offset, offset+length), its tensor-table entry, and
    warnings. A dtype without a canonical name leaves the entry's dtype None: its bytes are
    still compared. A Fortran-order array gets its column-major stride."""
    header = read_npy_header(source, offset, length)
    data_offset = offset + header.header_length
    available = length - header.header_length
    nbytes = header.nbytes
    warnings: list[str] = []
    if nbytes is None:
        warnings.append(f"{tensor_name}: dtype {header.descr} kept as opaque bytes")
        return header, Segment(tensor_name, data_offset, available, "tensor", None, header.shape), warnings
    if nbytes > available:
        raise MalformedLayout(f"npy data of {tensor_name!r} is truncated")
    stride = None
    if header.fortran_order:
        warnings.append(f"{tensor_name}: stored in Fortran (column-major) order")
        stride = _column_major(header.shape)
        if row_major(header.shape, stride):
            stride = None
    return header, Segment(tensor_name, data_offset, nbytes, "tensor", header.dtype, header.shape, stride), warnings


def _column_major(shape: tuple[int, ...]) -> tuple[int, ...]:
    stride, step = [], 1
    for dim in shape:
        stride.append(step)
        step *= dim
    return tuple(stride)


def npy_segments(
    source: ByteSource, offset: int, length: int, tensor_name: str, header_name: str
) -> tuple[list[Segment], Segment, list[str]]:
    """Segments of an .npy occupying [offset, offset+length), its tensor-table entry, and
    warnings. Data of an opaque dtype is an "other" segment (chunked as plain bytes)."""
    header, tensor, warnings = npy_tensor(source, offset, length, tensor_name)
    parts = [Segment(header_name, offset, header.header_length, "header")]
    if tensor.dtype is not None:
        parts.append(Segment(tensor_name, tensor.offset, tensor.length, "tensor", tensor.dtype, tensor.shape))
    elif tensor.length:
        parts.append(Segment(tensor_name, tensor.offset, tensor.length, "other"))
    return parts, tensor, warnings


def read_npy_layout(source: ByteSource, name: str = "") -> Layout:
    stem = PurePosixPath(name.replace("\\", "/")).stem if name else ""
    tensor_name = stem or "array"
    parts, tensor, warnings = npy_segments(source, 0, source.size, tensor_name, "<header>")
    return assemble("npy", source.size, parts, tensor_table=(tensor,), warnings=warnings)
