"""Checkout takes the chunks the replaced file already holds from that file, verified."""

from __future__ import annotations

import mmap
import os

import numpy as np
import pytest
from conftest import random_bytes, write
from modelfiles import bf16_bytes, write_safetensors

from modelvc.objects import Manifest
from modelvc.repo import Repo
from modelvc.store.chunker import ChunkParams
from modelvc.store.chunkstore import ChunkStore
from modelvc.store.filedata import LocalCopy, ingest_file, write_file
from modelvc.store.fileread import cached_pages, pages_spanned

V1 = random_bytes(3_000_000, seed=7)  # incompressible: stored raw, so a flipped pack byte reaches the hash
V2 = b"new head" + V1[100:] + random_bytes(50_000, seed=8)


def two_versions(mvc, work):
    for message, data in (("v1", V1), ("v2", V2)):
        write(work / "model.bin", data)
        mvc("add", "model.bin")
        mvc("commit", "-m", message)


def shared_chunk(work) -> tuple[Repo, bytes, int]:
    """A chunk both versions hold, not the first of v1: (repo, id, its offset in v1)."""
    repo = Repo.discover(work)
    v1, v2 = (repo.read_manifest(repo.tree_of(repo.resolve(rev)).entries[0].manifest_id) for rev in ("HEAD~1", "HEAD"))
    in_v2 = {chunk_id for chunk_id, _ in v2.chunks}
    offsets = v1.chunk_offsets()
    index = next(i for i, (chunk_id, _) in enumerate(v1.chunks) if i > 0 and chunk_id in in_v2)
    return repo, bytes.fromhex(v1.chunks[index][0]), offsets[index]


def break_in_pack(work, repo: Repo, chunk_id: bytes) -> None:
    location = repo.chunks.index.locate(chunk_id)
    path = work / ".mvc" / "packs" / f"{location.pack}.pack"
    data = bytearray(path.read_bytes())
    data[location.payload_offset + location.payload_len // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_switching_versions_reuses_the_chunks_of_the_file_it_replaces(mvc, work):
    two_versions(mvc, work)
    repo, chunk_id, _ = shared_chunk(work)
    break_in_pack(work, repo, chunk_id)  # only the working file still holds that chunk intact

    mvc("checkout", "HEAD~1")
    assert (work / "model.bin").read_bytes() == V1
    mvc("checkout", "main")
    assert (work / "model.bin").read_bytes() == V2

    (work / "model.bin").unlink()  # nothing left to reuse: the store's copy is read, and fails
    assert mvc("checkout", "--force", "HEAD~1", ok=False).exit_code == 7
    assert not (work / "model.bin").exists()
    assert mvc("fsck", ok=False).exit_code == 7


def test_a_chunk_the_working_file_no_longer_holds_is_read_from_the_store(mvc, work):
    two_versions(mvc, work)
    _, _, offset = shared_chunk(work)
    path = work / "model.bin"
    before = os.stat(path)
    with open(path, "r+b") as handle:  # changed in place, size and times kept: the stat cache trusts it
        handle.seek(offset + 10)
        handle.write(b"\x00" * 8)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert mvc("status", "--json").stdout.count("model.bin") == 0

    mvc("checkout", "HEAD~1")
    assert path.read_bytes() == V1


def test_write_file_checks_every_chunk_taken_from_a_local_copy(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    write(tmp_path / "f.bin", V1)
    with store.writer() as writer:
        manifest = ingest_file(tmp_path / "f.bin", ChunkParams(), store, writer).manifest
    damaged = bytearray(V1)
    damaged[1_500_000] ^= 0xFF
    write(tmp_path / "local.bin", bytes(damaged))
    out = tmp_path / "out.bin"
    for local in (LocalCopy(tmp_path / "local.bin", manifest), LocalCopy(tmp_path / "gone.bin", manifest),
                  LocalCopy(tmp_path / "local.bin", Manifest(len(V1), tuple(reversed(manifest.chunks))))):
        with open(out, "wb") as handle:
            write_file(manifest, handle, store, local=local)
        assert out.read_bytes() == V1


# Where the old file is cold, a chunk whose record is smaller than the chunk is read from the
# store (less to read from the disk); where it is in the page cache, it is copied from it.

def bf16_model(path, seed: int, retrained: str | None = None) -> None:
    """Two 2 MiB bf16 tensors (4 chunks of 1 MiB, stored at about 0.6 of raw); `retrained`
    is drawn anew with another seed."""
    tensors = {}
    for name in ("a", "b"):
        values = np.random.default_rng(seed + (100 if name == retrained else 0) + ord(name)).standard_normal(1 << 20)
        tensors[name] = ("BF16", (1 << 20,), bf16_bytes(values.astype(np.float32) * 0.02))
    write_safetensors(path, tensors)


def cold(path) -> bool:
    """Drop a file's pages from the page cache; whether the kernel says they are gone."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return cached_pages(fd, 0, os.fstat(fd).st_size) == 0
    finally:
        os.close(fd)


def warm(path) -> None:
    path.read_bytes()


@pytest.fixture
def bf16_versions(mvc, work):
    """v1 and v2 (tensor b retrained) committed; the working file holds v2. Returns (v1, v2)."""
    fd = os.open(work, os.O_RDONLY)
    try:
        if cached_pages(fd, 0, 1) is None:
            pytest.skip("the kernel does not count cached pages (cachestat, Linux 6.5)")
    finally:
        os.close(fd)
    versions = []
    for message, retrained in (("v1", None), ("v2", "b")):
        bf16_model(work / "model.safetensors", 1, retrained)
        versions.append((work / "model.safetensors").read_bytes())
        mvc("add", "model.safetensors")
        mvc("commit", "-m", message)
    return versions


def test_a_cold_old_file_gives_way_to_the_smaller_records_of_the_store(mvc, work, bf16_versions, store_reads):
    path = work / "model.safetensors"
    if not cold(path):
        pytest.skip("this file system keeps the file's pages in memory")
    reads = store_reads
    mvc("checkout", "HEAD~1")
    assert path.read_bytes() == bf16_versions[0]
    repo = Repo.discover(work)
    v1 = repo.read_manifest(repo.tree_of(repo.resolve("HEAD")).entries[0].manifest_id)
    assert sorted(reads) == sorted(bytes.fromhex(chunk_id) for chunk_id, _ in v1.chunks)


def test_an_old_file_in_the_page_cache_is_copied_from(mvc, work, bf16_versions, store_reads):
    path = work / "model.safetensors"
    warm(path)
    reads = store_reads
    mvc("checkout", "HEAD~1")
    assert path.read_bytes() == bf16_versions[0]
    repo = Repo.discover(work)
    v1, v2 = (repo.read_manifest(repo.tree_of(repo.resolve(rev)).entries[0].manifest_id) for rev in ("HEAD", "main"))
    only_in_v1 = {bytes.fromhex(chunk_id) for chunk_id, _ in v1.chunks} - {bytes.fromhex(c) for c, _ in v2.chunks}
    assert only_in_v1 and set(reads) == only_in_v1


def test_a_chunk_the_store_cannot_give_intact_is_taken_from_the_cold_old_file(mvc, work, bf16_versions):
    repo, chunk_id, _ = shared_chunk(work)
    break_in_pack(work, repo, chunk_id)
    path = work / "model.safetensors"
    if not cold(path):
        pytest.skip("this file system keeps the file's pages in memory")
    mvc("checkout", "HEAD~1")
    assert path.read_bytes() == bf16_versions[0]
    assert mvc("fsck", ok=False).exit_code == 7  # the damage is still reported


def test_cached_pages_counts_the_pages_of_a_range(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(random_bytes(5 * mmap.PAGESIZE, seed=3))
    fd = os.open(path, os.O_RDONLY)
    try:
        if cached_pages(fd, 0, 1) is None:
            pytest.skip("the kernel does not count cached pages (cachestat, Linux 6.5)")
        assert pages_spanned(10, mmap.PAGESIZE) == 2 and pages_spanned(0, mmap.PAGESIZE) == 1
        assert pages_spanned(7, 0) == 0
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if cached_pages(fd, 0, 5 * mmap.PAGESIZE) != 0:
            pytest.skip("this file system keeps the file's pages in memory")
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no read-ahead beyond the page read
        os.pread(fd, 1, 2 * mmap.PAGESIZE)
        assert cached_pages(fd, 2 * mmap.PAGESIZE, mmap.PAGESIZE) == 1
        assert cached_pages(fd, 0, 2 * mmap.PAGESIZE) == 0
    finally:
        os.close(fd)
