"""mvc mv: rename tracked files; the index keeps their file ids, so no data is read or stored."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from modelvc.errors import LocalChangesError, PathNotFoundError, UsageError
from modelvc.fsutil import fsync_dir
from modelvc.ops.pathspec import under
from modelvc.repo import Repo
from modelvc.worktree import to_repo_path


@dataclass
class MoveResult:
    moved: list[tuple[str, str]] = field(default_factory=list)  # (old, new) index paths


def mv(repo: Repo, sources: list[str], destination: str, force: bool = False, cwd: Path | None = None) -> MoveResult:
    """Move tracked files or directories to `destination` (into it when it is a directory)."""
    cwd = cwd or Path.cwd()
    result = MoveResult()
    with repo.transaction():
        index = repo.fresh_index()
        target = to_repo_path(repo.root, destination, cwd)
        into_dir = len(sources) > 1 or (target != "" and (repo.root / target).is_dir()) or target == ""
        if len(sources) > 1 and not (repo.root / target).is_dir():
            raise UsageError(f"destination '{destination}' is not a directory")
        plans = []
        for source in sources:
            old = to_repo_path(repo.root, source, cwd)
            new = f"{target}/{old.rsplit('/', 1)[-1]}".lstrip("/") if into_dir else target
            tracked = [p for p in index.entries if under(p, old)] if old else []
            if not tracked:
                raise PathNotFoundError(f"not under version control, source={old}, destination={new}")
            if under(new, old):
                raise UsageError(f"can not move directory into itself, source={old}, destination={new}")
            if os.path.lexists(repo.root / new) and not force:
                raise LocalChangesError(f"destination exists, source={old}, destination={new}", [new],
                                        hint="use -f to overwrite it")
            if not os.path.lexists(repo.root / old):
                raise PathNotFoundError(f"bad source, source={old}, destination={new}")
            plans.append((old, new, tracked))
        for old, new, tracked in plans:
            new_path = repo.root / new
            new_path.parent.mkdir(parents=True, exist_ok=True)
            os.replace(repo.root / old, new_path)
            fsync_dir(new_path.parent)
            for path in tracked:
                moved = new + path[len(old):]
                index.entries.pop(moved, None)
                index.entries[moved] = dataclasses.replace(index.entries.pop(path), path=moved)
                result.moved.append((path, moved))
        index.save()
    return result
