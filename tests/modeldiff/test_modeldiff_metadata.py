"""Header metadata changes, describe_model, and the JSON form of the results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from modelvc.modeldiff import MetaChange, compare_models, describe_model
from modelvc.modeldiff.metadata import metadata_changes
from tests.modeldiff.pairs import version
from tests.modelfiles import Typed, write_gguf, write_malicious_torch_zip, write_safetensors, write_torch_zip

TENSORS = {"w": np.arange(6, dtype=np.float32).reshape(2, 3)}


def test_safetensors_metadata_changes(tmp_path):
    old, _ = version(write_safetensors(tmp_path / "a", TENSORS, {"format": "pt", "epoch": "1", "gone": "x"}))
    new, _ = version(write_safetensors(tmp_path / "b", TENSORS, {"added": "y", "epoch": "2", "format": "pt"}))
    diff = compare_models(old, new)
    assert diff.metadata == [
        MetaChange("epoch", "1", "2"),
        MetaChange("gone", "x", None),
        MetaChange("added", None, "y"),
    ]
    assert diff.counts["unchanged"] == 1
    assert diff.has_changes


def test_safetensors_metadata_appearing(tmp_path):
    old, _ = version(write_safetensors(tmp_path / "a", TENSORS))
    new, _ = version(write_safetensors(tmp_path / "b", TENSORS, {"format": "pt"}))
    assert compare_models(old, new).metadata == [MetaChange("format", None, "pt")]


def test_gguf_key_value_changes(tmp_path):
    vocabulary = [f"tok{i}" for i in range(100)]
    changed_vocabulary = vocabulary[:-1] + ["tokX"]
    old_kv = {"general.name": "tiny", "general.architecture": "llama", "llama.context_length": Typed("uint32", 2048),
              "tokenizer.ggml.tokens": vocabulary, "general.nan": float("nan"), "old.key": 1}  # fmt: skip
    new_kv = {"general.name": "tiny-ft", "general.architecture": "llama", "llama.context_length": Typed("uint32", 4096),
              "tokenizer.ggml.tokens": changed_vocabulary, "general.nan": float("nan"), "new.key": [1, 2]}  # fmt: skip
    old, _ = version(write_gguf(tmp_path / "a", TENSORS, kv=old_kv))
    new, _ = version(write_gguf(tmp_path / "b", TENSORS, kv=new_kv))

    diff = compare_models(old, new)

    keys = [(m.key, m.old, m.new) for m in diff.metadata]
    assert keys[:2] == [("general.name", "tiny", "tiny-ft"), ("llama.context_length", 2048, 4096)]
    vocab_key, old_summary, new_summary = keys[2]
    assert vocab_key == "tokenizer.ggml.tokens"
    assert (old_summary["type"], old_summary["len"]) == (new_summary["type"], new_summary["len"]) == ("string", 100)
    assert old_summary["blake3"] != new_summary["blake3"]
    assert keys[3:] == [("old.key", 1, None), ("new.key", None, [1, 2])]
    assert diff.counts["unchanged"] == 1


def test_pytorch_unsafe_globals_show_as_a_metadata_change(tmp_path):
    old, _ = version(write_torch_zip(tmp_path / "a", {"weight": np.arange(4, dtype=np.float32)}))
    new, _ = version(write_malicious_torch_zip(tmp_path / "b", tmp_path / "never-created"))
    diff = compare_models(old, new)
    assert diff.metadata == [MetaChange("unsafe_globals", [], ["posix.system"])]
    assert [(t.name, t.status) for t in diff.tensors] == [("weight", "unchanged")]
    assert not (tmp_path / "never-created").exists()


def test_metadata_changes_treats_equal_values_as_equal():
    old = {"a": float("nan"), "b": [1, {"x": 2}], "c": 1}
    new = {"a": float("nan"), "b": [1, {"x": 2}], "c": 1.5}
    assert metadata_changes(old, new) == [MetaChange("c", 1, 1.5)]


def test_describe_safetensors(tmp_path):
    data = write_safetensors(tmp_path / "a", {"w": np.zeros((2, 3), np.float32), "b": ("BF16", (4,), b"\0" * 8)},
                             {"format": "pt"})  # fmt: skip
    file_version, source = version(data)
    summary = describe_model(file_version)
    header = 8 + int.from_bytes(data[:8], "little")
    assert summary.format == "safetensors" and summary.size == len(data)
    assert [(t.name, t.dtype, t.shape, t.bytes, t.offset) for t in summary.tensors] == [
        ("w", "F32", (2, 3), 24, header),
        ("b", "BF16", (4,), 8, header + 24),
    ]
    assert (summary.total_numel, summary.total_tensor_bytes) == (10, 32)
    assert summary.metadata == {"format": "pt"}
    assert summary.warnings == []
    assert source.reads == 0
    as_json = json.loads(json.dumps(summary.to_dict(), allow_nan=False))
    assert as_json["tensors"][0] == {"name": "w", "dtype": "F32", "shape": [2, 3], "size": 24,
                                     "offset": header, "numel": 6, "stride": None, "deflated": False}  # fmt: skip
    assert as_json["tensor_count"] == 2


def test_describe_warns_about_a_pickle_that_would_run_code(tmp_path):
    file_version, _ = version(write_malicious_torch_zip(tmp_path / "m.pt", tmp_path / "never-created"))
    summary = describe_model(file_version)
    assert summary.format == "pytorch"
    assert summary.warnings == ["archive/data.pkl imports posix.system: torch.load may run code"]
    assert summary.metadata["unsafe_globals"] == ["posix.system"]
    assert [t.name for t in summary.tensors] == ["weight"]


def test_describe_gguf_and_a_non_model(tmp_path):
    data = write_gguf(tmp_path / "g", {"t": np.zeros((4, 8), np.float32)}, kv={"general.name": "tiny"})
    file_version, _ = version(data)
    summary = describe_model(file_version)
    assert (summary.format, summary.metadata) == ("gguf", {"general.name": "tiny"})
    assert [(t.name, t.shape) for t in summary.tensors] == [("t", (8, 4))]
    other, _ = version(b"hello world, plain text")
    summary = describe_model(other)
    assert (summary.format, summary.size, summary.tensors) == (None, 23, [])
    assert summary.warnings == ["not a model file of a known format"]


def test_diff_to_dict_is_plain_json(tmp_path):
    old, _ = version(write_safetensors(tmp_path / "a", {"w": np.array([0.0, 1.0], np.float32)}, {"k": "1"}))
    new, _ = version(write_safetensors(tmp_path / "b", {"w": np.array([np.inf, 1.0], np.float32)}, {"k": "2"}))
    result = json.loads(json.dumps(compare_models(old, new, stats=True).to_dict(), allow_nan=False))
    assert result["counts"]["modified"] == 1
    assert result["metadata"] == [{"key": "k", "old": "1", "new": "2"}]
    (tensor,) = result["tensors"]
    assert (tensor["name"], tensor["status"], tensor["old_shape"]) == ("w", "modified", [2])
    assert tensor["decided_by"] == "bytes"
    assert tensor["stats"]["max_abs_diff"] == "inf"
    assert tensor["stats"]["modified_fraction"] == 0.5
    assert result["read_bytes"] == 2 * 8 + 2 * 8  # compared once, then read again for the stats


def test_importing_modeldiff_does_not_import_numpy():
    code = "import sys, modelvc.modeldiff; print('numpy' in sys.modules)"
    root = Path(__file__).resolve().parents[2]
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert output.stdout.strip() == "False"
