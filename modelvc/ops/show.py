"""mvc show: one commit, its metadata and the files it changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from modelvc.objects import Commit, Tree, TreeEntry
from modelvc.ops.annotate import NO_ANNOTATIONS, Annotations, annotations_of
from modelvc.ops.diff import ValueChange, compare_values
from modelvc.ops.log import decorations
from modelvc.repo import Repo
from modelvc.vocabulary import commit_dict, mode_text, path_change


@dataclass(frozen=True)
class FileRow:
    """One file of a commit against its first parent, with its chunk count."""
    path: str
    status: str  # added | modified | deleted | unchanged
    size: int
    old_size: int | None
    chunks: int

    def to_dict(self) -> dict[str, Any]:
        return path_change(self.status, self.path) | {"size": self.size, "old_size": self.old_size,
                                                      "chunk_count": self.chunks}


@dataclass
class ShowResult:
    """A commit with its files, for `mvc show` and its --json."""
    id: str
    commit: Commit
    names: list[str]
    files: list[FileRow] = field(default_factory=list)
    total_size: int = 0
    param_changes: list[ValueChange] = field(default_factory=list)  # against the first parent; text only
    annotations: Annotations = NO_ANNOTATIONS  # what notes added to it later (ops/annotate.py)

    def to_dict(self) -> dict[str, Any]:
        return commit_dict(self.id, self.commit, self.names) | {
            "annotations": self.annotations.to_dict(), "files": [f.to_dict() for f in self.files],
            "total_size": self.total_size}


def show_commit(repo: Repo, rev: str) -> ShowResult:
    """The commit `rev` names and each file it holds or removed, against its first parent."""
    commit_id = repo.resolve(rev)
    commit = repo.read_commit(commit_id)
    tree = repo.read_tree(commit.tree)
    parent = repo.tree_of(commit.parents[0]) if commit.parents else Tree(())
    result = ShowResult(commit_id, commit, decorations(repo).get(commit_id, []),
                        annotations=annotations_of(repo, commit_id))
    if commit.parents:
        result.param_changes = compare_values(repo.read_commit(commit.parents[0]).params, commit.params, False)
    mine, theirs = tree.as_map(), parent.as_map()
    for path in sorted(set(mine) | set(theirs)):
        new, old = mine.get(path), theirs.get(path)
        if new is None:
            assert old is not None  # the path is in one of the two trees
            result.files.append(FileRow(path, "deleted", 0, old.size, 0))
            continue
        status = "added" if old is None else "unchanged" if old == new else "modified"
        chunks = len(repo.read_manifest(new.manifest_id).chunks)
        result.files.append(FileRow(path, status, new.size, old.size if old else None, chunks))
        result.total_size += new.size
    return result


@dataclass
class ShowFileResult:
    """One file of a commit or of the working tree, with its model summary for model files."""
    commit: str | None  # None: a working-tree file
    path: str
    size: int
    mode: int
    chunks: int | None  # None: a working-tree file (not chunked)
    model: Any = None  # a modeldiff.ModelSummary for model files

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "path": self.path, "size": self.size, "mode": mode_text(self.mode),
                "chunk_count": self.chunks, "model": self.model.to_dict() if self.model else None}


def stored_entry(repo: Repo, rev: str, path: str) -> tuple[str, TreeEntry]:
    """(commit id, tree entry) of PATH (from the repository root) in REV; exit 4 when absent."""
    from modelvc.errors import PathNotFoundError

    commit_id = repo.resolve(rev)
    path = path.strip("/")
    entry = repo.tree_of(commit_id).as_map().get(path)
    if entry is None:
        raise PathNotFoundError(f"path '{path}' does not exist in {rev}",
                                hint=f"list its files with 'mvc show {rev}'")
    return commit_id, entry


def show_file(repo: Repo, rev: str, path: str) -> ShowFileResult:
    """A file as stored in a revision: its tensors and header metadata when it is a model."""
    from modelvc.modeldiff import FileVersion, describe_model
    from modelvc.ops.materialize import fetch_absent_chunks
    from modelvc.store.filedata import StoredFileSource

    commit_id, entry = stored_entry(repo, rev, path)
    manifest = repo.read_manifest(entry.manifest_id)
    fetch_absent_chunks(repo, [manifest])  # a partial clone's file: one bulk fetch first
    result = ShowFileResult(commit_id, entry.path, entry.size, entry.mode, len(manifest.chunks))
    version = FileVersion.read(StoredFileSource(manifest, repo.chunks), entry.path.rsplit("/", 1)[-1])
    if version.layout is not None:
        result.model = describe_model(version)
    return result


def show_working_file(root: Path, path: Path) -> ShowFileResult:
    """A file in the working tree, read from disk: its tensors when it is a model file."""
    from modelvc.formats import FileSource
    from modelvc.index import mode_of
    from modelvc.modeldiff import FileVersion, describe_model
    from modelvc.worktree import to_repo_path

    st = path.stat()
    result = ShowFileResult(None, to_repo_path(root, str(path)), st.st_size, mode_of(st), None)
    with FileSource(str(path)) as source:
        version = FileVersion.read(source, path.name)
        if version.layout is not None:
            result.model = describe_model(version)
    return result


def write_stored_file(repo: Repo, rev: str, path: str, handle: BinaryIO) -> int:
    """Write PATH's bytes as stored in REV to `handle`, each chunk verified; returns the size.

    Neither the working tree nor the index is read or written.
    """
    from modelvc.ops.materialize import fetch_absent_chunks
    from modelvc.store.filedata import write_file

    _commit_id, entry = stored_entry(repo, rev, path)
    manifest = repo.read_manifest(entry.manifest_id)
    fetch_absent_chunks(repo, [manifest])  # a partial clone's file: one bulk fetch first
    write_file(manifest, handle, repo.chunks)
    return entry.size
