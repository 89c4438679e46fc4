"""Nothing is lost silently: rm refuses to drop uncommitted content, branch -d refuses an
unmerged branch, reflogs expire on git's schedule, and a mistaken commit's space comes back."""

from __future__ import annotations

import os
import re
import time

from conftest import index_as_json, random_bytes, write

DAY = 86400


def committed(mvc, work, name: str, data: bytes, message: str) -> None:
    write(work / name, data)
    mvc("add", name)
    mvc("commit", "-m", message)


def index_paths(work) -> list[str]:
    return [e["path"] for e in index_as_json(work)["entries"]]


# ---- rm ---------------------------------------------------------------------------------

def test_rm_keeps_a_staged_only_file(mvc, work):
    committed(mvc, work, "base.bin", b"base", "base")
    write(work / "new.bin", b"staged, never committed")
    mvc("add", "new.bin")
    result = mvc("rm", "new.bin", ok=False)
    assert result.exit_code == 5
    assert result.stderr == ("error: the following file has changes staged in the index:\n    new.bin\n"
                             "hint: use --cached to keep the file, or -f to force removal\n")
    assert (work / "new.bin").read_bytes() == b"staged, never committed"
    assert index_paths(work) == ["base.bin", "new.bin"]
    mvc("rm", "--cached", "new.bin")  # the file stays: nothing is lost
    assert (work / "new.bin").read_bytes() == b"staged, never committed"
    assert index_paths(work) == ["base.bin"]


def test_rm_refuses_local_modifications_and_content_in_neither_head_nor_file(mvc, work):
    committed(mvc, work, "a.bin", b"v1", "one")
    write(work / "a.bin", b"v2 edited")
    result = mvc("rm", "a.bin", ok=False)
    assert result.exit_code == 5
    assert result.stderr == ("error: the following file has local modifications:\n    a.bin\n"
                             "hint: use --cached to keep the file, or -f to force removal\n")
    mvc("add", "a.bin")
    write(work / "a.bin", b"v3 edited again")
    for args in (("rm", "a.bin"), ("rm", "--cached", "a.bin")):  # v2 is only in the index
        result = mvc(*args, ok=False)
        assert result.exit_code == 5
        assert result.stderr == ("error: the following file has staged content different from both the "
                                 "file and the HEAD:\n    a.bin\nhint: use -f to force removal\n")
    assert index_paths(work) == ["a.bin"] and (work / "a.bin").read_bytes() == b"v3 edited again"
    assert mvc("rm", "-f", "a.bin").stdout == "rm 'a.bin'\n"
    assert not (work / "a.bin").exists() and index_paths(work) == []


def test_rm_of_a_committed_unchanged_file_deletes_it(mvc, work):
    committed(mvc, work, "a.bin", b"v1", "one")
    write(work / "b.bin", b"b")
    mvc("add", "b.bin")
    result = mvc("rm", "a.bin", "b.bin", ok=False)  # one bad path: nothing is removed
    assert result.exit_code == 5 and (work / "a.bin").exists() and index_paths(work) == ["a.bin", "b.bin"]
    mvc("rm", "a.bin")
    assert not (work / "a.bin").exists() and index_paths(work) == ["b.bin"]


# ---- branch -d / -D / -m ---------------------------------------------------------------

def test_branch_d_refuses_an_unmerged_branch_and_D_forces(mvc, work):
    committed(mvc, work, "a.bin", b"1", "one")
    mvc("checkout", "-b", "experiment")
    committed(mvc, work, "a.bin", b"2", "only on experiment")
    tip = mvc.json("log", "-n", "1")[0]["id"]
    mvc("checkout", "main")
    mvc("branch", "merged")  # at main's tip: main reaches it
    assert mvc("branch", "-d", "merged").exit_code == 0
    result = mvc("branch", "-d", "experiment", ok=False)
    assert result.exit_code == 10
    assert result.stderr == ("error: the branch 'experiment' is not fully merged\n"
                             "hint: If you are sure you want to delete it, run 'mvc branch -D experiment'\n")
    assert (work / ".mvc" / "refs" / "heads" / "experiment").read_text() == tip + "\n"
    mvc("tag", "keep", "experiment")  # a tag reaches it now
    mvc("branch", "-d", "experiment")
    mvc("tag", "-d", "keep")
    mvc("branch", "again", tip)
    assert mvc("branch", "-D", "again").stdout == f"Deleted branch again (was {tip[:10]})\n"
    assert not (work / ".mvc" / "refs" / "heads" / "again").exists()


def test_branch_m_renames_with_reflog_and_head(mvc, work):
    committed(mvc, work, "a.bin", b"1", "one")
    committed(mvc, work, "a.bin", b"2", "two")
    before = mvc.json("reflog", "main")
    assert mvc("branch", "-m", "main", "trunk").stdout == "Renamed branch main to trunk\n"
    assert (work / ".mvc" / "HEAD").read_text() == "ref: refs/heads/trunk\n"
    assert not (work / ".mvc" / "refs" / "heads" / "main").exists()
    assert not (work / ".mvc" / "logs" / "refs" / "heads" / "main").exists()
    after = mvc.json("reflog", "trunk")
    assert after[1:] == before
    assert after[0]["message"] == "Branch: renamed refs/heads/main to refs/heads/trunk"
    assert mvc("log", "--oneline", "trunk@{2}").stdout.split()[1:] == ["one"]
    assert mvc("status").stdout.startswith("On branch trunk\n")
    mvc("branch", "side")
    result = mvc("branch", "-m", "side", "trunk", ok=False)
    assert (result.exit_code, result.stderr) == (10, "error: a branch named 'trunk' already exists\n")
    mvc("branch", "-m", "sideways")  # one name: renames the current branch
    assert mvc.json("branch") == [
        {"name": "side", "commit": after[0]["new_commit"], "subject": "two", "current": False, "message": None},
        {"name": "sideways", "commit": after[0]["new_commit"], "subject": "two", "current": True, "message": None}]


# ---- reflog expiry, gc, stats ----------------------------------------------------------

def age_reflogs(work, days: float) -> None:
    """Make every reflog entry `days` old (test data: git's expiry is about entry times)."""
    stamp = str(int(time.time() - days * DAY))
    for directory, _subdirs, files in os.walk(work / ".mvc" / "logs"):
        for name in files:
            path = os.path.join(directory, name)
            text = open(path, encoding="utf-8").read()
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(re.sub(r"> \d+ ", f"> {stamp} ", text))


def test_reflog_expire_defaults_are_gits(mvc, work):
    committed(mvc, work, "a.bin", b"1", "one")
    committed(mvc, work, "a.bin", b"2", "mistake")
    mvc("rollback", "--hard", "HEAD~1")  # 'mistake' is now only in the reflogs
    age_reflogs(work, 29)
    assert mvc.json("reflog", "expire", "--all") == {"expired_count": 0, "kept_count": 6,
                                                     "expired_count_by_ref": {}}
    age_reflogs(work, 31)  # past 30 days: entries naming the unreachable commit go
    result = mvc.json("reflog", "expire", "--all")
    assert result == {"expired_count": 4, "kept_count": 2,
                      "expired_count_by_ref": {"HEAD": 2, "refs/heads/main": 2}}
    assert [e["message"] for e in mvc.json("reflog")] == ["commit (initial): one"]
    age_reflogs(work, 91)  # past 90 days: every entry goes
    assert mvc.json("reflog", "expire", "--all")["kept_count"] == 0
    assert mvc.json("reflog") == []


def test_reflog_expire_reads_the_config_keys_and_times(mvc, work):
    import json

    committed(mvc, work, "a.bin", b"1", "one")
    config_path = work / ".mvc" / "config"
    config = json.loads(config_path.read_text())
    config["gc"] = {"reflogExpire": "never", "reflogExpireUnreachable": "never"}
    config_path.write_text(json.dumps(config))
    age_reflogs(work, 400)
    assert mvc.json("reflog", "expire", "--all")["kept_count"] == 2
    config["gc"] = {"reflogExpire": "1 year"}
    config_path.write_text(json.dumps(config))
    assert mvc.json("reflog", "expire", "HEAD") == {"expired_count": 1, "kept_count": 0,
                                                    "expired_count_by_ref": {"HEAD": 1}}
    assert mvc.json("reflog", "main")[0]["message"] == "commit (initial): one"
    result = mvc("reflog", "expire", "--all", "--expire=yesterday-ish", ok=False)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: invalid expiry time 'yesterday-ish'\n")
    assert mvc("reflog", "expire", ok=False).exit_code == 2  # REF... or --all
    result = mvc("reflog", "expire", "--expire=now", "../../config", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        10, "error: invalid ref name '../../config': contains '..'")
    assert json.loads(config_path.read_text())["gc"] == {"reflogExpire": "1 year"}
    config["gc"] = {"reflogExpireUnreachable": "fortnight"}
    config_path.write_text(json.dumps(config))
    result = mvc("gc", ok=False)  # written by hand: 'mvc config' refuses it
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        14, "error: invalid expiry time 'fortnight' (gc.reflogExpireUnreachable in the config)")
    result = mvc("config", "gc.reflogExpire", "fortnight", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        14, "error: bad value 'fortnight' for config key 'gc.reflogExpire': use 'now', 'never', "
            "'30 days', '2.weeks.ago' or a date like 2026-01-31")
    mvc("config", "gc.reflogExpire", "2.weeks")
    assert json.loads(config_path.read_text())["gc"]["reflogExpire"] == "2.weeks"


def test_a_mistaken_big_commit_is_freed_today(mvc, work):
    committed(mvc, work, "model.bin", random_bytes(50_000, seed=1), "model")
    committed(mvc, work, "oops.bin", random_bytes(10 << 20, seed=2), "oops: committed a dump")
    mvc("rollback", "--hard", "HEAD~1")
    assert not (work / "oops.bin").exists()
    stats = mvc.json("stats")
    assert stats["held_by_refs"]["commit_count"] == 1 and stats["held_by_refs"]["chunk_bytes"] == 50_000
    assert stats["held_by_reflogs_only"]["commit_count"] == 1
    assert stats["held_by_reflogs_only"]["chunk_bytes"] == 10 << 20
    assert stats["held_by_reflogs_only"]["stored_bytes"] >= 10 << 20  # random bytes do not compress
    assert "held only by reflogs     1 commit," in mvc("stats").stdout
    before = store_bytes(work)
    kept = mvc.json("gc", "--prune=now")  # the reflogs still hold it (its loose objects get packed)
    assert (kept["deleted_chunk_count"], kept["deleted_object_count"]) == (0, 0)
    assert store_bytes(work) >= before - 1000  # merging its packs saves only their headers
    mvc("reflog", "expire", "--expire=now", "--all")
    freed = mvc.json("gc", "--prune=now")
    assert freed["freed_bytes"] >= 10 << 20
    assert before - store_bytes(work) >= 10 << 20
    assert store_bytes(work) < 1 << 20
    stats = mvc.json("stats")
    assert stats["held_by_reflogs_only"] == {"commit_count": 0, "chunk_count": 0, "chunk_bytes": 0,
                                             "stored_bytes": 0}
    assert stats["held_by_refs"]["chunk_bytes"] == 50_000
    assert mvc.json("fsck")["ok"] is True
    (work / "model.bin").unlink()
    mvc("checkout", "--force", "HEAD")
    assert (work / "model.bin").read_bytes() == random_bytes(50_000, seed=1)


def test_gc_expires_reflogs_as_gits_gc_does(mvc, work):
    committed(mvc, work, "a.bin", b"1", "one")
    committed(mvc, work, "b.bin", random_bytes(200_000, seed=5), "mistake")
    mvc("rollback", "--hard", "HEAD~1")
    age_reflogs(work, 31)
    result = mvc.json("gc", "--prune=now")
    assert result["expired_reflog_entry_count"] == 4
    assert result["freed_bytes"] >= 200_000
    assert mvc("gc", "--prune=now", "--grace", "0", ok=False).exit_code == 2


def store_bytes(work) -> int:
    total = 0
    for directory, _subdirs, files in os.walk(work / ".mvc"):
        total += sum(os.path.getsize(os.path.join(directory, f)) for f in files)
    return total
