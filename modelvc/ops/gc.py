"""mvc gc: delete what nothing reachable needs, rewrite packs that are mostly dead, and store
each delta chain newest-whole (store/rechain.py).

Anything younger than the grace period (an hour by default) is kept, so an operation
in flight in another process is never robbed of the data it has just written. Reflogs are
expired first with the configured times (ops/expire.py), as git's gc does, so what only an
old reflog entry held goes too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelvc.commitcache import rebuild as rebuild_commit_cache
from modelvc.errors import IntegrityError
from modelvc.leftovers import remove_leftovers
from modelvc.ops.objectgc import collect_objects, finish_upgrade
from modelvc.ops.reach import Reachable, walk
from modelvc.ops.stats import store_size
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.safefs import sweep_tree
from modelvc.store import layout
from modelvc.store.backend import NotFoundInBackend
from modelvc.store.badchunks import save_bad_records
from modelvc.store.consolidate import Consolidation
from modelvc.store.rechain import Rechaining

GRACE_SECONDS = 3600
REWRITE_BELOW = 0.5  # rewrite a pack when less than this fraction of its bytes is live


@dataclass
class GcResult:
    """What gc removed and rewrote, and the store's size before and after, for its summary and --json."""

    reflog_entries_expired: int = 0
    objects_removed: int = 0
    packs_removed: int = 0
    packs_rewritten: int = 0
    packs_written: int = 0  # new packs: the live records of rewritten packs and the merged small ones
    incomplete_removed: int = 0
    leftovers_removed: int = 0  # temporary files of killed atomic writes
    chunks_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    stale_temps_removed: int = 0  # in the working tree, left by killed checkouts
    upgraded_to: int | None = None  # the format version gc upgraded the repository to
    chunks_rechained: int = 0  # delta chunks given a new record, newest of each chain whole (store/rechain.py)

    @property
    def bytes_freed(self) -> int:
        return self.bytes_before - self.bytes_after

    def to_dict(self) -> dict[str, Any]:
        """Sizes of the store (.mvc/objects and .mvc/packs) before and after."""
        return {"expired_reflog_entry_count": self.reflog_entries_expired,
                "deleted_object_count": self.objects_removed, "deleted_chunk_count": self.chunks_removed,
                "deleted_pack_count": self.packs_removed, "rewritten_pack_count": self.packs_rewritten,
                "written_pack_count": self.packs_written,
                "deleted_incomplete_pack_count": self.incomplete_removed,
                "deleted_leftover_count": self.leftovers_removed,
                "deleted_stale_temp_count": self.stale_temps_removed, "before_bytes": self.bytes_before,
                "after_bytes": self.bytes_after, "freed_bytes": self.bytes_freed,
                "upgraded_format_version": self.upgraded_to, "rechained_chunk_count": self.chunks_rechained}


def gc(repo: Repo, grace_seconds: float = GRACE_SECONDS, progress: Progress = NO_PROGRESS,
       expire_reflogs: bool = True) -> GcResult:
    """Remove what nothing reaches (after `grace_seconds`, so a concurrent add's new chunks
    survive) and rewrite packs mostly dead, under the writer lock; expired reflog entries first,
    since they may be all that still reaches old versions."""
    from modelvc.ops.expire import expire_reflogs as expire

    result = GcResult()
    with repo.transaction():
        repo.fresh_index()
        _forget_combined_index(repo)
        result.leftovers_removed = remove_leftovers(repo.mvc_dir, include_objects=True)
        if expire_reflogs:
            result.reflog_entries_expired = expire(repo).total_pruned
        result.bytes_before = store_size(repo)
        problems: list[str] = []
        reach = walk(repo, lambda kind, oid, detail: problems.append(detail), verify=False)
        if problems:
            raise IntegrityError("gc refused: the repository has missing or corrupt objects; "
                                 f"deleting now could lose more ({problems[0]})",
                                 hint="run 'mvc fsck' first")
        cutoff = time.time() - grace_seconds
        collected = collect_objects(repo, reach, cutoff)
        result.objects_removed = collected.removed
        rechained = _rechain(repo, reach, with_delta_bases(repo, set(reach.chunks)), cutoff, result, progress)
        _collect_packs(repo, with_delta_bases(repo, set(reach.chunks)), cutoff, result, progress, rechained)
        result.stale_temps_removed = len(sweep_tree(repo.root))
        rebuild_commit_cache(repo, reach.commits)  # derived data: rewritten whole, from what is kept
        result.bytes_after = store_size(repo)
        result.upgraded_to = finish_upgrade(repo)  # last: everything else is in place
    return result


def with_delta_bases(repo: Repo, live: set[bytes]) -> set[bytes]:
    """The live chunks plus every base their deltas need, transitively."""
    table = repo.chunks.index.entries()
    import numpy as np  # here: stats imports this module for store_size, and numpy costs 0.13 s

    has_base = table["base"] != np.void(bytes(32))
    bases: dict[bytes, list[bytes]] = {}  # a chunk being rechained has two records: both bases count
    for row in table[has_base]:
        bases.setdefault(row["id"].tobytes(), []).append(row["base"].tobytes())
    pending = [chunk for chunk in live if chunk in bases]
    live = set(live)
    while pending:
        for base in bases[pending.pop()]:
            if base not in live:
                live.add(base)
                if base in bases:
                    pending.append(base)
    return live


def _rechain(repo: Repo, reach: Reachable, live: set[bytes], cutoff: float, result: GcResult,
             progress: Progress) -> Rechaining:
    """Store each delta chain newest-whole (store/rechain.py): the packs written, the old records
    now superseded."""
    from modelvc.store.rechain import plan_chains, rechain

    if repo.delta_max_depth <= 0:
        return Rechaining()
    store = repo.chunks
    ages: dict[str, bool] = {}

    def old_enough(pack: str) -> bool:
        if pack not in ages:
            try:
                ages[pack] = store.backend.stat(layout.pack_key(pack)).mtime < cutoff
            except NotFoundInBackend:
                ages[pack] = False
        return ages[pack]

    chains = plan_chains(store.index, live, newness_of_chunks(repo, reach), repo.delta_max_depth, old_enough)
    done = rechain(store, chains, progress)
    result.chunks_rechained = done.records
    return done


def newness_of_chunks(repo: Repo, reach: Reachable) -> Callable[[bytes], int]:
    """How new the newest version holding a chunk is: the generation of its newest commit (a
    root commit is 1, a child one more than its highest parent), above all for a staged chunk."""
    generations: dict[str, int] = {}
    staged = 1 << 62

    def generation(commit_id: str) -> int:
        pending = [commit_id]
        while pending:
            current = pending[-1]
            if current in generations:
                pending.pop()
                continue
            parents = [p for p in repo.read_commit(current).parents if p in reach.commits]
            unknown = [p for p in parents if p not in generations]
            if unknown:
                pending.extend(unknown)
                continue
            generations[current] = 1 + max((generations[p] for p in parents), default=0)
            pending.pop()
        return generations[commit_id]

    def newness(chunk_id: bytes) -> int:
        best = 0
        for file_id in reach.chunk_files.get(chunk_id, ()):
            for tree_id, _ in reach.file_users.get(file_id, ()):
                if tree_id == "index":
                    return staged
                best = max([best, *(generation(commit) for commit in reach.tree_commits.get(tree_id, ()))])
        return best

    return newness


def _collect_packs(repo: Repo, live: set[bytes], cutoff: float, result: GcResult, progress: Progress,
                   rechained: Rechaining) -> None:
    """Drop incomplete packs, rewrite packs mostly dead or holding records superseded by
    rechaining, and merge small ones (the packs rechaining wrote too: they are this run's, not
    an operation's in flight; consolidate.py), then write the combined index of what is left."""
    from modelvc.store.consolidate import copy_records, pack_sizes, replace_packs, write_combined_index

    store = repo.chunks
    backend = store.backend
    for key in layout.incomplete_packs(backend):
        try:
            if backend.stat(key).mtime < cutoff:
                backend.delete(key)
                result.incomplete_removed += 1
        except NotFoundInBackend:
            continue
    index = store.index
    packs = store.pack_set()
    table, pack_of = index.entries(), index.pack_numbers()
    healed = _healed_records(repo)
    sizes = pack_sizes(packs, index.packs)
    superseded = rechained.superseded
    superseded_packs = {pack for _, pack in superseded}
    rewrite: list[int] = []
    small: list[int] = []
    for number, name in enumerate(index.packs):
        rows = table[pack_of == number]
        if backend.stat(layout.pack_key(name)).mtime >= cutoff and name not in rechained.packs:
            continue  # within the grace period nothing is touched (writers merge young packs)
        is_live = [row.tobytes() in live and (row.tobytes(), name) not in superseded for row in rows["id"]]
        live_bytes = int(rows["payload_len"][is_live].sum()) if rows.size else 0
        total = int(rows["payload_len"].sum()) or 1
        if (live_bytes / total < REWRITE_BELOW or any(pack == name for _, pack in healed)
                or name in superseded_packs):
            rewrite.append(number)
        elif sizes.get(name, 0) < packs.max_bytes // 2:
            small.append(number)
    if rewrite or len(small) >= 2:
        rewrite = sorted(rewrite + small)
    if not rewrite:
        write_combined_index(packs)
        _save_bad_list(repo, set(index.bad))
        return

    def keep(chunk_id: bytes, pack: str) -> bool:
        return chunk_id in live and (chunk_id, pack) not in healed and (chunk_id, pack) not in superseded

    selections = []
    for number in rewrite:
        name, rows = index.packs[number], table[pack_of == number]
        kept = rows[[keep(chunk_id.tobytes(), name) for chunk_id in rows["id"]]] if len(rows) else rows
        selections.append((name, kept))
        result.chunks_removed += sum(1 for chunk_id in rows["id"]
                                     if (chunk_id.tobytes(), name) not in superseded) - len(kept)
        result.packs_rewritten += 1 if len(kept) else 0
    merged = Consolidation()
    copy_records(packs, selections, merged, progress)
    bad = set(index.bad)
    bad |= {(chunk_id, new) for new, taken in merged.sources.items()
            for chunk_id, old in taken if (chunk_id, old) in bad}
    replace_packs(packs, [name for name, _ in selections], merged)
    result.packs_removed += len(merged.removed)
    result.packs_written += len(merged.written)
    _save_bad_list(repo, bad)
    store.reload()


def _forget_combined_index(repo: Repo) -> None:
    """Work from the pack indexes themselves (the combined index is derived from them and
    may be wrong); gc writes a fresh one at its end."""
    from modelvc.store.combined import remove_combined

    if remove_combined(repo.chunks.backend, layout.PACK_PREFIX):
        repo.chunks.reload()


def _healed_records(repo: Repo) -> set[tuple[bytes, str]]:
    """Records listed as bad whose chunk has another record that reads back verified."""
    index = repo.chunks.index
    healed = set()
    for chunk_id, pack in index.bad:
        location = index.locate(chunk_id)
        if location is None or location.pack == pack:
            continue
        try:
            repo.chunks.read(chunk_id)
        except IntegrityError:
            continue
        healed.add((chunk_id, pack))
    return healed


def _save_bad_list(repo: Repo, bad: set[tuple[bytes, str]]) -> None:
    """Keep the lines of records that still exist (the others were dropped or moved)."""
    existing = set(layout.complete_packs(repo.chunks.backend))
    save_bad_records(repo.chunks.bad_list, frozenset((c, p) for c, p in bad if p in existing))
