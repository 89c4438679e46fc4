"""mvc status: staged changes (index vs HEAD), unstaged changes (working tree vs index), untracked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelvc.ops.workstate import WorkingFile, same_content, working_file
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.vocabulary import path_change
from modelvc.worktree import directories_unchanged, is_utf8_name, printable_name, walk_files

if TYPE_CHECKING:
    from modelvc.index import IndexEntry
    from modelvc.objects import TreeEntry


@dataclass
class StatusResult:
    """What is staged, unstaged and untracked, as git status splits it."""
    branch: str | None
    head: str | None
    staged: list[tuple[str, str]] = field(default_factory=list)  # (added|modified|deleted|renamed, path)
    unstaged: list[tuple[str, str]] = field(default_factory=list)  # (modified|deleted, path)
    untracked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # untracked files whose names are not UTF-8 (escaped)
    renamed_from: dict[str, str] = field(default_factory=dict)  # staged renames: new path -> old path

    @property
    def clean(self) -> bool:
        return not (self.staged or self.unstaged or self.untracked)

    def to_dict(self) -> dict[str, Any]:
        return {"branch": self.branch, "commit": self.head,
                "staged": [path_change(kind, path, self.renamed_from.get(path)) for kind, path in self.staged],
                "unstaged": [path_change(kind, path) for kind, path in self.unstaged],
                "untracked": self.untracked, "skipped": self.skipped, "clean": self.clean}


def status(repo: Repo, progress: Progress = NO_PROGRESS, untracked: bool = True) -> StatusResult:
    """Compare HEAD, the index and the working tree; files whose stat is unchanged since they
    were indexed are not read again."""
    head = repo.refs.head()
    result = StatusResult(head.branch, head.commit)
    head_entries = repo.tree_of(head.commit).as_map()
    index = repo.index.entries
    for path in sorted(set(head_entries) | set(index)):
        before, after = head_entries.get(path), index.get(path)
        if not same_content(before, after):
            kind = "added" if before is None else "deleted" if after is None else "modified"
            result.staged.append((kind, path))
    _pair_staged_renames(result, head_entries, index)
    rehashed_clean = []
    with directories_unchanged():
        for path in sorted(index):
            now = working_file(repo, path, index[path], progress)
            if now.manifest_id is None:
                result.unstaged.append(("deleted", path))
            elif not same_content(index[path], now):
                result.unstaged.append(("modified", path))
            elif now.manifest is not None:
                rehashed_clean.append(now)
    if untracked:
        for path, _ in walk_files(repo.root):
            if not is_utf8_name(path):
                result.skipped.append(printable_name(path))
            elif path not in index:
                result.untracked.append(path)
    if result.untracked:
        result.untracked = left_to_mvc(repo, result.untracked)
    if rehashed_clean:
        refresh_stat_cache(repo, rehashed_clean)
    return result


def _pair_staged_renames(result: StatusResult, head_entries: dict[str, TreeEntry],
                         index: dict[str, IndexEntry]) -> None:
    """Turn a staged deletion and a staged addition of the same content into one rename."""
    from modelvc.ops.renames import pair_renames

    gone = {p: head_entries[p].manifest_id for kind, p in result.staged if kind == "deleted"}
    appeared = {p: index[p].manifest_id for kind, p in result.staged if kind == "added"}
    if not gone or not appeared:
        return
    result.renamed_from = pair_renames(gone, appeared)
    olds = set(result.renamed_from.values())
    result.staged = [("renamed", p) if p in result.renamed_from else (kind, p)
                     for kind, p in result.staged if p not in olds]


def left_to_mvc(repo: Repo, untracked: list[str]) -> list[str]:
    """Untracked files less those git keeps (it tracks them, or they are its own files): in a
    shared working tree they are versioned already, and `mvc add .` leaves them to git."""
    from modelvc.ops.gitside import split_for_git

    split = split_for_git(repo.root, untracked, set(), set())
    return split.store


def refresh_stat_cache(repo: Repo, files: list[WorkingFile]) -> None:
    """Record the current stat of files found unchanged by re-hashing, as git's status does,
    so the next status need not read them again. Skipped when another writer holds the lock,
    and when the repository cannot be written (another user's, a full disk): this is only a
    cache, and status a read-only command."""
    from modelvc.errors import LockTimeoutError, MvcError, from_os_error
    from modelvc.index import stat_entry
    from modelvc.worktree import stat_path

    try:
        with repo.transaction(timeout=0):
            index = repo.fresh_index()
            for hashed in files:
                entry = index.entries.get(hashed.path)
                st = stat_path(repo.root, hashed.path, follow=entry is not None and entry.dereference)
                if st is None or hashed.stat is None or entry is None or entry.manifest_id != hashed.manifest_id:
                    continue
                if (st.st_size, st.st_mtime_ns, st.st_ino) == (
                        hashed.stat.st_size, hashed.stat.st_mtime_ns, hashed.stat.st_ino):
                    index.entries[hashed.path] = stat_entry(hashed.path, entry.manifest_id, entry.size, entry.mode,
                                                            st, entry, dereference=entry.dereference)
            index.save()
    except LockTimeoutError:
        pass
    except OSError as exc:
        if not isinstance(from_os_error(exc), MvcError):
            raise
