"""mvc stats: how many bytes the versions hold, and how few the store needs for them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from modelvc.ops.reach import walk
from modelvc.repo import Repo
from modelvc.store import layout
from modelvc.store.backend import total_size


@dataclass
class StatsResult:
    """How much the history holds against what the store keeps: the dedup and compression won."""

    commits: int = 0
    file_versions: int = 0
    tracked_bytes: int = 0  # sum over every commit of its files' sizes
    unique_file_bytes: int = 0  # each distinct file version counted once
    unique_chunks: int = 0
    unique_chunk_bytes: int = 0  # after chunk dedup, before compression
    stored_chunk_bytes: int = 0  # payload bytes in packs (live and dead)
    pack_bytes: int = 0
    packs: int = 0
    object_bytes: int = 0  # metadata objects: their packs and loose files
    objects: int = 0
    metadata_packs: int = 0
    codecs: dict[str, int] = field(default_factory=dict)
    delta_chunks: int = 0
    delta_raw_bytes: int = 0
    delta_stored_bytes: int = 0
    delta_saved_bytes: int = 0  # estimate: what full byte-plane chunks would have taken, minus the deltas
    # what branches, tags, HEAD and the index hold, and what only reflog entries keep alive
    # (gc frees the latter once 'mvc reflog expire' drops those entries)
    refs: dict[str, int] = field(default_factory=dict)
    reflogs_only: dict[str, int] = field(default_factory=dict)

    @property
    def stored_bytes(self) -> int:
        return self.pack_bytes + self.object_bytes

    @property
    def ratio(self) -> float:
        return self.stored_bytes / self.tracked_bytes if self.tracked_bytes else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"commit_count": self.commits, "file_version_count": self.file_versions,
                "tracked_bytes": self.tracked_bytes, "unique_file_bytes": self.unique_file_bytes,
                "unique_chunk_count": self.unique_chunks, "unique_chunk_bytes": self.unique_chunk_bytes,
                "stored_chunk_bytes": self.stored_chunk_bytes, "pack_count": self.packs,
                "pack_bytes": self.pack_bytes, "object_bytes": self.object_bytes,
                "object_count": self.objects, "metadata_pack_count": self.metadata_packs,
                "stored_bytes": self.stored_bytes, "ratio": self.ratio,
                "chunk_count_by_codec": self.codecs, "delta_chunk_count": self.delta_chunks,
                "delta_raw_bytes": self.delta_raw_bytes, "delta_stored_bytes": self.delta_stored_bytes,
                "delta_saved_bytes": self.delta_saved_bytes, "held_by_refs": self.refs,
                "held_by_reflogs_only": self.reflogs_only}


def stats(repo: Repo) -> StatsResult:
    """Sizes over every commit reachable from refs and reflogs, and what each keeps alive."""
    with repo.objects.bulk_verified():  # every object is read anyway: by whole packs
        from_refs = walk(repo, lambda *args: None, verify=False, reflogs=False)
        refs_commits, refs_chunks = set(from_refs.commits), dict(from_refs.chunks)
        reach = walk(repo, lambda *args: None, verify=False, into=from_refs)  # the reflogs add to it
    result = StatsResult(commits=len(reach.commits), file_versions=len(reach.files))
    result.tracked_bytes = sum(reach.tree_bytes.get(tree_id, 0) * len(commits)
                               for tree_id, commits in reach.tree_commits.items())
    result.unique_file_bytes = sum(reach.file_sizes.get(f, 0) for f in reach.files)
    result.unique_chunks = len(reach.chunks)
    result.unique_chunk_bytes = sum(reach.chunks.values())
    payload: dict[bytes, int] = {}
    counts: Counter[int] = Counter()
    raw_by_codec: Counter[int] = Counter()
    stored_by_codec: Counter[int] = Counter()
    for chunk_id, _, payload_len, raw_len, codec, _, _ in repo.chunks.index.rows():
        payload[chunk_id] = payload_len
        counts[codec] += 1
        raw_by_codec[codec] += raw_len
        stored_by_codec[codec] += payload_len
    result.stored_chunk_bytes = sum(stored_by_codec.values())
    from modelvc.store.codecs import CODEC_DELTA, CODEC_PLANES, codec_name

    result.codecs = {codec_name(code): n for code, n in sorted(counts.items())}
    result.delta_chunks = counts[CODEC_DELTA]
    result.delta_raw_bytes = raw_by_codec[CODEC_DELTA]
    result.delta_stored_bytes = stored_by_codec[CODEC_DELTA]
    if result.delta_chunks:
        plane_ratio = (stored_by_codec[CODEC_PLANES] / raw_by_codec[CODEC_PLANES]) if counts[CODEC_PLANES] else 1.0
        result.delta_saved_bytes = max(0, round(result.delta_raw_bytes * plane_ratio) - result.delta_stored_bytes)
    only_chunks = set(reach.chunks) - set(refs_chunks)
    result.refs = _share(len(refs_commits), refs_chunks, set(refs_chunks), payload)
    result.reflogs_only = _share(len(reach.commits - refs_commits), reach.chunks, only_chunks, payload)
    backend = repo.chunks.backend
    names = layout.complete_packs(backend)
    result.packs = len(names)
    pack_files = total_size(backend, [key for n in names for key in (layout.pack_key(n), layout.idx_key(n))])
    result.pack_bytes = pack_files + total_size(backend, [layout.combined_key()])
    result.object_bytes = store_size(repo) - pack_files
    result.objects = repo.objects.count()
    result.metadata_packs = len(layout.complete_packs(backend, layout.META_PREFIX))
    return result


def store_size(repo: Repo) -> int:
    """Bytes of every object and pack file, whatever their state (not the combined index: it is
    derived data, which gc may write where it frees nothing). Here, not in gc: stats would import
    all of gc for it."""
    backend = repo.chunks.backend
    keys = backend.list(layout.OBJECTS) + backend.list(layout.PACKS)
    return total_size(backend, [key for key in keys if key != layout.combined_key()])


def _share(commits: int, lengths: dict[bytes, int], chunks: set[bytes], payload: dict[bytes, int]) -> dict[str, int]:
    return {"commit_count": commits, "chunk_count": len(chunks), "chunk_bytes": sum(lengths[c] for c in chunks),
            "stored_bytes": sum(payload.get(c, 0) for c in chunks)}
