"""Deterministic sample models: a transformer-like safetensors checkpoint and its later versions.

Used by the walkthrough (`python -m modelvc.walkthrough`) and the benchmarks; generated from a
seed with numpy so the same arguments always give the same bytes.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DTYPES = {"bf16": ("BF16", 2), "fp16": ("F16", 2), "fp32": ("F32", 4)}


@dataclass(frozen=True)
class ModelShape:
    vocab: int = 32000
    d_model: int = 1024
    layers: int = 8
    d_ff: int = 2816

    @classmethod
    def for_bytes(cls, target_bytes: int, itemsize: int) -> ModelShape:
        """A shape whose checkpoint is close to target_bytes (layers scale, widths fixed)."""
        base = cls(layers=1)
        per_layer = (4 * base.d_model ** 2 + 3 * base.d_model * base.d_ff + 2 * base.d_model) * itemsize
        fixed = (2 * base.vocab * base.d_model + base.d_model) * itemsize
        layers = max(1, round((target_bytes - fixed) / per_layer))
        return cls(layers=layers)


def tensor_shapes(shape: ModelShape) -> dict[str, tuple[int, ...]]:
    names: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (shape.vocab, shape.d_model)}
    for i in range(shape.layers):
        p = f"model.layers.{i}"
        names[f"{p}.input_layernorm.weight"] = (shape.d_model,)
        for proj in ("q", "k", "v", "o"):
            names[f"{p}.self_attn.{proj}_proj.weight"] = (shape.d_model, shape.d_model)
        names[f"{p}.post_attention_layernorm.weight"] = (shape.d_model,)
        names[f"{p}.mlp.gate_proj.weight"] = (shape.d_ff, shape.d_model)
        names[f"{p}.mlp.up_proj.weight"] = (shape.d_ff, shape.d_model)
        names[f"{p}.mlp.down_proj.weight"] = (shape.d_model, shape.d_ff)
    names["model.norm.weight"] = (shape.d_model,)
    names["lm_head.weight"] = (shape.vocab, shape.d_model)
    return names


def init_weights(shape: ModelShape, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    weights = {}
    for name, dims in tensor_shapes(shape).items():
        if name.endswith("norm.weight"):
            weights[name] = (1.0 + 0.02 * rng.standard_normal(dims, dtype=np.float32)).astype(np.float32)
        else:
            weights[name] = (0.02 * rng.standard_normal(dims, dtype=np.float32)).astype(np.float32)
    return weights


def bf16_bits(values: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounding to nearest even."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    return ((bits + rounding) >> 16).astype(np.uint16)


def encode(values: np.ndarray, dtype: str) -> np.ndarray:
    if dtype == "bf16":
        return bf16_bits(values)
    if dtype == "fp16":
        return values.astype("<f2")
    return values.astype("<f4")


def write_safetensors(path: Path, weights: dict[str, np.ndarray], dtype: str = "bf16",
                      metadata: dict[str, str] | None = None) -> int:
    """Write float32 weights as a safetensors file in `dtype`; returns its size."""
    tag, itemsize = DTYPES[dtype]
    tensors = [(name, tag, array.shape, array.size * itemsize) for name, array in weights.items()]
    return write_tensors(path, tensors, (encode(array, dtype) for array in weights.values()), metadata or None)


def write_tensors(path: str | os.PathLike[str], tensors: Iterable[tuple[str, str, Sequence[int], int]],
                  blobs: Iterable[bytes | memoryview | np.ndarray], metadata: dict[str, str] | None = None) -> int:
    """The safetensors writer: `tensors` (name, dtype, shape, byte length) in file order, their bytes
    taken one at a time from `blobs` (so a large checkpoint is never held twice), the header
    padded with spaces to 8 bytes, "__metadata__" only when metadata is not None. Returns the size.
    """
    header: dict[str, Any] = {} if metadata is None else {"__metadata__": metadata}
    offset = 0
    for name, tag, shape, length in tensors:
        header[name] = {"dtype": tag, "shape": list(shape), "data_offsets": [offset, offset + length]}
        offset += length
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for blob in blobs:
            handle.write(blob.data if isinstance(blob, np.ndarray) else blob)
    return 8 + len(raw) + offset


def nudge(weights: dict[str, np.ndarray], names: list[str], sigma: float, seed: int) -> dict[str, np.ndarray]:
    """A small training step on some tensors: w + N(0, sigma)."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for name in names:
        noise = rng.standard_normal(weights[name].shape, dtype=np.float32)
        out[name] = (weights[name] + sigma * noise).astype(np.float32)
    return out


def retrain(weights: dict[str, np.ndarray], names: list[str], seed: int) -> dict[str, np.ndarray]:
    """Replace tensors with fresh values (as if trained from scratch)."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for name in names:
        scale = 1.0 if name.endswith("norm.weight") else 0.0
        out[name] = (scale + 0.02 * rng.standard_normal(weights[name].shape, dtype=np.float32)).astype(np.float32)
    return out


def grow_vocab(weights: dict[str, np.ndarray], rows: int, seed: int) -> dict[str, np.ndarray]:
    """Append rows to the embedding and lm_head (new tokens)."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        extra = 0.02 * rng.standard_normal((rows, weights[name].shape[1]), dtype=np.float32)
        out[name] = np.concatenate([weights[name], extra.astype(np.float32)])
    return out


def checkpoint_series(shape: ModelShape, seed: int = 0) -> list[tuple[str, dict[str, np.ndarray], dict[str, str]]]:
    """The seven-version series of the storage benchmark: (description, weights, metadata)."""
    names = list(tensor_shapes(shape))
    layer_names = [n for n in names if n.startswith("model.layers.")]
    last_quarter = [n for n in layer_names if int(n.split(".")[2]) >= shape.layers - max(1, shape.layers // 4)]
    v1 = init_weights(shape, seed)
    v3 = retrain(v1, ["lm_head.weight", "model.norm.weight"], seed + 3)
    v4 = nudge(v3, last_quarter, 1e-4, seed + 4)
    v5 = grow_vocab(v4, 64, seed + 5)
    v6 = nudge(v5, list(v5), 1e-4, seed + 6)
    meta = {"format": "pt", "step": "1000"}
    return [("v1 base", v1, meta),
            ("v2 metadata only", v1, {"format": "pt", "step": "1000", "note": "re-exported"}),
            ("v3 lm_head + final norm retrained", v3, meta),
            ("v4 last quarter of layers nudged", v4, meta),
            ("v5 vocabulary +64 rows", v5, meta),
            ("v6 every tensor nudged", v6, meta),
            ("v7 identical to v3", v3, meta)]
