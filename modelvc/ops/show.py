"""mvc show: one commit, its metadata and the files it changed."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelvc.objects import Commit, Tree
from modelvc.ops.log import decorations
from modelvc.repo import Repo


@dataclass(frozen=True)
class FileRow:
    path: str
    status: str  # added | modified | deleted | unchanged
    size: int
    old_size: int | None
    chunks: int


@dataclass
class ShowResult:
    id: str
    commit: Commit
    names: list[str]
    files: list[FileRow] = field(default_factory=list)
    total_size: int = 0


def show_commit(repo: Repo, rev: str) -> ShowResult:
    commit_id = repo.resolve(rev)
    commit = repo.commit(commit_id)
    tree = repo.tree(commit.tree)
    parent = repo.tree_of(commit.parents[0]) if commit.parents else Tree(())
    result = ShowResult(commit_id, commit, decorations(repo).get(commit_id, []))
    mine, theirs = tree.as_map(), parent.as_map()
    for path in sorted(set(mine) | set(theirs)):
        new, old = mine.get(path), theirs.get(path)
        if new is None:
            result.files.append(FileRow(path, "deleted", 0, old.size, 0))
            continue
        status = "added" if old is None else "unchanged" if old == new else "modified"
        chunks = len(repo.manifest(new.file).chunks)
        result.files.append(FileRow(path, status, new.size, old.size if old else None, chunks))
        result.total_size += new.size
    return result
