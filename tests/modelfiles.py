"""Builders of small model files for tests, written independently of modelvc's readers.

    write_safetensors(path, {"w": np.ones((2, 3), np.float32), "b": ("BF16", (3,), raw)})
    write_gguf(path, {"tok": np.zeros((4, 8), np.float32)}, kv={"general.name": "tiny"})
    write_npy(path, array) / write_npz(path, {"a": array}, compressed=False)
    write_torch_zip(path, {"state_dict": {"w": array, "v": TorchView(...)}})
    write_malicious_torch_zip(path, marker)   # data.pkl calls os.system("touch marker")

BytesSource / FileSource are ByteSources over bytes or a file that count what is read.
"""

from __future__ import annotations

import collections
import contextlib
import io
import os
import pickle
import struct
import sys
import types
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelvc.samples import write_tensors

# ---------------------------------------------------------------- byte sources


class BytesSource:
    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.size = len(self.data)
        self.bytes_read = 0
        self.reads = 0

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        self.bytes_read += length
        return self.data[offset : offset + length]


class FileSource:
    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self.bytes_read = 0
        self.reads = 0

    def read(self, offset: int, length: int) -> bytes:
        self.reads += 1
        self.bytes_read += length
        with open(self.path, "rb") as handle:
            handle.seek(offset)
            return handle.read(length)


# ---------------------------------------------------------------- dtypes

_NUMPY_NAMES = {
    "float64": "F64", "float32": "F32", "float16": "F16", "int64": "I64", "int32": "I32",
    "int16": "I16", "int8": "I8", "uint8": "U8", "uint16": "U16", "uint32": "U32",
    "uint64": "U64", "bool": "BOOL",
}  # fmt: skip


def canonical_dtype(array: np.ndarray) -> str:
    return _NUMPY_NAMES[array.dtype.name]


def bf16_bytes(values: np.ndarray) -> bytes:
    """bfloat16 encoding of float32 values (round to nearest even), little-endian."""
    bits = np.ascontiguousarray(values, dtype="<f4").view("<u4").astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def _tensor_spec(value: Any) -> tuple[str, tuple[int, ...], bytes]:
    if isinstance(value, np.ndarray):
        data = np.ascontiguousarray(value)
        return canonical_dtype(data), tuple(data.shape), data.astype(data.dtype.newbyteorder("<")).tobytes()
    dtype, shape, raw = value
    return dtype, tuple(shape), bytes(raw)


# ---------------------------------------------------------------- safetensors


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Any],
                      metadata: dict[str, str] | None = None) -> bytes:
    """Tensors in the given order (numpy arrays or (dtype, shape, raw bytes)). Returns the file."""
    specs = {name: _tensor_spec(value) for name, value in tensors.items()}
    write_tensors(path, [(name, dtype, shape, len(raw)) for name, (dtype, shape, raw) in specs.items()],
                  [raw for _, _, raw in specs.values()], metadata)
    return Path(path).read_bytes()


# ---------------------------------------------------------------- gguf

GGUF_VALUE_TYPES = {
    "uint8": (0, "<B"), "int8": (1, "<b"), "uint16": (2, "<H"), "int16": (3, "<h"),
    "uint32": (4, "<I"), "int32": (5, "<i"), "float32": (6, "<f"), "bool": (7, "<?"),
    "string": (8, None), "array": (9, None), "uint64": (10, "<Q"), "int64": (11, "<q"),
    "float64": (12, "<d"),
}  # fmt: skip
GGML_TYPE_IDS = {
    "F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q8_1": 9,
    "Q2_K": 10, "Q3_K": 11, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "Q8_K": 15, "I8": 24,
    "I16": 25, "I32": 26, "I64": 27, "F64": 28, "BF16": 30,
}  # fmt: skip


@dataclass(frozen=True)
class Typed:
    """A GGUF value with an explicit type: Typed("uint32", 64), Typed("array", [...], "string")."""

    type: str
    value: Any
    item_type: str | None = None


def _gguf_string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def _infer(value: Any) -> Typed:
    if isinstance(value, Typed):
        return value
    if isinstance(value, bool):
        return Typed("bool", value)
    if isinstance(value, int):
        return Typed("int64", value)
    if isinstance(value, float):
        return Typed("float64", value)
    if isinstance(value, (str, bytes)):
        return Typed("string", value)
    if isinstance(value, list):
        item = _infer(value[0]).type if value else "int32"
        return Typed("array", value, item)
    raise TypeError(f"no GGUF type for {value!r}")


def _gguf_value(typed: Typed) -> bytes:
    """A value's encoding, without its type tag (arrays carry their item type and count)."""
    if typed.type == "string":
        return _gguf_string(typed.value)
    if typed.type == "array":
        item_type = typed.item_type or "int32"
        if item_type == "array":
            body = b"".join(_gguf_value(_infer(v)) for v in typed.value)
        else:
            body = b"".join(_gguf_value(Typed(item_type, v)) for v in typed.value)
        return struct.pack("<IQ", GGUF_VALUE_TYPES[item_type][0], len(typed.value)) + body
    return struct.pack(GGUF_VALUE_TYPES[typed.type][1], typed.value)


def write_gguf(
    path: str | os.PathLike,
    tensors: dict[str, Any],
    kv: dict[str, Any] | None = None,
    version: int = 3,
    alignment: int = 32,
) -> bytes:
    """A GGUF file. numpy arrays are written with dims reversed (ggml order, as gguf-py
    does); (type, shape, raw) tuples are written with `shape` exactly as given."""
    kv = dict(kv or {})
    if alignment != 32 and "general.alignment" not in kv:
        kv["general.alignment"] = Typed("uint32", alignment)
    out = io.BytesIO()
    out.write(b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kv)))
    for key, value in kv.items():
        typed = _infer(value)
        out.write(_gguf_string(key) + struct.pack("<I", GGUF_VALUE_TYPES[typed.type][0]) + _gguf_value(typed))
    blobs = []
    offset = 0
    for name, value in tensors.items():
        if isinstance(value, np.ndarray):
            ggml_type, dims = canonical_dtype(value), tuple(reversed(value.shape))
            raw = value.astype(value.dtype.newbyteorder("<")).tobytes()
        else:
            ggml_type, dims, raw = value[0], tuple(value[1]), bytes(value[2])
        out.write(_gguf_string(name) + struct.pack("<I", len(dims)))
        out.write(b"".join(struct.pack("<Q", d) for d in dims))
        out.write(struct.pack("<IQ", GGML_TYPE_IDS[ggml_type], offset))
        blobs.append(raw + b"\0" * (-len(raw) % alignment))
        offset += len(blobs[-1])
    out.write(b"\0" * (-out.tell() % alignment))
    out.write(b"".join(blobs))
    data = out.getvalue()
    Path(path).write_bytes(data)
    return data


# ---------------------------------------------------------------- npy / npz


def write_npy(path: str | os.PathLike, array: np.ndarray, version: tuple[int, int] | None = None) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, version=version, allow_pickle=False)
    Path(path).write_bytes(buffer.getvalue())
    return buffer.getvalue()


def write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray], compressed: bool = False) -> bytes:
    with open(path, "wb") as handle:
        (np.savez_compressed if compressed else np.savez)(handle, **arrays)
    return Path(path).read_bytes()


# ---------------------------------------------------------------- zip (as torch.save writes it)


def write_zip_records(records: list[tuple[str, bytes]], zip64: bool = True, align: int = 64) -> bytes:
    """Stored records with 'FB' padding extra fields aligning data to `align` bytes, data
    descriptors after each record, and zip64 end records (as PyTorch's miniz writer does)."""
    out = io.BytesIO()
    central = []
    for name, data in records:
        raw_name = name.encode()
        offset = out.tell()
        start = offset + 30 + len(raw_name) + 4
        pad = -start % align
        extra = b"FB" + struct.pack("<H", pad) + b"Z" * pad
        crc = zlib.crc32(data)
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0x8, 0, 0, 33, 0, 0, 0, len(raw_name), len(extra)))
        out.write(raw_name + extra + data)
        out.write(struct.pack("<4sIII", b"PK\x07\x08", crc, len(data), len(data)))
        central.append(
            struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 45, 20, 0x8, 0, 0, 33, crc,
                        len(data), len(data), len(raw_name), 0, 0, 0, 0, 0, offset) + raw_name
        )  # fmt: skip
    cd_offset = out.tell()
    out.write(b"".join(central))
    cd_size = out.tell() - cd_offset
    if zip64:
        record_at = out.tell()
        out.write(struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, len(records), len(records),
                              cd_size, cd_offset))
        out.write(struct.pack("<4sIQI", b"PK\x06\x07", 0, record_at, 1))
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(records), len(records), cd_size, cd_offset, 0))
    return out.getvalue()


_STORAGE_CLASSES = {
    "F64": "DoubleStorage", "F32": "FloatStorage", "F16": "HalfStorage", "BF16": "BFloat16Storage",
    "I64": "LongStorage", "I32": "IntStorage", "I16": "ShortStorage", "I8": "CharStorage",
    "U8": "ByteStorage", "BOOL": "BoolStorage",
}  # fmt: skip


@dataclass(eq=False)
class TorchView:
    """A tensor viewing `storage` (a 1-D array, shared by identity between views).

    dtype overrides the array's own (e.g. "BF16" over a uint16 array of bf16 bits).
    Default shape/stride: the whole storage, contiguous."""

    storage: np.ndarray
    offset: int = 0
    shape: tuple[int, ...] | None = None
    stride: tuple[int, ...] | None = None
    dtype: str | None = None


def bf16_tensor(values: np.ndarray) -> TorchView:
    """A bf16 tensor of the given float32 values and shape."""
    bits = np.frombuffer(bf16_bytes(values), dtype="<u2")
    return TorchView(bits, 0, tuple(values.shape), _contiguous_stride(values.shape), "BF16")


def _contiguous_stride(shape: tuple[int, ...]) -> tuple[int, ...]:
    stride, step = [], 1
    for dim in reversed(shape):
        stride.append(step)
        step *= dim
    return tuple(reversed(stride))


@contextlib.contextmanager
def _fake_torch():
    """Modules named like torch's, just enough for pickle to name their globals."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # never called: only pickled by reference
        raise AssertionError("fake torch must never be called")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for class_name in _STORAGE_CLASSES.values():
        setattr(torch, class_name, type(class_name, (), {"__module__": "torch"}))
    saved = {name: sys.modules.get(name) for name in ("torch", "torch._utils")}
    sys.modules.update({"torch": torch, "torch._utils": utils})
    try:
        yield torch
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _is_plain_object(value: Any) -> bool:
    return (
        hasattr(value, "__dict__")
        and not isinstance(value, (type, types.FunctionType, types.BuiltinFunctionType, types.ModuleType, TorchView))
        and type(value).__module__ not in ("builtins", "collections")
    )


class _Storage:
    def __init__(self, key: str, dtype: str, raw: bytes, numel: int) -> None:
        self.key, self.dtype, self.raw, self.numel = key, dtype, raw, numel


class _Tensor:
    def __init__(self, rebuild, storage: _Storage, offset: int, shape: tuple, stride: tuple) -> None:
        self.args = (storage, offset, tuple(shape), tuple(stride), False, collections.OrderedDict())
        self.rebuild = rebuild

    def __reduce_ex__(self, protocol):
        return self.rebuild, self.args


def write_torch_zip(
    path: str | os.PathLike,
    tensors: dict[str, Any],
    *,
    prefix: str = "archive",
    protocol: int = 2,
    zip64: bool = True,
    extra_objects: dict[str, Any] | None = None,
) -> bytes:
    """A checkpoint laid out like torch.save's: prefix/data.pkl, prefix/data/<key>, ...

    `tensors` may nest dicts (an OrderedDict state_dict inside a dict); leaves are numpy
    arrays (own storage) or TorchView (shared storage). Storage keys are given in pickling
    order, "0", "1", ..., as torch does; records are written sorted by key."""
    with _fake_torch() as torch:
        storages: dict[int, _Storage] = {}
        converted: dict[int, _Tensor] = {}
        keep_alive: list[Any] = []  # ids are only unique while their objects live

        def storage_of(array: np.ndarray, dtype: str) -> _Storage:
            if id(array) not in storages:
                keep_alive.append(array)
                raw = np.ascontiguousarray(array).tobytes()
                storages[id(array)] = _Storage(str(len(storages)), dtype, raw, array.size)
            return storages[id(array)]

        def convert(value: Any) -> Any:
            if isinstance(value, dict):
                return collections.OrderedDict((k, convert(v)) for k, v in value.items())
            if isinstance(value, (list, tuple)):
                return type(value)(convert(v) for v in value)
            if _is_plain_object(value):  # e.g. a module: its attributes hold tensors
                clone = object.__new__(type(value))
                clone.__dict__.update(convert(vars(value)))
                return clone
            if isinstance(value, np.ndarray):
                flat = np.ascontiguousarray(value).reshape(-1)
                view = TorchView(flat, 0, tuple(value.shape), _contiguous_stride(value.shape))
                return convert(view)
            if isinstance(value, TorchView):
                if id(value) not in converted:
                    keep_alive.append(value)
                    dtype = value.dtype or canonical_dtype(value.storage)
                    shape = value.shape if value.shape is not None else tuple(value.storage.shape)
                    stride = value.stride if value.stride is not None else _contiguous_stride(shape)
                    storage = storage_of(value.storage, dtype)
                    rebuild = torch._utils._rebuild_tensor_v2
                    converted[id(value)] = _Tensor(rebuild, storage, value.offset, shape, stride)
                return converted[id(value)]
            return value

        obj = convert(tensors)
        if extra_objects:
            obj.update(extra_objects)

        class Pickler(pickle.Pickler):
            def persistent_id(self, value):
                if isinstance(value, _Storage):
                    return ("storage", getattr(torch, _STORAGE_CLASSES[value.dtype]), value.key, "cpu", value.numel)
                return None

        buffer = io.BytesIO()
        Pickler(buffer, protocol=protocol).dump(obj)
    records = [(f"{prefix}/data.pkl", buffer.getvalue()), (f"{prefix}/.format_version", b"1"),
               (f"{prefix}/.storage_alignment", b"64"), (f"{prefix}/byteorder", b"little")]  # fmt: skip
    for storage in sorted(storages.values(), key=lambda s: s.key):
        records.append((f"{prefix}/data/{storage.key}", storage.raw))
    records += [(f"{prefix}/version", b"3\n"), (f"{prefix}/.data/serialization_id", b"0" * 40)]
    data = write_zip_records(records, zip64=zip64)
    Path(path).write_bytes(data)
    return data


class _SystemCall:
    """Pickles as a call of os.system (posix.system): what a malicious checkpoint does."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def write_malicious_torch_zip(path: str | os.PathLike, marker: str | os.PathLike) -> bytes:
    """A checkpoint whose data.pkl would run `touch marker` if it were unpickled."""
    payload = _SystemCall(f"touch {marker}")
    return write_torch_zip(path, {"weight": np.arange(4, dtype=np.float32)}, extra_objects={"payload": payload})


def assert_valid_layout(layout: Any) -> None:
    """Segments sorted, contiguous, covering [0, size); only tensors may be empty."""
    position = 0
    for segment in layout.segments:
        assert segment.offset == position, (segment, position)
        assert segment.length > 0 or segment.kind == "tensor", segment
        assert segment.kind in ("tensor", "header", "other"), segment
        position = segment.end
    assert position == layout.size
