"""Delta-encoded versions through the repository: round trips, chain limits, gc and fsck."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modelvc.repo import Repo
from modelvc.samples import ModelShape, init_weights, nudge, write_safetensors
from modelvc.store.packs import pack_names

SHAPE = ModelShape(vocab=1024, d_model=512, layers=2, d_ff=1024)  # about 8 MB in bf16


def series(count: int, sigma: float = 1e-4) -> list[dict]:
    weights = [init_weights(SHAPE, seed=1)]
    for number in range(1, count):
        weights.append(nudge(weights[-1], list(weights[-1]), sigma, seed=100 + number))
    return weights


def set_config(work, **values) -> None:
    path = work / ".mvc" / "config"
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config))


def commit_series(mvc, work, versions, dtype="bf16") -> list[tuple[str, bytes]]:
    commits = []
    for number, weights in enumerate(versions):
        write_safetensors(work / "m.safetensors", weights, dtype)
        mvc("add", "m.safetensors")
        commits.append((mvc("commit", "-m", f"v{number}", "-q").stdout.strip(),
                        (work / "m.safetensors").read_bytes()))
    return commits


@pytest.mark.parametrize("dtype", ["bf16", "fp16", "fp32"])
def test_nudged_versions_are_stored_as_deltas_and_read_back_exactly(mvc, work, dtype):
    commits = commit_series(mvc, work, series(3), dtype)
    stats = mvc.json("stats")
    assert stats["delta_chunk_count"] > 0
    assert stats["delta_stored_bytes"] < 0.75 * stats["delta_raw_bytes"]
    for commit_id, data in commits:
        (work / "m.safetensors").unlink()
        mvc("checkout", "--force", commit_id, "--", "m.safetensors")
        assert (work / "m.safetensors").read_bytes() == data
    assert mvc.json("fsck", "--read-data")["ok"] is True


def test_a_delta_version_stores_less_than_half_of_a_full_one(mvc, work):
    set_config(work, delta_max_depth=8)
    versions = series(2)
    write_safetensors(work / "m.safetensors", versions[0])
    first = mvc.json("add", "m.safetensors")["stored_bytes"]
    mvc("commit", "-m", "v0")
    write_safetensors(work / "m.safetensors", versions[1])
    second = mvc.json("add", "m.safetensors")["stored_bytes"]
    assert second < 0.45 * first


def test_chains_stop_at_the_depth_limit(mvc, work):
    set_config(work, delta_max_depth=2)
    commits = commit_series(mvc, work, series(6))
    repo = Repo.discover(work)
    table = repo.chunks.index.entries()
    depths = [repo.chunks.chain_depth(row.tobytes()) for row in table["id"]]
    assert max(depths) == 2
    assert depths.count(0) > 0
    for commit_id, data in commits:
        mvc("checkout", "--force", commit_id)
        assert (work / "m.safetensors").read_bytes() == data


def test_no_deltas_when_disabled(mvc, work):
    set_config(work, delta_max_depth=0)
    commit_series(mvc, work, series(2))
    assert mvc.json("stats")["delta_chunk_count"] == 0


def test_gc_keeps_the_bases_of_live_deltas(mvc, work):
    versions = series(2)
    write_safetensors(work / "m.safetensors", versions[0])
    mvc("add", "m.safetensors")  # staged, never committed: unreachable once replaced
    write_safetensors(work / "m.safetensors", versions[1])
    mvc("add", "m.safetensors")  # stored as deltas against the staged version
    mvc("commit", "-m", "only v1")
    expected = (work / "m.safetensors").read_bytes()
    assert mvc.json("stats")["delta_chunk_count"] > 0
    mvc.json("gc", "--grace", "0")
    assert mvc.json("fsck", "--read-data")["ok"] is True
    (work / "m.safetensors").unlink()
    mvc("checkout", "--force", "HEAD")
    assert (work / "m.safetensors").read_bytes() == expected


def test_fsck_names_the_versions_a_missing_base_breaks(mvc, work):
    commits = commit_series(mvc, work, series(2))
    packs = work / ".mvc" / "packs"
    repo = Repo.discover(work)
    first_manifest = repo.read_manifest(repo.tree_of(repo.resolve(commits[0][0])).entries[0].manifest_id)
    first_chunks = {bytes.fromhex(c) for c, _ in first_manifest.chunks}
    # the pack holding the first version's chunks (each add writes its own pack)
    victim = next(name for name in pack_names(packs)
                  if any(repo.chunks.index.locate(c).pack == name for c in first_chunks))
    (packs / f"{victim}.idx").unlink()
    (packs / f"{victim}.pack").unlink()
    result = mvc("fsck", "--json", ok=False)
    assert result.exit_code == 7
    problems = json.loads(result.stdout)["problems"]
    base_missing = [p for p in problems if "the base of delta chunk" in p["detail"]]
    assert base_missing, problems
    broken_commits = {b["commit"][:10] for p in base_missing for b in p["breaks"] if b["commit"]}  # null: the index
    assert commits[1][0] in broken_commits
    (work / "m.safetensors").unlink()  # else checkout would find it intact and have nothing to read
    assert mvc("checkout", "--force", commits[1][0], ok=False).exit_code == 7


def test_fsck_detects_a_corrupt_base(mvc, work):
    commits = commit_series(mvc, work, series(2))
    repo = Repo.discover(work)
    table = repo.chunks.index.entries()
    bases = {row["base"].tobytes() for row in table if row["base"].tobytes() != bytes(32)}
    base = sorted(bases)[0]
    location = repo.chunks.index.locate(base)
    path = work / ".mvc" / "packs" / f"{location.pack}.pack"
    data = bytearray(path.read_bytes())
    data[location.payload_offset + location.payload_len // 2] ^= 0x10
    path.write_bytes(bytes(data))
    result = mvc("fsck", "--json", ok=False)
    assert result.exit_code == 7
    problems = json.loads(result.stdout)["problems"]
    objects = {p["id"] for p in problems}
    assert base.hex() in objects
    dependants = [row["id"].tobytes().hex() for row in table if row["base"].tobytes() == base]
    assert set(dependants) <= objects  # the deltas built on it fail their reconstruction too
    broken = {b["commit"][:10] for p in problems for b in p["breaks"] if b["commit"]}  # null: the index
    assert {commits[0][0], commits[1][0]} <= broken


def test_a_retrained_tensor_stops_trying_deltas_after_a_failed_block(mvc, work, monkeypatch):
    from modelvc.samples import retrain
    from modelvc.store import delta

    rng = np.random.default_rng(3)
    first = {"n": (0.02 * rng.standard_normal(1 << 20)).astype(np.float32),  # 2 blocks of 1 MiB in bf16
             "w": (0.02 * rng.standard_normal(6 << 20)).astype(np.float32)}  # 12 blocks
    write_safetensors(work / "m.safetensors", first)
    mvc("add", "m.safetensors")
    mvc("commit", "-m", "v0")
    second = retrain(nudge(first, ["n"], 1e-4, seed=4), ["w"], seed=5)
    write_safetensors(work / "m.safetensors", second)
    expected = (work / "m.safetensors").read_bytes()
    attempts = []
    real_encode = delta.encode_delta
    monkeypatch.setattr(delta, "encode_delta", lambda *args: attempts.append(1) or real_encode(*args))
    mvc("add", "m.safetensors")
    mvc("commit", "-m", "v1")
    # n's 2 blocks, then w: one failed try per 8 MiB batch it falls in (2), not one per block (12)
    assert len(attempts) == 4
    assert mvc.json("stats")["delta_chunk_count"] == 2
    (work / "m.safetensors").unlink()
    mvc("checkout", "--force", "HEAD")
    assert (work / "m.safetensors").read_bytes() == expected


def test_every_block_of_a_nudged_fp32_tensor_is_a_delta_when_smaller_than_plain(mvc, work, monkeypatch):
    from modelvc.store import codecs

    # fp32 nudges leave noisy low mantissa bytes: deltas store about 0.7 of raw, which is more
    # than a delta is accepted at at once but less than the plain 0.84, so each block must still
    # try it (only a delta that loses to the plain coding stops the tries for a tensor)
    rng = np.random.default_rng(6)
    first = {"w": (0.02 * rng.standard_normal(3 << 20)).astype(np.float32)}  # 12 blocks of 1 MiB
    write_safetensors(work / "m.safetensors", first, "fp32")
    mvc("add", "m.safetensors")
    mvc("commit", "-m", "v0")
    write_safetensors(work / "m.safetensors", nudge(first, ["w"], 1e-4, seed=7), "fp32")
    plain_codings = []
    real_encode = codecs.encode_chunk
    monkeypatch.setattr(codecs, "encode_chunk", lambda *args: plain_codings.append(1) or real_encode(*args))
    added = mvc.json("add", "m.safetensors")
    assert plain_codings == []  # each block's delta beat its base's plain coding at once
    stats = mvc.json("stats")
    assert stats["delta_chunk_count"] == 12
    assert 0.55 < stats["delta_stored_bytes"] / stats["delta_raw_bytes"] < 0.8
    assert added["stored_bytes"] < 0.8 * added["new_bytes"]


def test_every_version_of_a_series_at_the_default_depth_reads_back_and_a_flipped_delta_byte_is_caught(mvc, work):
    from modelvc.config import KEYS

    depth = KEYS["delta_max_depth"].default
    commits = commit_series(mvc, work, series(depth + 1))  # the newest at the end of a full chain
    repo = Repo.discover(work)
    newest = repo.read_manifest(repo.tree_of(repo.resolve(commits[-1][0])).entries[0].manifest_id)
    chains = {chunk_id: repo.chunks.chain_depth(bytes.fromhex(chunk_id)) for chunk_id, _ in newest.chunks}
    assert max(repo.chunks.chain_depth(row.tobytes()) for row in repo.chunks.index.entries()["id"]) == depth
    for commit_id, data in commits:
        mvc("checkout", "--force", commit_id)
        assert (work / "m.safetensors").read_bytes() == data
    assert mvc.json("fsck", "--read-data")["ok"] is True

    delta = next(bytes.fromhex(chunk_id) for chunk_id, chain in chains.items() if chain == depth)
    location = repo.chunks.index.locate(delta)
    path = work / ".mvc" / "packs" / f"{location.pack}.pack"
    data = bytearray(path.read_bytes())
    data[location.payload_offset + location.payload_len // 2] ^= 0x01
    path.write_bytes(bytes(data))
    mvc("checkout", "--force", commits[0][0])
    result = mvc("checkout", "--force", commits[-1][0], ok=False)
    assert result.exit_code == 7
    assert (work / "m.safetensors").read_bytes() == commits[0][1]  # the file in place is left whole
    result = mvc("fsck", "--read-data", "--json", ok=False)
    assert result.exit_code == 7
    assert delta.hex() in {problem["id"] for problem in json.loads(result.stdout)["problems"]}
