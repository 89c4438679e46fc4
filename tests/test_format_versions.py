"""Format 3 (model-aware chunking, byte planes, metadata packs) is what init makes; format 1 and 2
repos still work, and gc upgrades format 2 to 3."""

from __future__ import annotations

import json

from conftest import Mvc

from modelvc.repo import Repo
from modelvc.samples import ModelShape, init_weights, write_safetensors

SHAPE = ModelShape(vocab=1024, d_model=256, layers=2, d_ff=512)


def make_model(path, seed=0, metadata=None):
    return write_safetensors(path, init_weights(SHAPE, seed), "bf16", metadata or {"v": "1"})


def test_init_writes_format_3_with_its_chunking_parameters(mvc, work):
    config = json.loads((work / ".mvc" / "config").read_text())
    assert config["format_version"] == 3
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


def metadata_files(work) -> list[str]:
    """The metadata packs and their indexes."""
    return sorted(p.name for p in (work / ".mvc" / "packs").glob("meta-*"))


def loose_files(work) -> list[str]:
    return sorted(p.name for p in (work / ".mvc" / "objects").glob("*/*"))


def make_files(work, tag: str) -> dict[str, bytes]:
    files = {f"f{n}.txt": f"{tag} {n}\n".encode() for n in range(5)}
    for path, data in files.items():
        (work / path).write_bytes(data)
    return files


def test_format_2_writes_loose_objects_and_gc_upgrades_it_to_3(work):
    Repo.init(work, format_version=2).close()
    mvc = Mvc(work)
    first = make_files(work, "v1")
    mvc("add", ".")
    mvc("commit", "-m", "v1")
    assert (metadata_files(work), len(loose_files(work))) == ([], 7)  # as format 2 modelvc writes
    v1 = mvc.json("log")[0]["id"]
    make_files(work, "v2")
    mvc("commit", "-a", "-m", "v2")
    result = mvc.json("gc", "--grace", "0")
    assert result["upgraded_format_version"] == 3
    assert json.loads((work / ".mvc" / "config").read_text())["format_version"] == 3
    assert (loose_files(work), len(metadata_files(work))) == ([], 2)  # one pack and its index
    mvc("checkout", v1)
    assert {path: (work / path).read_bytes() for path in first} == first
    assert mvc.json("fsck")["ok"] is True
    assert mvc.json("gc", "--grace", "0")["upgraded_format_version"] is None


def test_format_1_keeps_loose_objects_through_gc(work):
    Repo.init(work, format_version=1).close()
    mvc = Mvc(work)
    make_files(work, "v1")
    mvc("add", ".")
    mvc("commit", "-m", "v1")
    assert mvc.json("gc", "--grace", "0")["upgraded_format_version"] is None
    assert (metadata_files(work), len(loose_files(work))) == ([], 7)
    assert json.loads((work / ".mvc" / "config").read_text())["format_version"] == 1
