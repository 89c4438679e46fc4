"""Format 2 (model-aware chunking, byte planes) is what init makes; format 1 repos still work."""

from __future__ import annotations

import json

from conftest import Mvc

from modelvc.repo import Repo
from modelvc.samples import ModelShape, init_weights, write_safetensors

SHAPE = ModelShape(vocab=1024, d_model=256, layers=2, d_ff=512)


def make_model(path, seed=0, metadata=None):
    return write_safetensors(path, init_weights(SHAPE, seed), "bf16", metadata or {"v": "1"})


def test_init_writes_format_2_with_its_chunking_parameters(mvc, work):
    config = json.loads((work / ".mvc" / "config").read_text())
    assert config["format_version"] == 2
    assert config["chunking"] == {"scheme": "mvc-model-1", "block_size": 1048576, "cdc_min": 65536,
                                  "cdc_avg": 262144, "cdc_max": 1048576, "small_tensor_merge": 262144}


def test_format_2_uses_byte_planes_and_dedups_a_header_change(mvc, work):
    make_model(work / "m.safetensors")
    mvc("add", "m.safetensors")
    mvc("commit", "-m", "one")
    assert mvc.json("stats")["chunk_count_by_codec"].get("planes", 0) > 0
    make_model(work / "m.safetensors", metadata={"v": "2", "note": "a longer header shifts every offset"})
    added = mvc.json("add", "m.safetensors")
    size = (work / "m.safetensors").stat().st_size
    assert added["new_bytes"] < 0.001 * size + 70_000  # only the header chunk(s)


def test_format_1_repository_still_reads_and_writes(work):
    Repo.init(work, format_version=1)
    mvc = Mvc(work)
    make_model(work / "m.safetensors")
    original = (work / "m.safetensors").read_bytes()
    mvc("add", "m.safetensors")
    mvc("commit", "-m", "v1 repo")
    config = json.loads((work / ".mvc" / "config").read_text())
    assert config["format_version"] == 1 and config["chunking"]["scheme"] == "fastcdc-1"
    assert set(mvc.json("stats")["chunk_count_by_codec"]) <= {"zstd", "none"}
    (work / "m.safetensors").unlink()
    mvc("checkout", "HEAD", "--", "m.safetensors")
    assert (work / "m.safetensors").read_bytes() == original
    assert mvc.json("fsck")["ok"] is True
