"""Metadata objects in packs (format 3): batches, loose small writes, listing, gc, the format 2 upgrade."""

from __future__ import annotations

import json
import os

from modelvc.objects import Commit, Manifest, Signature, Tree
from modelvc.repo import Repo
from modelvc.store.objects import LOOSE_MAX


def meta_packs(work) -> list[str]:
    return sorted(p.name for p in (work / ".mvc" / "packs").glob("meta-*"))


def loose_objects(work) -> list[str]:
    return sorted(p.parent.name + p.name for p in (work / ".mvc" / "objects").glob("*/*"))


def write_files(work, count: int, tag: str) -> dict[str, bytes]:
    files = {f"d/f{n}.txt": f"{tag} {n}\n".encode() * (n + 1) for n in range(count)}
    for path, data in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(data)
    return files


def test_add_of_many_files_seals_their_manifests_in_one_metadata_pack(mvc, work):
    files = write_files(work, 40, "a")
    mvc("add", ".")
    assert loose_objects(work) == []
    assert [name.rpartition(".")[2] for name in meta_packs(work)] == ["idx", "pack"]
    mvc("commit", "-m", "forty files")
    assert len(loose_objects(work)) == 2  # the tree and the commit: a batch of LOOSE_MAX
    for path in files:
        (work / path).unlink()
    mvc("checkout", "--force", "HEAD")
    assert {path: (work / path).read_bytes() for path in files} == files
    report = mvc.json("fsck")
    assert report["ok"] is True and report["object_count"] == 42


def test_batches_up_to_loose_max_are_written_loose(mvc, work):
    assert LOOSE_MAX == 2
    write_files(work, 2, "b")
    mvc("add", ".")
    assert meta_packs(work) == [] and len(loose_objects(work)) == 2
    mvc("commit", "-m", "two")
    mvc("tag", "-m", "annotated", "t")
    assert meta_packs(work) == [] and len(loose_objects(work)) == 5


def test_gc_drops_unreachable_packed_objects_once_old_and_merges_packs(mvc, work):
    write_files(work, 5, "kept")
    mvc("add", ".")
    mvc("commit", "-m", "kept")
    write_files(work, 5, "staged then replaced")
    mvc("add", ".")
    write_files(work, 5, "kept")
    mvc("add", ".")  # the replaced manifests are now reachable from nothing
    assert len(meta_packs(work)) == 4
    young = mvc.json("gc")
    assert young["deleted_object_count"] == 0 and len(meta_packs(work)) == 4
    old = mvc.json("gc", "--grace", "0")
    assert old["deleted_object_count"] == 5
    assert len(meta_packs(work)) == 2 and loose_objects(work) == []
    with Repo(work) as repo:
        assert len(repo.objects.all_ids()) == 7  # 5 manifests, the tree, the commit
    assert mvc.json("fsck")["ok"] is True


def test_prefixes_are_found_in_packs_and_loose_files_alike(work):
    with Repo.init(work) as repo:
        with repo.objects.batch():
            packed = [repo.objects.put(Manifest(n, ())) for n in range(300)]
        loose = [repo.objects.put(Manifest(1000 + n, ())) for n in range(20)]
        assert not set(loose) & set(packed) and len(meta_packs(work)) == 2
        everything = packed + loose
        for prefix in {i[:length] for i in everything[::7] for length in (2, 3, 5, 64)}:
            assert repo.objects.ids_with_prefix(prefix) == sorted(i for i in everything if i.startswith(prefix))
        assert repo.objects.ids_with_prefix("zz") == [] and repo.objects.ids_with_prefix("a") == []
        assert repo.objects.all_ids() == sorted(everything)


def test_an_ambiguous_short_id_among_packed_commits(mvc, work):
    """The message is the one loose commits give (tests/test_cli_errors.py)."""
    with Repo(work) as repo, repo.objects.batch():
        tree = repo.objects.put(Tree(()))
        made = [repo.objects.put(Commit(tree, (), Signature("A", "a@b", 0, 0), f"c{n}"))
                for n in range(1500)]
    assert loose_objects(work) == []
    by_prefix: dict[str, list[str]] = {}
    for commit_id in made:
        by_prefix.setdefault(commit_id[:4], []).append(commit_id)
    prefix, (first, second) = next((p, sorted(ids)) for p, ids in by_prefix.items() if len(ids) == 2)
    result = mvc("show", prefix, ok=False)
    assert result.exit_code == 4
    assert result.stderr.startswith(
        f"error: short id '{prefix}' is ambiguous: it matches {first[:10]}, {second[:10]}\n")
    assert mvc.json("show", first[:12])["id"] == first


def test_a_repo_kept_open_sees_objects_another_process_packed(mvc, work):
    with Repo(work) as reader:
        assert reader.objects.all_ids() == []
        write_files(work, 6, "later")
        mvc("add", ".")
        with Repo(work) as writer:
            file_id = writer.index.entries["d/f0.txt"].manifest_id
        assert reader.objects.get_typed(file_id, Manifest).size == len(b"later 0\n")
        assert reader.objects.ids_with_prefix(file_id[:6]) == [file_id]


def test_a_missing_metadata_pack_is_reported_object_by_object(mvc, work):
    write_files(work, 4, "gone")
    mvc("add", ".")
    mvc("commit", "-m", "gone")
    with Repo(work) as repo:
        manifests = sorted(entry.manifest_id for entry in repo.index.entries.values())
    for name in meta_packs(work):
        os.unlink(work / ".mvc" / "packs" / name)
    result = mvc("fsck", "--json", ok=False)
    assert result.exit_code == 7
    problems = json.loads(result.stdout)["problems"]
    assert sorted({p["id"] for p in problems if p["kind"] == "missing"}) == manifests
    assert all("is missing from the store" in p["detail"] for p in problems)


def test_stats_count_objects_and_metadata_packs(mvc, work):
    write_files(work, 6, "s")
    mvc("add", ".")
    mvc("commit", "-m", "s")
    stats = mvc.json("stats")
    assert (stats["object_count"], stats["metadata_pack_count"]) == (8, 1)
    stored = sum(p.stat().st_size for p in (work / ".mvc" / "packs").glob("meta-*"))
    stored += sum(p.stat().st_size for p in (work / ".mvc" / "objects").glob("*/*"))
    assert stats["object_bytes"] == stored


def test_fsck_read_data_checks_metadata_packs_against_their_indexes(mvc, work):
    write_files(work, 4, "checked")
    mvc("add", ".")
    pack = next(p for p in (work / ".mvc" / "packs").glob("meta-*.pack"))
    data = bytearray(pack.read_bytes())
    data[0] ^= 1  # the pack magic: no object's record is touched
    pack.write_bytes(bytes(data))
    assert mvc.json("fsck")["ok"] is True
    result = mvc("fsck", "--read-data", "--json", ok=False)
    assert result.exit_code == 7
    problems = json.loads(result.stdout)["problems"]
    assert [(p["name"], p["detail"]) for p in problems] == [(pack.stem, f"{pack.name} is not a modelvc pack")]


def test_objects_gc_dropped_are_written_again_by_a_repo_kept_open(mvc, work):
    """Taking the lock reads the metadata packs again: a Repo that knew an object gc has since
    dropped stores it anew instead of trusting its stale index."""
    from modelvc.ops.add import add

    first = write_files(work, 4, "first")
    mvc("add", ".")
    with Repo(work) as kept:
        dropped = kept.index.entries["d/f0.txt"].manifest_id
        assert kept.objects.has(dropped)
        mvc("rm", "--cached", "d")
        assert mvc.json("gc", "--grace", "0")["deleted_object_count"] == 4
        for path, data in first.items():  # the same content under new names: no old version read
            (work / path.replace("d/", "e/")).parent.mkdir(exist_ok=True)
            (work / path.replace("d/", "e/")).write_bytes(data)
        add(kept, ["e"], cwd=work)
        assert kept.index.entries["e/f0.txt"].manifest_id == dropped
    assert mvc.json("fsck")["ok"] is True


def test_objects_packed_and_loose_alike_are_counted_once(work):
    """stats' object count: a loose copy of a packed object (packing interrupted before the
    loose file went) is one object, as all_ids() lists it."""
    import zstandard

    from modelvc.objects import encode
    from modelvc.store import layout

    with Repo.init(work) as repo:
        with repo.objects.batch():
            packed = [repo.objects.put(Manifest(n, ())) for n in range(30)]
        loose = [repo.objects.put(Manifest(1000 + n, ())) for n in range(2)]
        assert set(loose) <= set(loose_objects(work))
        repo.objects.backend.write_if_absent(layout.object_key(packed[0]),
                                             zstandard.ZstdCompressor().compress(encode(Manifest(0, ()))))
        assert packed[0] in loose_objects(work) and len(loose_objects(work)) == 3
        assert repo.objects.count() == len(repo.objects.all_ids()) == 32
