"""mvc log: the commits reachable from a revision, newest first."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelvc.commitcache import CommitReader
from modelvc.errors import IntegrityError, UnknownRevisionError
from modelvc.objects import Commit
from modelvc.ops.annotate import NO_ANNOTATIONS, Annotations, all_annotations
from modelvc.ops.pathspec import under
from modelvc.ops.query import Query
from modelvc.ops.stages import stage_commits
from modelvc.repo import Repo
from modelvc.vocabulary import commit_dict
from modelvc.worktree import to_repo_path


@dataclass(frozen=True)
class LogEntry:
    """One commit of the log, with the branch and tag names that point at it."""
    id: str
    commit: Commit
    names: list[str] = field(default_factory=list)  # refs pointing here: "HEAD -> main", "origin/main"
    annotations: Annotations = NO_ANNOTATIONS  # what notes added to it later (ops/annotate.py)

    def to_dict(self) -> dict[str, Any]:
        return commit_dict(self.id, self.commit, self.names) | {"annotations": self.annotations.to_dict()}


def decorations(repo: Repo) -> dict[str, list[str]]:
    """Commit id -> names pointing at it ("HEAD -> main", "origin/main", "tag: v1", "stage:
    production"), as git log decorates."""
    names: dict[str, list[str]] = {}
    head = repo.refs.head()
    for branch, commit_id in repo.refs.branches().items():
        label = f"HEAD -> {branch}" if branch == head.branch else branch
        names.setdefault(commit_id, []).append(label)
    for tracking, commit_id in repo.refs.remote_branches().items():
        names.setdefault(commit_id, []).append(tracking)
    for tag, object_id in repo.refs.tags().items():
        try:
            names.setdefault(repo.peel(object_id), []).append(f"tag: {tag}")
        except (IntegrityError, UnknownRevisionError):  # a broken tag is fsck's business, not log's
            continue
    for stage, commit_id in stage_commits(repo).items():
        names.setdefault(commit_id, []).append(f"stage: {stage}")
    if head.branch is None and head.commit:
        names.setdefault(head.commit, []).insert(0, "HEAD")
    for labels in names.values():
        labels.sort(key=lambda label: (not label.startswith("HEAD"), label))
    return names


def touches(repo: Repo, commit: Commit, paths: list[str]) -> bool:
    """Whether the commit changed any of `paths` against its first parent (log's path filter)."""
    mine = repo.read_tree(commit.tree).as_map()
    parent = repo.tree_of(commit.parents[0]).as_map() if commit.parents else {}
    for path in set(mine) | set(parent):
        if any(under(path, p) for p in paths) and mine.get(path) != parent.get(path):
            return True
    return False


def log_range(repo: Repo, revs: list[str], all_refs: bool = False) -> tuple[list[str], set[str]]:
    """(start commits, commits to leave out) for the revisions given, as git's rev-list reads them.

    "A..B" is what B reaches and A does not ("A.." is A..HEAD, "..B" is HEAD..B); "^A" leaves
    out what A reaches; --all starts from every ref under refs/ (branches, tags, stages,
    remote-tracking refs; not the note chain) and HEAD.
    """
    from modelvc.ops.reach import REGISTRY_NAMESPACES, commit_ancestors

    starts, excluded = [], []
    for rev in revs:
        if ".." in rev:
            left, _, right = rev.partition("..")
            excluded.append(repo.resolve(left or "HEAD"))
            starts.append(repo.resolve(right or "HEAD"))
        elif rev.startswith("^"):
            excluded.append(repo.resolve(rev[1:]))
        else:
            starts.append(repo.resolve(rev))
    if all_refs:
        head = repo.head_commit()
        starts += [repo.peel(i) for name, i in repo.refs.every_ref().items()
                   if not name.startswith(REGISTRY_NAMESPACES)]
        starts += list(stage_commits(repo).values())  # a deleted stage names no commit
        starts += [head] if head else []
    if not starts and not all_refs:
        starts.append(repo.resolve("HEAD"))
    return sorted(set(starts)), commit_ancestors(repo, excluded) if excluded else set()


def history(reader: CommitReader, starts: list[str], excluded: set[str]) -> Iterator[str]:
    """The ids of everything `starts` reach and `excluded` does not, newest first as git log
    orders them (by author time, each commit once)."""
    seen = set(starts) | excluded
    queue = [(-reader.time(start), counter, start)
             for counter, start in enumerate(s for s in starts if s not in excluded)]
    heapq.heapify(queue)
    counter = len(queue)
    while queue:
        _, _, commit_id = heapq.heappop(queue)
        yield commit_id
        for parent in reader.parents(commit_id):
            if parent not in seen:
                seen.add(parent)
                heapq.heappush(queue, (-reader.time(parent), counter, parent))
                counter += 1


def log(repo: Repo, rev: str | list[str] | None = None, limit: int | None = None,
        paths: list[str] | None = None, cwd: Path | None = None, all_refs: bool = False,
        query: Query | None = None) -> list[LogEntry]:
    """Commits reachable from `rev` (or HEAD), newest first, as git log orders them; `paths`
    keeps those that changed one of them, `query` those its conditions hold for (in its sort
    order), `limit` stops early.

    A walk that may cover the whole history reads through the commit-metadata cache
    (modelvc/commitcache.py): commits are decoded only for the entries listed."""
    query = query or Query()
    revs = [rev] if isinstance(rev, str) else list(rev or [])
    starts, excluded = log_range(repo, revs, all_refs)
    repo_paths = [to_repo_path(repo.root, p, cwd) for p in paths] if paths else None
    names = decorations(repo)
    notes = all_annotations(repo)
    whole = limit is None or bool(query.sort) or query.filters or repo_paths is not None
    reader = CommitReader(repo, bulk=whole)
    stop_at = None if query.sort else limit
    entries: list[LogEntry] = []
    if stop_at != 0:
        for commit_id in history(reader, starts, excluded):
            if not query.keeps(reader.time(commit_id), lambda: reader.values(commit_id)):  # noqa: B023
                continue
            commit = reader.commit(commit_id)
            if repo_paths is None or touches(repo, commit, repo_paths):
                entries.append(LogEntry(commit_id, commit, names.get(commit_id, []),
                                        notes.get(commit_id, NO_ANNOTATIONS)))
                if stop_at is not None and len(entries) >= stop_at:
                    break
    reader.save()
    entries = query.order(entries, reader.values)
    return entries if limit is None else entries[:limit]
