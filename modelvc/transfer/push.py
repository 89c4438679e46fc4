"""mvc push: send the remote what it lacks of some refs, then move those refs conditionally.

What the remote lacks is computed here, from its refs and the cached indexes of its packs
(view.py), never by listing objects. Upload order: chunk packs, the metadata pack, then each ref
by a conditional write on the version tag read at the start (If-Match; If-None-Match for a new
ref): a ref only ever points at a complete closure, and of two pushes racing for one ref exactly
one wins; the other is told to fetch first and keeps all its own commits.

Every push also sends the registry: the note chain and every stage whose head the remote lacks
(the registry is part of the model's history; git pushes notes only when asked). A remote chain
that ours does not contain is rejected "fetch first" (fetch joins the chains), unless --force.
"""

from __future__ import annotations

from modelvc.errors import PushRejectedError, UsageError
from modelvc.ops.chainjoin import chain_ids
from modelvc.ops.reach import commit_ancestors
from modelvc.ops.remote import get_remote
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.store import layout
from modelvc.transfer.closure import closure
from modelvc.transfer.connect import Connection, connected
from modelvc.transfer.outgoing import Uploader, chunks_to_send
from modelvc.transfer.refsel import HEADS, REGISTRY_NAMESPACES, TAGS, RefSpec, push_specs, tracking_name
from modelvc.transfer.result import RefUpdate, TransferResult
from modelvc.transfer.upstream import DEFAULT_REMOTE, Upstream, default_remote, set_upstream, upstream_of
from modelvc.transfer.view import cache_dir

NON_FF_HINT = ("Updates were rejected because a pushed branch tip is behind its remote counterpart "
               "(non-fast-forward) or the remote has work you do not have locally (fetch first): "
               "'mvc pull' (or 'mvc fetch' and merge) before pushing again, or push with --force")


def push(repo: Repo, remote_name: str | None = None, refs: list[str] | None = None, *, set_upstream_ref: bool = False,
         all_branches: bool = False, tags: bool = False, force: bool = False, dry_run: bool = False,
         progress: Progress = NO_PROGRESS) -> TransferResult:
    """Push `refs` (default: the current branch to its upstream) to the remote.

    As git's push.default=simple: with nothing named, a branch without an upstream is refused
    when pushing to origin (which remote and branch it belongs to is the user's to say, once,
    with -u); to another remote it goes under its own name."""
    remote = get_remote(repo, remote_name or default_remote(repo))
    if remote.conditional_writes is False and not remote.allow_unconditional_push:
        raise UsageError(f"remote '{remote.name}' has no conditional writes: a push there could lose another's "
                         "ref update", hint=f"'mvc config remote.{remote.name}.allowUnconditionalPush true' "
                                            "to push anyway (unsafe with several writers)")
    head = repo.refs.head()
    current = f"{HEADS}{head.branch}" if head.branch else None
    upstream = upstream_of(repo.config, head.branch)
    local = {f"{HEADS}{name}": commit for name, commit in repo.refs.branches().items()}
    local |= {f"{TAGS}{name}": commit for name, commit in repo.refs.tags().items()}
    if not refs and not all_branches and not tags and current in local and upstream is None \
            and remote.name == DEFAULT_REMOTE:
        raise UsageError(f"The current branch {head.branch} has no upstream branch.",
                         hint="To push the current branch and set the remote as upstream, use "
                              f"'mvc push --set-upstream {remote.name} {head.branch}'")
    specs = push_specs(local, list(refs or []), current=current,
                       upstream=upstream.merge if upstream and upstream.remote == remote.name else None,
                       all_branches=all_branches, tags=tags, detached=head.commit if current is None else None)
    result = TransferResult("push", remote.name, remote.url, dry_run=dry_run)
    with connected(repo, remote) as conn:
        conn.view.load()
        result.refs = [_decide(repo, conn, spec, force) for spec in specs]
        result.refs += [update for update in _registry_updates(repo, conn, force) if update.status != "up to date"]
        moving = [update for update in result.refs if update.moved]
        found = closure([update.new for update in moving], repo.objects.get, conn.view.has_object)
        chosen = chunks_to_send(repo, conn, found.chunks)
        result.objects, result.chunks = len(found.objects), len(chosen)
        if not dry_run:
            _upload(repo, conn, chosen, found.objects, result, progress)
            for update in moving:
                _swap(conn, update)
        result.traffic = conn.backend.traffic
    if not dry_run:
        _record_locally(repo, remote.name, result, set_upstream_ref)
    if result.rejected:
        lines = "\n".join(update.line() for update in result.rejected)
        raise PushRejectedError(f"failed to push some refs to '{remote.url}'\n{lines}", hint=NON_FF_HINT,
                                result=result)
    return result


def _decide(repo: Repo, conn: Connection, spec: RefSpec, force: bool) -> RefUpdate:
    """Whether the remote ref may move to the pushed commit, as git decides it."""
    there = conn.view.refs.get(spec.destination)
    old = there.commit if there else None
    update = RefUpdate(spec.source, spec.destination, old, spec.commit, "new" if old is None else "fast-forward")
    if old is None:
        return update
    if old == spec.commit:
        update.status = "up to date"
    elif force:
        update.status = "forced"
    elif spec.destination.startswith(TAGS):
        update.status, update.reason = "rejected", "already exists"
    elif not repo.objects.has(old):
        update.status, update.reason = "rejected", "fetch first"
    elif old not in commit_ancestors(repo, [spec.commit]):
        update.status, update.reason = "rejected", "non-fast-forward"
    return update


def _registry_updates(repo: Repo, conn: Connection, force: bool) -> list[RefUpdate]:
    """The note chain and the stages, each a fast-forward when ours holds the remote's chain."""
    updates = []
    for namespace in REGISTRY_NAMESPACES:
        for name, head in repo.refs.under(namespace).items():
            there = conn.view.refs.get(namespace + name)
            old = there.commit if there else None
            update = RefUpdate(namespace + name, namespace + name, old, head, "new" if old is None else "fast-forward")
            if old == head:
                update.status = "up to date"
            elif old is not None and old not in chain_ids(repo, head):
                update.status, update.reason = ("forced", None) if force else ("rejected", "fetch first")
            updates.append(update)
    return updates


def _upload(repo: Repo, conn: Connection, chosen: list, object_ids: list[str], result: TransferResult,
            progress: Progress) -> None:
    uploader = Uploader(conn, cache_dir(repo.mvc_dir, conn.remote.name) / "outgoing", progress)
    progress.start("Pushing", sum(location.payload_len for _, location in chosen))
    try:
        uploader.send_chunks(repo, chosen)
        uploader.send_objects(repo, object_ids)
    finally:
        progress.finish()
        uploader.close()
    result.packs = uploader.packs


def _swap(conn: Connection, update: RefUpdate) -> None:
    """Move the remote ref from exactly what was read at the start; a lost race is "fetch first"."""
    there = conn.view.refs.get(update.destination)
    key = layout.ref_key(update.destination)
    if not conn.backend.swap_tagged(key, there.tag if there else None, f"{update.new}\n".encode()):
        update.status, update.reason = "rejected", "fetch first"


def upstreams_to_set(result: TransferResult) -> list[RefUpdate]:
    """The branches `-u` makes track where they went: every branch pushed or found up to date
    (git's rule), the current one or not."""
    return [update for update in result.refs if update.source.startswith(HEADS)
            and update.destination.startswith(HEADS) and update.status != "rejected"]


def _record_locally(repo: Repo, remote: str, result: TransferResult, set_upstreams: bool) -> None:
    """The remote-tracking refs of the branches that moved, and the upstreams `-u` asked for."""
    with repo.transaction():
        for update in result.refs:
            if update.status == "rejected" or not update.destination.startswith((HEADS, *REGISTRY_NAMESPACES)):
                continue
            tracking = tracking_name(remote, update.destination)
            current = repo.refs.read(tracking)
            if current != update.new:
                repo.refs.update(tracking, update.new, current, "update by push")
        for update in upstreams_to_set(result) if set_upstreams else []:
            set_upstream(repo, update.source[len(HEADS):], Upstream(remote, update.destination))
