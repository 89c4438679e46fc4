"""Two clones that both annotated or promoted: their chains joined without losing a record."""

from __future__ import annotations

import shutil

from conftest import Mvc, write

from modelvc.ops.annotate import NOTES_REF
from modelvc.ops.chainjoin import join_chains
from modelvc.repo import Repo


def two_clones(mvc, work, tmp_path) -> tuple[Mvc, list[str]]:
    """A second repository holding a copy of the first one's store and refs; the two commit ids."""
    ids = []
    for number in (1, 2):
        write(work / "model.bin", f"version {number}\n".encode() * 100)
        mvc("add", "model.bin")
        mvc("commit", "-q", "-m", f"v{number}")
        ids.append(mvc.json("log")[0]["id"])
    mvc("annotate", ids[0], "--metric", "acc=0.5", "-m", "shared")
    mvc("promote", ids[0], "production", "-m", "shared")
    clone = tmp_path / "clone"
    clone.mkdir()
    other = Mvc(clone)
    other("init")
    copy_store(work, clone, with_refs=True)
    return other, ids


def copy_store(source, target, with_refs: bool = False) -> None:
    """What a fetch brings: the objects and packs (and, for a clone, the refs)."""
    for part in ("objects", "packs", *(("refs",) if with_refs else ())):
        shutil.copytree(source / ".mvc" / part, target / ".mvc" / part, dirs_exist_ok=True)


def test_diverged_note_chains_are_joined_and_the_local_note_comes_last(mvc, work, tmp_path):
    other, (v1, v2) = two_clones(mvc, work, tmp_path)
    theirs = mvc.json("annotate", v1, "--metric", "acc=0.7", "-m", "theirs")["id"]
    ours = other.json("annotate", v1, "--metric", "acc=0.9", "--meta", "by=us", "-m", "ours")
    copy_store(work, other.cwd)
    with Repo(other.cwd) as repo, repo.transaction():
        local = repo.refs.read(NOTES_REF)
        head = join_chains(repo, theirs, local)
        assert head not in (theirs, local)
        repo.refs.update(NOTES_REF, head, local, "fetch: notes joined")
    notes = other.json("annotate", "--list", v1)
    assert [n["message"] for n in notes] == ["ours", "theirs", "shared"]
    assert notes[1]["id"] == theirs  # their records keep their ids; ours is written again
    assert {k: notes[0][k] for k in ("commit", "metrics", "meta", "author")} == {
        k: ours[k] for k in ("commit", "metrics", "meta", "author")}
    assert other.json("show", v1)["annotations"]["metrics"] == {"acc": 0.9}
    assert other.json("fsck")["ok"] is True


def test_a_chain_that_holds_the_other_is_taken_as_it_is(mvc, work, tmp_path):
    other, (v1, _) = two_clones(mvc, work, tmp_path)
    shared = (work / ".mvc" / NOTES_REF).read_text().strip()
    ahead = mvc.json("annotate", v1, "--metric", "acc=0.7")["id"]
    copy_store(work, other.cwd)
    with Repo(other.cwd) as repo, repo.transaction():
        written = len(repo.objects.all_ids())
        assert join_chains(repo, ahead, shared) == ahead  # they are ahead: fast-forward
        assert join_chains(repo, shared, ahead) == ahead  # we are ahead: nothing to take
        assert join_chains(repo, None, shared) == shared and join_chains(repo, shared, None) == shared
        assert len(repo.objects.all_ids()) == written


def test_diverged_stages_keep_every_move_and_end_at_the_local_one(mvc, work, tmp_path):
    other, (v1, v2) = two_clones(mvc, work, tmp_path)
    mvc("promote", v2, "production", "-m", "theirs")
    other("promote", v2, "production", "-m", "ours: v2 too")
    other("promote", v1, "production", "-m", "ours: back to v1")
    copy_store(work, other.cwd)
    their_head = (work / ".mvc" / "refs" / "stages" / "production").read_text().strip()
    with Repo(other.cwd) as repo, repo.transaction():
        local = repo.refs.read("refs/stages/production")
        repo.refs.update("refs/stages/production", join_chains(repo, their_head, local), local, "fetch")
    moves = other.json("history", "production")
    assert [(m["message"], m["commit"], m["previous_commit"]) for m in moves] == [
        ("ours: back to v1", v1, v2), ("ours: v2 too", v2, v2), ("theirs", v2, v1), ("shared", v1, None)]
    assert other.json("show", "production")["id"] == v1


def test_the_transfer_closure_of_notes_and_stages_follows_object_references(mvc, work):
    from modelvc.transfer.closure import closure

    write(work / "model.bin", b"v1\n" * 100)
    mvc("add", "model.bin")
    mvc("commit", "-q", "-m", "v1")
    commit_id = mvc.json("log")[0]["id"]
    first = mvc.json("annotate", "--metric", "acc=0.5")["id"]
    second = mvc.json("annotate", "--metric", "acc=0.6")["id"]
    move = mvc.json("promote", "HEAD", "production")["id"]
    with Repo(work) as repo:
        notes = closure([second], repo.objects.get, lambda object_id: False)
        assert sorted(notes.objects) == sorted([second, first])  # a note's commit is not sent
        moved = closure([move], repo.objects.get, lambda object_id: object_id == commit_id)
        assert moved.objects == [move]  # the remote has the commit: the walk stops there
        assert closure([move], repo.objects.get, lambda object_id: False).commits == 1
