"""Model-aware diff and show through the CLI: which tensors changed, and by how much."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.modelfiles import (
    write_gguf,
    write_malicious_torch_zip,
    write_npy,
    write_npz,
    write_safetensors,
    write_torch_zip,
)


def base_tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    return {"keep": rng.standard_normal((64, 32)).astype(np.float32),
            "tweak": rng.standard_normal((128, 16)).astype(np.float32),
            "reshape": np.arange(24, dtype=np.float32).reshape(4, 6),
            "retype": np.ones(10, dtype=np.float32),
            "gone": np.zeros(5, dtype=np.float32)}


def edited(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(tensors)
    out["tweak"] = tensors["tweak"].copy()
    out["tweak"][3, 5] += 0.5
    out["reshape"] = tensors["reshape"].reshape(6, 4)
    out["retype"] = tensors["retype"].astype(np.float16)
    del out["gone"]
    out["fresh"] = np.full(3, 2.0, dtype=np.float32)
    return out


def commit_two(mvc, work, name, writer):
    writer(work / name, base_tensors())
    mvc("add", name)
    mvc("commit", "-m", "before")
    writer(work / name, edited(base_tensors()))
    mvc("add", name)
    mvc("commit", "-m", "after")
    return next(f for f in json.loads(mvc("diff", "HEAD~1", "HEAD", "--json", "--stats", "--all").stdout)["files"])


EXPECTED = {"keep": "unchanged", "tweak": "modified", "reshape": "shape", "retype": "dtype",
            "gone": "deleted", "fresh": "added"}

WRITERS = {
    "model.safetensors": lambda path, tensors, **kw: write_safetensors(path, tensors, **kw),
    "model.gguf": lambda path, tensors: write_gguf(path, tensors),
    "model.pt": lambda path, tensors: write_torch_zip(path, tensors),
    "arrays.npz": lambda path, tensors: write_npz(path, tensors),
}


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_diff_names_each_kind_of_tensor_change(mvc, work, name):
    change = commit_two(mvc, work, name, WRITERS[name])
    model = change["model"]
    statuses = {t["name"]: t["status"] for t in model["tensors"]}
    assert statuses == EXPECTED
    assert model["counts"] == {"added": 1, "deleted": 1, "dtype": 1, "shape": 1, "modified": 1, "unchanged": 1}
    tweak = next(t for t in model["tensors"] if t["name"] == "tweak")
    old = base_tensors()["tweak"].astype(np.float64)
    assert tweak["stats"]["max_abs_diff"] == pytest.approx(0.5, abs=1e-6)
    assert tweak["stats"]["mean_abs_diff"] == pytest.approx(0.5 / old.size, rel=1e-5)
    assert tweak["stats"]["modified_count"] == 1
    assert tweak["stats"]["rel_l2"] == pytest.approx(0.5 / np.linalg.norm(old), rel=1e-4)


def test_npy_value_change(mvc, work):
    values = np.linspace(0, 1, 100, dtype=np.float32)
    write_npy(work / "w.npy", values)
    mvc("add", "w.npy")
    mvc("commit", "-m", "a")
    values[10] += 0.5
    write_npy(work / "w.npy", values)
    data = json.loads(mvc("diff", "--json", "--stats").stdout)  # HEAD vs the working tree
    model = data["files"][0]["model"]
    assert [(t["name"], t["status"]) for t in model["tensors"]] == [("w", "modified")]
    assert model["tensors"][0]["stats"]["max_abs_diff"] == pytest.approx(0.5, abs=1e-6)


def test_text_output_collapses_unchanged_and_lists_them_with_all(mvc, work):
    commit_two(mvc, work, "model.safetensors", WRITERS["model.safetensors"])
    text = mvc("diff", "HEAD~1", "HEAD").stdout
    assert "tensors: 1 added, 1 deleted, 1 dtype, 1 shape, 1 modified, 1 unchanged" in text
    assert "unchanged keep" not in text.replace("  ", " ")
    assert "keep" in mvc("diff", "HEAD~1", "HEAD", "--all").stdout
    assert mvc("diff", "HEAD~1", "HEAD", "--exit-code", ok=False).exit_code == 1


def test_metadata_changes_are_shown(mvc, work):
    tensors = base_tensors()
    write_safetensors(work / "m.safetensors", tensors, metadata={"epoch": "1"})
    mvc("add", "m.safetensors")
    mvc("commit", "-m", "a")
    write_safetensors(work / "m.safetensors", tensors, metadata={"epoch": "2", "note": "x"})
    mvc("add", "m.safetensors")
    mvc("commit", "-m", "b")
    model = json.loads(mvc("diff", "HEAD~1", "HEAD", "--json").stdout)["files"][0]["model"]
    assert model["counts"]["unchanged"] == 5 and model["tensors"] == []
    assert model["metadata"] == [{"key": "epoch", "old": "1", "new": "2"},
                                 {"key": "note", "old": None, "new": "x"}]


def test_show_lists_tensors_of_a_stored_file(mvc, work):
    write_safetensors(work / "m.safetensors", base_tensors(), metadata={"epoch": "1"})
    (work / "notes.txt").write_text("hello\n")
    mvc("add", ".")
    mvc("commit", "-m", "a")
    shown = mvc.json("show", "HEAD:m.safetensors")
    assert shown["model"]["format"] == "safetensors"
    assert [(t["name"], t["dtype"], t["shape"], t["size"]) for t in shown["model"]["tensors"]] == [
        (name, "F32", list(a.shape), a.nbytes) for name, a in base_tensors().items()]
    plain = mvc.json("show", "HEAD:notes.txt")
    assert plain["model"] is None and plain["size"] == 6 and plain["chunk_count"] == 1
    result = mvc("show", "HEAD:nope.bin", ok=False)
    assert result.exit_code == 4
    assert result.stderr.startswith("error: path 'nope.bin' does not exist in HEAD")


def test_malicious_checkpoint_is_listed_and_never_run(mvc, work, tmp_path):
    marker = tmp_path / "pwned"
    write_malicious_torch_zip(work / "evil.pt", marker)
    added = mvc("add", "evil.pt")
    assert "warning: evil.pt:" in added.stderr and "posix.system" in added.stderr
    mvc("commit", "-m", "evil")
    shown = mvc.json("show", "HEAD:evil.pt")
    assert [t["name"] for t in shown["model"]["tensors"]] == ["weight"]
    assert any("posix.system" in w for w in shown["model"]["warnings"])
    text = mvc("show", "HEAD:evil.pt").stdout
    assert "warning:" in text and "posix.system" in text
    write_malicious_torch_zip(work / "evil.pt", marker)
    mvc("diff", "--json", "--stats")
    assert not marker.exists()


def test_diff_of_one_changed_tensor_reads_a_small_fraction(mvc, work):
    rng = np.random.default_rng(0)
    tensors = {f"layer{i}": rng.standard_normal((1024, 1024)).astype(np.float32) for i in range(12)}
    write_safetensors(work / "big.safetensors", tensors)
    mvc("add", "big.safetensors")
    mvc("commit", "-m", "a")
    tensors["layer5"] = tensors["layer5"] + 1
    write_safetensors(work / "big.safetensors", tensors)
    mvc("add", "big.safetensors")
    mvc("commit", "-m", "b")
    change = json.loads(mvc("diff", "HEAD~1", "HEAD", "--json").stdout)["files"][0]
    size = change["new_size"]
    assert [t["name"] for t in change["model"]["tensors"]] == ["layer5"]
    assert change["model"]["tensors"][0]["decided_by"] == "chunks"
    assert change["read_bytes"] < 0.05 * 2 * size  # headers only: the first chunk of each side
    with_stats = json.loads(mvc("diff", "HEAD~1", "HEAD", "--json", "--stats").stdout)["files"][0]
    assert with_stats["model"]["tensors"][0]["stats"]["max_abs_diff"] == pytest.approx(1.0, abs=1e-6)
    assert with_stats["read_bytes"] < 0.2 * 2 * size  # that tensor on both sides, plus headers
