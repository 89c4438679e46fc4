"""Deltas across paths: a checkpoint saved under a new name each time is delta-coded against the
most recent stored version with the same tensor layout, wherever that lives."""

from __future__ import annotations

import json

import numpy as np
from conftest import Mvc
from modelfiles import write_gguf, write_torch_zip

from modelvc.repo import Repo
from modelvc.samples import ModelShape, init_weights, nudge, write_safetensors

SHAPE = ModelShape(vocab=512, d_model=256, layers=2, d_ff=512)  # about 2.6 MB in bf16


def series(count: int, shape: ModelShape = SHAPE) -> list[dict[str, np.ndarray]]:
    weights = [init_weights(shape, seed=1)]
    for number in range(1, count):
        weights.append(nudge(weights[-1], list(weights[-1]), 1e-4, seed=100 + number))
    return weights


def store_each(mvc, work, versions, path_of) -> list[tuple[str, str, int]]:
    """Write version N at path_of(N), add and commit it: (commit id, path, stored bytes) each."""
    done = []
    for number, weights in enumerate(versions):
        path = path_of(number)
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        write_safetensors(work / path, weights)
        stored = mvc.json("add", path)["stored_bytes"]
        done.append((mvc("commit", "-q", "-m", f"v{number}").stdout.strip(), path, stored))
    return done


def test_a_renamed_series_stores_about_what_the_same_series_in_place_does(mvc, work, tmp_path):
    versions = series(3)
    renamed = store_each(mvc, work, versions, lambda n: f"ckpt/step_{(n + 1) * 1000}.safetensors")
    (tmp_path / "in-place").mkdir()
    in_place_mvc = Mvc(tmp_path / "in-place")
    in_place_mvc("init")
    in_place = store_each(in_place_mvc, tmp_path / "in-place", versions, lambda n: "model.safetensors")
    assert renamed[0][2] == in_place[0][2]
    for (_, _, stored), (_, _, stored_in_place) in zip(renamed[1:], in_place[1:], strict=True):
        assert stored < 0.6 * renamed[0][2]
        assert stored <= 1.05 * stored_in_place


def test_every_renamed_version_checks_out_byte_identical_and_fsck_is_clean(mvc, work):
    versions = series(3)
    commits = store_each(mvc, work, versions, lambda n: f"checkpoint-{(n + 1) * 500}/model.safetensors")
    expected = {path: (work / path).read_bytes() for _, path, _ in commits}
    for commit_id, path, _ in commits:
        (work / path).unlink()
        mvc("checkout", "--force", commit_id, "--", path)
        assert (work / path).read_bytes() == expected[path]
    assert mvc.json("fsck", "--read-data")["ok"] is True


def test_gc_keeps_a_cross_path_base_whose_path_is_deleted(mvc, work):
    versions = series(2)
    (_, old, _), (_, new, stored) = store_each(mvc, work, versions, lambda n: f"ckpt/step_{n}.safetensors")
    assert stored < 0.6 * (work / new).stat().st_size
    data = (work / new).read_bytes()
    mvc("rm", old)
    mvc("commit", "-q", "-m", "drop the old checkpoint")
    mvc("gc", "--prune=now")
    (work / new).unlink()
    mvc("checkout", "--force", "HEAD", "--", new)
    assert (work / new).read_bytes() == data
    assert mvc.json("fsck", "--read-data")["ok"] is True


def test_a_file_of_another_layout_gets_no_cross_path_base(mvc, work):
    store_each(mvc, work, series(1), lambda n: "a.safetensors")
    other = {f"renamed.{name}": values for name, values in nudge(series(1)[0], list(series(1)[0]), 1e-4, 7).items()}
    write_safetensors(work / "b.safetensors", other)
    added = mvc.json("add", "b.safetensors")
    assert added["stored_bytes"] > 0.6 * (work / "b.safetensors").stat().st_size
    assert mvc.json("stats")["delta_chunk_count"] == 0


def test_a_damaged_or_missing_layout_index_only_costs_compression(mvc, work):
    versions = series(3)
    store_each(mvc, work, versions[:1], lambda n: "v0.safetensors")
    layouts = work / ".mvc" / "layouts"
    assert json.loads(layouts.read_text())["version"] == 1
    layouts.write_bytes(b"\0not json")
    write_safetensors(work / "v1.safetensors", versions[1])
    stored = mvc.json("add", "v1.safetensors")["stored_bytes"]
    assert stored > 0.6 * (work / "v1.safetensors").stat().st_size
    assert json.loads(layouts.read_text())["version"] == 1  # rewritten by the add
    layouts.unlink()
    write_safetensors(work / "v2.safetensors", versions[2])
    mvc("add", "v2.safetensors")
    assert layouts.exists()


def test_a_pytorch_zip_checkpoint_under_a_new_name_takes_deltas(mvc, work):
    versions = series(2)
    write_torch_zip(work / "epoch_1.pt", {"state_dict": versions[0]})
    first = mvc.json("add", "epoch_1.pt")["stored_bytes"]
    mvc("commit", "-q", "-m", "epoch 1")
    write_torch_zip(work / "epoch_2.pt", {"state_dict": versions[1]})
    second = mvc.json("add", "epoch_2.pt")["stored_bytes"]
    assert second < 0.8 * first  # float32: nudges delta at about 0.62 of raw, planes at 0.84
    assert mvc.json("stats")["delta_chunk_count"] > 0
    data = (work / "epoch_2.pt").read_bytes()
    mvc("commit", "-q", "-m", "epoch 2")
    (work / "epoch_2.pt").unlink()
    mvc("checkout", "--force", "HEAD", "--", "epoch_2.pt")
    assert (work / "epoch_2.pt").read_bytes() == data


def test_a_gguf_under_a_new_name_takes_deltas(mvc, work):
    versions = series(2)
    write_gguf(work / "model-1.gguf", versions[0], {"general.architecture": "llama"})
    first = mvc.json("add", "model-1.gguf")["stored_bytes"]
    mvc("commit", "-q", "-m", "one")
    write_gguf(work / "model-2.gguf", versions[1], {"general.architecture": "llama"})
    second = mvc.json("add", "model-2.gguf")["stored_bytes"]
    assert second < 0.8 * first  # float32, as above
    assert mvc.json("stats")["delta_chunk_count"] > 0
    assert mvc.json("fsck", "--read-data")["ok"] is True


def test_a_hint_naming_a_version_gc_removed_gives_no_base_and_no_error(mvc, work):
    versions = series(2)
    write_safetensors(work / "draft.safetensors", versions[0])
    mvc("add", "draft.safetensors")
    hinted = json.loads((work / ".mvc" / "layouts").read_text())["layouts"]
    assert [path for _, path in hinted.values()] == ["draft.safetensors"]
    mvc("rm", "--cached", "-f", "draft.safetensors")
    mvc("gc", "--prune=now")
    (manifest_id, _), = hinted.values()
    assert not Repo.discover(work).objects.has(manifest_id)
    write_safetensors(work / "final.safetensors", versions[1])
    stored = mvc.json("add", "final.safetensors")["stored_bytes"]
    assert stored > 0.6 * (work / "final.safetensors").stat().st_size
    assert mvc.json("stats")["delta_chunk_count"] == 0
