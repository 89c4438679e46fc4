"""Symbolic links versioned as links, as git does (issue 12, section 2): the target string is
stored and restored byte-exact, never followed; --dereference stores what a link points to."""

from __future__ import annotations

import json
import os

import pytest
from conftest import write
from tree_snapshot import make_outside, snapshot

from modelvc.repo import Repo

TARGETS = {
    "relative.bin": b"models/real.bin",
    "absolute.bin": None,  # filled in: the absolute path of a file outside the tree
    "dangling.bin": b"nowhere/missing.bin",
    "outside.bin": b"../outside/w.bin",
    "outside-dir": b"../outside",
    "not-utf8.bin": b"caf\xe9-\xff.bin",
}


@pytest.fixture
def outside(tmp_path):
    return make_outside(tmp_path)


def make_links(work, outside):
    targets = dict(TARGETS, **{"absolute.bin": os.fsencode(outside / "secret.txt")})
    write(work / "models" / "real.bin", b"real bytes")
    for name, target in targets.items():
        os.symlink(target, os.fsencode(work / name))
    return targets


def links_on_disk(work, targets):
    return {name: os.readlink(os.fsencode(work / name)) for name in targets}


def test_links_round_trip_byte_exact_and_are_never_followed(mvc, work, outside):
    targets = make_links(work, outside)
    before = snapshot(outside)
    mvc("add", ".")
    mvc("commit", "-m", "links", "-q")
    repo = Repo(work)
    modes = {e.path: (f"{e.mode:o}", e.size) for e in repo.tree_of(repo.head_commit()).entries}
    assert modes == {"models/real.bin": ("100644", 10), **{n: ("120000", len(t)) for n, t in targets.items()}}
    assert mvc("status", "--porcelain").stdout == ""

    for name in targets:
        os.unlink(work / name)
    mvc("checkout", "--force", "HEAD")
    assert links_on_disk(work, targets) == targets
    assert mvc("status", "--porcelain").stdout == ""
    assert mvc("fsck").exit_code == 0
    assert snapshot(outside) == before


def test_a_changed_link_target_is_seen_committed_and_restored(mvc, work, outside):
    os.symlink("../outside/w.bin", work / "model.bin")
    mvc("add", "model.bin")
    mvc("commit", "-m", "v1", "-q")
    os.unlink(work / "model.bin")
    os.symlink("../outside/secret.txt", work / "model.bin")
    assert mvc("status", "--porcelain").stdout == " M model.bin\n"
    diff = mvc("diff", "--json")
    assert [f["path"] for f in json.loads(diff.stdout)["files"]] == ["model.bin"]
    mvc("commit", "-a", "-m", "v2", "-q")
    before = snapshot(outside)
    mvc("checkout", "HEAD~1")
    assert os.readlink(work / "model.bin") == "../outside/w.bin"
    mvc("checkout", "main")
    assert os.readlink(work / "model.bin") == "../outside/secret.txt"
    assert snapshot(outside) == before


def test_checkout_replaces_a_link_at_a_file_path_never_writing_through_it(mvc, work, outside):
    write(work / "w.bin", b"tracked bytes")
    mvc("add", "w.bin")
    mvc("commit", "-m", "v1", "-q")
    os.unlink(work / "w.bin")
    os.symlink("../outside/w.bin", work / "w.bin")
    before = snapshot(outside)
    result = mvc("checkout", "HEAD", "--", "w.bin", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        5, "error: restoring these paths would overwrite local changes in: w.bin")
    mvc("checkout", "--force", "HEAD", "--", "w.bin")
    assert not os.path.islink(work / "w.bin")
    assert (work / "w.bin").read_bytes() == b"tracked bytes"
    assert snapshot(outside) == before


def test_a_path_can_change_between_file_and_link(mvc, work, outside):
    write(work / "m.bin", b"a file")
    mvc("add", "m.bin")
    mvc("commit", "-m", "file", "-q")
    os.unlink(work / "m.bin")
    os.symlink("../outside/w.bin", work / "m.bin")
    mvc("commit", "-a", "-m", "link", "-q")
    before = snapshot(outside)
    mvc("checkout", "HEAD~1")
    assert not os.path.islink(work / "m.bin") and (work / "m.bin").read_bytes() == b"a file"
    mvc("checkout", "main")
    assert os.readlink(work / "m.bin") == "../outside/w.bin"
    assert snapshot(outside) == before


def test_dereference_stores_the_target_bytes_as_a_regular_file(mvc, work, outside):
    blob = outside / "blobs" / "0a1b2c"
    write(blob, b"model weights in a blob store")
    os.symlink(blob, work / "model.safetensors")
    result = mvc("add", "--dereference", "model.safetensors", "--json")
    assert json.loads(result.stdout)["staged"] == ["model.safetensors"]
    mvc("commit", "-m", "deref", "-q")
    repo = Repo(work)
    (entry,) = repo.tree_of(repo.head_commit()).entries
    assert (f"{entry.mode:o}", entry.size) == ("100644", len(b"model weights in a blob store"))
    assert mvc("status", "--porcelain").stdout == ""  # the link stands for its target

    write(blob, b"the blob changed")
    assert mvc("status", "--porcelain").stdout == " M model.safetensors\n"
    mvc("commit", "-a", "-m", "v2", "-q")  # commit -a keeps dereferencing it
    (entry,) = repo.tree_of(Repo(work).head_commit()).entries
    assert (f"{entry.mode:o}", entry.size) == ("100644", len(b"the blob changed"))

    before = snapshot(outside)
    mvc("checkout", "HEAD~1")  # replaces the link by the file; the blob store is untouched
    assert not os.path.islink(work / "model.safetensors")
    assert (work / "model.safetensors").read_bytes() == b"model weights in a blob store"
    assert snapshot(outside) == before
    assert mvc("status", "--porcelain").stdout == ""


def test_dereference_of_a_dangling_link_is_refused(mvc, work):
    os.symlink("nowhere.bin", work / "model.bin")
    result = mvc("add", "--dereference", "model.bin", ok=False)
    assert (result.exit_code, result.stderr) == (
        2, "error: cannot dereference 'model.bin': its target is not a regular file\n")
    assert not (work / ".mvc" / "index").exists()


def test_a_crafted_link_entry_naming_a_huge_file_is_refused(mvc, work):
    write(work / "big.bin", b"x" * 5000)
    mvc("add", "big.bin")
    mvc("commit", "-m", "big", "-q")
    from modelvc.objects import Commit, Tree, TreeEntry

    repo = Repo(work)
    (big,) = repo.tree_of(repo.head_commit()).entries
    tree_id = repo.objects.put(Tree((TreeEntry("link.bin", big.manifest_id, big.size, 0o120000),)))
    commit_id = repo.objects.put(Commit(tree_id, (repo.head_commit(),), repo.signature_now(), "crafted"))
    repo.refs.update("refs/heads/crafted", commit_id, None, "planted")
    report = mvc("fsck", ok=False)
    assert (report.exit_code, report.stderr.splitlines()[:2]) == (7, [
        f"unsafe {big.manifest_id[:10]}: link.bin (file {big.manifest_id[:10]}) is a symbolic link with a 5000-byte "
        "target; the most a system allows is 4096", f"  breaks link.bin in commit {commit_id[:10]}"])
    result = mvc("checkout", "crafted", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        7, f"error: link.bin (file {big.manifest_id[:10]}) is a symbolic link with a 5000-byte target; "
           "the most a system allows is 4096")
    assert not os.path.lexists(work / "link.bin")
    assert (work / "big.bin").read_bytes() == b"x" * 5000  # refused before anything was removed


def test_a_file_swapped_for_a_link_before_it_is_read_is_never_read_through(tmp_path):
    """add saw a regular file; by the time it opens the path, a link to outside stands there."""
    from modelvc.errors import FileChangedError
    from modelvc.store.chunker import ChunkParams
    from modelvc.store.filedata import ingest_file

    secret = write(tmp_path / "outside" / "secret.bin", b"secret")
    os.symlink(secret, tmp_path / "w.bin")
    with pytest.raises(FileChangedError):
        ingest_file(tmp_path / "w.bin", ChunkParams.for_format(2), None, None, shown_as="w.bin")
    assert ingest_file(tmp_path / "w.bin", ChunkParams.for_format(2), None, None,
                       follow_links=True).manifest.size == len(b"secret")


def test_a_directory_swapped_for_a_link_during_a_walk_is_never_walked_through(tmp_path):
    from modelvc.ignore import IgnoreRules
    from modelvc.worktree import walk_against

    root, elsewhere = tmp_path / "root", tmp_path / "elsewhere"
    write(root / "models" / "a.bin", b"a")
    write(elsewhere / "secret.bin", b"not in the tree")
    rules = IgnoreRules.load(root)

    def swapped(path: str, dir_is: bool) -> bool:  # the ignore check runs between list and descent
        if path == "models":
            (root / "models" / "a.bin").unlink()
            (root / "models").rmdir()
            os.symlink(elsewhere, root / "models")
        return rules.ignored(path, dir_is)

    rules_swapping = IgnoreRules.load(root)
    rules_swapping.ignored = swapped  # type: ignore[method-assign]
    walk = walk_against(root, (), {}, rules_swapping)
    assert walk.untracked == {}
    assert sorted(walk_against(root, (), {}, rules).untracked) == ["models"]  # now a link, as a link
