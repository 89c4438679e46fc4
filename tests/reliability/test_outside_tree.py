"""Nothing outside the working tree, ever (issue 11, item 5: paths read from the store or the index).

Each attack runs next to a sentinel directory outside the work dir, compared byte for byte
(names, contents, link targets, mtimes) before and after.
"""

from __future__ import annotations

import json

import pytest
from conftest import write
from tree_snapshot import make_outside, snapshot

from modelvc.objects import Commit, Tree, TreeEntry
from modelvc.repo import Repo


@pytest.fixture
def outside(tmp_path):
    return make_outside(tmp_path)


def commit_all(mvc, message):
    mvc("add", ".")
    return mvc("commit", "-m", message, "-q").stdout.strip()


WORK_SKIP = (".mvc/lock",)  # the lock file's mtime moves with every command that takes it


# -- item 5: unsafe paths read from the store or the index ---------------------------------

UNSAFE = [
    (["../x"], "'../x': it has an empty, '.' or '..' component"),
    (["/abs"], "'/abs': it is absolute"),
    (["a/../../x"], "'a/../../x': it has an empty, '.' or '..' component"),
    ([".mvc/config"], "'.mvc/config': it is inside .mvc"),
    ([".git/config"], "'.git/config': it is inside .git"),
    (["sub/.git/hooks/post-checkout"], "'sub/.git/hooks/post-checkout': it is inside .git"),
    (["a\0b"], "'a\\x00b': it contains a NUL byte"),
    (["a//b"], "'a//b': it has an empty, '.' or '..' component"),
    (["d", "d/x"], "'d': it is both a file and the directory of 'd/x'"),
]


def plant_tree(work, paths):
    """A commit whose tree names `paths`, written with modelvc's own encoder, on branch 'evil'."""
    repo = Repo(work)
    good = repo.tree_of(repo.head_commit()).entries[0]
    tree_id = repo.objects.put(Tree(tuple(TreeEntry(p, good.file, good.size) for p in paths)))
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


@pytest.mark.parametrize("paths,detail", UNSAFE)
def test_unsafe_index_path_is_refused_and_nothing_is_written(mvc, work, outside, paths, detail):
    write(work / "good.bin", b"good")
    commit_all(mvc, "good")
    index_path = work / ".mvc" / "index"
    data = json.loads(index_path.read_bytes())
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
