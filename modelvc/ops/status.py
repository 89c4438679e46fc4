"""mvc status: staged changes (index vs HEAD), unstaged changes (working tree vs index), untracked."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelvc.ops.workstate import same_content, working_file
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.worktree import walk_files


@dataclass
class StatusResult:
    branch: str | None
    head: str | None
    staged: list[tuple[str, str]] = field(default_factory=list)  # (added|modified|deleted, path)
    unstaged: list[tuple[str, str]] = field(default_factory=list)  # (modified|deleted, path)
    untracked: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.staged or self.unstaged or self.untracked)


def status(repo: Repo, progress: Progress = NO_PROGRESS) -> StatusResult:
    head = repo.refs.head()
    result = StatusResult(head.branch, head.commit)
    head_entries = repo.tree_of(head.commit).as_map()
    index = repo.index.entries
    for path in sorted(set(head_entries) | set(index)):
        before, after = head_entries.get(path), index.get(path)
        if not same_content(before, after):
            kind = "added" if before is None else "deleted" if after is None else "modified"
            result.staged.append((kind, path))
    for path in sorted(index):
        now = working_file(repo, path, index[path], progress)
        if now.file is None:
            result.unstaged.append(("deleted", path))
        elif not same_content(index[path], now):
            result.unstaged.append(("modified", path))
    result.untracked = [path for path, _ in walk_files(repo.root) if path not in index]
    return result
