"""A branch's upstream: `branch.NAME.remote` and `branch.NAME.merge` in `.mvc/config` (git's keys),
set by `push -u`, `clone` and a branch made from a remote-tracking one, read by `push`, `pull`
and `status`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelvc.config import read_config_file, write_config_file
from modelvc.remotes import remotes_in
from modelvc.repo import Repo
from modelvc.transfer.refsel import HEADS, REMOTES, tracking_name

DEFAULT_REMOTE = "origin"


@dataclass(frozen=True)
class Upstream:
    remote: str
    merge: str  # refs/heads/main: the branch's name on the remote

    @property
    def tracking(self) -> str:
        """The remote-tracking ref that mirrors it: refs/remotes/origin/main."""
        return tracking_name(self.remote, self.merge)

    @property
    def short(self) -> str:
        return self.tracking[len("refs/remotes/"):]


def upstream_of(config: dict[str, Any], branch: str | None) -> Upstream | None:
    if branch is None:
        return None
    entry = config.get("branch", {}).get(branch) if isinstance(config.get("branch"), dict) else None
    if not isinstance(entry, dict):
        return None
    remote, merge = entry.get("remote"), entry.get("merge")
    if not isinstance(remote, str) or not isinstance(merge, str) or not merge.startswith(HEADS):
        return None
    return Upstream(remote, merge)


def set_upstream(repo: Repo, branch: str, upstream: Upstream) -> None:
    """Record the upstream of `branch` (the caller holds the repository lock)."""
    path = repo.mvc_dir / "config"
    data = read_config_file(path, missing_ok=False)
    found = data.get("branch")
    section: dict[str, Any] = found if isinstance(found, dict) else {}
    entry = section.get(branch)
    section[branch] = {**(entry if isinstance(entry, dict) else {}), "remote": upstream.remote,
                       "merge": upstream.merge}
    data["branch"] = section
    write_config_file(path, data)


def default_remote(repo: Repo) -> str:
    """The current branch's upstream remote, else "origin" (git's default)."""
    found = upstream_of(repo.config, repo.refs.head().branch)
    return found.remote if found else DEFAULT_REMOTE


def upstream_of_start(repo: Repo, start: str | None) -> Upstream | None:
    """The upstream a branch made at `start` takes (git's branch.autoSetupMerge): the remote's
    branch when `start` names a remote-tracking branch of a configured remote (origin/x,
    remotes/origin/x, refs/remotes/origin/x) rather than a local branch or tag."""
    from modelvc.refname import is_valid_ref_name
    from modelvc.revparse import matching_refs

    found = matching_refs(start, repo.refs) if start and is_valid_ref_name(start) else []
    if not found or not found[0].startswith(REMOTES):
        return None
    remote, _, branch = found[0][len(REMOTES):].partition("/")
    return Upstream(remote, f"{HEADS}{branch}") if branch and remote in remotes_in(repo.config) else None


def guess_remote_branch(repo: Repo, name: str) -> str | None:
    """git's checkout guess: the one remote-tracking branch `name` of some remote ("origin/name"),
    for `checkout NAME` where no local branch or revision is called that; None if none or several."""
    from modelvc.refname import is_valid_ref_name

    if not is_valid_ref_name(name) or name.startswith("refs/"):
        return None
    found = [remote for remote in remotes_in(repo.config) if repo.refs.read(f"{REMOTES}{remote}/{name}")]
    return f"{found[0]}/{name}" if len(found) == 1 else None


def divergence(repo: Repo, branch: str | None, commit: str | None) -> tuple[Upstream, int, int] | None:
    """(upstream, ahead, behind): how many commits the branch and its fetched upstream each have
    that the other lacks; None without an upstream, a fetched one or a commit (status, branch -vv)."""
    from modelvc.ops.reach import commit_ancestors

    upstream = upstream_of(repo.config, branch)
    tip = repo.refs.read(upstream.tracking) if upstream is not None else None
    if upstream is None or tip is None or commit is None:
        return None
    mine, theirs = commit_ancestors(repo, [commit]), commit_ancestors(repo, [tip])
    return upstream, len(mine - theirs), len(theirs - mine)
