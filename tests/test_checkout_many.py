"""Checkout of many files: small ones written in batches per directory, byte for byte, safely.

The trees span nested directories with empty, small and multi-chunk files, executable modes
and symbolic links, so both the batched path (modelvc/ops/batchwrite.py) and the one-by-one
path of modelvc/ops/materialize.py are taken in one move.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import Mvc, random_bytes

from modelvc.repo import Repo
from tests.reliability.harness import KILLED, run

BIG = random_bytes(3_000_000, seed=99)  # several chunks: written by write_file, not in a batch


def directory_of(number: int) -> str:
    return ["a", "b", "a/deep", "a/deep/er", "c d", "e"][number % 6]


def version(number: int) -> dict[str, tuple[bytes | str, int]]:
    """path -> (bytes, or a link's target; st_mode bits) of version 1 or 2."""
    files: dict[str, tuple[bytes | str, int]] = {}
    for i in range(150):
        changed = number == 2 and i % 5 == 0
        if number == 2 and i % 10 == 1:
            continue  # removed in v2
        data = random_bytes((i * 37) % 9000, seed=1000 * (number if changed else 1) + i)
        mode = 0o755 if (i % 7 == 0) != (number == 2 and i % 14 == 0) else 0o644
        files[f"{directory_of(i)}/f{i:03d}.bin"] = (data, mode)
    if number == 2:
        for i in range(20):
            files[f"new/sub{i % 3}/n{i:02d}.bin"] = (random_bytes(100 + i, seed=5000 + i), 0o644)
    else:
        files["only1/gone.bin"] = (b"only in v1", 0o644)
    files["a/big.bin"] = (BIG if number == 1 else BIG[:1_000_000] + b"v2" + BIG[1_000_002:], 0o644)
    files["b/link"] = ("../a/f000.bin" if number == 1 else "deep/elsewhere", 0)
    return files


def lay_out(work: Path, files: dict[str, tuple[bytes | str, int]]) -> None:
    for path, (data, mode) in files.items():
        target = work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            target.symlink_to(data)
        else:
            target.write_bytes(data)
            os.chmod(target, mode)


def on_disk(work: Path) -> dict[str, tuple[bytes | str, int]]:
    """Every working file and link (no .mvc), as version() gives them; temp files included."""
    found: dict[str, tuple[bytes | str, int]] = {}
    for directory, dirnames, names in os.walk(work):
        dirnames[:] = [d for d in dirnames if d != ".mvc"]
        for name in names:
            full = Path(directory, name)
            path = full.relative_to(work).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                found[path] = (os.readlink(full), 0)
            else:
                found[path] = (full.read_bytes(), stat.S_IMODE(st.st_mode))
    return found


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """v1 and v2 committed (HEAD at v2, tagged v1): the working tree holds v2. Built once."""
    work = tmp_path_factory.mktemp("many") / "work"
    work.mkdir()
    mvc = Mvc(work)
    mvc("init")
    lay_out(work, version(1))
    mvc("add", ".")
    mvc("commit", "-m", "v1")
    mvc("tag", "v1")
    for path in set(version(1)) - set(version(2)):
        (work / path).unlink()
    (work / "only1").rmdir()
    for path in version(2):
        if (work / path).is_symlink():
            (work / path).unlink()
    lay_out(work, version(2))
    mvc("add", ".")
    mvc("commit", "-m", "v2")
    return work


@pytest.fixture
def work(template, tmp_path) -> Path:
    copy = tmp_path / "work"
    shutil.copytree(template, copy, symlinks=True)
    return copy


@pytest.fixture
def mvc(work) -> Mvc:
    return Mvc(work)


@pytest.fixture
def versions() -> dict[str, dict]:
    return {"v1": version(1), "v2": version(2)}


def assert_index_matches_disk(work: Path) -> None:
    """Each index entry caches the lstat of the file it wrote: nothing is re-hashed by status."""
    repo = Repo.discover(work)
    for path, entry in repo.index.entries.items():
        st = os.lstat(work / path)
        assert (entry.ino, entry.mtime_ns, entry.size) == (st.st_ino, st.st_mtime_ns, st.st_size), path


def test_switching_between_many_files_is_byte_identical(mvc, work, versions):
    for name in ("v1", "main", "v1"):
        moved = mvc.json("checkout", name)
        expected = versions["v1" if name == "v1" else "v2"]
        assert on_disk(work) == expected
        assert not any(work.rglob("*.mvc-tmp-*"))
        assert_index_matches_disk(work)
        status = mvc.json("status")
        assert not status["staged"] and not status["unstaged"] and not status["untracked"], status
    assert sorted(moved["written"]) == moved["written"]
    assert set(moved["deleted"]) == set(versions["v2"]) - set(versions["v1"])


def test_paths_the_move_leaves_alone_keep_their_local_changes(mvc, work, versions):
    """A path the same in both versions is looked at only by its lstat, and a change there is kept."""
    mvc("status")  # the copied tree's new inodes are hashed once
    (work / "e/f017.bin").write_bytes(b"edited")
    (work / "c d/f004.bin").unlink()
    moved = mvc.json("checkout", "v1")
    assert moved["kept_local"] == ["c d/f004.bin", "e/f017.bin"]
    assert (work / "e/f017.bin").read_bytes() == b"edited"
    assert not (work / "c d/f004.bin").exists()
    assert "e/f017.bin" not in moved["written"] and "c d/f004.bin" not in moved["written"]
    status = mvc.json("status")
    assert sorted(e["path"] for e in status["unstaged"]) == ["c d/f004.bin", "e/f017.bin"], status


def test_checkout_into_an_empty_place_writes_every_file(mvc, work, versions):
    for entry in work.iterdir():
        if entry.name != ".mvc":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    moved = mvc.json("checkout", "--force", "HEAD")
    assert on_disk(work) == versions["v2"]
    assert sorted(moved["written"]) == sorted(versions["v2"])
    assert_index_matches_disk(work)


def test_conflicts_are_refused_before_anything_is_written(mvc, work, versions):
    (work / "b/f025.bin").write_bytes(b"local work")  # v1 changes it
    (work / "only1").mkdir()
    (work / "only1/gone.bin").write_bytes(b"untracked, in the way")
    before = {p: (data, os.lstat(work / p).st_mtime_ns) for p, (data, _) in on_disk(work).items()}
    result = mvc("checkout", "v1", ok=False)
    assert result.exit_code == 5
    assert "would overwrite local changes in: b/f025.bin, only1/gone.bin" in result.stderr
    assert {p: (data, os.lstat(work / p).st_mtime_ns) for p, (data, _) in on_disk(work).items()} == before


def test_a_directory_in_the_way_of_a_small_file_stops_the_checkout(mvc, work, versions):
    (work / "only1/gone.bin").mkdir(parents=True)  # untracked: v1 writes a file there
    (work / "only1/gone.bin/mine").write_bytes(b"keep me")
    result = mvc("checkout", "v1", ok=False)
    assert result.exit_code == 5
    assert "cannot write only1/gone.bin: a directory is in the way" in result.stderr
    assert (work / "only1/gone.bin/mine").read_bytes() == b"keep me"
    assert not any(work.rglob("*.mvc-tmp-*"))
    shutil.rmtree(work / "only1")
    mvc("checkout", "v1")  # what was written before the stop is known to the index: no conflict
    assert on_disk(work) == versions["v1"]


def test_a_file_where_a_directory_is_needed_stops_the_checkout(mvc, work, versions):
    (work / "only1").write_bytes(b"untracked file")
    result = mvc("checkout", "v1", ok=False)
    assert result.exit_code == 5
    assert "a file is in the way: 'only1' is a file where only1/gone.bin needs a directory" in result.stderr
    assert (work / "only1").read_bytes() == b"untracked file"
    (work / "only1").unlink()
    mvc("checkout", "v1")
    assert on_disk(work) == versions["v1"]


def test_a_corrupt_chunk_of_a_small_file_leaves_its_working_file_as_it_was(mvc, work, versions):
    repo = Repo.discover(work)
    target = next(e for e in repo.tree_of(repo.resolve("v1")).entries if e.path == "b/f025.bin")
    (chunk_hex, _), = repo.read_manifest(target.manifest_id).chunks
    location = repo.chunks.index.locate(bytes.fromhex(chunk_hex))
    pack = work / ".mvc" / "packs" / f"{location.pack}.pack"
    data = bytearray(pack.read_bytes())
    data[location.payload_offset + location.payload_len // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    assert mvc("checkout", "v1", ok=False).exit_code == 7
    assert (work / "b/f025.bin").read_bytes() == versions["v2"]["b/f025.bin"][0]
    assert not any(work.rglob("*.mvc-tmp-*"))


@pytest.mark.parametrize("step", ["2:unlink", "30:rename", "50:rename"])
def test_a_checkout_killed_mid_way_loses_nothing_and_the_next_one_finishes(mvc, work, versions, step):
    """Each file holds its old or its new content (or is missing, between unlink and rename);
    the local change the move keeps is kept; the next checkout finishes without --force."""
    kept = b"local work the move keeps"
    (work / "e/f017.bin").write_bytes(kept)  # the same in v1 and v2
    assert run(work, "checkout", "v1", crash_at=step).returncode == KILLED
    now = {p: d for p, d in on_disk(work).items() if ".mvc-tmp-" not in p}
    assert now.pop("e/f017.bin")[0] == kept
    old, new = versions["v2"], versions["v1"]
    for path, (data, _) in now.items():
        assert data in (old.get(path, (None,))[0], new.get(path, (None,))[0]), f"{path} is torn"
    assert set(now) <= set(old) | set(new)
    assert run(work, "checkout", "v1").returncode == 0
    assert on_disk(work) == dict(new, **{"e/f017.bin": (kept, new["e/f017.bin"][1])})
    assert run(work, "fsck").returncode == 0
