"""gc of metadata objects: drop the unreachable ones, pack the loose ones, upgrade format 2 to 3.

The old metadata packs (those older than the grace period) and the old loose objects are
rewritten into one new metadata pack holding the live ones; young packs and young loose
objects are left as they are, so an operation in flight in another process keeps what it
has just written. Order: the new pack is sealed (pack and index durable) before any old pack
or loose file is deleted, and a format 2 repository's config says format 3 only at the very
end: a crash at any step loses nothing (what was deleted is in the new pack) and leaves the
repository readable by this modelvc.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from modelvc.ops.reach import Reachable
from modelvc.repo import PACKED_METADATA_FORMAT, Repo
from modelvc.store import layout
from modelvc.store.backend import Backend, NotFoundInBackend
from modelvc.store.objects import PACK_MAX_BYTES
from modelvc.store.packs import IDX_HEADER_SIZE, IDX_ROW, NO_BASE, Location, PackWriter, read_idx_rows

UPGRADABLE_FORMAT = 2  # format 1 chunks differently: its repositories keep loose objects


@dataclass
class ObjectGcResult:
    """What collect_objects removed and packed (gc's result takes the counts)."""

    removed: int = 0
    packs_removed: int = 0
    loose_packed: int = 0
    dropped: set[str] = field(default_factory=set)


def collect_objects(repo: Repo, reach: Reachable, cutoff: float) -> ObjectGcResult:
    """Remove unreachable metadata objects older than `cutoff` (a time), packing what stays."""
    result = ObjectGcResult()
    live = reach.object_ids
    version = repo.config["format_version"]
    packing = version >= PACKED_METADATA_FORMAT or version == UPGRADABLE_FORMAT
    objects = repo.objects
    old_loose = [oid for oid in objects.loose_ids() if _older(objects.backend, layout.object_key(oid), cutoff)]
    if not packing:
        result.dropped = {oid for oid in old_loose if oid not in live}
    else:
        _repack(repo, live, cutoff, old_loose, result)
    for object_id in old_loose:  # dead, or copied into the sealed pack
        if object_id in result.dropped or packing:
            objects.delete_loose(object_id)
    result.removed = len(result.dropped)
    objects.forget(result.dropped)
    return result


def _repack(repo: Repo, live: set[str], cutoff: float, old_loose: list[str], result: ObjectGcResult) -> None:
    """Write the live objects of old packs and old loose files into one sealed pack, then
    delete the old packs."""
    from modelvc.store.codecs import CODEC_ZSTD

    objects = repo.objects
    backend = objects.backend
    old_packs = [name for name in layout.complete_packs(backend, layout.META_PREFIX)
                 if _older(backend, layout.pack_key(name), cutoff)]
    copies: dict[str, Location] = {}
    for name in old_packs:
        data, count = read_idx_rows(backend, name)
        for row in range(count):
            raw_id, offset, payload_len, raw_len, codec, _, base = IDX_ROW.unpack_from(
                data, IDX_HEADER_SIZE + row * IDX_ROW.size)
            object_id = raw_id.hex()
            if object_id in live:
                copies.setdefault(object_id, Location(name, offset, payload_len, raw_len, codec,
                                                      None if base == NO_BASE else base))
            else:
                result.dropped.add(object_id)
    result.dropped.update(oid for oid in old_loose if oid not in live)
    loose_live = [oid for oid in old_loose if oid in live and oid not in copies]
    if len(old_packs) <= 1 and not loose_live and not (result.dropped - set(old_loose)):
        return  # nothing to merge, pack or drop from the packs
    written = None
    if copies or loose_live:
        writer = PackWriter(backend, PACK_MAX_BYTES, layout.META_PREFIX)
        try:
            for object_id, location in copies.items():
                raw_id = bytes.fromhex(object_id)
                writer.append(raw_id, location.codec, location.raw_len,
                              objects.reader.read_record(location, raw_id))
            for object_id in loose_live:
                data = objects.read_verified(object_id)
                writer.append(bytes.fromhex(object_id), CODEC_ZSTD, len(data), objects.read_loose(object_id))
            written = writer.finish()  # durable (pack and index) before anything is deleted
        except BaseException:
            writer.abort()
            raise
    result.loose_packed = len(loose_live)
    objects.reader.close()
    for name in old_packs:
        if name == written:  # packs are named by content: the same pack written again
            continue
        backend.delete(layout.idx_key(name))  # index first: readers skip the pack from now on
        backend.delete(layout.pack_key(name))
        result.packs_removed += 1
    objects.reload()


def _older(backend: Backend, key: str, cutoff: float) -> bool:
    try:
        return backend.stat(key).mtime < cutoff
    except NotFoundInBackend:  # removed since listed
        return False


def finish_upgrade(repo: Repo) -> int | None:
    """Say format 3 in a format 2 repository's config, once collect_objects has packed its
    objects: gc's very last step. The version upgraded to, or None."""
    from modelvc.config import read_config_file, write_config_file

    if repo.config["format_version"] != UPGRADABLE_FORMAT:
        return None
    path = repo.mvc_dir / "config"
    config = read_config_file(path, missing_ok=False)
    config["format_version"] = PACKED_METADATA_FORMAT
    write_config_file(path, config)
    return PACKED_METADATA_FORMAT
