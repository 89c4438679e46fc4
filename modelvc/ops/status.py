"""mvc status: staged changes (index vs HEAD), unstaged changes (working tree vs index), untracked."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelvc.ignore import IgnoreRules
from modelvc.ops.workstate import WorkingFile, rehashed_file, same_content, working_file
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.vocabulary import path_change
from modelvc.worktree import Walk, directories_unchanged, is_utf8_name, printable_name, walk_against

if TYPE_CHECKING:
    from modelvc.index import Index, IndexEntry
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
    upstream: str | None = None  # "origin/main": the branch's upstream, when it has one fetched
    ahead: int = 0  # commits on the branch and not on its upstream
    behind: int = 0

    @property
    def clean(self) -> bool:
        return not (self.staged or self.unstaged or self.untracked)

    def to_dict(self) -> dict[str, Any]:
        return {"branch": self.branch, "commit": self.head,
                "staged": [path_change(kind, path, self.renamed_from.get(path)) for kind, path in self.staged],
                "unstaged": [path_change(kind, path) for kind, path in self.unstaged],
                "untracked": self.untracked, "skipped": self.skipped, "clean": self.clean,
                "upstream": self.upstream, "ahead_count": self.ahead, "behind_count": self.behind}


def status(repo: Repo, progress: Progress = NO_PROGRESS, untracked: bool = True) -> StatusResult:
    """Compare HEAD, the index and the working tree; files whose stat is unchanged since they
    were indexed are not read again, and HEAD's tree is not read when the index records that
    its entries make that very tree."""
    head = repo.refs.head()
    result = StatusResult(head.branch, head.commit)
    index = repo.index
    head_tree = index.tree_of(head.commit) or (repo.read_commit(head.commit).tree if head.commit else None)
    learnt_tree = None
    if head_tree is None or index.tree_id != head_tree:
        head_entries = repo.tree_of(head.commit).as_map()
        result.staged = staged_changes(head_entries, index.entries)
        _pair_staged_renames(result, head_entries, index.entries)
        if head_tree is not None and makes_tree(index.entries, head_entries):
            learnt_tree = head_tree
    tracked = index.tracked()
    with directories_unchanged():
        walk = walk_against(repo.root, tracked, index.trusted_stats(), IgnoreRules.load(repo.root),
                            untracked=untracked)
        rehashed_clean = _unstaged_changes(repo, result, walk, tracked, progress)
    if walk.untracked:
        found = sorted(walk.untracked)
        if not is_utf8_name("\0".join(found)):
            result.skipped = [printable_name(p) for p in found if not is_utf8_name(p)]
            found = [p for p in found if is_utf8_name(p)]
        result.untracked = left_to_mvc(repo, found) if found else []
    if rehashed_clean or learnt_tree is not None:
        refresh_stat_cache(repo, rehashed_clean, learnt_tree, index, (head.commit, head_tree))
    _compare_with_upstream(repo, result)
    return result


def _compare_with_upstream(repo: Repo, result: StatusResult) -> None:
    """How many commits the branch and its fetched upstream each have that the other lacks."""
    from modelvc.transfer.upstream import divergence

    found = divergence(repo, result.branch, result.head)
    if found is not None:
        upstream, result.ahead, result.behind = found
        result.upstream = upstream.short


def staged_changes(head_entries: dict[str, TreeEntry], entries: dict[str, IndexEntry]) -> list[tuple[str, str]]:
    """(added|modified|deleted, path) where the index differs from HEAD in content or mode,
    found by one set operation over both sides."""
    before = {path: (e.manifest_id, e.mode) for path, e in head_entries.items()}
    after = {path: (e.manifest_id, e.mode) for path, e in entries.items()}
    changed = sorted({path for path, _ in before.items() ^ after.items()})
    return [("added" if path not in before else "deleted" if path not in after else "modified", path)
            for path in changed]


def makes_tree(entries: dict[str, IndexEntry], tree_entries: dict[str, TreeEntry]) -> bool:
    """Whether a commit of the index would record exactly this tree (same paths, ids, sizes, modes)."""
    return len(entries) == len(tree_entries) and all(
        (t := tree_entries.get(path)) is not None and (t.manifest_id, t.size, t.mode) == (e.manifest_id, e.size, e.mode)
        for path, e in entries.items())


def _unstaged_changes(repo: Repo, result: StatusResult, walk: Walk, tracked: Collection[str],
                      progress: Progress) -> list[WorkingFile]:
    """Hash the tracked files the walk could not vouch for, and stat one by one those it did not
    meet; returns the files found unchanged by hashing (their stat is worth caching)."""
    index = repo.index
    rehashed_clean = []
    looked_at: list[WorkingFile] = []
    indexed: dict[str, IndexEntry] = {}
    for path in (*walk.differing, *walk.unseen(tracked)):
        entry = index.entry(path)
        assert entry is not None, path  # walked paths were taken from the index
        indexed[path] = entry
    for path, st in walk.differing.items():
        entry = indexed[path]
        if entry.dereference:  # its cached stat is its target's
            looked_at.append(working_file(repo, path, entry, progress))
            continue
        looked_at.append(rehashed_file(repo, path, st, progress))
    looked_at.extend(working_file(repo, path, entry, progress)
                     for path, entry in indexed.items() if path not in walk.differing)
    for now in sorted(looked_at, key=lambda w: w.path):
        if now.manifest_id is None:
            result.unstaged.append(("deleted", now.path))
        elif not same_content(indexed[now.path], now):
            result.unstaged.append(("modified", now.path))
        elif now.manifest is not None:
            rehashed_clean.append(now)
    return rehashed_clean


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


def refresh_stat_cache(repo: Repo, files: list[WorkingFile], learnt_tree: str | None = None,
                       read: Index | None = None, head: tuple[str | None, str | None] = (None, None)) -> None:
    """Record the current stat of files found unchanged by re-hashing, as git's status does,
    so the next status need not read them again; and `learnt_tree`, the tree the index status
    `read` was found to make, unless another writer changed it since (then it is read again).
    `head` (HEAD's commit and tree ids) lets the index record the commit its tree id is of.
    Skipped when another writer holds the lock, and when the repository cannot be written
    (another user's, a full disk): this is only a cache, and status a read-only command."""
    from modelvc.errors import LockTimeoutError, MvcError, from_os_error
    from modelvc.index import stat_entry
    from modelvc.worktree import stat_path

    try:
        with repo.transaction(timeout=0):
            current = read is not None and read.is_current()
            index = read if read is not None and current else repo.fresh_index()
            for hashed in files:
                entry = index.entry(hashed.path)
                st = stat_path(repo.root, hashed.path, follow=entry is not None and entry.dereference)
                if st is None or hashed.stat is None or entry is None or entry.manifest_id != hashed.manifest_id:
                    continue
                if (st.st_size, st.st_mtime_ns, st.st_ino) == (
                        hashed.stat.st_size, hashed.stat.st_mtime_ns, hashed.stat.st_ino):
                    index.restat(stat_entry(hashed.path, entry.manifest_id, entry.size, entry.mode, st, entry,
                                            dereference=entry.dereference))
            tree = learnt_tree if learnt_tree is not None and current else index.tree_id
            index.save(tree, commit_id=head[0] if tree is not None and tree == head[1] else index.commit_id)
    except LockTimeoutError:
        pass
    except OSError as exc:
        if not isinstance(from_os_error(exc), MvcError):
            raise
