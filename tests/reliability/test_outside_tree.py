"""Nothing outside the working tree, ever (issue 11, items 3-6, 9 and the working-tree half of 18).

Each attack runs next to a sentinel directory outside the work dir, compared byte for byte
(names, contents, link targets, mtimes) before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from conftest import index_as_json, write
from tree_snapshot import make_outside, snapshot

from modelvc import safefs
from modelvc.objects import Commit, Tree, TreeEntry
from modelvc.repo import Repo


@pytest.fixture
def outside(tmp_path):
    return make_outside(tmp_path)


def commit_all(mvc, message):
    mvc("add", ".")
    return mvc("commit", "-m", message, "-q").stdout.strip()


def link_dir_outside(work, name="d"):
    shutil.rmtree(work / name)
    os.symlink("../outside", work / name)


WORK_SKIP = (".mvc/lock",)  # the lock file's mtime moves with every command that takes it
LINK_IN_WAY = "error: a symbolic link is in the way: 'd' is a link where d/w.bin needs a directory\n"


# -- item 3: a tracked directory replaced by a symlink --------------------------------------

@pytest.mark.parametrize("args", [("checkout", "HEAD", "--", "d/w.bin"), ("checkout", "--force", "main"),
                                  ("checkout", "-f", "HEAD", "--", "d")])
def test_checkout_never_writes_through_a_linked_directory(mvc, work, outside, args):
    write(work / "d" / "w.bin", b"tracked")
    commit_all(mvc, "v1")
    link_dir_outside(work)
    before, index = snapshot(outside), (work / ".mvc" / "index").read_bytes()

    result = mvc(*args, ok=False)
    assert result.exit_code == 5
    assert result.stderr.startswith(LINK_IN_WAY)
    assert snapshot(outside) == before
    assert os.readlink(work / "d") == "../outside"
    assert (work / ".mvc" / "index").read_bytes() == index


def test_checkout_of_another_version_never_deletes_through_a_linked_directory(mvc, work, outside):
    write(work / "keep.bin", b"k")
    commit_all(mvc, "without d")
    mvc("checkout", "-b", "with-d")
    write(work / "d" / "w.bin", b"tracked")
    commit_all(mvc, "with d")
    link_dir_outside(work)
    before = snapshot(outside)

    for args in (("checkout", "main"), ("checkout", "--force", "main")):
        result = mvc(*args, ok=False)
        assert (result.exit_code, result.stderr.splitlines()[0]) == (5, LINK_IN_WAY.strip())
    assert snapshot(outside) == before
    assert (work / ".mvc" / "HEAD").read_text() == "ref: refs/heads/with-d\n"


@pytest.mark.parametrize("force", [False, True])
def test_rm_never_deletes_through_a_linked_directory(mvc, work, outside, force):
    write(work / "d" / "w.bin", b"tracked")
    commit_all(mvc, "v1")
    link_dir_outside(work)
    before, index = snapshot(outside), (work / ".mvc" / "index").read_bytes()

    result = mvc("rm", *(["-f"] if force else []), "d/w.bin", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (5, LINK_IN_WAY.strip())
    assert snapshot(outside) == before
    assert (work / ".mvc" / "index").read_bytes() == index
    mvc("rm", "--cached", "d/w.bin")  # touches no file: allowed
    assert snapshot(outside) == before


def test_rm_deletes_a_tracked_link_itself_not_its_target(mvc, work, outside):
    os.symlink("../outside/w.bin", work / "w.bin")
    commit_all(mvc, "a link")
    before = snapshot(outside)
    mvc("rm", "w.bin")
    assert not os.path.lexists(work / "w.bin")
    assert snapshot(outside) == before


# -- item 4: add through a symlinked directory ----------------------------------------------

def test_add_beyond_a_symbolic_link_is_refused_as_git_does(mvc, work, outside):
    os.symlink("../outside", work / "linkdir")
    result = mvc("add", "linkdir/secret.txt", ok=False)
    assert (result.exit_code, result.stderr) == (2, "error: pathspec 'linkdir/secret.txt' is beyond a symbolic link\n")
    assert not (work / ".mvc" / "index").exists()


def test_add_of_a_linked_directory_versions_the_link(mvc, work, outside):
    os.symlink("../outside", work / "linkdir")
    assert json.loads(mvc("add", "linkdir", "--json").stdout)["staged"] == ["linkdir"]
    mvc("commit", "-m", "link", "-q")
    repo = Repo(work)
    (entry,) = repo.tree_of(repo.head_commit()).entries
    assert (entry.path, entry.mode, entry.size) == ("linkdir", 0o120000, len("../outside"))
    assert "secret" not in mvc("status").stdout
    stored = repo.read_manifest(entry.manifest_id)
    assert b"".join(repo.chunks.read(bytes.fromhex(c)) for c, _ in stored.chunks) == b"../outside"


# -- item 5: unsafe paths read from the store or the index ---------------------------------

GIT_PATHS = [
    ([".git/config"], "'.git/config': it is inside .git"),
    (["sub/.git/hooks/post-checkout"], "'sub/.git/hooks/post-checkout': it is inside .git"),
]
UNSAFE = [
    (["../x"], "'../x': it has an empty, '.' or '..' component"),
    (["/abs"], "'/abs': it is absolute"),
    (["a/../../x"], "'a/../../x': it has an empty, '.' or '..' component"),
    ([".mvc/config"], "'.mvc/config': it is inside .mvc"),
    (["a\0b"], "'a\\x00b': it contains a NUL byte"),
    (["a//b"], "'a//b': it has an empty, '.' or '..' component"),
    (["d", "d/x"], "'d': it is both a file and the directory of 'd/x'"),
]


def plant_tree(work, paths):
    """A commit whose tree names `paths`, written with modelvc's own encoder, on branch 'evil'."""
    repo = Repo(work)
    good = repo.tree_of(repo.head_commit()).entries[0]
    tree_id = repo.objects.put(Tree(tuple(TreeEntry(p, good.manifest_id, good.size) for p in paths)))
    commit = Commit(tree_id, (repo.head_commit(),), repo.signature_now(), "evil")
    commit_id = repo.objects.put(commit)
    repo.refs.update("refs/heads/evil", commit_id, None, "planted")
    return tree_id, commit_id


@pytest.mark.parametrize("paths,detail", UNSAFE)
def test_unsafe_tree_path_is_found_by_fsck_and_checkout_writes_nothing(mvc, work, outside, paths, detail):
    write(work / "good.bin", b"good")
    write(work / "d" / "keep.bin", b"keep")
    commit_all(mvc, "good")
    tree_id, commit_id = plant_tree(work, paths)
    before, outside_before = snapshot(work, WORK_SKIP), snapshot(outside)

    report = mvc("fsck", ok=False)
    assert report.exit_code == 7
    bad_path = detail.split("'")[1].replace("\\x00", "\0")
    assert report.stderr.splitlines()[:2] == [
        f"unsafe {tree_id[:10]}: tree {tree_id[:10]} has an unsafe path {detail}",
        f"  breaks {bad_path} in commit {commit_id[:10]}"]
    for args in (("checkout", "evil"), ("checkout", "--force", "evil"), ("checkout", "evil", "--", "good.bin")):
        result = mvc(*args, ok=False)
        assert (result.exit_code, result.stderr.splitlines()[0]) == (
            7, f"error: tree {tree_id[:10]} has an unsafe path {detail}")
    assert snapshot(work, WORK_SKIP) == before
    assert snapshot(outside) == outside_before


@pytest.mark.parametrize("paths,detail", GIT_PATHS)
def test_a_git_path_in_a_tree_is_skipped_by_checkout_never_written(mvc, work, outside, paths, detail):
    """An older mvc versioned .git/ with `add .`: such commits stay readable, .git untouched."""
    write(work / "good.bin", b"good")
    commit_all(mvc, "good")
    plant_tree(work, ["good.bin", *paths])
    mvc("fsck")
    outside_before = snapshot(outside)
    mvc("checkout", "evil")
    assert (work / "good.bin").read_bytes() == b"good"
    assert not (work / ".git").exists() and not (work / "sub").exists()
    assert mvc("status", "--porcelain").stdout == f"D  {paths[0]}\n"  # the next commit drops it
    assert snapshot(outside) == outside_before


@pytest.mark.parametrize("paths,detail", UNSAFE + GIT_PATHS)
def test_unsafe_index_path_is_refused_and_nothing_is_written(mvc, work, outside, paths, detail):
    write(work / "good.bin", b"good")
    commit_all(mvc, "good")
    index_path = work / ".mvc" / "index"
    data = index_as_json(work)
    good = data["entries"][0]
    data["entries"] = [dict(good, path=p) for p in paths]
    index_path.write_text(json.dumps(data))
    before, outside_before = snapshot(work, WORK_SKIP), snapshot(outside)

    for args in (("status",), ("checkout", "--force", "HEAD"), ("commit", "-m", "x"), ("rm", "good.bin"),
                 ("fsck",)):
        result = mvc(*args, ok=False)
        assert result.stderr.splitlines() == [
            f"error: the index file {index_path} has an unsafe path {detail}",
            f"hint: delete {index_path}, then 'mvc checkout --force HEAD' rebuilds it"], args
        assert result.exit_code == 7
    assert snapshot(work, WORK_SKIP) == before
    assert snapshot(outside) == outside_before
    index_path.unlink()  # the hint works
    mvc("checkout", "--force", "HEAD")
    assert mvc("status", "--porcelain").stdout == ""


# -- item 6: a symlink planted at the temporary name ----------------------------------------

def test_a_link_planted_at_the_temporary_name_is_never_followed(mvc, work, outside, monkeypatch):
    write(work / "w.bin", b"version 1")
    commit_all(mvc, "v1")
    write(work / "w.bin", b"version 2, longer")
    commit_all(mvc, "v2")
    planted = ".mvc-tmp-1-0badf00d"
    os.symlink("../outside/w.bin", work / planted)
    names = iter([planted, planted, ".mvc-tmp-1-00000001"])
    monkeypatch.setattr(safefs, "temp_name", lambda: next(names))
    before = snapshot(outside)

    mvc("checkout", "HEAD~1", "--", "w.bin")
    assert (work / "w.bin").read_bytes() == b"version 1"
    assert os.readlink(work / planted) == "../outside/w.bin"  # not ours: left alone
    assert snapshot(outside) == before


def test_a_file_in_the_way_of_a_directory_is_refused(mvc, work):
    write(work / "d" / "w.bin", b"tracked")
    commit_all(mvc, "v1")
    shutil.rmtree(work / "d")
    write(work / "d", b"a file now")
    result = mvc("checkout", "--force", "HEAD", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        5, "error: a file is in the way: 'd' is a file where d/w.bin needs a directory")
    assert (work / "d").read_bytes() == b"a file now"


def test_a_file_can_become_a_directory_and_back(mvc, work):
    write(work / "d", b"a file")
    commit_all(mvc, "file")
    (work / "d").unlink()
    write(work / "d" / "x", b"in a directory")
    commit_all(mvc, "directory")
    mvc("checkout", "HEAD~1")
    assert (work / "d").read_bytes() == b"a file"
    mvc("checkout", "main")
    assert (work / "d" / "x").read_bytes() == b"in a directory"


# -- item 9: a file name at the 255-byte limit ---------------------------------------------

def test_a_255_byte_file_name_is_committed_and_checked_out(mvc, work):
    name = "m" * 244 + ".safetensor"
    assert len(name.encode()) == 255  # the most ext4 and most filesystems allow
    write(work / "sub" / name, b"first")
    commit_all(mvc, "v1")
    write(work / "sub" / name, b"second version")
    commit_all(mvc, "v2")
    mvc("checkout", "HEAD~1")
    assert (work / "sub" / name).read_bytes() == b"first"
    (work / "sub" / name).unlink()
    mvc("checkout", "--force", "main")
    assert (work / "sub" / name).read_bytes() == b"second version"
    assert sorted(os.listdir(work / "sub")) == [name]


# -- item 18, working-tree half: leftovers of a killed checkout ----------------------------

def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_stale_temporary_files_are_never_listed_and_are_removed(mvc, work):
    write(work / "sub" / "w.bin", b"v1")
    write(work / "other" / "o.bin", b"o")
    commit_all(mvc, "v1")
    pid = dead_pid()
    stale = [work / "sub" / f".mvc-tmp-{pid}-0123abcd", work / "sub" / f".w.bin.mvc-tmp-{pid}",
             work / "other" / f".mvc-tmp-{pid}-89abcdef"]
    for path in stale:
        write(path, b"half a file")
    with subprocess.Popen(["sleep", "60"]) as alive:
        live = work / "sub" / f".mvc-tmp-{alive.pid}-00000000"
        write(live, b"being written")
        try:
            assert mvc("status", "--porcelain").stdout == ""
            with pytest.raises(AssertionError, match="did not match any files"):
                mvc("add", "sub/.mvc-tmp-*")
            mvc("add", ".")
            assert mvc("status", "--porcelain").stdout == ""

            write(work / "sub" / "w.bin", b"v2")
            mvc("checkout", "--force", "HEAD", "--", "sub/w.bin")  # writes into sub: sweeps it
            assert [p.exists() for p in stale] == [False, False, True]
            assert live.read_bytes() == b"being written"
            gc = mvc.json("gc")
            assert gc["deleted_stale_temp_count"] == 1
            assert not stale[2].exists() and live.exists()
        finally:
            alive.kill()
