"""mvc restore: undo staging (index back to HEAD) or local edits (working files back to the index).

The working files are written by ops/materialize.py, the one place that writes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelvc.index import IndexEntry
from modelvc.ops.materialize import move_tree
from modelvc.ops.pathspec import expand
from modelvc.ops.workstate import tree_from_index
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo


@dataclass
class RestoreResult:
    """Paths `restore` unstaged, rewrote and deleted, for its summary and --json."""
    unstaged: list[str] = field(default_factory=list)  # index entries set back to HEAD's
    written: list[str] = field(default_factory=list)  # working files rewritten from the index
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"unstaged": self.unstaged, "written": self.written, "deleted": self.removed}


def restore(repo: Repo, specs: list[str], staged: bool = False, worktree: bool = True,
            cwd: Path | None = None, progress: Progress = NO_PROGRESS) -> RestoreResult:
    """With `staged`, the index entries of the paths become HEAD's (working files untouched);
    with `worktree`, the working files become what the index holds (local edits are lost)."""
    result = RestoreResult()
    with repo.transaction():
        index = repo.fresh_index()
        head = repo.tree_of(repo.head_commit()).as_map()
        known = set(index.entries) | (set(head) if staged else set())
        paths = expand(repo.root, specs, cwd or Path.cwd(), known, include_worktree=False)
        if staged:
            for path in paths:
                entry, committed = index.entries.get(path), head.get(path)
                if committed is None:
                    index.entries.pop(path, None)
                elif entry is None or (entry.manifest_id, entry.mode) != (committed.manifest_id, committed.mode):
                    # No stat cached: the next status re-reads the working file once.
                    index.entries[path] = IndexEntry(path, committed.manifest_id, committed.size, committed.mode)
                else:
                    continue
                result.unstaged.append(path)
            index.save()
        if worktree:
            tree = tree_from_index(repo)
            wanted = [p for p in paths if p in index.entries]
            move = move_tree(repo, tree, tree, True, progress, paths=wanted, action="restore")
            result.written, result.removed = move.written, move.removed
    return result
