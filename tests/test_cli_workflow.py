"""The everyday commands through click: status, add, commit, checkout, rollback, branches, gc."""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import index_as_json, random_bytes, write


def test_status_forms(mvc, work):
    write(work / "a.bin", b"a")
    write(work / "sub" / "b.bin", b"b")
    assert mvc("status", "--porcelain").stdout == "?? a.bin\n?? sub/b.bin\n"
    mvc("add", ".")
    assert mvc("status", "--porcelain").stdout == "A  a.bin\nA  sub/b.bin\n"
    mvc("commit", "-m", "first")
    assert mvc("status", "--porcelain").stdout == ""
    assert "nothing to commit, working tree clean" in mvc("status").stdout
    write(work / "a.bin", b"changed")
    (work / "sub" / "b.bin").unlink()
    assert mvc("status", "-s").stdout == " M a.bin\n D sub/b.bin\n"
    mvc("add", "a.bin")
    data = mvc.json("status")
    assert data["staged"] == [{"status": "modified", "path": "a.bin", "old_path": None}]
    assert data["unstaged"] == [{"status": "deleted", "path": "sub/b.bin", "old_path": None}]
    assert data["clean"] is False


def test_commands_work_from_a_subdirectory(mvc, work):
    write(work / "models" / "m.bin", b"m")
    from conftest import Mvc

    inside = Mvc(work / "models")
    inside("add", "m.bin")
    inside("commit", "-m", "from inside")
    assert mvc("status", "--porcelain").stdout == ""
    assert mvc.json("show")["files"][0]["path"] == "models/m.bin"


def test_mvcignore_and_globs(mvc, work):
    write(work / ".mvcignore", b"*.tmp\ncache/\n")
    write(work / "a.safetensors", b"1")
    write(work / "b.safetensors", b"2")
    write(work / "x.tmp", b"t")
    write(work / "cache" / "c.bin", b"c")
    mvc("add", "*.safetensors")
    assert [s["path"] for s in mvc.json("status")["staged"]] == ["a.safetensors", "b.safetensors"]
    mvc("add", ".")
    assert sorted(s["path"] for s in mvc.json("status")["staged"]) == [".mvcignore", "a.safetensors", "b.safetensors"]


def test_executable_bit_survives_checkout(mvc, work):
    write(work / "run.sh", b"#!/bin/sh\necho hi\n", executable=True)
    write(work / "data.bin", b"d")
    mvc("add", ".")
    mvc("commit", "-m", "x")
    (work / "run.sh").unlink()
    (work / "data.bin").unlink()
    mvc("checkout", "HEAD", "--", "run.sh", "data.bin")
    assert os.stat(work / "run.sh").st_mode & 0o777 == 0o755
    assert os.stat(work / "data.bin").st_mode & 0o777 == 0o644
    assert (work / "run.sh").read_bytes() == b"#!/bin/sh\necho hi\n"
    os.chmod(work / "data.bin", 0o755)
    assert mvc("status", "--porcelain").stdout == " M data.bin\n"


def test_checkout_removes_files_the_target_lacks_and_keeps_untracked(mvc, work):
    write(work / "a.bin", b"a")
    mvc("add", "a.bin")
    mvc("commit", "-m", "one")
    write(work / "deep" / "b.bin", b"b")
    mvc("add", "deep/b.bin")
    mvc("commit", "-m", "two")
    write(work / "notes.txt", b"mine")
    out = mvc("checkout", "HEAD~1").stdout
    assert "HEAD is now at" in out and "(detached)" in out
    assert not (work / "deep").exists()
    assert (work / "notes.txt").read_bytes() == b"mine"
    assert mvc.json("status")["branch"] is None
    mvc("checkout", "main")
    assert (work / "deep" / "b.bin").read_bytes() == b"b"
    assert mvc.json("status")["branch"] == "main"


def test_untracked_file_in_the_way_is_not_overwritten(mvc, work):
    write(work / "a.bin", b"a")
    mvc("add", "a.bin")
    mvc("commit", "-m", "one")
    mvc("checkout", "-b", "side")
    write(work / "b.bin", b"b")
    mvc("add", "b.bin")
    mvc("commit", "-m", "side")
    mvc("checkout", "main")
    write(work / "b.bin", b"untracked work")
    result = mvc("checkout", "side", ok=False)
    assert result.exit_code == 5
    assert "b.bin" in result.stderr
    assert (work / "b.bin").read_bytes() == b"untracked work"


def test_checkout_b_and_revision_syntax(mvc, work):
    for number in range(3):
        write(work / "m.bin", f"v{number}".encode())
        mvc("add", "m.bin")
        mvc("commit", "-m", f"v{number}")
    mvc("checkout", "-b", "old", "HEAD~2")
    assert (work / "m.bin").read_bytes() == b"v0"
    assert mvc.json("status")["branch"] == "old"
    assert mvc.json("show", "main^")["message"] == "v1"
    assert mvc.json("show", "main~2")["message"] == "v0"
    result = mvc("checkout", "-b", "old", ok=False)
    assert result.exit_code == 10
    assert result.stderr.startswith("error: a branch named 'old' already exists")


def test_rollback_and_hard_rollback(mvc, work):
    for number in range(3):
        write(work / "m.bin", f"v{number}".encode())
        mvc("add", "m.bin")
        mvc("commit", "-m", f"v{number}", "--metric", f"loss={3 - number}")
    data = mvc.json("rollback")
    assert (work / "m.bin").read_bytes() == b"v1"
    head = mvc.json("show")
    assert head["message"] == f"Rollback to {data['target_commit'][:10]}: v1"
    assert head["metrics"] == {"loss": 2}
    assert head["parents"] == [data["previous_commit"]]
    assert data["commit"] == head["id"]
    assert len(mvc.json("log")) == 4
    before = data["commit"]
    mvc("rollback", "--hard", "HEAD~3")
    assert (work / "m.bin").read_bytes() == b"v0"
    assert len(mvc.json("log")) == 1
    reflog = mvc.json("reflog")
    assert reflog[0]["message"].startswith("rollback --hard")
    assert reflog[1]["new_commit"] == before  # the old position is kept
    result = mvc("rollback", ok=False)
    assert result.exit_code == 4  # the root has no parent


def test_branch_and_tag_management(mvc, work):
    write(work / "m.bin", b"x")
    mvc("add", "m.bin")
    mvc("commit", "-m", "x")
    mvc("branch", "exp")
    mvc("tag", "v1", "-m", "first release")
    assert [b["name"] for b in mvc.json("branch")] == ["exp", "main"]
    assert mvc.json("tag")[0]["message"] == "first release"
    result = mvc("branch", "-d", "main", ok=False)
    assert result.exit_code == 10
    assert result.stderr.startswith("error: cannot delete branch 'main': it is the current branch")
    mvc("branch", "-d", "exp")
    assert [b["name"] for b in mvc.json("branch")] == ["main"]
    assert mvc("tag", "v1", ok=False).exit_code == 10
    mvc("tag", "-d", "v1")
    assert mvc.json("tag") == []
    assert mvc("branch", "-d", "nope", ok=False).exit_code == 4


def test_log_filters(mvc, work):
    write(work / "a.bin", b"a")
    mvc("add", "a.bin")
    mvc("commit", "-m", "a", "--metric", "loss=1.5")
    write(work / "b.bin", b"b")
    mvc("add", "b.bin")
    mvc("commit", "-m", "b")
    assert [e["message"] for e in mvc.json("log", "-n", "1")] == ["b"]
    assert [e["message"] for e in json.loads(mvc("log", "--json", "--", "a.bin").stdout)] == ["a"]
    out = mvc("log", "--oneline", "--metric", "loss").stdout.splitlines()
    assert out[0].endswith("b  [ loss=-]") or out[0].endswith("b  [loss=-]")
    assert out[1].endswith("a  [loss=1.5]")


def test_rm_cached_and_rm(mvc, work):
    write(work / "a.bin", b"a")
    write(work / "b.bin", b"b")
    mvc("add", ".")
    mvc("commit", "-m", "x")
    mvc("rm", "--cached", "a.bin")
    assert (work / "a.bin").exists()
    mvc("rm", "b.bin")
    assert not (work / "b.bin").exists()
    assert mvc("status", "--porcelain").stdout == "D  a.bin\nD  b.bin\n?? a.bin\n"


def test_gc_frees_unreachable_and_keeps_reachable(mvc, work):
    write(work / "big.bin", random_bytes(400_000, seed=3))
    mvc("add", "big.bin")
    mvc("commit", "-m", "keep")
    write(work / "big.bin", random_bytes(400_000, seed=4))
    mvc("add", "big.bin")  # staged, then abandoned: its chunks become unreachable
    mvc("checkout", "--force", "HEAD", "--", "big.bin")
    assert mvc.json("stats")["stored_chunk_bytes"] >= 800_000
    young = mvc.json("gc")  # within the grace period nothing is touched
    assert young["freed_bytes"] == 0
    result = mvc.json("gc", "--grace", "0")
    assert result["freed_bytes"] >= 390_000
    assert mvc.json("fsck")["ok"] is True
    assert mvc.json("stats")["stored_chunk_bytes"] <= 401_000
    (work / "big.bin").unlink()
    mvc("checkout", "--force", "HEAD")
    assert (work / "big.bin").read_bytes() == random_bytes(400_000, seed=3)


def test_untracked_copy_survives_a_switch_after_rm_cached(mvc, work):
    write(work / "a.bin", b"a")
    mvc("add", "a.bin")
    mvc("commit", "-m", "one")
    mvc("checkout", "-b", "empty")
    mvc("rm", "--cached", "a.bin")
    mvc("commit", "-m", "drop a")
    write(work / "a.bin", b"my untracked edits")
    mvc("checkout", "main", ok=False)  # main would write a.bin over the untracked file
    result = mvc("checkout", "main", ok=False)
    assert result.exit_code == 5
    assert (work / "a.bin").read_bytes() == b"my untracked edits"
    (work / "a.bin").unlink()
    mvc("checkout", "main")
    write(work / "a.bin", b"edited")
    mvc("rm", "--cached", "a.bin")
    mvc("checkout", "empty")  # a.bin is untracked now: the switch leaves it alone
    assert (work / "a.bin").read_bytes() == b"edited"


def test_status_refreshes_the_stat_cache_of_rehashed_files(mvc, work, monkeypatch):
    from modelvc.ops import workstate

    write(work / "a.bin", b"a" * 1000)
    mvc("add", "a.bin")
    mvc("commit", "-m", "a")
    os.utime(work / "a.bin", ns=(1_000_000_000, 1_000_000_000))  # stat differs, content the same
    hashed = []
    real = workstate.hash_working_file
    monkeypatch.setattr(workstate, "hash_working_file", lambda *a, **k: hashed.append(a[1]) or real(*a, **k))
    assert mvc("status", "--porcelain").stdout == ""
    assert hashed == ["a.bin"]
    assert mvc("status", "--porcelain").stdout == ""
    assert hashed == ["a.bin"]  # the second status trusted the refreshed cache
    write(work / "a.bin", b"b" * 1000)
    os.utime(work / "a.bin", ns=(1_000_000_000, 1_000_000_000))  # same size and mtime as cached
    assert mvc("status", "--porcelain").stdout == ""  # the stat cache is trusted, as git's is ...
    os.utime(work / "a.bin", ns=(2_000_000_000, 2_000_000_000))
    assert mvc("status", "--porcelain").stdout == " M a.bin\n"  # ... until the stat moves


def test_a_file_written_before_the_index_is_trusted_at_once_unless_in_the_same_tick(mvc, work, monkeypatch):
    """Raciness is judged against the index file's own mtime, as in git, not a 2 s window."""
    from modelvc.ops import workstate

    write(work / "a.bin", b"a" * 1000)
    written = time.time_ns() - 50_000_000  # a moment before the index, as a checkpoint just saved
    os.utime(work / "a.bin", ns=(written, written))
    mvc("add", "a.bin")
    mvc("commit", "-m", "a")
    hashed = []
    real = workstate.hash_working_file
    monkeypatch.setattr(workstate, "hash_working_file", lambda *a, **k: hashed.append(a[1]) or real(*a, **k))
    assert mvc("status", "--porcelain").stdout == ""
    assert hashed == []  # trusted without reading it again

    write(work / "a.bin", b"b" * 1000)  # same size; the mtime put back as cached
    os.utime(work / "a.bin", ns=(written, written))
    index = work / ".mvc" / "index"
    os.utime(index, ns=(written, written))  # as if the index had been written in the same tick
    assert mvc("status", "--porcelain").stdout == " M a.bin\n"
    assert hashed == ["a.bin"]


def test_commit_all_stages_tracked_changes_only(mvc, work):
    write(work / "a.bin", b"a")
    write(work / "b.bin", b"b")
    mvc("add", ".")
    mvc("commit", "-m", "one")
    write(work / "a.bin", b"a2")
    (work / "b.bin").unlink()
    write(work / "new.bin", b"n")
    mvc("commit", "-a", "-m", "two")
    files = {f["path"]: f["status"] for f in mvc.json("show")["files"]}
    assert files == {"a.bin": "modified", "b.bin": "deleted"}
    assert mvc("status", "--porcelain").stdout == "?? new.bin\n"
    assert mvc("commit", "-a", "-m", "three", ok=False).exit_code == 9



@pytest.fixture
def boot(monkeypatch, tmp_path):
    """Sets the boot id mvc sees; each call stands for a reboot."""
    from modelvc import fsutil

    def reboot(boot_id: str | None) -> None:
        """None: a system without boot ids."""
        fake = tmp_path / "boot_id"
        fake.unlink(missing_ok=True)
        if boot_id is not None:
            fake.write_text(boot_id + "\n")
        monkeypatch.setattr(fsutil, "BOOT_ID_PATH", str(fake))
        fsutil.current_boot_id.cache_clear()

    yield reboot
    fsutil.current_boot_id.cache_clear()


def _index_entry(work) -> dict:
    return index_as_json(work)["entries"][0]


def test_checked_out_files_are_trusted_only_in_the_boot_that_wrote_them(mvc, work, boot):
    """checkout does not fsync working files; after a reboot their cached stat is not trusted."""
    boot("boot-one")
    write(work / "a.bin", random_bytes(5000))
    mvc("add", "a.bin")
    mvc("commit", "-m", "a")
    assert "unsynced_boot" not in _index_entry(work)  # a file the user wrote
    (work / "a.bin").unlink()
    mvc("checkout", "HEAD", "--", "a.bin")
    assert _index_entry(work)["unsynced_boot"] == "boot-one"
    os.utime(work / "a.bin", ns=(1_000_000_000, 1_000_000_000))  # out of the racy window
    assert mvc("status", "--porcelain").stdout == ""  # re-hashed, cache refreshed, mark kept
    assert _index_entry(work)["unsynced_boot"] == "boot-one"

    # What a crash that lost the page cache leaves: same size, mtime and inode, other bytes.
    with open(work / "a.bin", "r+b") as handle:
        handle.write(b"\0" * 100)
    os.utime(work / "a.bin", ns=(1_000_000_000, 1_000_000_000))
    assert mvc("status", "--porcelain").stdout == ""  # same boot: the stat cache is trusted
    boot("boot-two")
    assert mvc("status", "--porcelain").stdout == " M a.bin\n"

    mvc("checkout", "--force", "HEAD", "--", "a.bin")
    assert _index_entry(work)["unsynced_boot"] == "boot-two"
    os.utime(work / "a.bin", ns=(1_000_000_000, 1_000_000_000))
    boot("boot-three")
    assert mvc("status", "--porcelain").stdout == ""  # re-hashed after the reboot: on disk
    assert "unsynced_boot" not in _index_entry(work)


def test_without_a_boot_id_checkout_fsyncs_each_file(mvc, work, boot, monkeypatch):
    write(work / "a.bin", random_bytes(5000))
    mvc("add", "a.bin")
    mvc("commit", "-m", "a")
    (work / "a.bin").unlink()
    boot(None)
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")) or real_fsync(fd))
    mvc("checkout", "HEAD", "--", "a.bin")
    assert any("/.mvc-tmp-" in path for path in synced)
    assert "unsynced_boot" not in _index_entry(work)


def test_quiet_add_checkout_and_rollback_print_nothing_but_do_the_work(mvc, work):
    write(work / "m.bin", b"one")
    assert mvc("add", "-q", "m.bin").output == ""
    mvc("commit", "-m", "one")
    write(work / "m.bin", b"two")
    assert mvc("add", "--quiet", "m.bin").output == ""
    mvc("commit", "-m", "two")
    assert mvc("checkout", "-q", "HEAD~1").output == ""
    assert (work / "m.bin").read_bytes() == b"one"
    assert mvc("checkout", "-q", "main").output == ""
    assert mvc("rollback", "-q").output == ""
    assert (work / "m.bin").read_bytes() == b"one"
    assert mvc.json("log")[0]["message"].startswith("Rollback to ")
    result = mvc("checkout", "-q", "nowhere", ok=False)  # errors still speak
    assert result.exit_code != 0 and result.stderr.startswith("error: ")


def test_log_and_show_print_author_date_with_offset_and_message(mvc, work, monkeypatch):
    import re

    monkeypatch.setenv("TZ", "IST-5:30")
    time.tzset()
    try:
        write(work / "notes.txt", b"one\n")
        mvc("add", "notes.txt")
        mvc("commit", "-m", "first line\n\nsecond paragraph")
        commit_id = mvc.json("log")[0]["id"]
        body = (r"Author: Test Author <test@example\.com>\n"
                r"Date:   \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \+0530\n"
                r"\n    first line\n    \n    second paragraph\n")
        log = mvc("log").stdout
        assert re.fullmatch(rf"commit {commit_id} \(HEAD -> main\)\n{body}\n", log), log
        show = mvc("show").stdout
        assert re.match(rf"commit {commit_id} \(HEAD -> main\)\n{body}", show), show
    finally:
        monkeypatch.undo()
        time.tzset()
