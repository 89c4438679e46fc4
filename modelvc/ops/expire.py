"""Reflog expiry, with git's rules and defaults.

A reflog keeps every commit it names alive for gc. As in git, an entry goes once it is older
than gc.reflogExpire (90 days), or older than gc.reflogExpireUnreachable (30 days) when the
commit it names is no longer reachable from the ref's current tip: a branch's history stays
for three months, an abandoned experiment (or a 10 GB file committed by mistake and rolled
back) for one. `--expire=now` drops everything, so the space can be had back today.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from modelvc.errors import ConfigError, MvcError, UsageError
from modelvc.expiry import parse_expiry
from modelvc.ops.reach import commit_ancestors
from modelvc.refname import check_ref_name
from modelvc.refs import ZERO_ID
from modelvc.repo import Repo


def configured_expiry(repo: Repo, now: float) -> tuple[float, float]:
    """The cutoffs of gc.reflogExpire and gc.reflogExpireUnreachable (the repository's config,
    else the global one, else git's 90 and 30 days)."""
    from modelvc.config import effective

    cutoffs = []
    for key in ("gc.reflogExpire", "gc.reflogExpireUnreachable"):
        try:
            cutoffs.append(parse_expiry(str(effective(repo.config, key)), now))
        except UsageError as exc:
            raise ConfigError(f"{exc.message} ({key} in the config)", hint=exc.hint) from None
    return cutoffs[0], cutoffs[1]


@dataclass
class ExpireResult:
    pruned: dict[str, int] = field(default_factory=dict)  # reflog name -> entries removed
    kept: int = 0

    @property
    def total_pruned(self) -> int:
        return sum(self.pruned.values())

    def to_dict(self) -> dict:
        return {"expired_count": self.total_pruned, "kept_count": self.kept,
                "expired_count_by_ref": self.pruned}


def expire_reflogs(repo: Repo, refs: list[str] | None = None, expire: str | None = None,
                   expire_unreachable: str | None = None) -> ExpireResult:
    """Expire the reflogs of `refs` (None: every reflog, deleted refs' too)."""
    with repo.transaction():
        now = time.time()
        configured_total, configured_unreachable = configured_expiry(repo, now)
        total_cutoff = parse_expiry(expire, now) if expire else configured_total
        unreachable_cutoff = parse_expiry(expire_unreachable, now) if expire_unreachable else configured_unreachable
        unreachable_cutoff = max(total_cutoff, unreachable_cutoff)
        names = repo.refs.reflog_names() if refs is None else [_log_name(repo, r) for r in refs]
        result = ExpireResult()
        for name in names:
            entries = repo.refs.reflog_file(name)
            reachable: set[str] | None = None
            computed = False
            kept = []
            for entry in entries:
                expired = entry.time < total_cutoff
                if not expired and entry.time < unreachable_cutoff:
                    if not computed:
                        reachable, computed = _reachable_from_tip(repo, name), True
                    expired = reachable is not None and any(c != ZERO_ID and c not in reachable
                                                            for c in (entry.old, entry.new))
                if not expired:
                    kept.append(entry)
            if len(kept) != len(entries):
                repo.refs.rewrite_reflog(name, kept)
                result.pruned[name] = len(entries) - len(kept)
            result.kept += len(kept)
        return result


def _log_name(repo: Repo, ref: str) -> str:
    """The reflog of what a user typed: HEAD, a full ref name, a branch, else a tag (validated,
    so that no name reaches outside .mvc/logs)."""
    if ref == "HEAD":
        return ref
    if ref.startswith("refs/"):
        check_ref_name(ref[len("refs/"):], "ref")
        return ref
    check_ref_name(ref, "ref")
    if repo.refs.read(f"refs/heads/{ref}") is None and repo.refs.read(f"refs/tags/{ref}") is not None:
        return f"refs/tags/{ref}"
    return f"refs/heads/{ref}"


def _reachable_from_tip(repo: Repo, name: str) -> set[str] | None:
    """Commits the ref's current value reaches (none for a deleted ref or a log in the attic);
    None when that cannot be known (a corrupt ref or a missing commit): then nothing expires early."""
    try:
        tip = repo.refs.read(name) if name == "HEAD" or name.startswith("refs/") else None
        return commit_ancestors(repo, [tip]) if tip else set()
    except MvcError:
        return None
