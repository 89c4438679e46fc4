"""Issue 11, items 19 and 20: a changed tensor never reads as unchanged.

19: numpy.savez_compressed deflates its members; diff said "tensors: none" for a changed one.
20: torch.save writes a transposed view as is (stride not the contiguous one); diff left it out.
Each is checked through the CLI, text and --json, with numpy's and torch's own files (torch
where it is installed) and with a hand-built checkpoint of the same layout (always).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.modelfiles import TorchView, write_torch_zip


def commit(mvc, work, name, write, message):
    write(work / name)
    mvc("add", name)
    mvc("commit", "-m", message)


def savez_compressed(a_offset: float):
    def write(path):
        with open(path, "wb") as handle:
            np.savez_compressed(handle, a=np.arange(6, dtype=np.float32) + a_offset, b=np.ones((2, 2), np.float16))

    return write


def test_changed_tensor_in_a_savez_compressed_file_is_reported(mvc, work):
    commit(mvc, work, "c.npz", savez_compressed(0.0), "v1")
    commit(mvc, work, "c.npz", savez_compressed(0.5), "v2")

    text = mvc("diff", "HEAD~1", "HEAD", "--stats").stdout
    assert text.splitlines()[1:] == [
        "    tensors: 1 modified, 1 unchanged",
        "    modified  a  F32 [6]  max|Δ| 0.5  mean|Δ| 0.5  rel L2 0.165  changed 100%",
    ]
    (change,) = mvc.json("diff", "HEAD~1", "HEAD", "--all")["files"]
    model = change["model"]
    assert model["counts"] == {"added": 0, "deleted": 0, "dtype": 0, "shape": 0, "modified": 1, "unchanged": 1}
    assert [(t["name"], t["status"], t["decided_by"], t["new_shape"]) for t in model["tensors"]] == [
        ("a", "modified", "inflated", [6]),
        ("b", "unchanged", "inflated", [2, 2]),
    ]
    assert mvc("diff", "HEAD~1", "HEAD", "--exit-code", ok=False).exit_code == 1

    shown = mvc("show", "HEAD:c.npz").stdout.splitlines()
    assert shown[1:] == [
        "format: npz, 2 tensors, 10 parameters, 32 B",
        "  a  F32      [6]                        24 B  deflated",
        "  b  F16      [2, 2]                      8 B  deflated",
    ]
    tensors = mvc.json("show", "HEAD:c.npz")["model"]["tensors"]
    assert [(t["name"], t["dtype"], t["shape"], t["size"], t["deflated"]) for t in tensors] == [
        ("a", "F32", [6], 24, True), ("b", "F16", [2, 2], 8, True),
    ]


def transposed_checkpoint(scale: float):
    """{"t": w.t(), "w": other}: t's storage holds w row by row, t reads it with stride (1, 4)."""

    def write(path):
        w = np.arange(12, dtype=np.float32).reshape(3, 4) * scale
        write_torch_zip(path, {"t": TorchView(w.reshape(-1), 0, (4, 3), (1, 4)), "w": np.ones(3, np.float32)})

    return write


def torch_transposed(scale: float):
    def write(path):
        import torch

        w = torch.arange(12, dtype=torch.float32).reshape(3, 4) * scale
        torch.save({"t": w.t(), "w": torch.ones(3)}, path)

    return write


def _check_transposed_diff(mvc, name: str) -> None:
    text = mvc("diff", "HEAD~1", "HEAD", "--stats").stdout
    assert text.splitlines()[1:] == [
        "    tensors: 1 modified, 1 unchanged",
        "    modified  t  F32 [4, 3]  max|Δ| 11  mean|Δ| 5.5  rel L2 1  changed 91.7%",
    ]
    (change,) = mvc.json("diff", "HEAD~1", "HEAD", "--stats")["files"]
    (tensor,) = change["model"]["tensors"]
    assert (tensor["name"], tensor["status"], tensor["new_shape"], tensor["note"]) == ("t", "modified", [4, 3], None)
    assert tensor["stats"]["modified_count"] == 11 and tensor["stats"]["numel"] == 12
    shown = mvc("show", f"HEAD:{name}").stdout.splitlines()
    assert shown[2:4] == [
        "  t  F32      [4, 3]                     48 B  stride [1, 4]",
        "  w  F32      [3]                        12 B",
    ]
    assert not any(line.startswith("warning:") for line in shown)
    (t_info, _) = mvc.json("show", f"HEAD:{name}")["model"]["tensors"]
    assert (t_info["name"], t_info["shape"], t_info["stride"], t_info["deflated"]) == ("t", [4, 3], [1, 4], False)


def test_changed_transposed_view_in_a_checkpoint_is_reported(mvc, work):
    commit(mvc, work, "m.pt", transposed_checkpoint(1.0), "v1")
    commit(mvc, work, "m.pt", transposed_checkpoint(2.0), "v2")
    _check_transposed_diff(mvc, "m.pt")


def test_changed_transposed_view_saved_by_torch_is_reported(mvc, work):
    pytest.importorskip("torch")
    commit(mvc, work, "m.pt", torch_transposed(1.0), "v1")
    commit(mvc, work, "m.pt", torch_transposed(2.0), "v2")
    _check_transposed_diff(mvc, "m.pt")


def test_a_view_whose_stride_changed_is_listed_as_not_compared(mvc, work):
    def write(stride):
        values = np.arange(12, dtype=np.float32)
        return lambda path: write_torch_zip(path, {"t": TorchView(values, 0, (4, 3), stride)})

    commit(mvc, work, "m.pt", write((3, 1)), "v1")
    commit(mvc, work, "m.pt", write((1, 4)), "v2")
    lines = mvc("diff", "HEAD~1", "HEAD").stdout.splitlines()
    assert lines[1:] == [
        "    tensors: 1 uncompared",
        "    uncompared t  F32 [4, 3]  (not compared: stored row-major in the old version and with stride (1, 4)"
        " in the new one)",
    ]
    (change,) = json.loads(mvc("diff", "HEAD~1", "HEAD", "--json").stdout)["files"]
    assert change["model"]["counts"]["uncompared"] == 1
    assert change["model"]["tensors"][0]["decided_by"] == "none"
    assert mvc("diff", "HEAD~1", "HEAD", "--exit-code", ok=False).exit_code == 1
