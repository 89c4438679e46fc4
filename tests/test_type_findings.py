"""Defects the type gate (mypy) found, each held by a test of the behaviour it broke."""

from conftest import random_bytes, write


def test_fsck_reports_a_corrupt_branch_other_than_heads(mvc, work):
    """fsck passed a three-argument callback where Refs calls two: a damaged branch that HEAD
    is not on crashed it (exit 70) instead of being reported (exit 7)."""
    write(work / "a.bin", random_bytes(1000))
    mvc("add", "a.bin")
    mvc("commit", "-m", "one")
    mvc("branch", "other")
    (work / ".mvc" / "refs" / "heads" / "other").write_bytes(b"garbage\n")
    result = mvc("fsck", ok=False)
    assert result.exit_code == 7, result.output
    assert result.stdout == "checked 1 commit, 3 objects, 1 chunk (1000 B)\n"
    assert result.stderr == ("corrupt refs/heads/other: ref refs/heads/other is corrupt: "
                             "it holds 'garbage' instead of a commit id\nerror: 1 problem found\n")
