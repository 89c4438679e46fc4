"""Checkout takes the chunks the replaced file already holds from that file, verified."""

from __future__ import annotations

import os

from conftest import random_bytes, write

from modelvc.objects import Manifest
from modelvc.repo import Repo
from modelvc.store.chunker import ChunkParams
from modelvc.store.chunkstore import ChunkStore
from modelvc.store.filedata import LocalCopy, ingest_file, write_file

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
