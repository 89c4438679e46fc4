"""gc rechains deltas: the newest version of each chain whole, older ones deltas of newer ones."""

from __future__ import annotations

import shutil

from conftest import Mvc

from modelvc.repo import Repo
from modelvc.store.packs import NO_BASE
from tests.reliability.harness import KILLED, run
from tests.test_deltas import commit_series, series, set_config


def depths_of(work, commit_id: str) -> list[int]:
    repo = Repo.discover(work)
    try:
        (entry,) = repo.tree_of(repo.resolve(commit_id)).entries
        chunks = repo.read_manifest(entry.manifest_id).chunks
        return [repo.chunks.chain_depth(bytes.fromhex(chunk_id)) for chunk_id, _ in chunks]
    finally:
        repo.close()


def record_counts(work) -> dict[bytes, int]:
    repo = Repo.discover(work)
    try:
        counts: dict[bytes, int] = {}
        for row in repo.chunks.index.rows():
            counts[row[0]] = counts.get(row[0], 0) + 1
        return counts
    finally:
        repo.close()


def bases_of(work, chunk_ids: set[bytes]) -> dict[bytes, bytes | None]:
    repo = Repo.discover(work)
    try:
        return {chunk_id: repo.chunks.index.locate(chunk_id).base for chunk_id in chunk_ids}
    finally:
        repo.close()


def stored_payloads(work) -> dict[bytes, tuple]:
    repo = Repo.discover(work)
    try:
        index = repo.chunks.index
        return {row[0]: (index.locate(row[0]).base, bytes(repo.chunks.reader.read_record(index.locate(row[0]))))
                for row in index.rows()}
    finally:
        repo.close()


def checkouts_match(mvc, work, commits) -> bool:
    for commit_id, data in commits:
        mvc("checkout", "--force", commit_id)
        if (work / "m.safetensors").read_bytes() != data:
            return False
    return True


def test_gc_stores_the_newest_version_whole_and_older_ones_as_deltas_of_newer(mvc, work):
    set_config(work, delta_max_depth=2)
    commits = commit_series(mvc, work, series(5))
    # Written forward, two chains: v0 whole, v1 and v2 one and two deltas on it; v3 whole, v4 a delta.
    assert [max(depths_of(work, commit_id)) for commit_id, _ in commits] == [0, 1, 2, 0, 1]
    done = mvc.json("gc", "--grace", "0")
    assert done["rechained_chunk_count"] > 0
    # Each chain turned around: its newest version whole, the older ones deltas of newer ones.
    assert [max(depths_of(work, commit_id)) for commit_id, _ in commits] == [2, 1, 0, 1, 0]
    assert set(depths_of(work, commits[-1][0])) == {0}
    assert set(record_counts(work).values()) == {1}
    assert checkouts_match(mvc, work, commits)
    assert mvc.json("fsck", "--read-data")["ok"] is True


def test_a_second_gc_changes_nothing_and_a_newer_version_becomes_the_whole_one(mvc, work):
    set_config(work, delta_max_depth=2)
    commits = commit_series(mvc, work, series(3))
    mvc("gc", "--grace", "0")
    assert mvc.json("gc", "--grace", "0")["rechained_chunk_count"] == 0
    commits += commit_series(mvc, work, series(4)[3:])
    assert [max(depths_of(work, commit_id)) for commit_id, _ in commits] == [2, 1, 0, 1]
    mvc("gc", "--grace", "0")
    # The chain now starts from v3; v0 would be three deltas away, over the limit: whole again.
    assert [max(depths_of(work, commit_id)) for commit_id, _ in commits] == [0, 2, 1, 0]
    assert set(record_counts(work).values()) == {1}
    assert checkouts_match(mvc, work, commits)


def test_a_gc_killed_after_writing_the_new_records_leaves_two_records_and_every_version_readable(mvc, work):
    """Killed before the rewrite of the old packs is sealed: each chunk of the chain has its old
    record and its new one; readers find a chain either way, the newest version reads whole,
    and the next gc keeps one record of each."""
    set_config(work, delta_max_depth=2)
    commits = commit_series(mvc, work, series(3))
    template = work.parent / "template"
    shutil.copytree(work, template)
    for seal in range(1, 10):  # the first kill at a pack seal that leaves two records of a chunk
        shutil.rmtree(work)
        shutil.copytree(template, work)
        assert run(work, "gc", "--grace", "0", crash_at=f"{seal}:seal").returncode == KILLED
        if 2 in record_counts(work).values():
            break
    else:
        raise AssertionError("no kill at a pack seal left two records of a chunk")
    assert set(depths_of(work, commits[-1][0])) == {0}
    assert checkouts_match(mvc, work, commits)
    assert mvc.json("fsck", "--read-data")["ok"] is True
    mvc("gc", "--grace", "0")
    assert set(record_counts(work).values()) == {1}
    assert [max(depths_of(work, commit_id)) for commit_id, _ in commits] == [2, 1, 0]
    assert checkouts_match(mvc, work, commits)


def test_deltas_off_means_no_rechaining(mvc, work):
    commits = commit_series(mvc, work, series(3))
    set_config(work, delta_max_depth=0)
    assert mvc.json("gc", "--grace", "0")["rechained_chunk_count"] == 0
    assert [max(depths_of(work, commit_id)) for commit_id, _ in commits] == [0, 1, 2]


def test_a_chain_with_a_corrupt_block_is_left_as_it_is_for_fsck_to_report(mvc, work):
    set_config(work, delta_max_depth=2)
    commit_series(mvc, work, series(3))
    repo = Repo.discover(work)
    try:
        table = repo.chunks.index.entries()
        base = sorted({row["base"].tobytes() for row in table if row["base"].tobytes() != bytes(32)})[0]
        location = repo.chunks.index.locate(base)
    finally:
        repo.close()
    path = work / ".mvc" / "packs" / f"{location.pack}.pack"
    data = bytearray(path.read_bytes())
    data[location.payload_offset + location.payload_len // 2] ^= 0x10
    path.write_bytes(bytes(data))
    chain = {base} | {row["id"].tobytes() for row in table if row["base"].tobytes() == base}
    before = bases_of(work, chain)
    assert mvc.json("gc", "--grace", "0")["rechained_chunk_count"] > 0  # the other chains
    assert bases_of(work, chain) == before
    result = mvc("fsck", "--json", ok=False)
    assert result.exit_code == 7 and base.hex() in result.stdout


def test_rechaining_with_almost_nothing_cached_stores_the_same_records(mvc, work, monkeypatch):
    """A long chain is read bit by bit when its chunks would not fit the cache: same outcome."""
    import modelvc.store.rechain as rechain

    set_config(work, delta_max_depth=4)
    commits = commit_series(mvc, work, series(4))
    template = work.parent / "template"
    shutil.copytree(work, template)
    mvc("gc", "--grace", "0")
    cached = stored_payloads(work)
    shutil.rmtree(work)
    shutil.copytree(template, work)
    monkeypatch.setattr(rechain, "MAX_CACHED_BYTES", 1)
    mvc("gc", "--grace", "0")
    assert stored_payloads(work) == cached
    assert [max(depths_of(work, commit_id)) for commit_id, _ in commits] == [3, 2, 1, 0]
    assert checkouts_match(mvc, work, commits)


def test_a_push_after_a_killed_gc_sends_chains_that_read_down_to_a_whole_record(mvc, work, tmp_path):
    """With two records of a chunk, push picks records the way the reader does: the clone reads
    every version byte for byte, and no two sent deltas are each other's base."""
    set_config(work, delta_max_depth=2)
    commits = commit_series(mvc, work, series(3))
    template = work.parent / "template"
    shutil.copytree(work, template)
    for seal in range(1, 10):
        shutil.rmtree(work)
        shutil.copytree(template, work)
        assert run(work, "gc", "--grace", "0", crash_at=f"{seal}:seal").returncode == KILLED
        if 2 in record_counts(work).values():
            break
    else:
        raise AssertionError("no kill at a pack seal left two records of a chunk")
    remote = tmp_path / "remote"
    remote.mkdir()
    mvc("remote", "add", "origin", str(remote))
    mvc("push", "-q", "origin", "main")
    clone_dir = tmp_path / "clone"
    Mvc(tmp_path)("clone", "-q", str(remote), "clone")
    cloned = Repo.discover(clone_dir)
    try:
        sent = {row[0]: row[6] for row in cloned.chunks.index.rows()}
    finally:
        cloned.close()
    for chunk_id in sent:  # every chain of sent bases ends at a whole record
        seen, link = set(), chunk_id
        while sent[link] != NO_BASE:
            assert link not in seen
            seen.add(link)
            link = sent[link]
    assert checkouts_match(Mvc(clone_dir), clone_dir, commits)
    assert Mvc(clone_dir).json("fsck", "--read-data")["ok"] is True
