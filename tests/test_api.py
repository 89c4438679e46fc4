"""The Python API (modelvc.Repo): the same results as the CLI's --json, stored files read
back exactly, errors by type, readers never blocked by a writer."""

from __future__ import annotations

import io
import json
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
from conftest import Mvc, write
from modelfiles import TorchView, bf16_bytes, write_gguf, write_npz, write_safetensors, write_torch_zip
from test_cli_errors import flip_last_payload_byte

import modelvc
import modelvc.repo
from modelvc.errors import (
    IntegrityError,
    NotAModelFileError,
    NotARepositoryError,
    NothingToCommitError,
    PathNotFoundError,
    RepositoryExistsError,
    UnknownRevisionError,
    UnknownTensorError,
    UsageError,
)


def weights(seed: int, scale: float = 0.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    embed = rng.standard_normal((64, 32)).astype(np.float32)
    head = rng.standard_normal((32, 16)).astype(np.float32)
    nudge = np.random.default_rng(seed).standard_normal(embed.shape).astype(np.float32) * scale
    return {"embed": embed + nudge, "head": head, "step": np.array([seed], dtype=np.int64)}


@pytest.fixture
def fixed_clock(monkeypatch):
    """Both repositories commit at the same second, so equal content gives equal commit ids."""
    clock = types.SimpleNamespace(time=lambda: 1_700_000_000.0, monotonic=time.monotonic)
    monkeypatch.setattr(modelvc.repo, "time", clock)


@pytest.fixture
def pair(tmp_path, fixed_clock):
    """(API repo, CLI runner) on two empty repositories to be driven alike."""
    api_root, cli_root = tmp_path / "api", tmp_path / "cli"
    cli_root.mkdir()
    cli = Mvc(cli_root)
    cli("init")
    with modelvc.Repo.init(api_root, workers=2) as repo:
        yield repo, cli


def both(roots: tuple[Path, Path], name: str, data: bytes | None = None, tensors=None) -> None:
    for root in roots:
        if tensors is not None:
            write_safetensors(root / name, tensors)
        else:
            write(root / name, data)


def test_every_method_gives_the_cli_json(pair):
    repo, cli = pair
    roots = (repo.root, cli.cwd)
    both(roots, "model.safetensors", tensors=weights(1))
    both(roots, "notes.txt", b"epoch 1\n")

    assert repo.add("model.safetensors", "notes.txt").to_dict() == cli.json("add", "model.safetensors", "notes.txt")
    assert repo.status().to_dict() == cli.json("status")
    first = repo.commit("first", metrics={"loss": 1.5}, params={"lr": "0.001"})
    assert first.to_dict() == cli.json("commit", "-m", "first", "--metric", "loss=1.5", "--param", "lr=0.001")

    both(roots, "model.safetensors", tensors=weights(2, 1e-3))
    both(roots, "notes.txt", b"epoch 2\n")
    assert repo.status().to_dict() == cli.json("status")
    assert repo.status(untracked_files=False).to_dict() == cli.json("status", "-u", "no")
    assert repo.diff(stats=True).to_dict(all_tensors=False) == cli.json("diff", "--stats")
    second = repo.commit("second", {"loss": 1.25}, meta={"host": "a"}, all=True)
    assert second.to_dict() == cli.json("commit", "-a", "-m", "second", "--metric", "loss=1.25", "--meta", "host=a")
    assert second.id == cli.json("log", "-n", "1")[0]["id"]

    assert [e.to_dict() for e in repo.log()] == cli.json("log")
    assert [e.to_dict() for e in repo.log(max_count=1)] == cli.json("log", "-n", "1")
    assert [e.to_dict() for e in repo.log("HEAD~1..HEAD", paths=["notes.txt"])] == json.loads(
        cli("log", "--json", "HEAD~1..HEAD", "--", "notes.txt").stdout)
    assert repo.show().to_dict() == cli.json("show")
    assert repo.show("HEAD~1:model.safetensors").to_dict() == cli.json("show", "HEAD~1:model.safetensors")
    assert repo.diff("HEAD~1", "HEAD", stats=True).to_dict(all_tensors=False) == cli.json(
        "diff", "HEAD~1", "HEAD", "--stats")
    assert repo.diff("HEAD~1", "HEAD").to_dict() == cli.json("diff", "HEAD~1", "HEAD", "--all")
    assert repo.diff("HEAD~1", "HEAD", stat=True).to_dict() == cli.json("diff", "HEAD~1", "HEAD", "--stat")

    assert repo.tag("v1", "HEAD~1").to_dict() == cli.json("tag", "v1", "HEAD~1")
    assert repo.tag("v2", message="annotated").to_dict() == cli.json("tag", "v2", "-m", "annotated")
    assert [t.to_dict() for t in repo.tag()] == cli.json("tag")
    assert repo.branch("exp", "v1").to_dict() == cli.json("branch", "exp", "v1")
    assert [b.to_dict() for b in repo.branch()] == cli.json("branch")
    assert repo.checkout("exp").to_dict() == cli.json("checkout", "exp")
    assert repo.checkout("main", ["model.safetensors"]).to_dict() == json.loads(
        cli("checkout", "--json", "main", "--", "model.safetensors").stdout)
    assert repo.checkout(new_branch="side", force=True).to_dict() == cli.json("checkout", "-f", "-b", "side")
    assert repo.branch("side2", move=True).to_dict() == cli.json("branch", "-m", "side2")
    assert repo.checkout("main", force=True).to_dict() == cli.json("checkout", "-f", "main")
    assert repo.rollback().to_dict() == cli.json("rollback")
    assert repo.rollback("HEAD~1", hard=True).to_dict() == cli.json("rollback", "--hard", "HEAD~1")
    assert repo.branch("side2", delete=True, force_delete=True).to_dict()["name"] == "side2"
    cli("branch", "-D", "side2")
    assert repo.tag("v1", delete=True).name == "v1"
    cli("tag", "-d", "v1")

    assert repo.fsck().to_dict() == cli.json("fsck")
    assert repo.fsck(read_data=True).to_dict() == cli.json("fsck", "--read-data")
    assert repo.stats().to_dict() == cli.json("stats")
    assert repo.gc(prune="now").to_dict() == cli.json("gc", "--prune=now")
    assert repo.stats().to_dict() == cli.json("stats")


def test_files_methods_act_as_the_commands(pair):
    repo, cli = pair
    roots = (repo.root, cli.cwd)
    both(roots, "a.bin", b"a" * 1000)
    both(roots, "dir/b.bin", b"b" * 1000)
    repo.add("a.bin", repo.root / "dir")  # absolute paths inside the tree work too
    cli("add", "a.bin", "dir")
    repo.commit("files")
    cli("commit", "-m", "files")
    assert repo.mv("a.bin", destination="c.bin").moved == [("a.bin", "c.bin")]
    cli("mv", "a.bin", "c.bin")
    assert repo.rm("dir/b.bin", cached=True).removed == ["dir/b.bin"]
    cli("rm", "--cached", "dir/b.bin")
    assert repo.status().to_dict() == cli.json("status")
    assert repo.restore("dir/b.bin", staged=True).unstaged == ["dir/b.bin"]
    cli("restore", "--staged", "dir/b.bin")
    assert repo.status().to_dict() == cli.json("status")
    write(repo.root / "c.bin", b"edited")
    assert repo.checkout(paths=["c.bin"]).to_dict()["written"] == ["c.bin"]
    assert (repo.root / "c.bin").read_bytes() == b"a" * 1000


def test_open_repositories(tmp_path, monkeypatch):
    with modelvc.Repo.init(tmp_path / "r") as repo:
        assert isinstance(repo, modelvc.Repo)
        (tmp_path / "r" / "sub").mkdir()
        with modelvc.Repo.discover(tmp_path / "r" / "sub") as found:
            assert found.root == repo.root
        with modelvc.Repo.open(str(tmp_path / "r")) as opened:
            assert opened.root == repo.root and opened.log() == []
    with pytest.raises(NotARepositoryError) as raised:
        modelvc.Repo.open(tmp_path / "r" / "sub")  # exactly that directory: not a parent's
    assert raised.value.exit_code == 3
    with pytest.raises(RepositoryExistsError):
        modelvc.Repo.init(tmp_path / "r")


def test_errors_are_the_documented_classes(tmp_path):
    with modelvc.Repo.init(tmp_path, workers=1) as repo:
        write_safetensors(tmp_path / "m.safetensors", weights(1))
        write(tmp_path / "plain.txt", b"not a model")
        repo.add("m.safetensors", "plain.txt")
        with pytest.raises(UsageError) as raised:
            repo.commit("bad", metrics={"loss": "low"})
        assert (raised.value.exit_code, raised.value.message) == (2, "metric 'loss' is not a number: \"low\"")
        repo.commit("one")
        with pytest.raises(NothingToCommitError) as raised:
            repo.commit("again")
        assert raised.value.exit_code == 9
        with pytest.raises(UnknownRevisionError) as raised:
            repo.show("nope")
        assert raised.value.exit_code == 4
        with pytest.raises(PathNotFoundError) as raised:
            repo.open_file("HEAD", "missing.bin")
        assert raised.value.message == "path 'missing.bin' does not exist in HEAD"
        with pytest.raises(UnknownTensorError) as raised:
            repo.read_tensor("HEAD", "m.safetensors", "nope")
        assert (type(raised.value), raised.value.exit_code) == (UnknownTensorError, 4)
        assert raised.value.message == "'m.safetensors' in HEAD has no tensor 'nope' (3 tensors)"
        with pytest.raises(NotAModelFileError) as raised:
            repo.read_tensor("HEAD", "plain.txt", "embed")
        assert raised.value.message == "'plain.txt' in HEAD is not a model file modelvc reads tensors from"
        with pytest.raises(UsageError):
            repo.open_file("HEAD", tmp_path.parent / "elsewhere")


def test_open_file_streams_the_stored_bytes_and_detects_a_flipped_byte(tmp_path):
    payload = np.random.default_rng(3).bytes(3_000_000)  # incompressible: stored raw, several chunks
    with modelvc.Repo.init(tmp_path, workers=2) as repo:
        write(tmp_path / "ckpt" / "model.bin", payload)
        repo.add("ckpt")
        repo.commit("one")
        write(tmp_path / "ckpt" / "model.bin", b"working copy")  # not what is read
        with repo.open_file("HEAD", "ckpt/model.bin") as handle:
            assert handle.read() == payload
            assert handle.seek(-10, io.SEEK_END) == len(payload) - 10 and handle.read() == payload[-10:]
            handle.seek(1_500_000)
            buffer = bytearray(100_000)
            assert handle.readinto(buffer) == 100_000 and buffer == payload[1_500_000:1_600_000]
            assert handle.tell() == 1_600_000
            assert not handle.writable()
        with pytest.raises(ValueError):
            handle.read()  # closed
        with repo.open_file("HEAD", tmp_path / "ckpt" / "model.bin") as handle:
            assert handle.read(5) == payload[:5]
        assert (tmp_path / "ckpt" / "model.bin").read_bytes() == b"working copy"
        flip_last_payload_byte(tmp_path)
        with repo.open_file("HEAD", "ckpt/model.bin") as handle, pytest.raises(IntegrityError) as raised:
            handle.read()
        assert raised.value.exit_code == 7 and "do not match its id" in raised.value.message


def test_read_tensor_gives_the_tensor_written(tmp_path):
    rng = np.random.default_rng(5)
    matrix = rng.standard_normal((300, 200)).astype(np.float32)
    halves = rng.standard_normal((17, 3)).astype(np.float16)
    bf16 = rng.standard_normal((8, 4)).astype(np.float32)
    with modelvc.Repo.init(tmp_path, workers=2) as repo:
        write_safetensors(tmp_path / "m.safetensors", {"w": matrix, "h": halves,
                                                        "b": ("BF16", (8, 4), bf16_bytes(bf16))})
        write_gguf(tmp_path / "m.gguf", {"tok": matrix, "n": rng.integers(0, 9, (5, 6)).astype(np.int32)})
        write_npz(tmp_path / "m.npz", {"x": halves, "y": matrix.T}, compressed=True)
        base = np.arange(12, dtype=np.float32)
        write_torch_zip(tmp_path / "m.pt", {"sd": {"w": matrix, "t": TorchView(base, 0, (4, 3), (1, 4)),
                                                   "v": TorchView(base, 2, (2,), (2,))}})
        repo.add(".")
        repo.commit("models")
        for path in ("m.safetensors", "m.gguf", "m.npz", "m.pt"):
            (tmp_path / path).unlink()  # read from the store, not the working tree
        got = repo.read_tensor("HEAD", "m.safetensors", "w")
        assert got.dtype == np.float32 and np.array_equal(got, matrix)
        assert np.array_equal(repo.read_tensor("HEAD", "m.safetensors", "h"), halves)
        expected_bf16 = (np.frombuffer(bf16_bytes(bf16), "<u2").astype(np.uint32) << 16).view("<f4").reshape(8, 4)
        assert np.array_equal(repo.read_tensor("HEAD", "m.safetensors", "b"), expected_bf16)
        assert np.array_equal(repo.read_tensor("HEAD", "m.gguf", "tok"), matrix)
        assert repo.read_tensor("HEAD", "m.gguf", "n").shape == (5, 6)
        assert np.array_equal(repo.read_tensor("HEAD", "m.npz", "x"), halves)
        assert np.array_equal(repo.read_tensor("HEAD", "m.npz", "y"), matrix.T)
        assert np.array_equal(repo.read_tensor("HEAD", "m.pt", "sd.w"), matrix)
        assert np.array_equal(repo.read_tensor("HEAD", "m.pt", "sd.t"), base.reshape(3, 4).T)
        assert np.array_equal(repo.read_tensor("HEAD", "m.pt", "sd.v"), [2.0, 4.0])


def test_read_tensor_reads_only_its_chunks(tmp_path):
    from modelvc.storedfile import stored_source, tensor_from_source

    big = {f"layer{i}": np.random.default_rng(i).standard_normal((512, 1024)).astype(np.float32) for i in range(8)}
    with modelvc.Repo.init(tmp_path, workers=2) as repo:
        write_safetensors(tmp_path / "m.safetensors", big)
        repo.add("m.safetensors")
        repo.commit("big")
        source, path = stored_source(repo, "HEAD", "m.safetensors")
        array = tensor_from_source(source, path, "HEAD", "layer5")
        assert np.array_equal(array, big["layer5"])
        tensor_bytes = big["layer5"].nbytes
        assert tensor_bytes <= source.bytes_read < 2 * tensor_bytes < source.size / 3  # its chunks, and the header's


def test_readers_are_never_blocked_by_a_writer(tmp_path):
    with modelvc.Repo.init(tmp_path, workers=2, lock_timeout=0) as repo:
        write_safetensors(tmp_path / "m.safetensors", weights(1))
        repo.add("m.safetensors")
        first = repo.commit("step 0").id
        expected = (tmp_path / "m.safetensors").read_bytes()
        done, failures, reads = threading.Event(), [], [0]

        def reader():
            try:
                while not done.is_set() or reads[0] < 4:
                    with repo.open_file(first, "m.safetensors") as handle:
                        assert handle.read() == expected
                    assert repo.log()[-1].id == first
                    assert np.array_equal(repo.read_tensor(first, "m.safetensors", "head"), weights(1)["head"])
                    reads[0] += 1
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                failures.append(exc)

        with repo.transaction():  # the writer lock is held: a reader that took it would fail now
            threads = [threading.Thread(target=reader) for _ in range(2)]
            for thread in threads:
                thread.start()
            for step in range(1, 4):
                write_safetensors(tmp_path / "m.safetensors", weights(1, 1e-3 * step))
                repo.commit(f"step {step}", metrics={"step": step}, all=True)
            done.set()
            for thread in threads:
                thread.join()
        assert failures == []
        assert reads[0] >= 4
        assert [e.commit.message for e in repo.log()] == ["step 3", "step 2", "step 1", "step 0"]


def test_the_api_leaves_the_process_alone(tmp_path):
    import os
    import signal

    before = (os.getcwd(), dict(os.environ), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    with modelvc.Repo.init(tmp_path, workers=1) as repo:
        write(tmp_path / "a.bin", b"x" * 100)
        repo.add("a.bin")
        repo.commit("one")
        repo.checkout(new_branch="b")
    after = (os.getcwd(), dict(os.environ), signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    assert after == before


def test_outside_git_a_commit_starts_no_git_process(tmp_path, monkeypatch):
    import os
    import shutil

    fake_bin = tmp_path / "bin"
    called = tmp_path / "git-was-run"
    write(fake_bin / "git", f"#!/bin/sh\ntouch {called}\nexit 1\n".encode(), executable=True)
    monkeypatch.setenv("PATH", f"{fake_bin}{os.pathsep}{os.environ['PATH']}")
    with modelvc.Repo.init(tmp_path / "run", workers=1) as repo:
        write(repo.root / "a.bin", b"x" * 100)
        repo.add("a.bin")
        assert repo.commit("one").commit.git is None
    assert not called.exists()
    (tmp_path / "run" / ".git").mkdir()  # a .git beside it: now git is asked
    from modelvc.gitinfo import work_tree_root

    assert work_tree_root(tmp_path / "run") is None and called.exists()
    assert shutil.which("git") == str(fake_bin / "git")
