"""Is this a model file? A cheap guess from its name and first bytes, for the git hook that
keeps model files out of git. No parsing: a few bytes per file, so a hook stays instant."""

from __future__ import annotations

import struct
from pathlib import Path

EXTENSIONS = {".safetensors": "safetensors", ".gguf": "GGUF", ".ggml": "GGML", ".pt": "PyTorch",
              ".pth": "PyTorch", ".ckpt": "checkpoint", ".bin": "PyTorch or raw weights",
              ".npy": "NumPy", ".npz": "NumPy", ".onnx": "ONNX", ".h5": "HDF5", ".hdf5": "HDF5",
              ".keras": "Keras", ".tflite": "TensorFlow Lite", ".pb": "TensorFlow", ".mlmodel": "Core ML"}
MAGIC = ((b"GGUF", "GGUF"), (b"\x93NUMPY", "NumPy"), (b"\x89HDF\r\n\x1a\n", "HDF5"))
MAX_SAFETENSORS_HEADER = 100 << 20


def model_format(path: Path) -> str | None:
    """The format a file looks like it has, or None for anything else (or unreadable)."""
    by_name = EXTENSIONS.get(path.suffix.lower())
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError:
        return by_name
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    if len(head) >= 10 and head[8:10] in (b"{\"", b"{}"):
        (length,) = struct.unpack("<Q", head[:8])
        if 2 <= length <= MAX_SAFETENSORS_HEADER:
            return "safetensors"
    if head[:2] == b"PK" and path.suffix.lower() in (".pt", ".pth", ".ckpt", ".bin"):
        return "PyTorch"
    return by_name
