"""What keeps status, `add .` and `commit -a` short over many tracked files: which writes of the
index they skip or make, the tree encoded without quoting each string, big objects stored at a
faster zstd level. Each shortcut is checked against the answer the long way gives."""

from __future__ import annotations

import os

import pytest
from conftest import random_bytes, write

from modelvc.ids import hash_bytes
from modelvc.index import Index
from modelvc.indexfile import IdColumn
from modelvc.objects import MODE_EXEC, MODE_FILE, MODE_LINK, Tree, TreeEntry, encode, encode_tree, patch_tree
from modelvc.ops import status as status_op
from modelvc.ops import workstate
from modelvc.repo import Repo
from modelvc.store import objects as object_store

OLD = 1_000_000_000  # an mtime (ns) long before any index write: out of the racy window


@pytest.fixture
def hashed(monkeypatch) -> list[str]:
    """The paths status re-reads, in order."""
    paths: list[str] = []
    real = workstate.hash_working_file
    monkeypatch.setattr(workstate, "hash_working_file", lambda *a, **k: paths.append(a[1]) or real(*a, **k))
    return paths


def index_file(work) -> tuple[bytes, int]:
    path = work / ".mvc" / "index"
    return path.read_bytes(), os.stat(path).st_mtime_ns


def test_status_leaves_the_index_alone_when_rereading_a_touched_file_is_cheaper(mvc, work, hashed, monkeypatch):
    monkeypatch.setattr(status_op, "REHASH_FLOOR_BYTES", 1)  # files of 100 bytes against an index of ~700
    for name in ("a.bin", "b.bin", "c.bin", "d.bin"):
        write(work / name, random_bytes(100, seed=ord(name[0])))
    write(work / "big.bin", random_bytes(5000))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    os.utime(work / "a.bin", ns=(OLD, OLD))  # stat differs, content the same
    before = index_file(work)
    assert os.stat(work / ".mvc" / "index").st_size > 100

    assert mvc("status", "--porcelain").stdout == ""
    assert mvc("status", "--porcelain").stdout == ""
    assert hashed == ["a.bin", "a.bin"]  # read again each time ...
    assert index_file(work) == before  # ... rather than the index rewritten

    os.utime(work / "big.bin", ns=(OLD, OLD))  # 5000 bytes: more than the index, worth caching
    assert mvc("status", "--porcelain").stdout == ""
    assert sorted(hashed[2:]) == ["a.bin", "big.bin"]
    assert index_file(work) != before
    assert mvc("status", "--porcelain").stdout == ""
    assert hashed[4:] == []  # both cached now
    write(work / "a.bin", random_bytes(100, seed=999))  # and a real change is still seen
    assert mvc("status", "--porcelain").stdout == " M a.bin\n"


def test_a_touched_file_is_cached_at_once_where_the_index_is_small(mvc, work, hashed):
    write(work / "a.bin", random_bytes(100))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    os.utime(work / "a.bin", ns=(OLD, OLD))
    assert mvc("status", "--porcelain").stdout == ""
    assert mvc("status", "--porcelain").stdout == ""
    assert hashed == ["a.bin"]  # counted as 64 KiB read again: more than a one-entry index


def test_add_of_touched_files_keeps_the_tree_so_commit_and_status_read_no_tree(mvc, work, monkeypatch):
    for name in ("a.bin", "b.bin", "c.bin"):
        write(work / "d" / name, random_bytes(300, seed=ord(name[0])))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    repo = Repo(work)
    head = repo.head_commit()
    tree = repo.read_commit(head).tree
    os.utime(work / "d" / "a.bin", ns=(OLD, OLD))
    mvc("add", ".")
    index = Index(work / ".mvc" / "index")
    assert (index.tree_id, index.commit_id) == (tree, head)  # a restat only: the same tree
    assert index.entry("d/a.bin").mtime_ns == OLD

    read_trees = []
    real = Repo.tree_of
    monkeypatch.setattr(Repo, "tree_of", lambda self, c: read_trees.append(c) or real(self, c))
    assert mvc("status", "--porcelain").stdout == ""
    write(work / "d" / "c.bin", random_bytes(300, seed=8))
    assert mvc.json("commit", "-a", "-m", "two", "--json")["change_count"] == 1
    assert read_trees == []  # status compared tree ids; commit counted what its add changed
    write(work / "d" / "b.bin", random_bytes(300, seed=7))
    mvc("add", ".")
    assert Index(work / ".mvc" / "index").tree_id is None  # content changed: the tree is not known
    assert mvc("status", "--porcelain").stdout == "M  d/b.bin\n"


def test_add_of_a_touched_file_after_a_staged_change_does_not_claim_the_old_tree(mvc, work):
    for name in ("a.bin", "b.bin"):
        write(work / name, random_bytes(300, seed=ord(name[0])))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    write(work / "a.bin", random_bytes(300, seed=5))
    mvc("add", "a.bin")
    os.utime(work / "b.bin", ns=(OLD, OLD))
    mvc("add", "b.bin")
    assert Index(work / ".mvc" / "index").tree_id is None
    assert mvc("status", "--porcelain").stdout == "M  a.bin\n"


PRINTABLE_PATHS = ["a b/c.bin", "ünïcödé/名前", "emoji/😀.bin", "a-b", "a.b", "a/b", "</script>", "x'y"]


@pytest.mark.parametrize("paths", [PRINTABLE_PATHS, [*PRINTABLE_PATHS, 'quote"d'], [*PRINTABLE_PATHS, "back\\slash"],
                                   [*PRINTABLE_PATHS, "tab\there"], [*PRINTABLE_PATHS, "line\u2028sep"]])
@pytest.mark.parametrize("as_column", [False, True])
def test_the_tree_is_byte_identical_whether_or_not_its_strings_need_quoting(paths, as_column):
    modes = (MODE_FILE, MODE_EXEC, MODE_LINK)
    entries = [TreeEntry(path, hash_bytes(path.encode()), number * 7919, modes[number % 3])
               for number, path in enumerate(sorted(paths))]
    ids = [e.manifest_id for e in entries]
    column = IdColumn(bytes.fromhex("".join(ids))) if as_column else ids
    assert encode_tree([e.path for e in entries], column, [e.size for e in entries],
                       [e.mode for e in entries]) == encode(Tree(tuple(entries)))


def test_the_id_column_lists_its_ids_as_hex():
    ids = [hash_bytes(bytes([n])) for n in range(3)]
    assert IdColumn(bytes.fromhex("".join(ids))).hex_list() == ids
    assert list(IdColumn(bytes.fromhex("".join(ids)))) == ids
    assert IdColumn(b"").hex_list() == []


def test_a_big_object_is_stored_at_the_fast_level_and_reads_back_whole(mvc, work):
    repo = Repo(work)
    count = 3000
    paths = [f"d{n % 7}/f{n:05d}.bin" for n in range(count)]
    paths.sort()
    data = encode_tree(paths, [hash_bytes(p.encode()) for p in paths], list(range(count)), [MODE_FILE] * count)
    assert len(data) >= object_store.LARGE_OBJECT_BYTES
    small = encode_tree(paths[:3], [hash_bytes(p.encode()) for p in paths[:3]], [0, 1, 2], [MODE_FILE] * 3)
    with repo.objects.batch():
        big_id = repo.objects.put_encoded(data)
        small_id = repo.objects.put_encoded(small)
    fresh = Repo(work)
    assert fresh.objects.read_verified(big_id) == data
    assert fresh.objects.read_verified(small_id) == small


def test_entries_are_found_by_bisection_and_an_index_out_of_order_is_read_all_the_same(tmp_path):
    from modelvc.index import IndexEntry
    from modelvc.indexfile import encode_columns

    names = ["a", "b-x", "b/c", "b0"]
    entries = [IndexEntry(p, hash_bytes(p.encode()), n, MODE_FILE, n, n) for n, p in enumerate(names)]
    columns = ([e.path for e in entries], [e.manifest_id for e in entries], [e.size for e in entries],
               [e.mode for e in entries], [e.mtime_ns for e in entries], [e.ino for e in entries],
               [""] * 4, [False] * 4)
    path = tmp_path / "index"
    path.write_bytes(encode_columns(columns, None))
    index = Index(path)
    assert index._entries is None  # noqa: SLF001 - read as columns
    assert [index.entry(e.path) for e in entries] == entries
    assert index.entry("b/") is None and index.entry("0") is None and index.entry("c") is None
    assert "b/c" in index.tracked() and "b/" not in index.tracked() and len(index.tracked()) == 4

    shuffled = tuple([column[i] for i in (3, 0, 2, 1)] for column in columns)
    path.write_bytes(encode_columns(shuffled, None))  # not as mvc writes it
    index = Index(path)
    assert [index.entry(e.path) for e in entries] == entries
    assert "b/c" in index.tracked() and "c" not in index.tracked()


NOTHING_TO_COMMIT = ("error: nothing to commit: the index matches HEAD\n"
                     "hint: stage changes with 'mvc add', or use --allow-empty\n")


def test_commit_a_of_touched_files_only_keeps_the_tree_the_index_records(mvc, work, monkeypatch):
    for name in ("a.bin", "b.bin"):
        write(work / "d" / name, random_bytes(300, seed=ord(name[0])))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    repo = Repo(work)
    head = repo.head_commit()
    os.utime(work / "d" / "a.bin", ns=(OLD, OLD))
    result = mvc("commit", "-a", "-m", "nothing", ok=False)
    assert (result.exit_code, result.stdout, result.stderr) == (9, "", NOTHING_TO_COMMIT)
    index = Index(work / ".mvc" / "index")
    assert (index.tree_id, index.commit_id) == (repo.read_commit(head).tree, head)  # kept, as `add` keeps it
    assert index.entry("d/a.bin").mtime_ns == OLD  # with the stat the walk took

    read_trees = []
    real = Repo.tree_of
    monkeypatch.setattr(Repo, "tree_of", lambda self, c: read_trees.append(c) or real(self, c))
    assert mvc("commit", "-a", "-m", "nothing", ok=False).stderr == NOTHING_TO_COMMIT
    assert read_trees == []


def test_commit_with_nothing_to_commit_reads_no_tree_where_the_index_records_none(mvc, work, monkeypatch):
    for name in ("a.bin", "b.bin"):
        write(work / name, random_bytes(300, seed=ord(name[0])))
        os.utime(work / name, ns=(OLD, OLD))  # never racy: `commit -a` finds nothing to restat
    mvc("add", ".")
    mvc("commit", "-m", "one")
    repo = Repo(work)
    head = repo.head_commit()
    tree = repo.read_commit(head).tree
    index = Index(work / ".mvc" / "index")
    index.save()  # as a checkout saves it: entries whose tree is not recorded
    read_trees = []
    real = Repo.tree_of
    monkeypatch.setattr(Repo, "tree_of", lambda self, c: read_trees.append(c) or real(self, c))
    before = index_file(work)
    for args in (("commit", "-a", "-m", "nothing"), ("commit", "-m", "nothing")):
        result = mvc(*args, ok=False)
        assert (result.exit_code, result.stderr) == (9, NOTHING_TO_COMMIT)
    assert read_trees == []  # the index's tree, encoded, has HEAD's tree id
    assert index_file(work) == before  # a refused commit writes nothing
    assert mvc("status", "--porcelain").stdout == ""
    assert (Index(work / ".mvc" / "index").tree_id, Index(work / ".mvc" / "index").commit_id) == (tree, head)
    Index(work / ".mvc" / "index").save()
    assert mvc("commit", "--allow-empty", "-m", "empty").exit_code == 0
    write(work / "a.bin", random_bytes(300, seed=9))
    mvc("add", "a.bin")
    Index(work / ".mvc" / "index").save()
    assert mvc.json("commit", "-m", "two")["change_count"] == 1  # a real change is still counted, the long way
    assert mvc("status", "--porcelain").stdout == ""


def _tree_of(paths_and_modes) -> Tree:
    return Tree(tuple(TreeEntry(path, hash_bytes(f"{path}{number}".encode()), number * 31, mode)
                      for number, (path, mode) in enumerate(sorted(paths_and_modes))))


@pytest.mark.parametrize("edit", ["replace first", "replace last", "replace middle", "remove first", "remove last",
                                  "remove two", "remove last two", "mode and size", "remove only"])
def test_the_patched_tree_is_byte_identical_to_the_tree_encoded(edit):
    names = ["a", 'quote"d', "tab\there", "ü/名前", "x/y.bin", "z"]
    old = _tree_of([(name, (MODE_FILE, MODE_EXEC, MODE_LINK)[n % 3]) for n, name in enumerate(names)])
    if edit == "remove only":
        old = Tree(old.entries[:1])
    entries = list(old.entries)
    replaced = {"replace first": [0], "replace last": [5], "replace middle": [2, 3], "mode and size": [4]}
    removed = {"remove first": [0], "remove last": [5], "remove two": [1, 2], "remove last two": [4, 5],
               "remove only": [0]}
    changes = []
    for position in replaced.get(edit, []):
        entry = entries[position]
        new = TreeEntry(entry.path, hash_bytes(b"new" + entry.path.encode()), entry.size + 1000,
                        MODE_EXEC if entry.mode != MODE_EXEC else MODE_FILE)
        changes.append((entry, new))
        entries[position] = new
    for position in removed.get(edit, []):
        changes.append((entries[position], None))
    entries = [e for n, e in enumerate(entries) if n not in removed.get(edit, [])]
    patched = patch_tree(encode(old), changes)
    if edit in ("remove last two", "remove only"):  # removals around one comma, the only entry: not patched
        assert patched is None
        return
    assert patched == encode(Tree(tuple(entries)))
    assert patch_tree(encode(old), [(TreeEntry("a", "0" * 64, 0), None)]) is None  # not in the tree


def test_commit_a_of_a_few_changed_files_edits_heads_tree_into_the_one_the_index_makes(mvc, work, monkeypatch):
    from modelvc.ops import commit as commit_op

    for number in range(8):
        write(work / "d" / f"f{number}.bin", random_bytes(300, seed=number))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    write(work / "d" / "f0.bin", random_bytes(301, seed=100))
    write(work / "d" / "f7.bin", random_bytes(302, seed=101))
    os.chmod(work / "d" / "f3.bin", 0o755)
    os.unlink(work / "d" / "f5.bin")
    encoded = []
    real = commit_op.encode_tree
    monkeypatch.setattr(commit_op, "encode_tree", lambda *columns: encoded.append(1) or real(*columns))
    assert mvc.json("commit", "-a", "-m", "two")["change_count"] == 4
    assert encoded == []  # HEAD's tree was edited
    repo = Repo(work)
    index = Index(work / ".mvc" / "index")
    tree_id = repo.read_commit(repo.head_commit()).tree
    assert repo.objects.read_verified(tree_id) == real(*index.tree_columns())
    assert index.tree_id == tree_id
    write(work / "d" / "new.bin", random_bytes(300, seed=102))
    mvc("add", ".")
    assert mvc.json("commit", "-m", "three")["change_count"] == 1
    assert encoded == [1]  # a new path: the tree encoded from the index
    assert mvc("fsck").exit_code == 0



def test_a_commit_a_refused_after_staging_keeps_the_staging_and_what_it_names(mvc, work):
    for number in range(4):
        write(work / f"f{number}.bin", random_bytes(300, seed=number))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    write(work / "f3.bin", random_bytes(300, seed=20))
    result = mvc("commit", "-a", "-m", "three", "--metrics-file", "missing.json", ok=False)
    assert result.exit_code == 17  # refused after staging: the staging is saved, with what it names
    assert mvc("status", "--porcelain").stdout == "M  f3.bin\n"
    assert mvc("fsck").exit_code == 0
    assert mvc.json("commit", "-m", "three")["change_count"] == 1
