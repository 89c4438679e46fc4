"""mvc checkout: switch branches, detach at a revision, or restore paths from a revision."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelvc.errors import AlreadyExistsError, UnknownRevisionError
from modelvc.ids import short
from modelvc.ops.materialize import MoveResult, move_tree
from modelvc.ops.names import track_start
from modelvc.ops.pathspec import expand
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.refname import check_ref_name, is_valid_ref_name
from modelvc.repo import Repo


@dataclass
class CheckoutResult:
    """Where HEAD went and what changed on disk, for the CLI's summary and --json."""
    commit: str
    branch: str | None  # None: detached HEAD
    created_branch: bool = False
    move: MoveResult = field(default_factory=MoveResult)
    restored_paths: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "branch": self.branch} | self.move.to_dict()


def checkout(repo: Repo, rev: str, force: bool = False, progress: Progress = NO_PROGRESS) -> CheckoutResult:
    """Switch to a branch (HEAD follows it) or any other revision (detached HEAD).

    `checkout --force HEAD` stays on the current branch, as in git, and rebuilds an index
    that cannot be read: it is the repair the corrupt-index error suggests.
    """
    with repo.transaction():
        repo.fresh_index(rebuild_if_corrupt=force)
        head = repo.refs.head()
        if rev in ("HEAD", "@"):
            target, branch = repo.resolve(rev), head.branch
        else:
            branch_tip = _branch_tip(repo, rev)
            found = branch_tip if branch_tip is not None else _resolve_or_guess(repo, rev)
            if found is None:  # git's guess: the one remote's branch of that name, tracked by a new branch
                return checkout_new_branch(repo, rev, _remote_branch_guess(repo, rev), force, progress)
            target, branch = found, (rev if branch_tip is not None else None)
        move = move_tree(repo, repo.tree_of(head.commit), repo.tree_of(target), force, progress)
        source = head.branch or (short(head.commit) if head.commit else "unborn")
        if branch is not None:
            repo.refs.set_head_branch(branch, f"checkout: moving from {source} to {branch}")
            return CheckoutResult(target, branch, move=move)
        repo.refs.set_head_detached(target, f"checkout: moving from {source} to {short(target)}")
        return CheckoutResult(target, None, move=move)


def _resolve_or_guess(repo: Repo, rev: str) -> str | None:
    """The commit `rev` names; None when it names none but one remote has a branch of that name."""
    try:
        return repo.resolve(rev)
    except UnknownRevisionError:
        if _remote_branch_guess(repo, rev) is None:
            raise
        return None


def _remote_branch_guess(repo: Repo, name: str) -> str | None:
    from modelvc.transfer.upstream import guess_remote_branch  # only when a name matched nothing

    return guess_remote_branch(repo, name)


def _branch_tip(repo: Repo, name: str) -> str | None:
    """The commit of branch `name`, if there is one: checkout takes the branch where a tag
    or another ref has the same name too (with git's warning), as git does."""
    from modelvc.revparse import ambiguous_name, matching_refs

    if not is_valid_ref_name(name) or name.startswith("refs/"):
        return None
    found = matching_refs(name, repo.refs)
    if f"refs/heads/{name}" not in found:
        return None
    if len(found) > 1:
        repo.warn(ambiguous_name(name))
    tip = repo.refs.read(f"refs/heads/{name}")
    return repo.peel(tip) if tip is not None else None  # None: deleted since it was listed


def checkout_new_branch(repo: Repo, name: str, start: str | None = None, force: bool = False,
                        progress: Progress = NO_PROGRESS) -> CheckoutResult:
    """`checkout -b`: the branch is created and checked out under one lock, so no other writer
    sees it half made (and an existing name is refused before anything moves)."""
    check_ref_name(name, "branch")
    with repo.transaction():
        repo.fresh_index()
        if repo.refs.read(f"refs/heads/{name}") is not None:
            raise AlreadyExistsError(f"a branch named '{name}' already exists",
                                     hint=f"switch to it with 'mvc checkout {name}'")
        head = repo.refs.head()
        target = repo.resolve(start) if start else head.commit
        if target is None:  # unborn HEAD: just point it at the new name
            repo.refs.set_head_branch(name, f"checkout: moving to new branch {name}")
            return CheckoutResult("", name, created_branch=True)
        move = move_tree(repo, repo.tree_of(head.commit), repo.tree_of(target), force, progress)
        repo.refs.update(f"refs/heads/{name}", target, None, f"branch: created from {start or 'HEAD'}")
        track_start(repo, name, start)
        source = head.branch or short(head.commit or "")
        repo.refs.set_head_branch(name, f"checkout: moving from {source} to {name}")
        return CheckoutResult(target, name, created_branch=True, move=move)


def restore_paths(repo: Repo, rev: str, specs: list[str], force: bool = False, cwd: Path | None = None,
                  progress: Progress = NO_PROGRESS) -> CheckoutResult:
    """Bring paths back as they are in `rev`, into the working tree and the index; HEAD stays."""
    with repo.transaction():
        repo.fresh_index()
        target = repo.resolve(rev)
        tree = repo.tree_of(target)
        paths = expand(repo.root, specs, cwd or Path.cwd(), tree.as_map(), include_worktree=False)
        current = repo.tree_of(repo.refs.head().commit)
        move = move_tree(repo, current, tree, force, progress, paths=paths, action="restoring these paths")
        return CheckoutResult(target, repo.refs.head().branch, move=move, restored_paths=paths)
