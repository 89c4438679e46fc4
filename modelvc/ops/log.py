"""mvc log: the commits reachable from a revision, newest first."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from pathlib import Path

from modelvc.errors import IntegrityError, UnknownRevisionError
from modelvc.objects import Commit
from modelvc.ops.pathspec import under
from modelvc.repo import Repo
from modelvc.worktree import to_repo_path


@dataclass(frozen=True)
class LogEntry:
    id: str
    commit: Commit
    names: list[str] = field(default_factory=list)  # branches and tags pointing here, "HEAD -> main"


def decorations(repo: Repo) -> dict[str, list[str]]:
    names: dict[str, list[str]] = {}
    head = repo.refs.head()
    for branch, commit_id in repo.refs.branches().items():
        label = f"HEAD -> {branch}" if branch == head.branch else branch
        names.setdefault(commit_id, []).append(label)
    for tag, object_id in repo.refs.tags().items():
        try:
            names.setdefault(repo.peel(object_id), []).append(f"tag: {tag}")
        except (IntegrityError, UnknownRevisionError):  # a broken tag is fsck's business, not log's
            continue
    if head.branch is None and head.commit:
        names.setdefault(head.commit, []).insert(0, "HEAD")
    for labels in names.values():
        labels.sort(key=lambda label: (not label.startswith("HEAD"), label))
    return names


def touches(repo: Repo, commit: Commit, paths: list[str]) -> bool:
    mine = repo.tree(commit.tree).as_map()
    parent = repo.tree_of(commit.parents[0]).as_map() if commit.parents else {}
    for path in set(mine) | set(parent):
        if any(under(path, p) for p in paths) and mine.get(path) != parent.get(path):
            return True
    return False


def log(repo: Repo, rev: str | None = None, limit: int | None = None,
        paths: list[str] | None = None, cwd: Path | None = None) -> list[LogEntry]:
    start = repo.resolve(rev or "HEAD")
    repo_paths = [to_repo_path(repo.root, p, cwd) for p in paths] if paths else None
    names = decorations(repo)
    seen = {start}
    queue = [(-repo.commit(start).author.time, 0, start)]
    counter = 1
    entries: list[LogEntry] = []
    while queue and (limit is None or len(entries) < limit):
        _, _, commit_id = heapq.heappop(queue)
        commit = repo.commit(commit_id)
        if repo_paths is None or touches(repo, commit, repo_paths):
            entries.append(LogEntry(commit_id, commit, names.get(commit_id, [])))
        for parent in commit.parents:
            if parent not in seen:
                seen.add(parent)
                heapq.heappush(queue, (-repo.commit(parent).author.time, counter, parent))
                counter += 1
    return entries
