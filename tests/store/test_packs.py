"""Packs and their indexes: round trips, lookups across packs, interrupted writes."""

from __future__ import annotations

import os

import pytest

from modelvc.errors import IntegrityError
from modelvc.ids import hash_bytes_raw
from modelvc.store.backend import DirectoryBackend
from modelvc.store.chunkstore import ChunkStore
from modelvc.store.codecs import CODEC_NONE, encode_chunk
from modelvc.store.packs import PackWriter, pack_names, read_idx, scan_pack


def chunk(number: int) -> bytes:
    return (f"chunk {number} ".encode() * (number % 50 + 1))


def store_chunks(store: ChunkStore, datas: list[bytes]) -> list[bytes]:
    ids = []
    with store.writer() as writer:
        for data in datas:
            chunk_id = hash_bytes_raw(data)
            if writer.needs(chunk_id):
                codec, payload = encode_chunk(data, None)
                writer.append(chunk_id, codec, len(data), payload)
            ids.append(chunk_id)
    return ids


def test_round_trip_across_several_packs(tmp_path):
    store = ChunkStore(tmp_path / "packs", pack_max_bytes=2000)
    datas = [chunk(i) for i in range(200)]
    ids = store_chunks(store, datas)
    assert len(pack_names(tmp_path / "packs")) > 3
    assert len(store.index) == 200
    for chunk_id, data in zip(ids, datas, strict=True):
        assert store.read(chunk_id) == data
    assert not store.has(hash_bytes_raw(b"never stored"))


def test_duplicates_are_stored_once(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    store_chunks(store, [b"same"] * 10 + [b"other"])
    assert len(store.index) == 2
    store_chunks(store, [b"same", b"other"])
    assert len(store.index) == 2


def test_index_is_sorted_and_checksummed(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    store_chunks(store, [chunk(i) for i in range(50)])
    name = pack_names(tmp_path / "packs")[0]
    table = read_idx(DirectoryBackend(tmp_path), name)
    ids = [row.tobytes() for row in table["id"]]
    assert ids == sorted(ids)
    path = tmp_path / "packs" / f"{name}.idx"
    data = bytearray(path.read_bytes())
    data[20] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="checksum mismatch"):
        read_idx(DirectoryBackend(tmp_path), name)


def test_interrupted_write_is_invisible(tmp_path):
    packs = tmp_path / "packs"
    writer = PackWriter(DirectoryBackend(tmp_path), 1 << 20)
    writer.append(hash_bytes_raw(b"lost"), CODEC_NONE, 4, b"lost")
    # the process dies here: no finish(), so no index
    store = ChunkStore(packs)
    assert len(store.index) == 0
    assert pack_names(packs) == []
    assert [p.name.startswith("tmp-") for p in packs.iterdir()] == [True]


def test_flipped_payload_byte_is_detected(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    data = os.urandom(5000)
    (chunk_id,) = store_chunks(store, [data])
    pack = tmp_path / "packs" / f"{pack_names(tmp_path / 'packs')[0]}.pack"
    raw = bytearray(pack.read_bytes())
    raw[-100] ^= 0x80
    pack.write_bytes(bytes(raw))
    store = ChunkStore(tmp_path / "packs")
    with pytest.raises(IntegrityError, match=f"chunk {chunk_id.hex()[:10]} is corrupt"):
        store.read(chunk_id)


def test_scan_pack_lists_every_record(tmp_path):
    store = ChunkStore(tmp_path / "packs")
    ids = store_chunks(store, [chunk(i) for i in range(20)])
    name = pack_names(tmp_path / "packs")[0]
    records = scan_pack(DirectoryBackend(tmp_path), name)
    assert sorted(r[0] for r in records) == sorted(ids)


def test_both_index_lookups_agree(tmp_path):
    from modelvc.store.chunkindex import ChunkIndex

    store = ChunkStore(tmp_path / "packs", pack_max_bytes=2000)
    ids = store_chunks(store, [chunk(i) for i in range(300)])
    small, large = ChunkIndex(DirectoryBackend(tmp_path)), ChunkIndex(DirectoryBackend(tmp_path), small_limit=0)
    assert len(small) == len(large) == 300 and len(small.packs) > 3
    for chunk_id in ids:
        location = small.locate(chunk_id)
        assert location is not None and location == large.locate(chunk_id)
        assert location.base is None and location.raw_len == len(store.read(chunk_id))
    missing = hash_bytes_raw(b"never stored")
    assert small.locate(missing) is None and large.locate(missing) is None
    assert not small.contains(missing) and not large.contains(missing)
    table, pack_of = small.entries(), small.pack_numbers()
    assert len(table) == len(pack_of) == 300
    assert all(small.locate(row["id"].tobytes()).pack == small.packs[number]
               for row, number in zip(table, pack_of, strict=True))


def test_a_pack_is_named_by_its_content_and_written_twice_is_one_pack(tmp_path):
    from blake3 import blake3

    backend = DirectoryBackend(tmp_path)
    names = []
    for _ in range(2):  # a retried write of the same records
        writer = PackWriter(backend, 1 << 20)
        for number in range(5):
            data = chunk(number)
            writer.append(hash_bytes_raw(data), CODEC_NONE, len(data), data)
        names.append(writer.finish())
    assert names[0] == names[1]
    pack_bytes = (tmp_path / "packs" / f"{names[0]}.pack").read_bytes()
    assert names[0] == "pack-" + blake3(pack_bytes).hexdigest()
    assert sorted(p.name for p in (tmp_path / "packs").iterdir()) == [f"{names[0]}.idx", f"{names[0]}.pack"]
    store = ChunkStore(tmp_path / "packs")
    assert len(store.index) == 5 and store.read(hash_bytes_raw(chunk(3))) == chunk(3)


def test_packs_with_the_old_random_names_are_read(tmp_path):
    store = ChunkStore(tmp_path / "packs", pack_max_bytes=2000)
    datas = [chunk(i) for i in range(100)]
    ids = store_chunks(store, datas)
    packs = tmp_path / "packs"
    for name in pack_names(packs):  # as mvc wrote them before packs were named by content
        old = f"pack-{os.urandom(16).hex()}"
        for suffix in (".pack", ".idx"):
            (packs / f"{name}{suffix}").rename(packs / f"{old}{suffix}")
    store = ChunkStore(packs)
    assert all(len(name) == len("pack-") + 32 for name in store.index.packs) and len(store.index.packs) > 3
    assert [store.read(chunk_id) for chunk_id in ids] == datas
    store_chunks(store, datas + [b"new"])  # adds only the new chunk, in a content-named pack
    assert sorted(len(name) for name in pack_names(packs))[-1] == len("pack-") + 64
    assert len(ChunkStore(packs).index) == 101


def test_a_failed_index_write_of_a_pack_written_again_keeps_the_complete_one(tmp_path, monkeypatch):
    from modelvc.store import packs

    backend = DirectoryBackend(tmp_path)

    def write_pack() -> str | None:
        writer = PackWriter(backend, 1 << 20)
        for number in range(5):
            data = chunk(number)
            writer.append(hash_bytes_raw(data), CODEC_NONE, len(data), data)
        return writer.finish()

    name = write_pack()

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(packs, "write_idx", disk_full)
    with pytest.raises(OSError):
        write_pack()  # the same bytes: same name, and its index is already there
    assert pack_names(tmp_path / "packs") == [name]
    assert ChunkStore(tmp_path / "packs").read(hash_bytes_raw(chunk(4))) == chunk(4)
    monkeypatch.undo()
    (tmp_path / "packs" / f"{name}.idx").unlink()  # a pack left without index by a crash
    monkeypatch.setattr(packs, "write_idx", disk_full)
    with pytest.raises(OSError):
        write_pack()
    assert sorted(p.name for p in (tmp_path / "packs").iterdir()) == []  # not left behind


@pytest.mark.parametrize("run_max_bytes", [16 << 20, 300])  # one read of the pack; a read per record or two
def test_chunks_verified_in_sequence_leave_out_exactly_what_read_refuses(tmp_path, monkeypatch, run_max_bytes):
    from modelvc.store import chunkstore
    from modelvc.store.codecs import CODEC_DELTA

    monkeypatch.setattr(chunkstore, "RUN_MAX_BYTES", run_max_bytes)
    store = ChunkStore(tmp_path / "packs")
    datas = [os.urandom(100 + number) for number in range(40)]  # stored as they are: only the hash tells
    ids = store_chunks(store, datas)
    delta_id = hash_bytes_raw(b"a delta")
    with store.writer() as writer:
        writer.append(delta_id, CODEC_DELTA, 7, b"not a delta", ids[0])
    flipped_payload, flipped_header = store.locate(ids[5]), store.locate(ids[20])
    pack = tmp_path / "packs" / f"{flipped_payload.pack}.pack"
    raw = bytearray(pack.read_bytes())
    raw[flipped_payload.payload_offset + 3] ^= 0x01
    raw[flipped_header.offset + 5] ^= 0x01  # the raw length
    pack.write_bytes(bytes(raw))
    missing = hash_bytes_raw(b"never stored")
    store = ChunkStore(tmp_path / "packs")

    verified = store.verified_in_sequence([*ids, delta_id, missing])

    refused = {ids[5], ids[20], delta_id, missing}
    assert verified == {chunk_id: len(data) for chunk_id, data in zip(ids, datas, strict=True)
                        if chunk_id not in refused}
    for chunk_id in refused:
        with pytest.raises(IntegrityError):
            store.read(chunk_id)


def test_a_few_lookups_bisect_the_pack_indexes_and_build_no_table(tmp_path):
    """commit -a of a few files in a store of tens of thousands of chunks looks up a handful:
    they bisect each table; once bisecting has cost about what building the lookup table
    would, it is built, with the same answers."""
    from modelvc.store.chunkindex import ROWS_PER_BISECTION, ChunkIndex

    store = ChunkStore(tmp_path / "packs", pack_max_bytes=20_000)
    ids = store_chunks(store, [chunk(i) for i in range(600)])
    missing = hash_bytes_raw(b"never stored")
    tabled = ChunkIndex(DirectoryBackend(tmp_path))
    for chunk_id in [*ids, missing]:  # more than the bisections allowed: from a table by then
        tabled.contains(chunk_id)
    assert tabled._where is not None
    bisected = ChunkIndex(DirectoryBackend(tmp_path))
    few = ids[::60] + [missing]
    assert 1 < len(bisected.packs) and len(few) * len(bisected.packs) <= len(ids) // ROWS_PER_BISECTION
    assert [bisected.locate(chunk_id) for chunk_id in few] == [tabled.locate(chunk_id) for chunk_id in few]
    assert bisected.locate(missing) is None and bisected._where is None  # no table was built
    assert [bisected.locate(chunk_id) for chunk_id in ids] == [tabled.locate(chunk_id) for chunk_id in ids]
    assert bisected._where is not None
