"""The short commands at many tracked files: the tree encoded from the index's columns, stats
compared during the walk, and nothing read twice."""

from __future__ import annotations

import json
import os

import pytest
from conftest import random_bytes, write

from modelvc.errors import CorruptIndexError
from modelvc.ids import hash_bytes
from modelvc.index import Index, IndexEntry
from modelvc.indexfile import MAGIC, encode_index
from modelvc.objects import MODE_EXEC, MODE_FILE, MODE_LINK, Tree, TreeEntry, encode, encode_tree
from modelvc.repo import Repo

ODD_PATHS = [  # what JSON escapes or writes raw: quotes, backslashes, controls, non-ASCII, non-BMP
    'quote"d', "back\\slash", "tab\tand\nnewline\r", "bell\x07\x1f\x7f", "ünïcödé/名前", "emoji/😀.bin",
    "line\u2028sep\u2029", "slash/sep/a b", "a-b", "a.b", "a/b", "\\u0041", "</script>",
]


@pytest.mark.parametrize("paths", [[], ["one.bin"], ODD_PATHS])
def test_the_tree_encoded_from_columns_is_byte_identical_to_encode(paths):
    modes = (MODE_FILE, MODE_EXEC, MODE_LINK)
    entries = [TreeEntry(path, hash_bytes(path.encode()), number * 7919 ** 3, modes[number % 3])
               for number, path in enumerate(sorted(paths))]
    entries[:1] = [TreeEntry(e.path, e.manifest_id, 2**63 - 1, e.mode) for e in entries[:1]]
    columns = ([e.path for e in entries], [e.manifest_id for e in entries], [e.size for e in entries],
               [e.mode for e in entries])
    assert encode_tree(*columns) == encode(Tree(tuple(entries)))


def test_a_commit_records_the_tree_the_old_encoder_makes(mvc, work):
    for number, name in enumerate(ODD_PATHS[:6]):
        write(work / "d" / name.replace("/", "_"), random_bytes(300, seed=number), executable=number % 2 == 1)
    mvc("add", ".")
    mvc("commit", "-m", "one")
    write(work / "d" / 'quote"d', random_bytes(300, seed=99))
    mvc("commit", "-a", "-m", "two")

    repo = Repo(work)
    tree_id = repo.read_commit(repo.head_commit()).tree
    entries = Index(work / ".mvc" / "index").entries
    expected = encode(Tree(tuple(TreeEntry(p, e.manifest_id, e.size, e.mode) for p, e in entries.items())))
    assert tree_id == hash_bytes(expected)
    assert repo.objects.read_verified(tree_id) == expected


def test_staging_a_replaced_file_keeps_the_columns_and_writes_the_same_index(tmp_path):
    path = tmp_path / "index"
    written = Index(path, load=False)
    written.entries = {p: IndexEntry(p, "4" * 64, 1, MODE_FILE, 5, 6) for p in ("a", "b/c", "d")}
    written.save()
    index = Index(path)
    replaced = IndexEntry("b/c", "5" * 64, 9, MODE_EXEC, 7, 8, "boot-1")
    index.put(replaced)
    assert index._entries is None  # no entry object built for the others
    assert index.entry("b/c") == replaced
    assert index.tree_columns() == (["a", "b/c", "d"], ["4" * 64, "5" * 64, "4" * 64], [1, 9, 1],
                                    [MODE_FILE, MODE_EXEC, MODE_FILE])
    index.save()
    expected = {p: IndexEntry(p, "4" * 64, 1, MODE_FILE, 5, 6) for p in ("a", "d")} | {"b/c": replaced}
    assert path.read_bytes() == encode_index(expected, None)


def test_the_index_records_the_commit_of_its_tree_and_status_needs_no_commit(mvc, work, monkeypatch):
    write(work / "a.bin", random_bytes(2000))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    repo = Repo(work)
    head = repo.head_commit()
    index = Index(work / ".mvc" / "index")
    assert (index.tree_id, index.commit_id) == (repo.read_commit(head).tree, head)

    read_commits = []
    real = Repo.read_commit
    monkeypatch.setattr(Repo, "read_commit", lambda self, c: read_commits.append(c) or real(self, c))
    assert mvc("status", "--porcelain").stdout == ""
    assert read_commits == []

    path = work / ".mvc" / "index"
    Index(path).save(index.tree_id)  # as an earlier mvc wrote it: no commit recorded
    os.utime(work / "a.bin", ns=(1_000_000_000, 1_000_000_000))  # so status re-reads it, then saves
    assert mvc("status", "--porcelain").stdout == ""
    assert read_commits == [head]
    assert (Index(path).tree_id, Index(path).commit_id) == (index.tree_id, head)  # learnt again

    write(work / "b.bin", b"b")
    mvc("add", "b.bin")
    mvc("commit", "-m", "two")
    # HEAD moved back by another program: the index still records "two", and status compares
    (work / ".mvc" / "refs" / "heads" / "main").write_text(head + "\n")
    assert mvc("status", "--porcelain").stdout == "A  b.bin\n"


def test_an_index_whose_recorded_commit_is_no_id_is_refused(tmp_path):
    path = tmp_path / "index"
    data = encode_index({"a": IndexEntry("a", "4" * 64, 1, MODE_FILE)}, "9" * 64, "not-an-id")
    header = json.loads(data[len(MAGIC):data.index(b"\n", len(MAGIC))])
    assert header["commit"] == "not-an-id"
    path.write_bytes(data)
    with pytest.raises(CorruptIndexError) as caught:
        Index(path)
    assert str(caught.value) == f"the index file {path} is corrupt (its commit id is not an object id)"


def test_add_of_directories_counts_vouched_files_once_and_stages_the_rest(mvc, work):
    for i in range(4):
        write(work / "d" / f"f{i}.bin", random_bytes(500, seed=i))
    write(work / "e" / "g.bin", b"g")
    write(work / "d" / "ignored.log", b"tracked although ignored")
    mvc("add", ".")
    mvc("commit", "-m", "one")
    write(work / ".mvcignore", b"*.log\n")
    mvc("add", ".mvcignore")
    mvc("commit", "-m", "ignore logs")
    stamp = 1_000_000_000
    for file in [*(work / "d").iterdir(), work / "e" / "g.bin"]:  # out of the racy window
        os.utime(file, ns=(stamp, stamp))
    mvc("add", ".")

    assert mvc.json("add", "e", "--json")["unchanged_count"] == 1  # all unchanged: no "did not match"
    write(work / "d" / "f1.bin", random_bytes(500, seed=11))
    (work / "d" / "f2.bin").unlink()
    write(work / "d" / "new.bin", b"new")
    write(work / "d" / "new.log", b"ignored, untracked")
    write(work / "d" / "ignored.log", b"changed")
    result = mvc.json("add", "d", ".", "--json")
    assert (sorted(result["staged"]), result["deleted"], result["unchanged_count"]) == (
        ["d/f1.bin", "d/ignored.log", "d/new.bin"], ["d/f2.bin"], 4)  # d/f0, d/f3, e/g, .mvcignore
    assert mvc("status", "--porcelain").stdout == "M  d/f1.bin\nD  d/f2.bin\nM  d/ignored.log\nA  d/new.bin\n"
