"""Working files written from the chunks a fetch has just verified (modelvc/ops/filling.py): a
partial clone and a lazy checkout decode and hash each fetched chunk once, never read it back
from the store; the files are byte-identical, on a directory remote and on S3, full clones too;
a corrupt remote record leaves no working file, no directory made for one, nothing in the
store; a clone or checkout killed while the files fill is harmless and a re-run completes."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from conftest import Mvc
from synchelp import commit_file, new_repo, store_snapshot, write_model

from modelvc import api
from modelvc.fsutil import CRASH_ENV
from modelvc.store.backend import DirectoryBackend
from modelvc.store.packs import RECORD_HEADER, scan_pack
from tests.reliability.harness import KILLED, mvc_env

NESTED = "models/base/model.safetensors"


def push_versions(alice: Mvc, tmp_path: Path) -> dict[str, bytes]:
    """c1: a model at the top and one nested; c2: the top one with tensor 3 fine-tuned; c3: c1's
    with tensor 4 fine-tuned (its delta's base is c1's), the nested one removed. Pushed at once."""
    (alice.cwd / "models" / "base").mkdir(parents=True)
    write_model(alice.cwd / NESTED, seed=7)
    alice("add", NESTED)
    commit_file(alice, "model.safetensors", write_model(tmp_path / "v1", seed=1), "c1")
    commit_file(alice, "model.safetensors", write_model(tmp_path / "v2", seed=1, changed=3), "c2")
    alice("rm", NESTED)
    commit_file(alice, "model.safetensors", write_model(tmp_path / "v3", seed=1, changed=4), "c3")
    alice("push", "-q", "-u", "origin", "main")
    nested = write_model(tmp_path / "nested", seed=7)
    return {name: (tmp_path / name).read_bytes() for name in ("v1", "v2", "v3")} | {"nested": nested}


@pytest.fixture
def remote(tmp_path: Path) -> tuple[list[str], dict[str, bytes]]:
    path = tmp_path / "remote"
    path.mkdir()
    alice = new_repo(tmp_path / "alice")
    alice("remote", "add", "origin", str(path))
    return [str(path)], push_versions(alice, tmp_path)


def flip_a_record_of(remote: Path, alice: Path, rev_path: str) -> Path:
    """Flip a byte in the middle of the remote record of the last chunk of `rev_path` (REV:PATH as
    alice has it); returns the remote pack."""
    with api.Repo.open(alice) as repo:
        rev, _, path = rev_path.partition(":")
        manifest = repo.read_manifest(repo.tree_of(repo.resolve(rev)).as_map()[path].manifest_id)
    chunk_id = bytes.fromhex(manifest.chunks[-1][0])  # a tensor's (the first, the header, is shared)
    (pack,) = remote.glob("packs/pack-*.pack")
    records = {record[0]: record for record in scan_pack(DirectoryBackend(remote), pack.stem)}
    _, offset, payload_len, *_ = records[chunk_id]
    data = bytearray(pack.read_bytes())
    data[offset + RECORD_HEADER.size + payload_len // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    return pack


@pytest.mark.parametrize("kind", ["directory", "s3"])
def test_clones_partial_and_full_are_byte_identical(tmp_path, kind, request, monkeypatch):
    if kind == "directory":
        (tmp_path / "remote").mkdir()
        url = [str(tmp_path / "remote")]
    else:
        seaweedfs = request.getfixturevalue("seaweedfs")
        for name, value in seaweedfs.env.items():
            monkeypatch.setenv(name, value)
        url = [f"s3://{seaweedfs.extra['bucket']}/filling-{uuid.uuid4().hex[:12]}", "--endpoint",
               seaweedfs.endpoint, "--path-style"]
    alice = new_repo(tmp_path / "alice")
    alice("remote", "add", "origin", *url)
    versions = push_versions(alice, tmp_path)
    for how in (["--partial"], []):
        name = f"bob{len(how)}"
        Mvc(tmp_path)("clone", "-q", *how, *url, name)
        bob = Mvc(tmp_path / name)
        assert sorted(p.name for p in bob.cwd.iterdir()) == [".mvc", "model.safetensors"]
        assert (bob.cwd / "model.safetensors").read_bytes() == versions["v3"]
        assert bob.json("status")["clean"] is True
        # a full clone fills its files as a partial one does, then fetches the rest
        assert (bob.json("fsck")["on_remote"] is None) == (not how)
        bob("checkout", "-q", "HEAD~2")  # c1, with the nested model: a directory made, a lazy fetch
        assert (bob.cwd / "model.safetensors").read_bytes() == versions["v1"]
        assert (bob.cwd / NESTED).read_bytes() == versions["nested"]
        bob("checkout", "-q", "main~1")  # c2
        assert (bob.cwd / "model.safetensors").read_bytes() == versions["v2"]
        assert (bob.cwd / NESTED).read_bytes() == versions["nested"]
        bob("checkout", "-q", "main")
        assert not (bob.cwd / "models").exists()
        assert bob.json("status")["clean"] is True and bob("fsck").exit_code == 0


def test_fetched_chunks_are_never_read_back_from_the_store(tmp_path, remote, store_reads):
    """One decode and one hash per fetched chunk: the working file is written from the fetch,
    and only the chunks that were already local are read from the store."""
    url, versions = remote
    reads = store_reads
    with api.Repo.clone(url[0], tmp_path / "carol", partial=True) as carol:
        assert (tmp_path / "carol" / "model.safetensors").read_bytes() == versions["v3"]
        assert reads == []
        # c2 differs from c3 in tensors 3 and 4: the others come from the working file, tensor 4 from
        # the store (c1's, here as the base of c3's delta), tensor 3 from the remote
        moved = carol.checkout("HEAD~1")
        assert moved.move.fetched is not None and moved.move.fetched.chunks > 0
        assert (tmp_path / "carol" / "model.safetensors").read_bytes() == versions["v2"]
        fetched_ids = set(reads)
        assert reads and len(fetched_ids) == len(reads)
        assert carol.fsck().ok


def test_a_flipped_byte_during_a_partial_clone_leaves_nothing(tmp_path, remote):
    url, _ = remote
    pack = flip_a_record_of(Path(url[0]), tmp_path / "alice", "main:model.safetensors")
    failed = Mvc(tmp_path)("clone", "--partial", url[0], "bob", ok=False)
    assert failed.exit_code == 7
    assert f"in packs/{pack.name} on the remote {url[0]}" in failed.stderr and "is corrupt" in failed.stderr
    assert not (tmp_path / "bob").exists()
    (tmp_path / "empty").mkdir()
    assert Mvc(tmp_path)("clone", "--partial", url[0], "empty", ok=False).exit_code == 7
    assert list((tmp_path / "empty").iterdir()) == []


def test_a_flipped_byte_during_a_lazy_checkout_removes_the_directories_made_for_it(tmp_path, remote):
    url, versions = remote
    Mvc(tmp_path)("clone", "-q", "--partial", url[0], "bob")
    bob = Mvc(tmp_path / "bob")
    pack = flip_a_record_of(Path(url[0]), tmp_path / "alice", f"main~2:{NESTED}")
    before = store_snapshot(bob.cwd)
    index = (bob.cwd / ".mvc" / "index").read_bytes()
    failed = bob("checkout", "HEAD~2", ok=False)
    assert failed.exit_code == 7 and f"packs/{pack.name}" in failed.stderr
    assert sorted(p.name for p in bob.cwd.iterdir()) == [".mvc", "model.safetensors"]
    assert (bob.cwd / "model.safetensors").read_bytes() == versions["v3"]
    assert store_snapshot(bob.cwd) == before and (bob.cwd / ".mvc" / "index").read_bytes() == index


def run_mvc(cwd: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = mvc_env(**({CRASH_ENV: crash_at} if crash_at else {}))
    return subprocess.run([sys.executable, "-m", "modelvc", "-C", str(cwd), *args], capture_output=True, text=True,
                          env=env, timeout=120)


def temporary_files(root: Path) -> list[Path]:
    """Temporary files in the working tree (outside .mvc)."""
    return [path for path in root.rglob("*") if ".mvc-tmp-" in path.name and path.relative_to(root).parts[0] != ".mvc"]


def test_a_checkout_killed_while_its_files_fill_then_run_again(tmp_path, remote):
    url, versions = remote
    Mvc(tmp_path)("clone", "-q", "--partial", url[0], "bob")
    bob = tmp_path / "bob"
    # the first pack sealed is the one of the fetched chunks, after every file was filled
    killed = run_mvc(bob, "checkout", "HEAD~2", crash_at="1:seal")
    assert killed.returncode == KILLED
    assert (bob / "model.safetensors").read_bytes() == versions["v3"]
    assert len(temporary_files(bob)) == 1  # the nested model, filled, never renamed (c1's top one is local)
    done = run_mvc(bob, "checkout", "HEAD~2")
    assert done.returncode == 0, done.stderr
    assert (bob / "model.safetensors").read_bytes() == versions["v1"]
    assert (bob / NESTED).read_bytes() == versions["nested"]
    assert temporary_files(bob) == []  # the killed run's were swept
    assert Mvc(bob)("fsck").exit_code == 0


def test_a_clone_killed_while_its_files_fill_then_run_again(tmp_path, remote):
    url, versions = remote
    # seals: the metadata objects' pack, then the fetched chunks' pack (the file is filled by then)
    killed = run_mvc(tmp_path, "clone", "--partial", url[0], "bob", crash_at="2:seal")
    assert killed.returncode == KILLED
    assert not (tmp_path / "bob" / "model.safetensors").exists() and len(temporary_files(tmp_path / "bob")) == 1
    assert run_mvc(tmp_path / "bob", "fsck").returncode == 0  # nothing corrupt was stored
    again = run_mvc(tmp_path, "clone", "--partial", url[0], "bob")
    assert again.returncode == 3 and "already exists" in again.stderr
    done = run_mvc(tmp_path / "bob", "checkout", "-b", "main", "origin/main")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "bob" / "model.safetensors").read_bytes() == versions["v3"]
    assert temporary_files(tmp_path / "bob") == []


def test_a_lazy_checkout_where_a_file_becomes_a_directory(tmp_path):
    """`x` is a model in c1 and a directory holding one in c2: the file in x/ cannot be started
    while the fetch runs (x is removed only after it), so it is written from the store after."""
    (tmp_path / "remote").mkdir()
    alice = new_repo(tmp_path / "alice")
    alice("remote", "add", "origin", str(tmp_path / "remote"))
    first = write_model(tmp_path / "first", seed=3)
    commit_file(alice, "x", first, "c1")
    alice("rm", "x")
    (alice.cwd / "x").mkdir()
    second = write_model(tmp_path / "second", seed=4)
    commit_file(alice, "x/model.safetensors", second, "c2")
    alice("branch", "first", "HEAD~1")
    alice("push", "-q", "origin", "main", "first")
    for start, then in (("main", "first"), ("first", "main")):
        Mvc(tmp_path)("clone", "-q", "--partial", "-b", start, str(tmp_path / "remote"), f"bob-{start}")
        bob = Mvc(tmp_path / f"bob-{start}")
        assert bob.json("checkout", f"origin/{then}")["fetched"]["chunk_count"] > 2
        if then == "first":
            assert (bob.cwd / "x").read_bytes() == first
        else:
            assert (bob.cwd / "x" / "model.safetensors").read_bytes() == second
        assert bob.json("status")["clean"] is True and bob("fsck").exit_code == 0
