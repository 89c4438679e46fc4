"""mvc pull: fetch, then fast-forward the current branch (and the working tree) to its upstream."""

from __future__ import annotations

from modelvc.errors import NotFastForwardError, UsageError
from modelvc.ids import short
from modelvc.ops.materialize import move_tree
from modelvc.ops.reach import commit_ancestors
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.transfer.fetch import fetch
from modelvc.transfer.refsel import HEADS
from modelvc.transfer.result import TransferResult
from modelvc.transfer.upstream import Upstream, upstream_of

DIVERGED_HINT = ("Diverging branches can't be fast-forwarded: merge or rebase is not in mvc yet; "
                 "keep your work on another branch ('mvc branch NAME'), then 'mvc rollback --hard' "
                 "this branch to its upstream, or push yours with --force")


def pull(repo: Repo, remote_name: str | None = None, force: bool = False,
         progress: Progress = NO_PROGRESS) -> TransferResult:
    """Fetch from the current branch's upstream remote and fast-forward the branch to it."""
    head = repo.refs.head()
    if head.branch is None:
        raise UsageError("You are not currently on a branch.", hint="check out a branch, then pull")
    upstream = upstream_of(repo.config, head.branch)
    if upstream is None or (remote_name and remote_name != upstream.remote):
        upstream = Upstream(remote_name or (upstream.remote if upstream else "origin"), f"{HEADS}{head.branch}")
    result = fetch(repo, upstream.remote, progress)
    result.operation, result.branch = "pull", head.branch
    with repo.transaction():
        repo.fresh_index()
        head = repo.refs.head()
        target = repo.refs.read(upstream.tracking)
        if target is None:
            raise UsageError(f"no such ref was fetched: '{upstream.merge[len(HEADS):]}' on remote '{upstream.remote}'",
                             hint=f"push it first ('mvc push -u {upstream.remote} {head.branch}')")
        result.commit = target
        if head.commit == target or (head.commit is not None and target in commit_ancestors(repo, [head.commit])):
            result.commit = head.commit
            return result
        if head.commit is not None and head.commit not in commit_ancestors(repo, [target]):
            raise NotFastForwardError("Not possible to fast-forward, aborting.", hint=DIVERGED_HINT)
        move_tree(repo, repo.tree_of(head.commit), repo.tree_of(target), force, progress)
        repo.refs.update_head(target, head.commit, f"pull: fast-forward to {upstream.short} ({short(target)})")
        result.fast_forward = True
    return result
