"""What the working tree holds now, compared with the index and a tree, cheaply.

Shared by status, diff, checkout and rollback: the stat cache answers for unchanged files,
and only files whose stat changed are re-chunked and hashed (nothing is stored).
"""

from __future__ import annotations

import os
import stat as statmod
from dataclasses import dataclass

from modelvc.ids import ObjectId, hash_bytes
from modelvc.index import IndexEntry, mode_of
from modelvc.objects import Manifest, Tree, TreeEntry, encode
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.worktree import stat_path


@dataclass(frozen=True)
class WorkingFile:
    """A tracked path as it is on disk now: None fields mean the file is gone."""

    path: str
    manifest_id: ObjectId | None
    size: int | None
    mode: int | None
    manifest: Manifest | None = None  # set when it had to be re-hashed
    stat: os.stat_result | None = None  # taken before hashing


def file_id_of(manifest: Manifest) -> str:
    """The id a manifest is stored under, known before it is written (to compare with the index)."""
    return hash_bytes(encode(manifest))


def hash_working_file(repo: Repo, path: str, st: os.stat_result, progress: Progress = NO_PROGRESS,
                      follow_links: bool = False) -> Manifest:
    """The manifest of what is at `path` now: a link's target string, never what it points to
    (`st` is an lstat, or a stat for a path added with --dereference)."""
    from modelvc.store.filedata import ingest_file

    if statmod.S_ISLNK(st.st_mode):
        from modelvc.ops.links import link_manifest, working_link_target

        return link_manifest(working_link_target(repo.root, path))
    return ingest_file(repo.root / path, repo.chunk_params, repo.chunks, None, progress.advance,
                       shown_as=path, follow_links=follow_links).manifest


def working_file(repo: Repo, path: str, entry: IndexEntry | None,
                 progress: Progress = NO_PROGRESS) -> WorkingFile:
    """A tracked path as it is now, hashed only when its stat differs from the index entry's."""
    follow = entry is not None and entry.dereference
    st = stat_path(repo.root, path, follow=follow)
    if st is None:
        return WorkingFile(path, None, None, None)
    if entry is not None and repo.index.is_unchanged(entry, st):
        return WorkingFile(path, entry.manifest_id, entry.size, entry.mode)
    return rehashed_file(repo, path, st, progress, follow)


def rehashed_file(repo: Repo, path: str, st: os.stat_result, progress: Progress = NO_PROGRESS,
                  follow_links: bool = False) -> WorkingFile:
    """A tracked path as it is now, read whatever the index says (`st` taken before reading)."""
    manifest = hash_working_file(repo, path, st, progress, follow_links)
    return WorkingFile(path, file_id_of(manifest), manifest.size, mode_of(st), manifest, st)


def same_content(a: TreeEntry | IndexEntry | WorkingFile | None,
                 b: TreeEntry | IndexEntry | WorkingFile | None) -> bool:
    """Same bytes and mode, whatever the sides are (None and a gone file are both "absent")."""
    if a is None or getattr(a, "manifest_id", None) is None:
        return b is None or getattr(b, "manifest_id", None) is None
    if b is None or getattr(b, "manifest_id", None) is None:
        return False
    return a.manifest_id == b.manifest_id and a.mode == b.mode


def tree_from_index(repo: Repo) -> Tree:
    """The tree a commit of the index would record, entries in path order."""
    entries = repo.index.entries
    return Tree(tuple(TreeEntry(path, e.manifest_id, e.size, e.mode)
                      for path, e in ((path, entries[path]) for path in sorted(entries))))

