"""Loose metadata objects packed by the writer that leaves more than gc.auto_loose of them, and
fsck and stats reading metadata packs whole."""

from __future__ import annotations

import json

from modelvc.repo import Repo
from modelvc.store import layout
from modelvc.store.packs import IDX_HEADER_SIZE, IDX_ROW, RECORD_HEADER, read_idx_rows
from tests.store.test_packed_objects import loose_objects, meta_packs


def commit_one_file(mvc, work, number: int) -> str:
    """A commit of a new version of one file: three loose objects (manifest, tree, commit)."""
    (work / "f.txt").write_bytes(f"version {number}\n".encode())
    mvc("add", "f.txt")
    return mvc("commit", "-m", f"v{number}", "-q").stdout.strip()


def every_object(work) -> set[str]:
    with Repo(work) as repo:
        return set(repo.objects.all_ids())


def test_loose_objects_are_packed_past_the_threshold_and_not_below(mvc, work):
    mvc("config", "gc.auto_loose", "7")
    counts = []
    for number in range(4):
        commit_one_file(mvc, work, number)
        counts.append(len(loose_objects(work)))
    assert counts == [3, 6, 0, 3]  # 9 > 7 after the third commit: all packed by it, none before
    assert len(meta_packs(work)) == 2  # one pack and its index
    fans = {path.name for path in (work / ".mvc" / "objects").iterdir()}
    assert fans == {object_id[:2] for object_id in loose_objects(work)}  # the emptied ones went


def packed_by_an_empty_commit(mvc, work, threshold: int) -> None:
    """With gc.auto_loose at `threshold`, a commit of the same tree: one more loose object,
    which brings the count past it when the history holds `threshold` loose objects."""
    mvc("config", "gc.auto_loose", str(threshold))
    mvc("commit", "--allow-empty", "-m", "same files", "-q")


def test_packing_loses_nothing_and_every_version_reads_back(mvc, work):
    mvc("config", "gc.auto_loose", "0")
    commits = [commit_one_file(mvc, work, number) for number in range(5)]
    before = every_object(work)
    assert len(loose_objects(work)) == len(before) == 15  # 0 turns packing off
    packed_by_an_empty_commit(mvc, work, 15)
    assert loose_objects(work) == []
    assert before < every_object(work) and len(every_object(work)) == 16
    for number, commit_id in enumerate(commits):
        mvc("checkout", "--force", commit_id)
        assert (work / "f.txt").read_bytes() == f"version {number}\n".encode()
    report = mvc.json("fsck")
    assert report["ok"] is True and report["object_count"] == 16


def test_a_damaged_loose_object_stays_loose_and_fsck_names_it(mvc, work):
    mvc("config", "gc.auto_loose", "0")
    commit_one_file(mvc, work, 0)
    with Repo(work) as repo:
        manifest_id = repo.read_tree(repo.read_commit(repo.refs.head().commit).tree).entries[0].manifest_id
    path = work / ".mvc" / layout.object_key(manifest_id)
    path.write_bytes(path.read_bytes()[:-3] + b"xyz")
    packed_by_an_empty_commit(mvc, work, 3)
    assert loose_objects(work) == [manifest_id]
    result = mvc("fsck", "--json", ok=False)
    assert result.exit_code == 7
    assert [(p["kind"], p["id"]) for p in json.loads(result.stdout)["problems"]] == [("corrupt", manifest_id)]


def two_commits_packed(mvc, work) -> list[str]:
    mvc("config", "gc.auto_loose", "0")
    commits = [commit_one_file(mvc, work, number) for number in range(2)]
    packed_by_an_empty_commit(mvc, work, 6)
    assert loose_objects(work) == []
    return commits


def test_fsck_reports_a_corrupt_record_of_a_metadata_pack_by_its_id(mvc, work):
    two_commits_packed(mvc, work)
    with Repo(work) as repo:
        head = repo.refs.head().commit
        parent = repo.read_commit(head).parents[0]
        tree_id = repo.read_commit(head).tree
        location = repo.objects.location(tree_id)
    assert location is not None
    pack = work / ".mvc" / layout.pack_key(location.pack)
    data = bytearray(pack.read_bytes())
    data[location.payload_offset + location.payload_len // 2] ^= 0xFF
    pack.write_bytes(bytes(data))
    result = mvc("fsck", "--json", ok=False)
    assert result.exit_code == 7
    problems = json.loads(result.stdout)["problems"]
    assert [(p["kind"], p["id"]) for p in problems] == [("corrupt", tree_id)]
    assert problems[0]["breaks"] == [{"commit": commit, "path": "(every file)"} for commit in sorted([head, parent])]


def test_bulk_reading_verifies_each_record_and_leaves_out_the_damaged_one(mvc, work):
    two_commits_packed(mvc, work)
    with Repo(work) as repo:
        (name,) = repo.objects.index.packs
        rows, count = read_idx_rows(repo.objects.backend, name)
        ids = [IDX_ROW.unpack_from(rows, IDX_HEADER_SIZE + n * IDX_ROW.size)[0].hex() for n in range(count)]
        victim = repo.objects.location(ids[0])
    pack = work / ".mvc" / layout.pack_key(victim.pack)
    data = bytearray(pack.read_bytes())
    data[victim.offset + RECORD_HEADER.size] ^= 0xFF
    pack.write_bytes(bytes(data))
    with Repo(work) as repo:
        held = dict(repo.objects._verified_records(name))
        assert sorted(held) == sorted(ids[1:]) and len(ids) == 7
        assert all(repo.objects.read_verified(object_id) == data for object_id, data in held.items())


def test_metadata_packs_sealed_by_batches_are_merged_past_gc_auto_packs(mvc, work):
    """An add of three files seals a metadata pack of its manifests: without gc.auto_loose ever
    being reached, those packs are merged once more than gc.auto_packs of them stand."""
    mvc("config", "gc.auto_packs", "3")
    names = ["a.txt", "b.txt", "c.txt"]
    counts = []
    for number in range(6):
        for name in names:
            (work / name).write_bytes(f"{name} {number}\n".encode())
        mvc("add", *names)
        counts.append(len(meta_packs(work)) // 2)  # each pack has its index
    assert loose_objects(work) == []  # only batches of three: nothing went loose
    assert counts == [1, 2, 3, 1, 2, 3]  # the add that sealed the fourth merged them
    manifests = every_object(work)
    assert len(manifests) == 18
    with Repo(work) as repo:  # every manifest reads back from the merged packs
        assert all(repo.objects.get(object_id) is not None for object_id in manifests)
    assert mvc.json("fsck")["ok"] is True
