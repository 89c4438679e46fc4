"""Revisions from the reflog (HEAD@{n}, BRANCH@{n}) and log ranges (A..B, ^A B, --all)."""

from __future__ import annotations

from conftest import write


def committed(mvc, work, name: str, data: bytes, message: str) -> None:
    write(work / name, data)
    mvc("add", name)
    mvc("commit", "-q", "-m", message)


def subjects(mvc, *args: str) -> list[str]:
    return [c["message"] for c in mvc.json("log", *args)]


def test_reflog_revisions_and_log_ranges(mvc, work):
    committed(mvc, work, "a.bin", b"1", "one")
    committed(mvc, work, "a.bin", b"2", "two")
    mvc("checkout", "-b", "side")
    committed(mvc, work, "a.bin", b"3", "three")
    mvc("checkout", "main")
    committed(mvc, work, "a.bin", b"4", "four")
    mvc("rollback", "--hard", "HEAD~1")
    assert subjects(mvc, "-n", "1", "HEAD@{1}") == ["four"]  # where HEAD was before the rollback
    assert subjects(mvc, "-n", "1", "main@{1}") == ["four"]
    assert subjects(mvc, "-n", "1", "side@{0}") == ["three"]
    assert subjects(mvc, "-n", "1", "HEAD@{2}") == ["two"]  # before 'four': the checkout of main
    assert subjects(mvc, "main@{1}~1..side") == ["three"]
    assert subjects(mvc, "side..main@{1}") == ["four"]
    assert subjects(mvc, "side..") == []
    assert subjects(mvc, "..side") == ["three"]
    assert subjects(mvc, "^main", "side") == ["three"]
    assert sorted(subjects(mvc, "--all")) == ["one", "three", "two"]  # 'four' is only in reflogs
    mvc("tag", "lost", "main@{1}")
    assert sorted(subjects(mvc, "--all")) == ["four", "one", "three", "two"]
    result = mvc("log", "HEAD@{9}", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (4, "error: log for 'HEAD' only has 7 entries")
    result = mvc("show", "nope@{0}", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (4, "error: no reflog for 'nope'")
