"""Partial clone and lazy checkout through a directory remote: only the checked-out version's
chunks at clone, the others in one bulk plan when a checkout needs them, fsck telling "on the
remote" from "missing", fetch --all-data, and the rest of mvc working in a partial clone."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from conftest import Mvc
from synchelp import commit_file, new_repo, store_snapshot, write_model

from modelvc import api


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """Two versions of a model pushed one at a time (each in a pack of its own on the remote):
    v1, then v2 with other values in every tensor; and a small notes file in v1 only."""
    path = tmp_path / "remote"
    path.mkdir()
    alice = new_repo(tmp_path / "alice")
    alice("remote", "add", "origin", str(path))
    (alice.cwd / "notes.txt").write_bytes(b"epoch 1\n" * 100)
    alice("add", "notes.txt")
    commit_file(alice, "model.safetensors", write_model(alice.cwd / "model.safetensors", seed=1), "v1")
    alice("push", "-q", "-u", "origin", "main")
    alice("rm", "notes.txt")
    commit_file(alice, "model.safetensors", write_model(alice.cwd / "model.safetensors", seed=2), "v2")
    alice("push", "-q")
    return path


def v1(tmp_path: Path) -> bytes:
    return write_model(tmp_path / "v1.safetensors", seed=1)


def v2(tmp_path: Path) -> bytes:
    return write_model(tmp_path / "v2.safetensors", seed=2)


def partial_clone(tmp_path: Path, remote: Path, name: str = "bob") -> tuple[Mvc, dict]:
    cloned = Mvc(tmp_path).json("clone", "--partial", str(remote), name)
    return Mvc(tmp_path / name), cloned


def config_of(mvc: Mvc) -> dict:
    return json.loads((mvc.cwd / ".mvc" / "config").read_text())


def test_partial_clone_fetches_only_the_checked_out_version_then_checkout_fetches_in_one_plan(tmp_path, remote):
    full = Mvc(tmp_path).json("clone", str(remote), "full")
    bob, cloned = partial_clone(tmp_path, remote)
    assert cloned["partial"] is True and full["partial"] is False
    assert (bob.cwd / "model.safetensors").read_bytes() == v2(tmp_path)
    assert config_of(bob)["remote"]["origin"]["partial"] is True
    # v1's model shares nothing with v2's: about half of what a full clone receives
    assert cloned["received_bytes"] < 0.6 * full["received_bytes"]
    assert 0 < cloned["chunk_count"] < full["chunk_count"]
    checked_out = bob.json("checkout", "HEAD~1")
    fetched = checked_out["fetched"]
    # one listing of packs/, then one ranged read of v1's pack for all of its chunks
    assert fetched["remote"] == "origin" and fetched["request_count"] == 2
    assert fetched["chunk_count"] == full["chunk_count"] - cloned["chunk_count"] > 2
    assert (bob.cwd / "model.safetensors").read_bytes() == v1(tmp_path)
    assert (bob.cwd / "notes.txt").read_bytes() == b"epoch 1\n" * 100
    # back to v2, and to v1 again: everything is here now, nothing is fetched
    assert bob.json("checkout", "main")["fetched"] is None
    assert bob.json("checkout", "HEAD~1")["fetched"] is None
    assert bob("fsck").exit_code == 0


def test_fsck_tells_chunks_on_the_remote_from_missing_ones(tmp_path, remote):
    bob, _ = partial_clone(tmp_path, remote)
    full = Mvc(tmp_path).json("clone", str(remote), "full")
    checked = bob.json("fsck")
    assert checked["ok"] is True and checked["problems"] == []
    on_remote = checked["on_remote"]
    assert on_remote["remote"] == "origin"
    assert on_remote["chunk_count"] + checked["chunk_count"] == Mvc(tmp_path / "full").json("fsck")["chunk_count"]
    assert on_remote["chunk_count"] > 2 and full["partial"] is False
    text = bob("fsck")
    assert (f"note: {on_remote['chunk_count']} chunks are on the remote origin (a partial clone): checkout fetches "
            "them when it needs them, 'mvc fetch --all-data' fetches them all\n") in text.stdout
    # v1's pack gone from the remote: its chunks are missing for real
    for path in remote_pack_of(remote, v1_pack=True):
        path.unlink()
    broken = bob("fsck", "--json", ok=False)
    assert broken.exit_code == 7
    report = json.loads(broken.stdout)
    assert report["on_remote"]["chunk_count"] == 0
    assert {problem["kind"] for problem in report["problems"]} == {"missing"}
    assert len(report["problems"]) == on_remote["chunk_count"]
    before = store_snapshot(bob.cwd)
    failed = bob("checkout", "HEAD~1", ok=False)
    assert failed.exit_code == 7 and "is on neither the remote" in failed.stderr
    assert (bob.cwd / "model.safetensors").read_bytes() == v2(tmp_path) and not (bob.cwd / "notes.txt").exists()
    assert store_snapshot(bob.cwd) == before and bob.json("status")["branch"] == "main"


def remote_pack_of(remote: Path, v1_pack: bool) -> list[Path]:
    """The .pack and .idx of the first (v1) or second (v2) chunk pack pushed to the remote."""
    packs = sorted(remote.glob("packs/pack-*.pack"), key=lambda path: path.stat().st_mtime_ns)
    pack = packs[0 if v1_pack else 1]
    return [pack, pack.with_suffix(".idx")]


def test_fetch_all_data_completes_the_clone(tmp_path, remote):
    bob, _ = partial_clone(tmp_path, remote)
    on_remote = bob.json("fsck")["on_remote"]["chunk_count"]
    completed = bob.json("fetch", "--all-data")
    assert completed["chunk_count"] == on_remote and completed["partial"] is False
    assert "partial" not in config_of(bob)["remote"]["origin"]
    checked = bob.json("fsck")
    assert checked["ok"] is True and checked["on_remote"] is None
    # nothing is left to fetch: with the remote gone, v1 still checks out
    remote.rename(tmp_path / "elsewhere")
    assert bob.json("checkout", "HEAD~1")["fetched"] is None
    assert (bob.cwd / "model.safetensors").read_bytes() == v1(tmp_path)


def test_a_later_fetch_from_a_partial_remote_brings_metadata_only_and_pull_fetches_lazily(tmp_path, remote):
    bob, _ = partial_clone(tmp_path, remote)
    alice = Mvc(tmp_path / "alice")
    v3 = write_model(alice.cwd / "model.safetensors", seed=2, changed=3)
    commit_file(alice, "model.safetensors", v3, "v3")
    alice("push", "-q")
    fetched = bob.json("fetch")
    assert fetched["partial"] is True and fetched["object_count"] == 3 and fetched["chunk_count"] == 0
    pulled = bob.json("pull")
    assert pulled["fast_forward"] is True
    assert (bob.cwd / "model.safetensors").read_bytes() == v3
    assert bob("fsck").exit_code == 0


def test_commit_push_and_gc_in_a_partial_clone(tmp_path, remote):
    bob, _ = partial_clone(tmp_path, remote)
    # v3 changes one tensor of v2 (checked out: its delta bases are here)
    v3 = write_model(bob.cwd / "model.safetensors", seed=2, changed=3)
    bob("add", "model.safetensors")
    bob("commit", "-m", "v3")
    pushed = bob.json("push")
    assert pushed["refs"][0]["update"] == "fast-forward" and pushed["sent_bytes"] < 0.3 * len(v3)
    alice = Mvc(tmp_path / "alice")
    alice("pull", "-q")
    assert (alice.cwd / "model.safetensors").read_bytes() == v3
    on_remote = bob.json("fsck")["on_remote"]["chunk_count"]
    assert on_remote > 2
    collected = bob.json("gc", "--prune=now")
    assert collected["deleted_chunk_count"] == 0
    assert bob.json("fsck")["on_remote"]["chunk_count"] == on_remote
    bob("checkout", "main~2", "-q")
    assert (bob.cwd / "model.safetensors").read_bytes() == v1(tmp_path)


def test_a_flipped_byte_on_the_remote_during_lazy_checkout_writes_nothing(tmp_path, remote):
    bob, _ = partial_clone(tmp_path, remote)
    pack = remote_pack_of(remote, v1_pack=True)[0]
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    before = store_snapshot(bob.cwd)
    index = (bob.cwd / ".mvc" / "index").read_bytes()
    failed = bob("checkout", "HEAD~1", ok=False)
    assert failed.exit_code == 7
    assert f"in packs/{pack.name} on the remote {remote}" in failed.stderr and "is corrupt" in failed.stderr
    assert sorted(path.name for path in bob.cwd.iterdir()) == [".mvc", "model.safetensors"]
    assert (bob.cwd / "model.safetensors").read_bytes() == v2(tmp_path)
    assert store_snapshot(bob.cwd) == before and (bob.cwd / ".mvc" / "index").read_bytes() == index


def test_cat_and_show_of_a_version_not_fetched_fetch_it(tmp_path, remote):
    bob, _ = partial_clone(tmp_path, remote)
    out = tmp_path / "v1-out.safetensors"
    bob("cat", "HEAD~1:notes.txt", "-o", str(out))
    assert out.read_bytes() == b"epoch 1\n" * 100
    shown = bob.json("show", "HEAD~1:model.safetensors")
    assert shown["path"] == "model.safetensors"
    bob("cat", "HEAD~1:model.safetensors", "-o", str(out))
    assert out.read_bytes() == v1(tmp_path)


def test_the_api_clones_partially_and_completes(tmp_path, remote):
    with api.Repo.clone(str(remote), tmp_path / "carol", partial=True) as carol:
        assert carol.cloned is not None and carol.cloned.to_dict()["partial"] is True
        moved = carol.checkout("HEAD~1")
        assert moved.move.fetched is not None and moved.move.fetched.requests == 2
    with api.Repo.open(tmp_path / "carol") as carol:
        assert carol.promisor is not None and carol.fsck().on_remote == 0
        carol.checkout("main")
        assert carol.fetch(all_data=True).chunks == 0  # v1 and v2 both checked out already
        assert carol.promisor is None and not api.Repo.open(tmp_path / "carol").promisor


def test_partial_clone_and_lazy_checkout_on_s3(tmp_path, seaweedfs, monkeypatch):
    for name, value in seaweedfs.env.items():
        monkeypatch.setenv(name, value)
    url = [f"s3://{seaweedfs.extra['bucket']}/partial-{uuid.uuid4().hex[:12]}", "--endpoint", seaweedfs.endpoint,
           "--path-style"]
    alice = new_repo(tmp_path / "alice")
    alice("remote", "add", "origin", *url)
    commit_file(alice, "model.safetensors", v1(tmp_path), "v1")
    alice("push", "-q", "-u", "origin", "main")
    commit_file(alice, "model.safetensors", v2(tmp_path), "v2")
    alice("push", "-q")
    cloned = Mvc(tmp_path).json("clone", "--partial", *url, "bob")
    bob = Mvc(tmp_path / "bob")
    assert cloned["partial"] is True and (bob.cwd / "model.safetensors").read_bytes() == v2(tmp_path)
    assert bob.json("fsck")["on_remote"]["chunk_count"] > 2
    fetched = bob.json("checkout", "HEAD~1")["fetched"]
    assert fetched["request_count"] == 2 and fetched["chunk_count"] > 2
    assert (bob.cwd / "model.safetensors").read_bytes() == v1(tmp_path)
    assert bob.json("fsck")["on_remote"]["chunk_count"] == 0
