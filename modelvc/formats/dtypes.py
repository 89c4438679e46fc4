"""Canonical dtype names, shared by every format reader.

Each file format spells element types its own way (numpy descr '<f4', torch 'FloatStorage'
or 'torch.float32', ggml type ids). The rest of modelvc only ever sees the canonical names
below, so a tensor keeps the same dtype whichever file it travels through.
"""

from __future__ import annotations

ITEMSIZES: dict[str, int] = {
    "F64": 8,
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U64": 8,
    "U32": 4,
    "U16": 2,
    "U8": 1,
    "BOOL": 1,
    "C64": 8,
    "C128": 16,
}

# ggml type id -> (name, elements per block, bytes per block). Ids of layouts that ggml
# removed (4, 5, 31-33, 36-38) are absent on purpose: such a file is "unknown".
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}
GGML_BLOCKS: dict[str, tuple[int, int]] = {name: (n, b) for name, n, b in GGML_TYPES.values()}
GGML_IDS: dict[str, int] = {name: type_id for type_id, (name, _, _) in GGML_TYPES.items()}

_FLOAT_SIZES = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}

# numpy kind+size -> canonical name (byte order handled in from_numpy_descr)
_NUMPY_KINDS: dict[str, str] = {
    "f8": "F64",
    "f4": "F32",
    "f2": "F16",
    "i8": "I64",
    "i4": "I32",
    "i2": "I16",
    "i1": "I8",
    "u8": "U64",
    "u4": "U32",
    "u2": "U16",
    "u1": "U8",
    "b1": "BOOL",
    "c8": "C64",
    "c16": "C128",
}

_TORCH_STORAGES: dict[str, str] = {
    "DoubleStorage": "F64",
    "FloatStorage": "F32",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
    "ComplexFloatStorage": "C64",
    "ComplexDoubleStorage": "C128",
    "UntypedStorage": "U8",
}

_TORCH_DTYPES: dict[str, str] = {
    "float64": "F64",
    "double": "F64",
    "float32": "F32",
    "float": "F32",
    "float16": "F16",
    "half": "F16",
    "bfloat16": "BF16",
    "float8_e4m3fn": "F8_E4M3",
    "float8_e5m2": "F8_E5M2",
    "int64": "I64",
    "long": "I64",
    "int32": "I32",
    "int": "I32",
    "int16": "I16",
    "short": "I16",
    "int8": "I8",
    "uint64": "U64",
    "uint32": "U32",
    "uint16": "U16",
    "uint8": "U8",
    "bool": "BOOL",
    "complex64": "C64",
    "cfloat": "C64",
    "complex128": "C128",
    "cdouble": "C128",
}


def itemsize(dtype: str) -> int | None:
    """Bytes per element, or None for block-quantized (GGUF) and unknown types."""
    return ITEMSIZES.get(dtype)


def float_itemsize(dtype: str | None) -> int | None:
    """Bytes per value of a floating type worth splitting into byte planes, else None."""
    return _FLOAT_SIZES.get(dtype or "")


def ggml_nbytes(dtype: str, shape: tuple[int, ...]) -> int | None:
    """Byte size of a ggml tensor; None if the first dimension does not fill whole blocks."""
    block = GGML_BLOCKS.get(dtype)
    if block is None:
        return None
    elems_per_block, bytes_per_block = block
    numel = 1
    for dim in shape:
        numel *= dim
    if shape and shape[0] % elems_per_block:
        return None
    if numel % elems_per_block:
        return None
    return numel // elems_per_block * bytes_per_block


def from_numpy_descr(descr: str) -> str | None:
    """'<f4' -> 'F32'. None for big-endian, structured, object or string dtypes."""
    if not isinstance(descr, str) or len(descr) < 2:
        return None
    order, kind = descr[0], descr[1:]
    dtype = _NUMPY_KINDS.get(kind)
    if dtype is None:
        return None
    if order == "<" or order == "|":
        return dtype
    if order in "=>" and ITEMSIZES[dtype] == 1:
        return dtype
    return None


def from_torch_storage(name: str) -> str | None:
    """'FloatStorage' (or 'torch.FloatStorage') -> 'F32'."""
    return _TORCH_STORAGES.get(name.rsplit(".", 1)[-1])


def from_torch_dtype(name: str) -> str | None:
    """'torch.bfloat16' or 'bfloat16' -> 'BF16'."""
    if name.startswith("torch."):
        name = name[len("torch.") :]
    return _TORCH_DTYPES.get(name)


def torch_storage_names() -> frozenset[str]:
    return frozenset(_TORCH_STORAGES)


def torch_dtype_names() -> frozenset[str]:
    return frozenset(_TORCH_DTYPES)
