"""Notes and stages travel with push, fetch and clone (directory remote): a remote chain ours
lacks is refused "fetch first", fetch joins diverged chains (nothing lost, local records last),
and the push after it is a fast-forward."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Mvc, write
from synchelp import new_repo

HINT = ("hint: Updates were rejected because a pushed branch tip is behind its remote counterpart "
        "(non-fast-forward) or the remote has work you do not have locally (fetch first): 'mvc pull' "
        "(or 'mvc fetch' and merge) before pushing again, or push with --force\n")


@pytest.fixture
def alice(tmp_path: Path, remote: Path) -> Mvc:
    """Two commits on main, pushed; v1 in production."""
    mvc = new_repo(tmp_path / "alice")
    mvc("remote", "add", "origin", str(remote))
    for number in (1, 2):
        write(mvc.cwd / "model.bin", f"version {number}\n".encode() * 200)
        mvc("add", "model.bin")
        mvc("commit", "-q", "-m", f"v{number}", "--metric", f"val_loss={3 - number}")
    mvc("promote", "HEAD~1", "production", "-m", "baseline")
    mvc("push", "-q", "-u", "origin", "main")
    return mvc


def clone(tmp_path: Path, remote: Path, name: str) -> Mvc:
    Mvc(tmp_path)("clone", "-q", str(remote), name)
    return Mvc(tmp_path / name)


def commit_id(mvc: Mvc, rev: str) -> str:
    return mvc.json("show", rev)["id"]


def moves(mvc: Mvc, stage: str) -> list[tuple[str, str, str]]:
    return [(m["commit"], m["author"]["name"], m["message"]) for m in mvc.json("history", stage)]


def note_messages(mvc: Mvc, rev: str) -> list[str]:
    return [note["message"] for note in mvc.json("annotate", "--list", rev)]


def test_clone_brings_notes_and_stages_and_fetch_brings_new_ones(tmp_path, remote, alice, monkeypatch):
    v1, v2 = commit_id(alice, "HEAD~1"), commit_id(alice, "HEAD")
    bob = clone(tmp_path, remote, "bob")
    assert moves(bob, "production") == [(v1, "Test Author", "baseline")]
    assert bob.json("show", "production")["id"] == v1
    assert bob.json("stages")[0]["commit"] == v1

    monkeypatch.setenv("MVC_AUTHOR_NAME", "Alice")
    alice("annotate", "HEAD", "--metric", "bleu=31.5", "-m", "eval on wmt")
    alice("promote", "HEAD", "production", "-m", "better bleu")
    pushed = alice.json("push")
    assert [(r["destination"], r["update"], r["old_commit"] is None) for r in pushed["refs"]] == [
        ("refs/heads/main", "up to date", False), ("refs/notes/commits", "new", True),
        ("refs/stages/production", "fast-forward", False)]
    assert alice.json("push")["refs"] == [  # nothing new: the registry refs are not listed
        {"source": "refs/heads/main", "destination": "refs/heads/main", "old_commit": v2, "new_commit": v2,
         "update": "up to date", "reason": None}]

    fetched = bob.json("fetch")
    assert [(r["source"], r["destination"], r["update"]) for r in fetched["refs"]] == [
        ("refs/notes/commits", "refs/remote-registry/origin/notes/commits", "new"),
        ("refs/stages/production", "refs/remote-registry/origin/stages/production", "fast-forward"),
        ("refs/notes/commits", "refs/notes/commits", "new"),
        ("refs/stages/production", "refs/stages/production", "fast-forward")]
    shown = bob.json("show", v2)
    assert shown["annotations"]["metrics"] == {"bleu": 31.5}
    assert [e["id"] for e in bob.json("log", "--where", "bleu>30")] == [v2]
    assert moves(bob, "production") == [(v2, "Alice", "better bleu"), (v1, "Test Author", "baseline")]
    bob("checkout", "-q", "production")
    assert (bob.cwd / "model.bin").read_bytes() == b"version 2\n" * 200
    # a remote stage is no branch and does not make the stage's name ambiguous
    assert bob("branch", "-r").stdout.split()[0::3] == ["origin/main"]
    assert bob("show", "production", "--json").stderr == ""
    assert [e["id"] for e in bob.json("log", "--all")] == [v2, v1]


def test_diverged_chains_are_refused_then_joined_by_fetch(tmp_path, remote, alice, monkeypatch):
    v1, v2 = commit_id(alice, "HEAD~1"), commit_id(alice, "HEAD")
    bob = clone(tmp_path, remote, "bob")
    monkeypatch.setenv("MVC_AUTHOR_NAME", "Alice")
    alice("annotate", "HEAD", "--meta", "owner=alice", "-m", "alice's eval")
    alice("promote", "HEAD", "production", "-m", "alice ships v2")
    alice("push", "-q")
    monkeypatch.setenv("MVC_AUTHOR_NAME", "Bob")
    bob("annotate", "HEAD", "--meta", "owner=bob", "-m", "bob's eval")
    bob("promote", "HEAD~1", "production", "-m", "bob rolls back")
    before = (tmp_path / "remote" / "refs" / "notes" / "commits").read_bytes()

    refused = bob("push", ok=False)
    assert refused.exit_code == 18
    assert refused.stderr == (f"error: failed to push some refs to '{remote}'\n"
                              " ! [rejected]        refs/notes/commits -> refs/notes/commits (fetch first)\n"
                              " ! [rejected]        refs/stages/production -> refs/stages/production (fetch first)\n"
                              + HINT)
    assert (tmp_path / "remote" / "refs" / "notes" / "commits").read_bytes() == before

    fetched = bob.json("fetch")
    assert [(r["destination"], r["update"]) for r in fetched["refs"][2:]] == [
        ("refs/notes/commits", "joined"), ("refs/stages/production", "joined")]
    # nothing lost, the local records last: bob's value and bob's move win
    assert note_messages(bob, "HEAD") == ["bob's eval", "alice's eval"]
    assert bob.json("show", "HEAD")["annotations"]["meta"] == {"owner": "bob"}
    assert moves(bob, "production") == [(v1, "Bob", "bob rolls back"), (v2, "Alice", "alice ships v2"),
                                        (v1, "Test Author", "baseline")]
    assert [r["update"] for r in bob.json("push")["refs"]] == ["up to date", "fast-forward", "fast-forward"]

    alice("fetch", "-q")
    assert note_messages(alice, "HEAD") == ["bob's eval", "alice's eval"]
    assert moves(alice, "production") == moves(bob, "production")
    assert alice.json("show", "production")["id"] == v1


def test_force_overwrites_a_diverged_remote_chain(tmp_path, remote, alice):
    bob = clone(tmp_path, remote, "bob")
    alice("promote", "HEAD", "production", "-m", "alice")
    alice("push", "-q")
    bob("promote", "HEAD", "production", "-m", "bob")
    forced = bob.json("push", "--force")
    assert [(r["destination"], r["update"]) for r in forced["refs"]] == [
        ("refs/heads/main", "up to date"), ("refs/stages/production", "forced")]
    alice("fetch", "-q")
    assert [m[2] for m in moves(alice, "production")] == ["alice", "bob", "baseline"]  # joined: hers kept, last


def test_remote_rename_and_remove_carry_the_remote_registry_refs(tmp_path, remote, alice):
    bob = clone(tmp_path, remote, "bob")
    bob("remote", "rename", "origin", "hub")
    assert sorted(bob.json("log", "-n", "1", "refs/remote-registry/hub/stages/production")[0]["names"]) == [
        "stage: production"]
    assert not (bob.cwd / ".mvc" / "refs" / "remote-registry" / "origin").exists()
    bob("remote", "remove", "hub")
    assert not list((bob.cwd / ".mvc" / "refs").glob("remote-registry/*/*"))
    assert bob.json("show", "production")["id"] == commit_id(alice, "HEAD~1")
