"""mvc rollback: go back to an earlier version without losing history (or, --hard, by moving the branch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelvc.errors import NothingToCommitError, UnknownRevisionError
from modelvc.gitinfo import code_version
from modelvc.ids import short
from modelvc.objects import Commit
from modelvc.ops.materialize import MoveResult, move_tree
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo


@dataclass
class RollbackResult:
    """Where a rollback took HEAD (a new commit, or the target itself with --hard)."""
    target: str
    new_commit: str | None  # None for --hard
    previous: str
    branch: str | None
    move: MoveResult

    def to_dict(self) -> dict[str, Any]:
        """"commit" is where HEAD is now: the new commit, or REV itself with --hard."""
        return {"commit": self.new_commit or self.target, "target_commit": self.target,
                "previous_commit": self.previous, "branch": self.branch, "hard": self.new_commit is None,
                } | self.move.to_dict()


def rollback(repo: Repo, rev: str | None = None, hard: bool = False, force: bool = False,
             progress: Progress = NO_PROGRESS) -> RollbackResult:
    """Bring back `rev`'s files (HEAD^ by default) as a new commit, so history keeps what was
    rolled back; `hard` moves the branch instead (the reflog keeps the old position)."""
    with repo.transaction():
        repo.fresh_index()
        head = repo.refs.head()
        if head.commit is None:
            raise UnknownRevisionError("there is nothing to roll back: HEAD has no commits yet")
        target = repo.resolve(rev or "HEAD^")
        target_commit = repo.read_commit(target)
        current_tree = repo.tree_of(head.commit)
        if hard:
            move = move_tree(repo, current_tree, repo.read_tree(target_commit.tree), force, progress, action="rollback")
            repo.refs.update_head(target, head.commit, f"rollback --hard: moving to {short(target)}")
            return RollbackResult(target, None, head.commit, head.branch, move)
        if target_commit.tree == repo.read_commit(head.commit).tree:
            raise NothingToCommitError(f"HEAD already has the content of {short(target)}; nothing to roll back")
        author = repo.signature_now()  # before the move: an unknown identity must change nothing
        move = move_tree(repo, current_tree, repo.read_tree(target_commit.tree), force, progress, action="rollback")
        message = f"Rollback to {short(target)}: {target_commit.subject}"
        new = Commit(target_commit.tree, (head.commit,), author, message, dict(target_commit.metrics),
                     dict(target_commit.params), {"rollback_of": target}, code_version(repo.root))
        new_id = repo.objects.put(new)
        repo.refs.update_head(new_id, head.commit, f"rollback: {message}")
        return RollbackResult(target, new_id, head.commit, head.branch, move)
