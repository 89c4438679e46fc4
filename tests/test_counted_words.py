"""Counts in summaries read as git's do: '1 file', '2 files', never 'file(s)'."""

from __future__ import annotations

from conftest import write

from modelvc.cli.output import counted


def test_counted_takes_the_singular_for_one_only():
    assert [counted(n, "file") for n in (0, 1, 2)] == ["0 files", "1 file", "2 files"]
    assert counted(1, "reflog entry", "reflog entries") == "1 reflog entry"
    assert counted(3, "reflog entry", "reflog entries") == "3 reflog entries"


def test_summaries_count_in_words(mvc, work):
    write(work / "a.bin", b"a" * 100)
    write(work / "b.bin", b"b" * 100)
    assert "\n2 files staged: 200 B new data" in mvc("add", "a.bin", "b.bin").stdout
    assert mvc("commit", "-m", "two").stdout.endswith(" 2 files changed\n")
    write(work / "a.bin", b"c" * 100)
    assert mvc("commit", "-a", "-m", "one").stdout.endswith(" 1 file changed\n")
    assert mvc("checkout", "HEAD~1").stdout.endswith("1 file written\n")
    assert mvc("fsck").stdout.startswith("checked 2 commits, ")
    assert mvc("show", "HEAD:a.bin").stdout.endswith(": 100 B, 1 chunk\n")
