"""Streaming a file into the store and back: batching, bounded windows, positional writes, sealing."""

from __future__ import annotations

import io
import threading
import time

import numpy as np
import pytest

from modelvc.errors import IntegrityError
from modelvc.ids import hash_bytes_raw
from modelvc.objects import Manifest
from modelvc.store import filedata, packs
from modelvc.store.chunker import ChunkParams, plan_chunks
from modelvc.store.chunkstore import ChunkStore
from modelvc.store.filedata import batches, ingest_file, write_file
from modelvc.store.packs import pack_names
from modelvc.store.parallel import ordered_map


def random_file(path, size, seed=0):
    path.write_bytes(np.random.default_rng(seed).bytes(size))
    return path.read_bytes()


def test_batches_group_consecutive_items_by_bytes():
    assert batches(list("abcdef"), [3, 3, 3, 1, 1, 9], limit=6) == [["a", "b"], ["c", "d", "e", "f"]]
    assert batches([], [], limit=6) == []
    assert batches(["x"], [1], limit=6) == [["x"]]


def test_ordered_map_keeps_order_and_bounds_weight_in_flight():
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def slow(item):
        with lock:
            state["now"] += item
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= item
        return item * 10

    items = [5, 1, 4, 2, 3, 5, 5, 1]
    assert list(ordered_map(slow, items, window=8, weight=lambda i: i, max_weight=6)) == [i * 10 for i in items]
    assert state["peak"] <= 6


def test_ordered_map_always_runs_an_item_heavier_than_the_bound():
    assert list(ordered_map(lambda i: i + 1, [100, 200], weight=lambda i: i, max_weight=10)) == [101, 201]


def test_ingest_then_write_round_trips_through_positional_writes(tmp_path):
    store = ChunkStore(tmp_path / "packs", pack_max_bytes=1 << 20)  # several packs, sealed in background
    data = random_file(tmp_path / "big.bin", 5_000_000 + 123)
    with store.writer() as writer:
        manifest = ingest_file(tmp_path / "big.bin", ChunkParams(), store, writer).manifest
    assert manifest.size == len(data)
    assert len(pack_names(tmp_path / "packs")) >= 4
    assert all(store.has(bytes.fromhex(chunk_id)) for chunk_id, _ in manifest.chunks)

    out = tmp_path / "out.bin"
    with open(out, "wb") as handle:
        handle.write(b"prefix")  # writes land after what the handle already holds
        write_file(manifest, handle, store)
        handle.write(b"suffix")
    assert out.read_bytes() == b"prefix" + data + b"suffix"


def test_write_file_streams_into_non_file_handles_and_append_mode(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    data = random_file(tmp_path / "f.bin", 3_000_000, seed=1)
    with store.writer() as writer:
        manifest = ingest_file(tmp_path / "f.bin", ChunkParams(), store, writer).manifest
    buffer = io.BytesIO()
    write_file(manifest, buffer, store)
    assert buffer.getvalue() == data
    appended = tmp_path / "appended.bin"
    appended.write_bytes(b"head")
    with open(appended, "ab") as handle:
        write_file(manifest, handle, store)
    assert appended.read_bytes() == b"head" + data


def test_write_file_stops_at_a_corrupt_chunk(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    random_file(tmp_path / "f.bin", 2_500_000, seed=2)
    with store.writer() as writer:
        manifest = ingest_file(tmp_path / "f.bin", ChunkParams(), store, writer).manifest
    broken = Manifest(manifest.size, manifest.chunks[:1] + (("ab" * 32, manifest.chunks[1][1]),) + manifest.chunks[2:])
    with open(tmp_path / "out.bin", "wb") as handle, pytest.raises(IntegrityError, match="missing from the store"):
        write_file(broken, handle, store)


def test_ingest_without_writer_stores_nothing_and_gives_the_same_manifest(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    random_file(tmp_path / "f.bin", 1_500_000, seed=3)
    hashed = ingest_file(tmp_path / "f.bin", ChunkParams(), store, None).manifest
    assert len(store.index) == 0
    with store.writer() as writer:
        stored = ingest_file(tmp_path / "f.bin", ChunkParams(), store, writer).manifest
    assert stored == hashed


def test_a_failed_background_seal_is_raised_by_close(tmp_path, monkeypatch):
    store = ChunkStore(tmp_path / "packs", pack_max_bytes=1 << 20)
    random_file(tmp_path / "f.bin", 3_000_000, seed=4)

    def failing_finish(self):
        raise OSError("disk full")

    monkeypatch.setattr(packs.PackWriter, "finish", failing_finish)
    with pytest.raises(OSError, match="disk full"):
        with store.writer() as writer:
            ingest_file(tmp_path / "f.bin", ChunkParams(), store, writer)
    assert pack_names(tmp_path / "packs") == []
    assert [p.name for p in (tmp_path / "packs").iterdir()] == []


def test_ingest_cuts_as_the_whole_file_would_be_cut(tmp_path, monkeypatch):
    """CDC regions are cut a window at a time; the spans are those of the whole file cut at once."""
    monkeypatch.setattr(filedata, "BATCH_BYTES", 1 << 20)  # windows of 2 MiB (2 * cdc_max)
    store = ChunkStore(tmp_path / "packs")
    for seed, size in ((6, 7_654_321), (7, (2 << 20) + 1), (8, 2 << 20), (9, 100)):
        data = random_file(tmp_path / "f.bin", size, seed=seed)
        manifest = ingest_file(tmp_path / "f.bin", ChunkParams(), store, None).manifest
        assert [length for _, length in manifest.chunks] == [s.length for s in plan_chunks(data, None, ChunkParams())]
        assert [bytes.fromhex(c) for c, _ in manifest.chunks] == [
            hash_bytes_raw(data[s.offset:s.end]) for s in plan_chunks(data, None, ChunkParams())]
