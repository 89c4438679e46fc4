"""Consolidation of packs (gc and gc.auto_packs) and the combined index they write."""

from __future__ import annotations

import json
import shutil

import pytest

from modelvc.repo import Repo
from modelvc.samples import ModelShape, init_weights, nudge, write_safetensors
from modelvc.store import layout
from modelvc.store.backend import DirectoryBackend
from modelvc.store.chunkindex import ChunkIndex
from modelvc.store.combined import COMBINED_MAGIC, read_combined
from modelvc.store.consolidate import geometric_selection
from modelvc.store.packs import pack_names
from tests.conftest import random_bytes, write

SHAPE = ModelShape(vocab=64, d_model=64, layers=1, d_ff=128)  # about 40 KB in bf16


def set_config(work, **values) -> None:
    path = work / ".mvc" / "config"
    config = json.loads(path.read_text())
    config.update(values)
    path.write_text(json.dumps(config))


def commit_versions(mvc, work, count: int) -> list[tuple[str, dict[str, bytes]]]:
    """`count` commits, each its own pack: a nudged model (delta records) and a new small file."""
    weights = init_weights(SHAPE, seed=1)
    commits = []
    for number in range(count):
        write_safetensors(work / "m.safetensors", weights)
        write(work / f"f{number}.bin", random_bytes(3000 + number, seed=number))
        mvc("add", ".")
        commit_id = mvc("commit", "-m", f"v{number}", "-q").stdout.strip()
        commits.append((commit_id, tracked_files(work)))
        weights = nudge(weights, list(weights), 1e-4, seed=100 + number)
    return commits


def tracked_files(work) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in work.iterdir() if p.is_file()}


def stored_records(work) -> dict[bytes, tuple]:
    """Every chunk's record as stored: codec, lengths, base and payload bytes."""
    with Repo(work) as repo:
        index = repo.chunks.index
        records = {}
        for row in index.entries():
            location = index.locate(row["id"].tobytes())
            payload = bytes(repo.chunks.reader.read_record(location, row["id"].tobytes()))
            records[row["id"].tobytes()] = (location.codec, location.raw_len, location.base, payload)
        return records


def stored_ids(commits, work) -> set[bytes]:
    """The chunk ids of every file of every commit."""
    with Repo(work) as repo:
        return {bytes.fromhex(chunk) for commit_id, _ in commits
                for entry in repo.tree_of(repo.resolve(commit_id)).entries
                for chunk, _ in repo.objects.get(entry.manifest_id).chunks}


def chained_ids(records: dict[bytes, tuple]) -> set[bytes]:
    """The chunks of delta chains (deltas and their bases): those gc rechains."""
    deltas = {chunk_id for chunk_id, (_, _, base, _) in records.items() if base is not None}
    return deltas | {records[chunk_id][2] for chunk_id in deltas}


def assert_every_version_checks_out(mvc, work, commits) -> None:
    for commit_id, files in commits:
        mvc("checkout", "--force", commit_id)
        assert tracked_files(work) == files


def test_gc_merges_small_packs_keeping_records_as_they_are(mvc, work):
    commits = commit_versions(mvc, work, 4)
    packs = work / ".mvc" / "packs"
    assert len(pack_names(packs)) == 4
    before = stored_records(work)
    chained = chained_ids(before)
    assert chained, "the series must hold deltas"
    summary = mvc.json("gc", "--grace", "0")
    # The delta chains are stored newest-whole (its own pack, merged too); the rest copied as is.
    assert summary["rechained_chunk_count"] == len(chained)
    assert summary["written_pack_count"] == 1 and summary["deleted_pack_count"] == 5
    assert summary["deleted_chunk_count"] == 0
    assert len(pack_names(packs)) == 1
    after = stored_records(work)
    rechained = {chunk_id for chunk_id in after if after[chunk_id] != before[chunk_id]}
    assert after.keys() == before.keys() and rechained == chained
    assert_every_version_checks_out(mvc, work, commits)
    assert mvc.json("fsck", "--read-data")["ok"] is True


def test_gc_fills_packs_up_to_pack_max_bytes_and_writes_the_combined_index(mvc, work):
    commits = commit_versions(mvc, work, 5)
    backend = DirectoryBackend(work / ".mvc")
    total = sum(backend.stat(layout.pack_key(name)).size for name in pack_names(work / ".mvc" / "packs"))
    set_config(work, pack_max_bytes=total // 2)
    before = stored_records(work)
    mvc("gc", "--grace", "0")
    names = pack_names(work / ".mvc" / "packs")
    sizes = [backend.stat(layout.pack_key(name)).size for name in names]
    assert len(names) in (2, 3) and max(sizes) <= total // 2
    combined = read_combined(backend, layout.PACK_PREFIX)
    assert combined is not None and combined.packs == names and combined.count == len(before)
    assert ChunkIndex(backend).combined_packs == names
    after = stored_records(work)
    assert after.keys() == before.keys()
    assert all(after[chunk_id] == record for chunk_id, record in before.items() if chunk_id not in chained_ids(before))
    assert_every_version_checks_out(mvc, work, commits)


def test_gc_drops_only_what_is_unreachable(mvc, work):
    write(work / "keep.bin", random_bytes(20_000, seed=1))
    mvc("add", "keep.bin")
    mvc("commit", "-m", "keep")
    write(work / "junk.bin", random_bytes(20_000, seed=2))
    mvc("add", "junk.bin")
    mvc("rm", "--cached", "junk.bin")
    write(work / "more.bin", random_bytes(5_000, seed=3))
    mvc("add", "more.bin")
    mvc("commit", "-m", "more")
    summary = mvc.json("gc", "--grace", "0")
    assert summary["deleted_chunk_count"] > 0 and len(pack_names(work / ".mvc" / "packs")) == 1
    (work / "keep.bin").unlink()
    (work / "more.bin").unlink()
    mvc("checkout", "--force", "HEAD")
    assert (work / "keep.bin").read_bytes() == random_bytes(20_000, seed=1)
    assert (work / "more.bin").read_bytes() == random_bytes(5_000, seed=3)
    assert mvc.json("fsck", "--read-data")["ok"] is True


def test_auto_consolidation_merges_past_the_threshold_and_not_below(mvc, work):
    mvc("config", "gc.auto_packs", "3")
    packs = work / ".mvc" / "packs"
    counts = []
    for number in range(7):
        write(work / f"f{number}.bin", random_bytes(2000, seed=number))
        mvc("add", f"f{number}.bin")
        counts.append(len(pack_names(packs)))
    assert counts[:3] == [1, 2, 3]  # up to the threshold: one pack per add, none merged
    assert counts[3] < 4 and max(counts) <= 3  # past it: merged at once, never more than 3
    mvc("commit", "-m", "all")
    assert mvc.json("fsck", "--read-data")["ok"] is True
    for number in range(7):
        (work / f"f{number}.bin").unlink()
    mvc("checkout", "--force", "HEAD")
    assert all((work / f"f{n}.bin").read_bytes() == random_bytes(2000, seed=n) for n in range(7))


def test_auto_consolidation_is_off_at_zero(mvc, work):
    mvc("config", "gc.auto_packs", "0")
    for number in range(4):
        write(work / f"f{number}.bin", random_bytes(2000, seed=number))
        mvc("add", f"f{number}.bin")
    assert len(pack_names(work / ".mvc" / "packs")) == 4


def test_auto_consolidation_keeps_unreachable_chunks(mvc, work):
    """Only gc decides what is garbage: a writer past the threshold keeps every record."""
    mvc("config", "gc.auto_packs", "1")
    write(work / "junk.bin", random_bytes(4000, seed=9))
    mvc("add", "junk.bin")
    mvc("rm", "--cached", "junk.bin")
    junk = set(stored_records(work))
    write(work / "a.bin", random_bytes(4000, seed=1))
    mvc("add", "a.bin")
    assert len(pack_names(work / ".mvc" / "packs")) == 1
    assert junk <= set(stored_records(work))


def combined_store(mvc, work) -> tuple[DirectoryBackend, list]:
    """A store of several full packs and their combined index, written by gc."""
    commits = commit_versions(mvc, work, 4)
    backend = DirectoryBackend(work / ".mvc")
    total = sum(backend.stat(layout.pack_key(name)).size for name in pack_names(work / ".mvc" / "packs"))
    set_config(work, pack_max_bytes=total // 2)
    mvc("gc", "--grace", "0")
    assert len(read_combined(backend, layout.PACK_PREFIX).packs) >= 2
    return backend, commits


def test_start_up_reads_the_combined_index_not_the_pack_indexes_it_covers(mvc, work):
    backend, commits = combined_store(mvc, work)
    for name in pack_names(work / ".mvc" / "packs"):
        backend.local_path(layout.idx_key(name)).write_bytes(b"not read")
    index = ChunkIndex(backend)
    assert index.combined_packs == pack_names(work / ".mvc" / "packs")
    assert all(index.locate(chunk_id) is not None for chunk_id in stored_ids(commits, work))
    assert_every_version_checks_out(mvc, work, commits)


def test_packs_sealed_after_the_combined_index_are_found(mvc, work):
    backend, commits = combined_store(mvc, work)
    write(work / "new.bin", random_bytes(3000, seed=77))
    mvc("add", "new.bin")
    index = ChunkIndex(backend)
    assert len(index.packs) == len(index.combined_packs) + 1
    mvc("commit", "-m", "new")
    (work / "new.bin").unlink()
    mvc("checkout", "--force", "HEAD")
    assert (work / "new.bin").read_bytes() == random_bytes(3000, seed=77)


def test_a_damaged_combined_index_is_ignored_reported_and_rewritten(mvc, work):
    backend, commits = combined_store(mvc, work)
    path = backend.local_path(layout.combined_key())
    data = bytearray(path.read_bytes())
    data[100] ^= 0x40
    path.write_bytes(bytes(data))
    assert ChunkIndex(backend).combined_packs == []
    assert_every_version_checks_out(mvc, work, commits)
    report = mvc.json("fsck")
    assert report["ok"] is True
    assert report["notes"] == ["packs/multi-pack-index is corrupt (checksum mismatch); it is not used "
                               "('mvc gc' rewrites it)"]
    mvc("gc", "--grace", "0")
    assert ChunkIndex(backend).combined_packs == pack_names(work / ".mvc" / "packs")
    assert mvc.json("fsck")["notes"] == []


def test_a_stale_combined_index_is_ignored_and_reported(mvc, work):
    backend, commits = combined_store(mvc, work)
    path = backend.local_path(layout.combined_key())
    stale = path.read_bytes()
    set_config(work, pack_max_bytes=1 << 20)
    mvc("gc", "--grace", "0")  # merges the packs the combined index names into one
    path.write_bytes(stale)
    assert ChunkIndex(backend).combined_packs == []
    assert_every_version_checks_out(mvc, work, commits)
    (note,) = mvc.json("fsck")["notes"]
    assert note.startswith("packs/multi-pack-index is stale: it names ") and note.endswith(
        "that are gone (such as pack-" + note.split("such as pack-")[1])


def test_deleting_the_combined_index_loses_nothing(mvc, work):
    backend, commits = combined_store(mvc, work)
    backend.local_path(layout.combined_key()).unlink()
    assert ChunkIndex(backend).combined_packs == []
    assert_every_version_checks_out(mvc, work, commits)
    report = mvc.json("fsck", "--read-data")
    assert report["ok"] is True and report["notes"] == []


def test_the_combined_index_starts_with_its_magic_and_ends_with_its_checksum(mvc, work):
    from modelvc.ids import hash_bytes_raw

    backend, _ = combined_store(mvc, work)
    data = backend.local_path(layout.combined_key()).read_bytes()
    assert data[:8] == COMBINED_MAGIC and hash_bytes_raw(data[:-32]) == data[-32:]


def test_a_store_copied_without_its_combined_index_reads_the_same(mvc, work, tmp_path):
    _, commits = combined_store(mvc, work)
    copy = tmp_path / "copy"
    shutil.copytree(work, copy)
    (copy / ".mvc" / "packs" / "multi-pack-index").unlink()
    with Repo(copy) as repo, Repo(work) as original:
        assert sorted(r.tobytes() for r in repo.chunks.index.entries()["id"]) == \
            sorted(r.tobytes() for r in original.chunks.index.entries()["id"])


@pytest.mark.parametrize(("sizes", "keep", "chosen"), [
    ({"a": 10, "b": 10, "c": 10}, 5, ["a", "b", "c"]),  # alike: all merged
    ({"a": 1, "b": 4, "c": 16}, 5, []),  # already geometric, under the threshold
    ({"a": 1, "b": 4, "c": 16, "d": 64}, 2, ["a", "b", "c"]),  # geometric, but over: the smallest merged
    ({"a": 10, "b": 10, "big": 1000}, 5, ["a", "b"]),  # a big pack stays
    ({"a": 10, "b": 10, "c": 10}, 0, ["a", "b"]),  # bounded by max_bytes (25)
])
def test_geometric_selection(sizes, keep, chosen):
    assert geometric_selection(sizes, keep, 25 if keep == 0 else 10_000) == chosen


def test_the_large_store_lookup_reads_the_combined_index_alike(mvc, work):
    backend, commits = combined_store(mvc, work)
    small, large = ChunkIndex(backend), ChunkIndex(backend, small_limit=0)
    assert large.combined_packs == small.combined_packs != []
    assert all(large.locate(chunk_id) == small.locate(chunk_id) is not None
               for chunk_id in stored_ids(commits, work))
    assert (large.pack_numbers() == small.pack_numbers()).all()


def test_a_combined_index_that_disagrees_with_its_packs_is_found_by_read_data_and_rebuilt_by_gc(mvc, work):
    """A well-formed combined index with a wrong row (a bug, not damage) is trusted by readers:
    fsck --read-data compares it with the pack indexes, and gc rebuilds it from them."""
    from modelvc.ids import hash_bytes_raw
    from modelvc.store.combined import COMBINED_ROW

    backend, commits = combined_store(mvc, work)
    path = backend.local_path(layout.combined_key())
    combined = read_combined(backend, layout.PACK_PREFIX)
    data = bytearray(combined.data[:-32])
    offset_field = combined.rows_start + 32
    data[offset_field:offset_field + 8] = (int.from_bytes(data[offset_field:offset_field + 8], "little") + 1) \
        .to_bytes(8, "little")
    path.write_bytes(bytes(data) + hash_bytes_raw(bytes(data)))
    assert COMBINED_ROW.size == 88 and ChunkIndex(backend).combined_packs == combined.packs
    done = mvc("fsck", "--read-data", "--json", ok=False)
    report = json.loads(done.stdout)
    assert done.exit_code == 7 and report["ok"] is False
    assert [p["name"] for p in report["problems"] if p["name"]] == ["packs/multi-pack-index"]
    mvc("gc", "--grace", "0")
    assert mvc.json("fsck", "--read-data")["ok"] is True
    assert_every_version_checks_out(mvc, work, commits)
