"""A pack this process seals joins the loaded index: no index read twice (issue 14).

Another process's pack, or one removed by gc, still makes the next lookup read every index
again; a fresh copy of a chunk whose old record is listed as bad is the one found.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from conftest import random_bytes, write

from modelvc.errors import CorruptChunkError
from modelvc.ids import hash_bytes_raw
from modelvc.store import layout
from modelvc.store.backend import DirectoryBackend
from modelvc.store.chunkstore import ChunkStore
from modelvc.store.codecs import CODEC_NONE


@pytest.fixture
def index_reads(monkeypatch) -> Counter:
    """Every pack index and combined index read through a directory backend, by key."""
    reads: Counter = Counter()
    read = DirectoryBackend.read

    def counting(self, key, *args, **kwargs):
        if key.endswith(layout.IDX_SUFFIX) or key.endswith("multi-pack-index"):
            reads[key] += 1
        return read(self, key, *args, **kwargs)

    monkeypatch.setattr(DirectoryBackend, "read", counting)
    return reads


def pack_stems(work: Path) -> set[str]:
    return {path.stem for path in (work / ".mvc" / "packs").glob("*.pack")}


def test_commit_a_reads_each_index_once_and_never_the_packs_it_sealed(mvc, work, index_reads):
    files = {f"d/f{n}.bin": random_bytes(2000 + n, seed=n) for n in range(12)}
    for path, data in files.items():
        write(work / path, data)
    mvc("add", ".")
    mvc("commit", "-m", "one")
    before = pack_stems(work)
    changed = {path: data[::-1] + b"x" for path, data in files.items()}
    for path, data in changed.items():
        write(work / path, data)
    index_reads.clear()
    mvc("commit", "-a", "-m", "two")
    sealed = pack_stems(work) - before
    assert {name.split("-")[0] for name in sealed} == {"pack", "meta"}  # both families sealed
    assert index_reads and max(index_reads.values()) == 1, index_reads
    assert not {key for key in index_reads if layout.file_name(key).rpartition(".")[0] in sealed}
    mvc("checkout", "HEAD~1")
    assert {path: (work / path).read_bytes() for path in files} == files
    mvc("checkout", "main")
    assert {path: (work / path).read_bytes() for path in files} == changed
    assert mvc.json("fsck")["ok"] is True


def store_at(root: Path) -> ChunkStore:
    (root / "packs").mkdir(parents=True, exist_ok=True)
    return ChunkStore(root / "packs")


def put(store: ChunkStore, data: bytes, *more: bytes) -> bytes:
    """Store chunks in one new pack; the first one's id."""
    with store.writer() as writer:
        for chunk in (data, *more):
            chunk_id = hash_bytes_raw(chunk)
            assert writer.needs(chunk_id)
            writer.append(chunk_id, CODEC_NONE, len(chunk), chunk)
    return hash_bytes_raw(data)


@pytest.mark.parametrize("small_limit", [1 << 16, 1], ids=["dict", "sorted"])
def test_sealed_packs_join_the_loaded_index(tmp_path, index_reads, small_limit):
    store = store_at(tmp_path)
    first = put(store, b"first chunk")
    index = store.index
    index.small_limit = small_limit  # 1: the next add goes over it and sorts the rows in memory
    index_reads.clear()
    second = put(store, b"second chunk")
    third = put(store, b"third chunk")
    assert store.index is index and index_reads == Counter()
    assert index.listing == layout.complete_packs(store.backend) and len(index.listing) == 3
    assert [store.read(chunk) for chunk in (first, second, third)] == [b"first chunk", b"second chunk", b"third chunk"]
    assert len(index) == 3 and index_reads == Counter()


def test_a_pack_of_another_process_makes_the_index_read_again(tmp_path):
    store, other = store_at(tmp_path), store_at(tmp_path)
    first = put(store, b"first chunk")
    stale = store.index
    theirs = put(other, b"their chunk")
    mine = put(store, b"my chunk")
    assert store.index is not stale
    assert [store.read(chunk) for chunk in (first, theirs, mine)] == [b"first chunk", b"their chunk", b"my chunk"]
    assert store.index.listing == layout.complete_packs(store.backend)


def test_a_pack_removed_by_gc_makes_the_index_read_again(tmp_path):
    store, other = store_at(tmp_path), store_at(tmp_path)
    gone = put(other, b"gone chunk")
    assert store.has(gone)
    (name,) = layout.complete_packs(store.backend)
    store.backend.delete(layout.idx_key(name))
    store.backend.delete(layout.pack_key(name))
    mine = put(store, b"my chunk")
    assert not store.has(gone) and store.read(mine) == b"my chunk"


def test_a_fresh_copy_of_a_chunk_listed_as_bad_is_the_one_found(tmp_path, index_reads):
    store = store_at(tmp_path)
    chunk = put(store, b"a chunk")
    (bad_pack,) = layout.complete_packs(store.backend)
    index = store.index
    path = store.backend.local_path(layout.pack_key(bad_pack))
    path.chmod(0o644)
    damaged = bytearray(path.read_bytes())
    damaged[store.locate(chunk).payload_offset] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptChunkError):
        store.read(chunk)  # lists the record as bad
    index_reads.clear()
    assert put(store, b"a chunk", b"another") == chunk  # needed again: its only record is bad
    assert store.index is index and index_reads == Counter()
    assert store.locate(chunk).pack != bad_pack and store.has_good(chunk)
    assert store.read(chunk) == b"a chunk"
