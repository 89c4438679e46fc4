"""mvc pull: fetch, then fast-forward the current branch (and the working tree) to its upstream."""

from __future__ import annotations

from modelvc.errors import NotFastForwardError, UnknownRevisionError, UsageError
from modelvc.ids import short
from modelvc.ops.materialize import move_tree
from modelvc.ops.reach import commit_ancestors
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.transfer.fetch import fetch
from modelvc.transfer.refsel import HEADS
from modelvc.transfer.result import TransferResult
from modelvc.transfer.upstream import Upstream, default_remote, upstream_of

DIVERGED_HINT = ("Diverging branches can't be fast-forwarded: merge or rebase is not in mvc yet; "
                 "keep your work on another branch ('mvc branch NAME'), then 'mvc rollback --hard' "
                 "this branch to its upstream, or push yours with --force")


def pull(repo: Repo, remote_name: str | None = None, force: bool = False,
         progress: Progress = NO_PROGRESS, branch: str | None = None) -> TransferResult:
    """Fetch from the current branch's upstream remote and fast-forward the branch to it; a
    `remote_name` without its upstream pulls the branch of the same name there, `branch` that one."""
    head = repo.refs.head()
    if head.branch is None:
        raise UsageError("You are not currently on a branch.", hint="check out a branch, then pull")
    upstream = upstream_of(repo.config, head.branch)
    named = branch is not None or bool(remote_name and (upstream is None or remote_name != upstream.remote))
    if named:
        upstream = Upstream(remote_name or default_remote(repo), f"{HEADS}{branch or head.branch}")
    elif upstream is None:
        raise UsageError("There is no tracking information for the current branch.",
                         hint=f"name what to pull ('mvc pull origin {head.branch}'), or make the branch track "
                              f"one ('mvc branch -u origin/{head.branch}')")
    result = fetch(repo, upstream.remote, progress)
    result.operation, result.branch = "pull", head.branch
    with repo.transaction():
        repo.fresh_index()
        head = repo.refs.head()
        target = repo.refs.read(upstream.tracking)
        if target is None and named:
            raise UnknownRevisionError(f"couldn't find remote ref {upstream.merge[len(HEADS):]}")
        if target is None:
            raise UnknownRevisionError(f"Your configuration specifies to merge with the ref '{upstream.merge}' "
                                       f"from the remote '{upstream.remote}', but no such ref was fetched.",
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
