"""A tag and a branch with the same name: git's warning, the tag for lookups, the branch for checkout."""

from __future__ import annotations

import json

from conftest import write

WARNING = "warning: refname 'foo' is ambiguous.\n"


def three_versions(mvc, work) -> list[str]:
    """v1 tagged foo, v2 the tip of branch foo, v3 on main (HEAD); their full ids."""
    ids = []
    for number in (1, 2, 3):
        write(work / "model.bin", f"version {number}\n".encode() * 1000)
        mvc("add", "model.bin")
        mvc("commit", "-m", f"v{number}")
        ids.append(mvc.json("log")[0]["id"])
        if number == 1:
            mvc("tag", "foo")
        if number == 2:
            mvc("branch", "foo")
    return ids


def test_checkout_of_a_name_both_tag_and_branch_switches_to_the_branch(mvc, work):
    v1, v2, _ = three_versions(mvc, work)
    switched = mvc("checkout", "foo")
    assert switched.stderr == WARNING
    assert switched.stdout == "Switched to branch 'foo'\n1 file written\n"
    assert (work / "model.bin").read_bytes() == b"version 2\n" * 1000
    assert (work / ".mvc" / "HEAD").read_text() == "ref: refs/heads/foo\n"
    assert mvc.json("status")["branch"] == "foo"
    assert mvc.json("log")[0]["id"] == v2
    detached = mvc("checkout", "refs/tags/foo")
    assert detached.stderr == ""
    assert (work / "model.bin").read_bytes() == b"version 1\n" * 1000
    assert (work / ".mvc" / "HEAD").read_text() == f"{v1}\n"


def test_other_commands_take_the_tag_and_warn(mvc, work):
    v1, _, v3 = three_versions(mvc, work)
    logged = mvc("log", "foo", "--json")
    assert logged.stderr == WARNING
    assert [entry["id"] for entry in mvc.json("log", "foo")] == [v1]
    shown = mvc("show", "foo", "--json")
    assert shown.stderr == WARNING
    assert json.loads(shown.stdout)["id"] == v1
    diffed = mvc("diff", "foo", "HEAD", "--json")
    assert diffed.stderr == WARNING
    assert mvc("log", "main", "--json").stderr == ""  # a name only one ref has
    assert mvc.json("log", "main")[0]["id"] == v3
