"""Bad input: each case gives its exact message on stderr and its documented exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from conftest import random_bytes, write

from modelvc.repo import Repo
from modelvc.store.packs import RECORD_HEADER, pack_names


def commit_file(mvc, work, name="model.bin", data=b"v1", message="v1"):
    write(work / name, data)
    mvc("add", name)
    return mvc("commit", "-m", message, "-q").stdout.strip()


def test_not_a_repository(tmp_path, work):
    from conftest import Mvc

    result = Mvc(work)("status", ok=False)
    assert result.exit_code == 3
    assert result.stderr.startswith(f"error: not a modelvc repository (or any parent up to /): {work}")


def test_init_twice_is_refused_and_changes_nothing(mvc, work):
    """Git reinitializes; mvc refuses, with the repository code (3), not a ref's (10)."""
    commit_file(mvc, work)
    before = sorted(p.name for p in (work / ".mvc").iterdir())
    result = mvc("init", ok=False)
    assert result.exit_code == 3
    assert result.stderr == (f"error: a modelvc repository already exists at {work / '.mvc'}\n"
                             "hint: nothing was changed\n")
    assert sorted(p.name for p in (work / ".mvc").iterdir()) == before
    assert mvc.json("log")[0]["message"] == "v1"


def test_unknown_revision(mvc, work):
    commit_file(mvc, work)
    result = mvc("checkout", "nope", ok=False)
    assert result.exit_code == 4
    assert result.stderr == ("error: unknown revision 'nope'\n"
                             "hint: list commits with 'mvc log', names with 'mvc branch' and 'mvc tag'\n")


def test_ambiguous_short_id(mvc, work):
    repo = Repo.discover(work)
    from modelvc.ops.commit import commit

    seen: dict[str, str] = {}
    for number in range(2000):
        commit_id = commit(repo, f"empty {number}", allow_empty=True).id
        prefix = commit_id[:4]
        if prefix in seen:
            break
        seen[prefix] = commit_id
    else:
        raise AssertionError("no two commits shared a 4-digit prefix")
    first, second = sorted([seen[prefix], commit_id])
    result = mvc("show", prefix, ok=False)
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"error: short id '{prefix}' is ambiguous: it matches {first[:10]}, {second[:10]}\n")


def test_path_outside_working_tree(mvc, work):
    outside = work.parent / "elsewhere.bin"
    outside.write_bytes(b"x")
    result = mvc("add", "../elsewhere.bin", ok=False)
    assert result.exit_code == 2
    assert result.stderr == f"error: path '../elsewhere.bin' is outside the working tree at {work}\n"


def test_nonexistent_file(mvc):
    result = mvc("add", "nosuch.bin", ok=False)
    assert result.exit_code == 4
    assert result.stderr == "error: pathspec 'nosuch.bin' did not match any files\n"


def test_invalid_ref_names(mvc, work):
    commit_file(mvc, work)
    cases = {"a..b": "contains '..'", "-x": "starts with '-'", "x.lock": "ends with '.lock'",
             "has space": "contains a space"}
    for name, reason in cases.items():
        result = mvc("branch", "--", name, ok=False)
        assert result.exit_code == 10, name
        assert result.stderr == f"error: invalid branch name '{name}': {reason}\n", result.stderr
    result = mvc("tag", "v1..2", ok=False)
    assert result.exit_code == 10
    assert result.stderr == "error: invalid tag name 'v1..2': contains '..'\n"


def test_commit_with_nothing_staged(mvc, work):
    result = mvc("commit", "-m", "empty", ok=False)
    assert result.exit_code == 9
    assert result.stderr == ("error: nothing to commit: the index matches HEAD\n"
                             "hint: stage changes with 'mvc add', or use --allow-empty\n")
    commit_file(mvc, work)
    assert mvc("commit", "-m", "again", ok=False).exit_code == 9
    assert mvc("commit", "-m", "again", "--allow-empty").exit_code == 0


def test_metric_must_be_a_number(mvc, work):
    write(work / "m.bin", b"x")
    mvc("add", "m.bin")
    result = mvc("commit", "-m", "x", "--metric", "loss=low", ok=False)
    assert result.exit_code == 2
    assert result.stderr == "error: --metric loss: 'low' is not a number\n"
    result = mvc("commit", "-m", "x", "--metric", "loss", ok=False)
    assert result.stderr == "error: --metric expects KEY=VALUE, got 'loss'\n"
    assert mvc.json("log") == []


def test_checkout_over_local_changes(mvc, work):
    commit_file(mvc, work, data=b"one")
    write(work / "model.bin", b"two")
    mvc("add", "model.bin")
    mvc("commit", "-m", "two")
    write(work / "model.bin", b"local work")
    result = mvc("checkout", "HEAD~1", ok=False)
    assert result.exit_code == 5
    assert result.stderr == ("error: checkout would overwrite local changes in: model.bin\n"
                             "hint: commit them, or use --force to discard them\n")
    assert (work / "model.bin").read_bytes() == b"local work"
    mvc("checkout", "--force", "HEAD~1")
    assert (work / "model.bin").read_bytes() == b"one"


def flip_last_payload_byte(work):
    packs = work / ".mvc" / "packs"
    name = pack_names(packs)[0]
    path = packs / f"{name}.pack"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))


def test_flipped_byte_in_a_chunk(mvc, work):
    payload = random_bytes(300_000, seed=1)  # incompressible: stored raw, so the flip reaches the hash
    commit_file(mvc, work, data=payload)
    flip_last_payload_byte(work)
    (work / "model.bin").unlink()
    write(work / "other.bin", b"keep me")

    result = mvc("checkout", "--force", "HEAD", ok=False)
    assert result.exit_code == 7
    assert "is corrupt: its bytes do not match its id" in result.stderr
    assert not (work / "model.bin").exists()  # never written with wrong bytes
    assert not [p for p in work.iterdir() if "mvc-tmp" in p.name]

    write(work / "model.bin", b"my good copy")
    result = mvc("checkout", "--force", "HEAD", ok=False)
    assert result.exit_code == 7
    assert (work / "model.bin").read_bytes() == b"my good copy"

    report = mvc("fsck", "--json", ok=False)
    assert report.exit_code == 7
    problems = json.loads(report.stdout)["problems"]
    assert [p["kind"] for p in problems] == ["corrupt"]
    assert problems[0]["breaks"][0]["path"] == "model.bin"
    text = mvc("fsck", ok=False)
    assert "breaks model.bin in commit" in text.stderr


def test_newer_format_version(mvc, work):
    config_path = work / ".mvc" / "config"
    config = json.loads(config_path.read_text())
    config["format_version"] = 99
    config_path.write_text(json.dumps(config))
    result = mvc("status", ok=False)
    assert result.exit_code == 8
    assert result.stderr == ("error: repository format version 99 is not supported by this modelvc "
                             "(it reads versions 1, 2, 3)\nhint: upgrade modelvc to work with this repository\n")


def test_lock_timeout(mvc, work, monkeypatch):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from pathlib import Path; from modelvc.lock import RepoLock\n"
         f"with RepoLock(Path({str(work / '.mvc' / 'lock')!r}), 5):\n"
         "    print('locked', flush=True); time.sleep(30)"],
        stdout=subprocess.PIPE, text=True, cwd=os.getcwd())
    try:
        assert holder.stdout.readline().strip() == "locked"
        monkeypatch.setenv("MVC_LOCK_TIMEOUT", "0.3")
        write(work / "a.bin", b"a")
        started = time.monotonic()
        result = mvc("add", "a.bin", ok=False)
        assert time.monotonic() - started < 10
        assert result.exit_code == 6
        assert result.stderr.startswith("error: timed out after 0.3s waiting for the repository lock: "
                                        f"another mvc process (pid {holder.pid}) is writing")
    finally:
        holder.kill()
        holder.wait()


def test_usage_errors_exit_2(mvc):
    assert mvc("log", "--max-count", "x", ok=False).exit_code == 2
    assert mvc("frobnicate", ok=False).exit_code == 2
    assert mvc("diff", "a", "b", "c", ok=False).exit_code == 2


def test_record_header_size_is_part_of_the_format():
    assert RECORD_HEADER.size == 76
