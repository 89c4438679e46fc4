"""mvc fetch: bring a remote's branches and tags, and everything they need, into the local store.

Order: the metadata objects the local store lacks (ranged reads of the remote's metadata packs),
then the chunks the new file versions need (chunkfetch.py), then the objects themselves, then
the remote-tracking refs `refs/remotes/NAME/BRANCH` and new tags, each only once its whole
closure is stored (only the branches or tags named, when some are: `fetch origin main`). A
fetch killed part-way and run again reads only what is still missing.

From a partial clone's remote (`remote.NAME.partial`) a fetch brings the metadata only: checkout
fetches the chunks of what it writes (lazy.py). `all_data` completes the store instead: every
chunk of everything reachable, after which the remote is no longer marked partial.
The remote's note chain and stages are kept as `refs/remote-registry/NAME/...`, and the local
refs/notes/commits and refs/stages/X follow them at once: fast-forwarded, or joined
(chainjoin.py) when both sides added records, so the next push is a fast-forward. Notes and moves
are a set of self-contained records: joining them is always right, nothing is lost.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelvc import objects as objmod
from modelvc.errors import MissingObjectError, UnknownRevisionError
from modelvc.ids import short
from modelvc.ops.chainjoin import chain_ids, join_chains
from modelvc.ops.remote import get_remote, set_partial
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.transfer.chunkfetch import fetch_chunks
from modelvc.transfer.closure import closure
from modelvc.transfer.connect import connected
from modelvc.transfer.objectfetch import fetch_missing_objects, read_loose_object
from modelvc.transfer.refsel import HEADS, REGISTRY_NAMESPACES, TAGS, tracking_name
from modelvc.transfer.result import RefUpdate, TransferResult
from modelvc.transfer.upstream import default_remote


def fetch(repo: Repo, remote_name: str | None = None, progress: Progress = NO_PROGRESS,
          all_data: bool = False, names: Sequence[str] = ()) -> TransferResult:
    """Fetch every branch and tag of the remote (default: the current branch's, else origin),
    or only the branches (else tags) `names` names, as `git fetch origin main` does."""
    remote = get_remote(repo, remote_name or default_remote(repo))
    result = TransferResult("fetch", remote.name, remote.url, partial=remote.partial and not all_data)
    with connected(repo, remote) as conn, repo.transaction():
        view = conn.view.load()
        fetched = fetch_missing_objects(repo, conn)

        def load(object_id: str) -> objmod.StoredObject:
            if object_id not in fetched:
                loose = read_loose_object(conn, object_id)
                if loose is not None:
                    fetched[object_id] = loose
            if object_id in fetched:
                return objmod.decode(fetched[object_id], object_id)
            raise MissingObjectError(f"object {short(object_id)} is on neither the remote {remote.url} nor the "
                                     "local store", hint="nothing was stored; the remote needs repair")

        tips = _named(names, {ref.name: ref.commit for ref in view.refs.values()})
        found = closure(tips.values(), load, lambda object_id: object_id not in fetched and repo.objects.has(object_id))
        if not result.partial:
            result.chunks = fetch_chunks(repo, conn, found.chunks, progress).chunks
        with repo.objects.batch():
            for object_id in found.objects:
                repo.objects.put_encoded(fetched[object_id])
        result.objects = len(found.objects)
        result.refs = [update for name, commit in sorted(tips.items())
                       if (update := _update_local(repo, remote.name, name, commit)) is not None]
        if remote.partial and all_data:
            result.chunks += fetch_chunks(repo, conn, _reachable_chunks(repo), progress).chunks
            set_partial(repo, remote.name, False)
            repo.promisor = None
        result.refs += [update for name, head in sorted(tips.items()) if name.startswith(REGISTRY_NAMESPACES)
                        if (update := _follow_registry(repo, name, head)) is not None]
        result.traffic = conn.backend.traffic
    return result


def _named(names: Sequence[str], tips: dict[str, str]) -> dict[str, str]:
    """The remote's refs a fetch brings: all of them, or the branch (else the tag) of each name."""
    if not names:
        return tips
    chosen = {}
    for name in names:
        full = next((full for full in (f"{HEADS}{name}", f"{TAGS}{name}", name) if full in tips), None)
        if full is None or full.startswith(REGISTRY_NAMESPACES):
            raise UnknownRevisionError(f"couldn't find remote ref {name}")
        chosen[full] = tips[full]
    return chosen


def _reachable_chunks(repo: Repo) -> set[bytes]:
    """Every chunk of everything refs, reflogs and the index reach (what fsck verifies); an
    object that cannot be read is fsck's to report, not a reason to fetch less."""
    from modelvc.ops.reach import walk

    return set(walk(repo, lambda kind, object_id, detail: None, verify=False).chunks)


def _update_local(repo: Repo, remote: str, name: str, commit: str) -> RefUpdate | None:
    """Move the remote-tracking ref (or create the tag); a local tag of the same name that holds
    something else is kept (git: "would clobber existing tag")."""
    local = tracking_name(remote, name)
    current = repo.refs.read(local)
    if current == commit:
        return None
    update = RefUpdate(name, local, current, commit, "new" if current is None else "forced")
    if name.startswith(TAGS) and current is not None:
        update.status, update.reason = "rejected", "would clobber existing tag"
        return update
    if name.startswith(REGISTRY_NAMESPACES) and current is not None and current in chain_ids(repo, commit):
        update.status = "fast-forward"
    if name.startswith(HEADS) and current is not None and repo.objects.has(current):
        from modelvc.ops.reach import commit_ancestors

        if current in commit_ancestors(repo, [commit]):
            update.status = "fast-forward"
    repo.refs.update(local, commit, current, f"fetch: {'storing head' if current is None else 'fast-forward'}")
    return update


def _follow_registry(repo: Repo, name: str, theirs: str) -> RefUpdate | None:
    """Move the local note chain or stage to hold the remote's: a fast-forward, or the join of
    both chains (the local records written again on top of the remote's, last)."""
    ours = repo.refs.read(name)
    head = join_chains(repo, theirs, ours)
    if head is None or head == ours:
        return None
    status = "new" if ours is None else "fast-forward" if head == theirs else "joined"
    repo.refs.update(name, head, ours, f"fetch: {status}")
    return RefUpdate(name, name, ours, head, status)
