"""Small files stored in batches: the same chunks as the streaming path, refused when they
change while read, written to packs a batch at a time."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import random_bytes, write
from modelfiles import write_safetensors

from modelvc.errors import FileChangedError
from modelvc.repo import Repo
from modelvc.store import smallfiles
from modelvc.store.chunker import ChunkParams
from modelvc.store.chunkstore import ChunkStore, ChunkWriter
from modelvc.store.filedata import ingest_file
from modelvc.store.packs import PackWriter, pack_names
from modelvc.store.smallfiles import SMALL_FILE_BYTES, FileToStore, ingest_files

CHANGED = "error: 'data/grows.bin' changed while mvc was reading it; nothing was staged\n" \
          "hint: run the command again when whatever writes the file is done\n"


def small_tree(root: Path) -> dict[str, bytes]:
    """Files around the small-file limit: empty, tiny, a model file, exactly at and just past it."""
    rng = np.random.default_rng(5)
    files = {
        "data/empty.bin": b"",
        "data/one.bin": b"x",
        "data/text.txt": b"hello small world\n" * 200,
        "data/at-limit.bin": random_bytes(SMALL_FILE_BYTES, seed=1),
        "data/past-limit.bin": random_bytes(SMALL_FILE_BYTES + 1, seed=2),
        "data/big.bin": random_bytes(3 * SMALL_FILE_BYTES + 17, seed=3),
    }
    for number in range(40):
        files[f"data/many/f{number:03d}.bin"] = random_bytes(int(rng.integers(1, 9000)), seed=100 + number)
    for name, data in files.items():
        write(root / name, data)
    model = root / "data/tiny.safetensors"  # a header and merged small tensors: several spans
    write_safetensors(model, {"norm.weight": rng.standard_normal(64, dtype=np.float32),
                              "bias": rng.standard_normal(32, dtype=np.float32)})
    files["data/tiny.safetensors"] = model.read_bytes()
    return files


def test_small_files_get_the_streaming_paths_chunks_and_round_trip_byte_identical(mvc, work):
    files = small_tree(work)
    params = ChunkParams()
    store = ChunkStore(work.parent / "scratch" / "packs")
    streamed = {name: ingest_file(work / name, params, store, None).manifest for name in files}
    assert len(streamed["data/tiny.safetensors"].chunks) > 1  # cut along its layout, not whole
    assert streamed["data/empty.bin"].chunks == ()

    mvc("add", "data")
    mvc("commit", "-m", "small files", "-q")
    with Repo(work) as repo:
        for name, manifest in streamed.items():
            assert repo.read_manifest(repo.index.entries[name].manifest_id) == manifest, name
    os.rename(work / "data", work / "moved-aside")
    mvc("checkout", "--force", "HEAD", "--", "data")
    for name, data in files.items():
        assert (work / name).read_bytes() == data, name
    assert mvc("fsck", "--read-data").exit_code == 0


def test_a_small_file_growing_past_one_chunk_while_read_is_refused(mvc, work, monkeypatch):
    write(work / "data/before.bin", b"staged before")
    mvc("add", "data/before.bin")
    index_before = (work / ".mvc" / "index").read_bytes()
    write(work / "data/grows.bin", random_bytes(5000, seed=7))
    write(work / "data/other.bin", random_bytes(3000, seed=8))
    real_read_whole = smallfiles.read_whole

    def growing(fd, size, shown):
        if shown == "data/grows.bin":  # after its stat was taken, before its bytes are read
            with open(work / shown, "ab") as handle:
                handle.write(random_bytes(2 * SMALL_FILE_BYTES, seed=9))
        return real_read_whole(fd, size, shown)

    monkeypatch.setattr(smallfiles, "read_whole", growing)
    result = mvc("add", "data", ok=False)
    assert result.exit_code == 13
    assert result.stderr == CHANGED
    assert (work / ".mvc" / "index").read_bytes() == index_before


def test_a_small_file_shrinking_or_rewritten_while_read_is_refused(tmp_path, monkeypatch):
    store = ChunkStore(tmp_path / "packs")
    path = write(tmp_path / "f.bin", random_bytes(4000, seed=10))
    real_read_whole = smallfiles.read_whole
    changes = iter([lambda: os.truncate(path, 100), lambda: path.write_bytes(random_bytes(4000, seed=11))])

    def changing(fd, size, shown):
        next(changes)()
        return real_read_whole(fd, size, shown)

    monkeypatch.setattr(smallfiles, "read_whole", changing)
    for _ in range(2):
        with store.writer() as writer, pytest.raises(FileChangedError):
            list(ingest_files([FileToStore(str(path), "f.bin", 4000)], ChunkParams(), store, writer))


def test_a_file_grown_past_the_limit_before_it_was_opened_is_streamed(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    data = random_bytes(5 * SMALL_FILE_BYTES, seed=12)
    path = write(tmp_path / "grew.bin", data)
    tiny = write(tmp_path / "tiny.bin", b"tiny")
    with store.writer() as writer:  # the caller's stat said 10 bytes: it grew since
        results = list(ingest_files([FileToStore(str(path), "grew.bin", 10), FileToStore(str(tiny), "tiny.bin", 4)],
                                    ChunkParams(), store, writer))
    assert [file.shown for file, _ in results] == ["grew.bin", "tiny.bin"]
    assert results[0][1].manifest == ingest_file(path, ChunkParams(), store, None).manifest
    assert len(results[0][1].manifest.chunks) > 1
    assert b"".join(bytes(store.read(bytes.fromhex(c))) for c, _ in results[0][1].manifest.chunks) == data


def test_a_batch_of_many_files_is_written_across_pack_boundaries_in_few_writes(tmp_path, monkeypatch):
    pack_max = 64 << 10
    store = ChunkStore(tmp_path / "packs", pack_max_bytes=pack_max)
    contents = [random_bytes(3000 + number, seed=200 + number) for number in range(60)]
    contents.append(contents[0])  # the same content twice: stored once
    files = [FileToStore(str(write(tmp_path / "in" / f"f{n:03d}.bin", data)), f"f{n:03d}.bin", len(data))
             for n, data in enumerate(contents)]
    writes = []
    real_write = PackWriter._write
    monkeypatch.setattr(PackWriter, "_write", lambda self, parts: (writes.append(len(parts)), real_write(self, parts)))
    advances = []
    with store.writer() as writer:
        results = list(ingest_files(files, ChunkParams(), store, writer, advances.append))
        assert writer.new_chunks == 60
    assert len(smallfiles._batches(files)) == 1  # one batch, one task
    assert sum(advances) == sum(len(data) for data in contents) and len(advances) == 1
    packs = pack_names(tmp_path / "packs")
    assert len(packs) == 3  # 182 KB of records in 64 KiB packs
    assert len(writes) <= 2 * len(packs)  # each pack: its magic, then its records in one write
    for (_, result), data in zip(results, contents, strict=True):
        (chunk_id, length), = result.manifest.chunks
        assert length == len(data) and bytes(store.read(bytes.fromhex(chunk_id))) == data
    sizes = [(tmp_path / "packs" / f"{name}.pack").stat().st_size for name in packs]
    assert sorted(sizes)[1:] == sorted(size for size in sizes if size >= pack_max)  # all full but one


def test_append_many_puts_records_in_the_packs_one_by_one_appends_would(tmp_path):
    records = [(bytes([n]) * 32, 0, 5000, random_bytes(5000, seed=n), None) for n in range(1, 18)]
    layouts = []
    for many in (False, True):
        packs_dir = tmp_path / f"many-{many}" / "packs"
        store = ChunkStore(packs_dir, pack_max_bytes=16 << 10)  # full at the fourth record
        with ChunkWriter(store) as writer:
            if many:
                writer.append_many(records[:25])
                writer.append_many(records[25:] + records[:3])  # already pending: skipped
            else:
                for record in records:
                    writer.append(*record)
        layouts.append(sorted((packs_dir / f"{name}.pack").read_bytes() for name in pack_names(packs_dir)))
    assert layouts[0] == layouts[1]
    assert len(layouts[0]) == 5
