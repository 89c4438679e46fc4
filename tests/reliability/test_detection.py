"""Detection (issue 11, items 14-18): damage is found, typed, named, and never written out.

Each test damages a real repository the way a disk, a bug or a killed process would, then
checks the exact exit code and message, and that nothing wrong reached the working tree.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard
from conftest import index_as_json, random_bytes, write

from modelvc.errors import (
    CorruptChunkError,
    CorruptIndexError,
    CorruptObjectError,
    CorruptRefError,
    IntegrityError,
    MissingChunkError,
    MissingObjectError,
)
from modelvc.ids import hash_bytes
from modelvc.objects import Commit, Manifest, Tree, TreeEntry, canonical_json
from modelvc.repo import Repo
from modelvc.samples import ModelShape, init_weights, nudge, write_safetensors
from modelvc.store.packs import RECORD_HEADER, pack_names

SMALL_MODEL = ModelShape(vocab=512, d_model=256, layers=1, d_ff=512)  # 1.8 MB in bf16: deltas, fast
BASE_FIELD = RECORD_HEADER.size - 32  # the base id is the last field of a record header
ID_FIELD = BASE_FIELD - 32


def commit_version(mvc, work: Path, data: bytes, name: str = "w.bin", message: str = "v") -> str:
    write(work / name, data)
    mvc("add", name)
    mvc("commit", "-m", message, "-q")
    return Repo(work).head_commit()


def object_path(work: Path, object_id: str) -> Path:
    return work / ".mvc" / "objects" / object_id[:2] / object_id[2:]


def store_raw_object(work: Path, canonical: bytes) -> str:
    """Store bytes as an object under their own id, bypassing every check a writer makes."""
    object_id = hash_bytes(canonical)
    path = object_path(work, object_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(zstandard.ZstdCompressor().compress(canonical))
    return object_id


def branch_at_tree(repo: Repo, entries: tuple[TreeEntry, ...], branch: str) -> str:
    """A commit of `entries` on top of HEAD, on a new branch; its id."""
    tree_id = repo.objects.put(Tree(entries))
    commit_id = repo.objects.put(Commit(tree_id, (repo.head_commit(),), repo.signature_now(), "damaged"))
    repo.refs.update(f"refs/heads/{branch}", commit_id, None, "test: a damaged version")
    return commit_id


def temp_leftovers(work: Path) -> list[str]:
    mvc_dir = work / ".mvc"
    return sorted(str(p.relative_to(mvc_dir)) for p in mvc_dir.rglob(".*.tmp"))


def fsck_problems(mvc, *args: str) -> list[dict]:
    result = mvc("fsck", "--json", *args, ok=False)
    assert result.exit_code == 7, result.stdout
    return json.loads(result.stdout)["problems"]


# ---------------------------------------------------------------- typed integrity errors


def test_each_integrity_error_has_its_type_and_keeps_exit_7(mvc, work):
    commit_version(mvc, work, random_bytes(5000, seed=1))
    repo = Repo(work)
    entry = repo.tree_of(repo.head_commit()).entries[0]
    chunk_id = bytes.fromhex(repo.read_manifest(entry.manifest_id).chunks[0][0])
    classes = (MissingObjectError, CorruptObjectError, MissingChunkError, CorruptChunkError,
               CorruptRefError, CorruptIndexError)
    assert all(issubclass(c, IntegrityError) and c.exit_code == 7 for c in classes)

    with pytest.raises(MissingObjectError, match="^object ababababab is missing from the store$"):
        repo.objects.get("ab" * 32)
    object_path(work, entry.manifest_id).write_bytes(zstandard.ZstdCompressor().compress(b"{}"))
    with pytest.raises(CorruptObjectError, match="is corrupt: its content does not match its id$"):
        repo.objects.read_verified(entry.manifest_id)
    with pytest.raises(MissingChunkError, match="^chunk 0000000000 is missing from the store$"):
        repo.chunks.read(bytes(32))
    location = repo.chunks.locate(chunk_id)
    pack = work / ".mvc" / "packs" / f"{location.pack}.pack"
    data = bytearray(pack.read_bytes())
    data[location.payload_offset] ^= 0x01
    pack.write_bytes(bytes(data))
    with pytest.raises(CorruptChunkError, match=f"^chunk {chunk_id.hex()[:10]} is corrupt: its bytes do not"):
        repo.chunks.read(chunk_id)
    pack.unlink()  # its index stays, but a pack without its data is no pack
    with pytest.raises(MissingChunkError, match=f"^chunk {chunk_id.hex()[:10]} is missing from the store$"):
        Repo(work).chunks.read(chunk_id)
    (work / ".mvc" / "refs" / "heads" / "main").write_text("nonsense\n")
    with pytest.raises(CorruptRefError, match="^ref refs/heads/main is corrupt: it holds 'nonsense'"):
        repo.refs.head()
    (work / ".mvc" / "index").write_text('{"entries": [{"path": "w.bin", "file": 7}]}')
    with pytest.raises(CorruptIndexError, match="^the index file .* is corrupt"):
        repo.fresh_index()


def test_fsck_tells_missing_from_corrupt_by_type_not_by_words(mvc, work):
    commit_version(mvc, work, b"content")
    # A damaged object whose error message happens to contain the word "missing".
    damaged = store_raw_object(work, canonical_json({"type": "missing"}))
    (work / ".mvc" / "refs" / "tags" / "odd").write_text(damaged + "\n")
    problems = fsck_problems(mvc)
    assert [(p["kind"], p["id"]) for p in problems] == [("corrupt", damaged)]
    assert problems[0]["detail"] == (f"object {damaged[:10]} is not a valid modelvc object ('missing') "
                                     "(needed by refs/tags/odd)")


# ---------------------------------------------------------------- item 17


def test_checkout_of_a_damaged_commit_says_corrupt_not_unknown(mvc, work):
    first = commit_version(mvc, work, b"one" * 1000)
    second = commit_version(mvc, work, b"two" * 1000)
    # The first commit's file now holds another (valid) object's bytes.
    object_path(work, first).write_bytes(object_path(work, second).read_bytes())
    expected = (f"error: object {first[:10]} is corrupt: its content does not match its id\n"
                "hint: run 'mvc fsck' to see what it breaks\n")
    for rev in (first, first[:8]):
        result = mvc("checkout", rev, ok=False)
        assert (result.exit_code, result.stderr) == (7, expected)
    assert (work / "w.bin").read_bytes() == b"two" * 1000
    assert Repo(work).refs.head().branch == "main"

    object_path(work, first).unlink()
    result = mvc("checkout", first, ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (4, f"error: object {first[:10]} does not exist")


def test_the_corrupt_index_hint_is_a_command_that_repairs_it(mvc, work):
    commit_version(mvc, work, b"committed")
    write(work / "staged.bin", b"staged only")
    mvc("add", "staged.bin")
    index = work / ".mvc" / "index"
    index.write_bytes(b'{"version": 1, "entries": [{"path": "w.b')

    result = mvc("status", ok=False)
    assert result.exit_code == 7
    error, hint = result.stderr.splitlines()
    assert error.startswith(f"error: the index file {index} is corrupt (")
    assert hint == ("hint: rebuild it from the last commit with 'mvc checkout --force HEAD' "
                    "(staged changes are lost; working files are set back to that commit)")

    command = shlex.split(hint.split("'")[1])
    assert command[0] == "mvc"
    mvc(*command[1:])  # exactly what the hint says
    status = mvc.json("status")
    assert (status["branch"], status["staged"], status["unstaged"]) == ("main", [], [])
    assert status["untracked"] == ["staged.bin"]
    assert (work / "w.bin").read_bytes() == b"committed"
    mvc("add", "staged.bin")
    mvc("commit", "-m", "after the repair")
    assert mvc.json("fsck")["ok"] is True


def test_before_the_first_commit_the_corrupt_index_hint_removes_it(mvc, work):
    write(work / "a.bin", b"staged before any commit")
    mvc("add", "a.bin")
    index = work / ".mvc" / "index"
    index.write_bytes(b"\x00garbage")

    result = mvc("status", ok=False)
    assert result.exit_code == 7
    hint = result.stderr.splitlines()[1]
    assert hint == (f"hint: nothing is committed yet: remove it with 'rm {index}' "
                    "and stage the files again (staged changes are lost)")
    subprocess.run(shlex.split(hint.split("'")[1]), check=True)  # exactly what the hint says
    assert mvc.json("status")["untracked"] == ["a.bin"]
    mvc("add", "a.bin")
    mvc("commit", "-m", "first")
    assert mvc.json("fsck")["ok"] is True


# ---------------------------------------------------------------- item 16


def test_a_manifest_whose_chunk_length_disagrees_is_refused_by_checkout_and_fsck(mvc, work):
    data = random_bytes(5000, seed=2)
    commit_version(mvc, work, data)
    repo = Repo(work)
    entry = repo.tree_of(repo.head_commit()).entries[0]
    ((chunk_hex, length),) = repo.read_manifest(entry.manifest_id).chunks
    bad = Manifest(length + 7, ((chunk_hex, length + 7),))  # adds up, but the chunk has `length` bytes
    bad_id = repo.objects.put(bad)
    commit_id = branch_at_tree(repo, (TreeEntry("w.bin", bad_id, bad.size),), "bad")

    result = mvc("checkout", "bad", ok=False)
    assert (result.exit_code, result.stderr) == (
        7, f"error: object {bad_id[:10]} is corrupt: it lists chunk {chunk_hex[:10]} as {length + 7} bytes, "
           f"but the stored chunk has {length}\nhint: run 'mvc fsck' to see which versions it breaks\n")
    assert (work / "w.bin").read_bytes() == data
    assert sorted(p.name for p in work.iterdir()) == [".mvc", "w.bin"]
    assert Repo(work).refs.head().branch == "main"

    problems = fsck_problems(mvc)
    assert problems == [{"kind": "corrupt", "id": bad_id, "name": None,
                         "detail": result.stderr.splitlines()[0][len("error: "):],
                         "breaks": [{"commit": commit_id, "path": "w.bin"}]}]
    assert f"  breaks w.bin in commit {commit_id[:10]}" in mvc("fsck", ok=False).stderr


def test_a_manifest_whose_lengths_do_not_add_up_to_its_size_is_corrupt(mvc, work):
    commit_version(mvc, work, b"x" * 100)
    repo = Repo(work)
    entry = repo.tree_of(repo.head_commit()).entries[0]
    ((chunk_hex, length),) = repo.read_manifest(entry.manifest_id).chunks
    bad_id = store_raw_object(work, canonical_json({"type": "file", "size": 90, "chunks": [[chunk_hex, length]]}))
    commit_id = branch_at_tree(repo, (TreeEntry("w.bin", bad_id, 90),), "bad")
    detail = (f"object {bad_id[:10]} is not a valid modelvc object "
              f"(chunk lengths add up to {length} bytes, not the file size 90)")

    result = mvc("checkout", "bad", ok=False)
    assert (result.exit_code, result.stderr) == (7, f"error: {detail}\n")
    assert (work / "w.bin").read_bytes() == b"x" * 100
    problems = fsck_problems(mvc)
    assert problems == [{"kind": "corrupt", "id": bad_id, "name": None,
                         "detail": f"{detail} (needed by w.bin in commit {commit_id[:10]})",
                         "breaks": [{"commit": commit_id, "path": "w.bin"}]}]


def test_an_index_entry_with_a_wrong_size_is_refused_by_commit(mvc, work):
    first = commit_version(mvc, work, b"a" * 10)
    write(work / "w.bin", b"b" * 20)
    mvc("add", "w.bin")
    index = work / ".mvc" / "index"
    data = index_as_json(work)
    data["entries"][0]["size"] = 5
    file_id = data["entries"][0]["file"]
    index.write_text(json.dumps(data))

    result = mvc("commit", "-m", "wrong size", ok=False)
    assert (result.exit_code, result.stderr) == (
        7, f"error: the index lists w.bin as 5 bytes, but its staged content {file_id[:10]} has 20; "
           "nothing was committed\nhint: stage it again with 'mvc add w.bin'\n")
    assert Repo(work).head_commit() == first
    assert fsck_problems(mvc) == [{
        "kind": "corrupt", "id": None, "name": "index",
        "detail": f"the index lists w.bin as 5 bytes, but its content {file_id[:10]} has 20 "
                  "(stage it again with 'mvc add')",
        "breaks": [{"commit": None, "path": "w.bin"}]}]

    mvc(*shlex.split(result.stderr.splitlines()[1].split("'")[1])[1:])  # the hint, literally
    mvc("commit", "-m", "right size")
    assert Repo(work).tree_of(Repo(work).head_commit()).entries[0].size == 20
    (work / "w.bin").unlink()
    mvc("checkout", "--force", "HEAD")
    assert (work / "w.bin").read_bytes() == b"b" * 20
    assert mvc.json("fsck", "--read-data")["ok"] is True


# ---------------------------------------------------------------- item 15


def commit_two_nudged_versions(mvc, work: Path) -> tuple[str, str]:
    weights = init_weights(SMALL_MODEL, seed=1)
    ids = []
    for version in (weights, nudge(weights, list(weights), 1e-4, seed=101)):
        write_safetensors(work / "m.safetensors", version, "bf16")
        mvc("add", "m.safetensors")
        mvc("commit", "-m", "v", "-q")
        ids.append(Repo(work).head_commit())
    return ids[0], ids[1]


@pytest.mark.parametrize(("record", "field", "byte"), [
    ("delta", BASE_FIELD, 0), ("delta", BASE_FIELD, 31), ("plain", BASE_FIELD, 17), ("delta", ID_FIELD, 5)])
def test_a_flipped_byte_in_a_pack_record_header_is_found(mvc, work, record, field, byte):
    _, second = commit_two_nudged_versions(mvc, work)
    repo = Repo(work)
    manifest = repo.read_manifest(repo.tree_of(second).entries[0].manifest_id)
    chunk_id = next(c for c in (bytes.fromhex(h) for h, _ in manifest.chunks)
                    if (repo.chunks.locate(c).base is not None) == (record == "delta"))
    location = repo.chunks.locate(chunk_id)
    pack = work / ".mvc" / "packs" / f"{location.pack}.pack"
    data = bytearray(pack.read_bytes())
    data[location.offset + field + byte] ^= 0x04
    pack.write_bytes(bytes(data))
    what = "base id" if field == BASE_FIELD else "chunk id"
    detail = (f"pack {location.pack} has a corrupt record header at offset {location.offset} "
              f"({what} differs from its index)")

    for args in (("--read-data",), ()):
        problems = fsck_problems(mvc, *args)
        found = [p for p in problems if p["id"] == chunk_id.hex()]
        assert [(p["kind"], p["detail"]) for p in found] == [("corrupt", detail)]
        assert {"commit": second, "path": "m.safetensors"} in found[0]["breaks"]
    (work / "m.safetensors").unlink()
    result = mvc("checkout", "--force", "HEAD", ok=False)
    assert result.exit_code == 7
    assert not (work / "m.safetensors").exists()


def test_fsck_read_data_compares_each_pack_with_its_own_index(mvc, work):
    commit_version(mvc, work, random_bytes(5000, seed=3))
    packs = work / ".mvc" / "packs"
    (name,) = pack_names(packs)
    pack = packs / f"{name}.pack"
    size = pack.stat().st_size
    with open(pack, "ab") as handle:  # a record no index lists
        handle.write(RECORD_HEADER.pack(b"CK", 0, 0, 3, 3, bytes(range(32)), bytes(32)) + b"abc")
    assert mvc.json("fsck")["ok"] is True  # nothing reachable is damaged
    problems = fsck_problems(mvc, "--read-data")
    assert [(p["kind"], p["id"], p["detail"]) for p in problems] == [
        ("corrupt", bytes(range(32)).hex(), f"chunk in {name} at offset {size} is not in its index")]


# ---------------------------------------------------------------- item 14


def stage_live_and_junk_in_one_pack(mvc, work: Path) -> bytes:
    """live.bin committed and junk.bin staged, in one pack mostly junk: gc rewrites it."""
    live = random_bytes(40_000, seed=5)
    write(work / "live.bin", live)
    write(work / "junk.bin", random_bytes(400_000, seed=6))
    mvc("add", "live.bin", "junk.bin")
    return live


def test_a_reader_finds_a_chunk_that_gc_moved_after_it_loaded_the_index(mvc, work):
    live = stage_live_and_junk_in_one_pack(mvc, work)
    mvc("rm", "--cached", "junk.bin")
    mvc("commit", "-m", "live only")
    reader = Repo(work)
    entry = reader.tree_of(reader.head_commit()).as_map()["live.bin"]
    chunk_ids = [bytes.fromhex(h) for h, _ in reader.read_manifest(entry.manifest_id).chunks]
    old_packs = list(reader.chunks.index.packs)
    assert mvc.json("gc", "--grace", "0")["rewritten_pack_count"] == 1
    assert not set(old_packs) & set(pack_names(work / ".mvc" / "packs"))
    assert b"".join(bytes(reader.chunks.read(c)) for c in chunk_ids) == live


class CollectWhenVerifying:
    """A Progress that, as fsck starts reading chunks, unstages junk.bin and runs gc beside it."""

    def __init__(self, mvc) -> None:
        self.mvc = mvc

    def start(self, label: str, total: int) -> None:
        if label == "Verifying":
            self.mvc("rm", "--cached", "junk.bin")
            self.mvc("gc", "--grace", "0")

    def advance(self, amount: int) -> None:
        pass

    def finish(self) -> None:
        pass


def test_fsck_does_not_report_staged_content_that_gc_collected_while_it_ran(mvc, work):
    from modelvc.ops.fsck import fsck

    stage_live_and_junk_in_one_pack(mvc, work)
    mvc("commit", "-m", "both")
    write(work / "junk.bin", random_bytes(400_000, seed=7))
    mvc("add", "junk.bin")  # staged only: reachable from the index when fsck reads it
    result = fsck(Repo(work), read_data=True, progress=CollectWhenVerifying(mvc))
    assert (result.problems, result.commits) == ([], 1)
    assert mvc.json("fsck", "--read-data")["ok"] is True


WRITER = r"""
import os, subprocess, sys
mvc, rounds = sys.argv[1], int(sys.argv[2])
def run(*args):
    subprocess.run([mvc, *args], check=True, capture_output=True)
for number in range(rounds):
    with open("live.bin", "wb") as f: f.write(os.urandom(40_000))
    with open("junk.bin", "wb") as f: f.write(os.urandom(400_000))
    run("add", "live.bin", "junk.bin")  # one pack, mostly junk: gc rewrites it, moving live.bin's chunk
    run("rm", "--cached", "junk.bin")
    run("commit", "-m", f"round {number}")
"""

COLLECTOR = r"""
import os, subprocess, sys
mvc, stop = sys.argv[1], sys.argv[2]
while not os.path.exists(stop):
    subprocess.run([mvc, "gc", "--grace", "0"], check=True, capture_output=True)
"""


def mvc_executable() -> str:
    return str(Path(sys.executable).parent / "mvc")


def test_fsck_read_data_reports_no_false_corruption_beside_gc_and_add(mvc, work):
    commit_version(mvc, work, random_bytes(40_000, seed=4), name="live.bin")
    stop = work.parent / "stop"
    env = dict(os.environ, MVC_LOCK_TIMEOUT="60")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, mvc_executable(), "2"], cwd=work, env=env)
    collector = subprocess.Popen([sys.executable, "-c", COLLECTOR, mvc_executable(), str(stop)], cwd=work, env=env)
    runs = []
    try:
        while writer.poll() is None:
            result = subprocess.run([mvc_executable(), "fsck", "--read-data", "--json"], cwd=work, env=env,
                                    capture_output=True, text=True)
            runs.append((result.returncode, result.stdout, result.stderr))
    finally:
        stop.touch()
        collector.wait(timeout=120)
        writer.wait(timeout=120)
    assert (writer.returncode, collector.returncode) == (0, 0)
    assert runs
    assert [r for r in runs if r[0] != 0] == []
    assert mvc.json("fsck", "--read-data")["ok"] is True
    assert len(mvc.json("log")) == 3


# ---------------------------------------------------------------- item 18 (.mvc side)


CRASH_AT_STEP = r"""
import os, sys
import modelvc.refs
stop, steps = int(sys.argv[1]), 0
def counted(function):
    def step(*args, **kwargs):
        global steps
        steps += 1
        if steps == stop:
            os._exit(9)  # killed: no cleanup, no finally
        return function(*args, **kwargs)
    return step
os.replace = counted(os.replace)  # every atomic write's rename
os.link = counted(os.link)  # every create-only atomic write's link (objects)
modelvc.refs.append_line = counted(modelvc.refs.append_line)  # every reflog line
from modelvc.cli.main import cli
cli(sys.argv[2:], prog_name="mvc")
"""


def reflog_lines(work: Path, refname: str) -> list[tuple[str, str]]:
    text = (work / ".mvc" / "logs" / refname).read_text()
    return [tuple(line.split(" ")[:2]) for line in text.splitlines()]


def test_a_commit_killed_at_any_step_never_moves_a_ref_without_its_reflog_line(mvc, work):
    commit_version(mvc, work, b"v0")
    env = dict(os.environ, MVC_LOCK_TIMEOUT="10")
    step = 0
    while True:
        step += 1
        before = Repo(work).head_commit()
        write(work / "w.bin", f"version {step}".encode())
        mvc("add", "w.bin")
        killed = subprocess.run([sys.executable, "-c", CRASH_AT_STEP, str(step), "-C", str(work), "commit", "-m",
                                 f"step {step}"], env=env, capture_output=True, text=True)
        after = Repo(work).head_commit()
        for refname in ("refs/heads/main", "HEAD"):
            old, new = reflog_lines(work, refname)[-1]
            assert new == after or (old == after == before), (step, refname)  # moved only with its line
            assert Repo(work).refs.reflog(refname)[0].new == after  # a line whose move never happened is left out
        assert mvc.json("fsck")["ok"] is True
        assert [b["name"] for b in mvc.json("branch")] == ["main"]  # a ref's temp file is never a branch
        if killed.returncode == 0:
            assert after != before
            break
        assert killed.returncode == 9
        assert after == before  # the ref is the last write: a kill anywhere leaves it where it was
        left = temp_leftovers(work)
        mvc("add", "w.bin")  # the next writer command clears leftovers outside objects/
        assert temp_leftovers(work) == [p for p in left if p.startswith("objects/")]
        mvc("gc")
        assert temp_leftovers(work) == []
        mvc("commit", "-m", f"step {step}, again")
    assert step == 7  # tree, commit, the index (the tree it makes), two reflog lines, the ref: each killed once
    assert [e["message"] for e in mvc.json("reflog")][:2] == ["commit: step 7", "commit: step 6, again"]


def test_leftover_temp_files_are_never_read_as_data(mvc, work):
    first = commit_version(mvc, work, b"data")
    mvc_dir = work / ".mvc"
    junk = b"not what it seems\n"
    planted = [mvc_dir / "refs" / "heads" / ".main.0a1b2c3d4e5f.tmp", mvc_dir / ".HEAD.0a1b2c3d4e5f.tmp",
               mvc_dir / "packs" / ".pack-0.idx.0a1b2c3d4e5f.tmp", mvc_dir / "logs" / ".HEAD.0a1b2c3d4e5f.tmp",
               object_path(work, first).with_name(f".{first[2:]}.0a1b2c3d4e5f.tmp")]
    for path in planted:
        path.write_bytes(junk)
    assert mvc.json("fsck", "--read-data")["ok"] is True
    assert [b["name"] for b in mvc.json("branch")] == ["main"]
    assert len(mvc.json("reflog")) == 1
    assert mvc("checkout", first[:6]).exit_code == 0
    mvc("checkout", "main")  # a writer: clears all of .mvc but objects/
    assert temp_leftovers(work) == [str(planted[-1].relative_to(mvc_dir))]  # no age needed: the lock
    mvc("gc")                                                                  # proves the writer gone
    assert temp_leftovers(work) == []
