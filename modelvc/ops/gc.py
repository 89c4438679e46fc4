"""mvc gc: delete what nothing reachable needs, and rewrite packs that are mostly dead.

Anything younger than the grace period (an hour by default) is kept, so an operation
in flight in another process is never robbed of the data it has just written. Reflogs are
expired first with the configured times (ops/expire.py), as git's gc does, so what only an
old reflog entry held goes too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelvc.errors import IntegrityError
from modelvc.leftovers import remove_leftovers
from modelvc.ops.objectgc import collect_objects, finish_upgrade
from modelvc.ops.reach import walk
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.safefs import sweep_tree
from modelvc.store import layout
from modelvc.store.backend import NotFoundInBackend, total_size
from modelvc.store.badchunks import save_bad_records
from modelvc.store.packs import Location, PackWriter

GRACE_SECONDS = 3600
REWRITE_BELOW = 0.5  # rewrite a pack when less than this fraction of its bytes is live


@dataclass
class GcResult:
    """What gc removed and rewrote, and the store's size before and after, for its summary and --json."""

    reflog_entries_expired: int = 0
    objects_removed: int = 0
    packs_removed: int = 0
    packs_rewritten: int = 0
    incomplete_removed: int = 0
    leftovers_removed: int = 0  # temporary files of killed atomic writes
    chunks_removed: int = 0
    bytes_before: int = 0
    bytes_after: int = 0
    stale_temps_removed: int = 0  # in the working tree, left by killed checkouts
    upgraded_to: int | None = None  # the format version gc upgraded the repository to

    @property
    def bytes_freed(self) -> int:
        return self.bytes_before - self.bytes_after

    def to_dict(self) -> dict[str, Any]:
        """Sizes of the store (.mvc/objects and .mvc/packs) before and after."""
        return {"expired_reflog_entry_count": self.reflog_entries_expired,
                "deleted_object_count": self.objects_removed, "deleted_chunk_count": self.chunks_removed,
                "deleted_pack_count": self.packs_removed, "rewritten_pack_count": self.packs_rewritten,
                "deleted_incomplete_pack_count": self.incomplete_removed,
                "deleted_leftover_count": self.leftovers_removed,
                "deleted_stale_temp_count": self.stale_temps_removed, "before_bytes": self.bytes_before,
                "after_bytes": self.bytes_after, "freed_bytes": self.bytes_freed,
                "upgraded_format_version": self.upgraded_to}


def store_size(repo: Repo) -> int:
    """Bytes of every object and pack file, whatever their state."""
    backend = repo.chunks.backend
    return total_size(backend, backend.list(layout.OBJECTS) + backend.list(layout.PACKS))


def gc(repo: Repo, grace_seconds: float = GRACE_SECONDS, progress: Progress = NO_PROGRESS,
       expire_reflogs: bool = True) -> GcResult:
    """Remove what nothing reaches (after `grace_seconds`, so a concurrent add's new chunks
    survive) and rewrite packs mostly dead, under the writer lock; expired reflog entries first,
    since they may be all that still reaches old versions."""
    from modelvc.ops.expire import expire_reflogs as expire

    result = GcResult()
    with repo.transaction():
        repo.fresh_index()
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
        _collect_packs(repo, with_delta_bases(repo, set(reach.chunks)), cutoff, result, progress)
        result.stale_temps_removed = len(sweep_tree(repo.root))
        result.bytes_after = store_size(repo)
        result.upgraded_to = finish_upgrade(repo)  # last: everything else is in place
    return result


def with_delta_bases(repo: Repo, live: set[bytes]) -> set[bytes]:
    """The live chunks plus every base their deltas need, transitively."""
    table = repo.chunks.index.entries()
    has_base = table["base"] != np.void(bytes(32))
    bases = {row["id"].tobytes(): row["base"].tobytes() for row in table[has_base]}
    pending = [chunk for chunk in live if chunk in bases]
    live = set(live)
    while pending:
        base = bases[pending.pop()]
        if base not in live:
            live.add(base)
            if base in bases:
                pending.append(base)
    return live


def _collect_packs(repo: Repo, live: set[bytes], cutoff: float, result: GcResult, progress: Progress) -> None:
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
    table, pack_of = index.entries(), index.pack_numbers()
    healed = _healed_records(repo)
    rewrite: list[int] = []
    for number, name in enumerate(index.packs):
        rows = table[pack_of == number]
        if backend.stat(layout.pack_key(name)).mtime >= cutoff:
            continue
        is_live = [row.tobytes() in live for row in rows["id"]]
        live_bytes = int(rows["payload_len"][is_live].sum()) if rows.size else 0
        total = int(rows["payload_len"].sum()) or 1
        if live_bytes / total < REWRITE_BELOW or any(pack == name for _, pack in healed):
            rewrite.append(number)
    if not rewrite:
        _save_bad_list(repo, set(index.bad))
        return
    rows_to_copy = [(index.packs[n], row) for n in rewrite for row in table[pack_of == n]
                    if row["id"].tobytes() in live and (row["id"].tobytes(), index.packs[n]) not in healed]
    progress.start("Repacking", sum(int(row["payload_len"]) for _, row in rows_to_copy))
    bad = set(index.bad)
    writer: PackWriter | None = None
    still_bad: list[bytes] = []  # corrupt with no good copy yet: they stay listed where they go
    written: set[str | None] = set()

    def seal(writer: PackWriter) -> None:
        name = writer.finish()
        written.add(name)
        bad.update((chunk_id, name) for chunk_id in still_bad if name is not None)
        still_bad.clear()

    try:
        for pack, row in rows_to_copy:
            chunk_id, base = row["id"].tobytes(), row["base"].tobytes()
            location = Location(pack, int(row["offset"]), int(row["payload_len"]), int(row["raw_len"]),
                                int(row["codec"]), None if base == bytes(32) else base)
            payload = store.reader.read_record(location, chunk_id)
            if writer is None:
                writer = PackWriter(backend, store.pack_max_bytes)
            writer.append(chunk_id, location.codec, location.raw_len, payload, location.base)
            if (chunk_id, pack) in bad:
                still_bad.append(chunk_id)
            progress.advance(len(payload))
            if writer.full:
                seal(writer)
                writer = None
        if writer is not None:
            seal(writer)
            writer = None
    finally:
        if writer is not None:
            writer.abort()
        progress.finish()
    # New packs are sealed: only now drop the old ones (index first, so readers skip the pack).
    store.reader.close()
    for number in rewrite:
        name = index.packs[number]
        dead = int((pack_of == number).sum()) - sum(1 for p, _ in rows_to_copy if p == name)
        result.chunks_removed += dead
        if name in written:  # packs are named by content: a copy identical to its source is the source
            continue
        backend.delete(layout.idx_key(name))
        backend.delete(layout.pack_key(name))
        result.packs_rewritten += 1 if any(p == name for p, _ in rows_to_copy) else 0
        result.packs_removed += 1
    _save_bad_list(repo, bad)
    store.reload()


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
