"""The index file: its columnar encoding (version 2), the JSON one before it, and what is refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import index_as_json, random_bytes, write

from modelvc.errors import CorruptIndexError, UnsafePathError
from modelvc.index import REBUILD_HINT, Index, IndexEntry
from modelvc.indexfile import MAGIC, encode_index
from modelvc.safepath import check_paths, paths_look_safe

# Written by mvc before IndexEntry.file was renamed manifest_id (written_ns aside, byte for byte).
EARLIER_INDEX = (b'{"version":1,"written_ns":1796042211101394987,"entries":['
                 b'{"path":"a.bin","file":"' + b"4" * 64 + b'","size":7,"mode":33188,'
                 b'"mtime_ns":1700000000000000000,"ino":42},'
                 b'{"path":"b/c.bin","file":"' + b"5" * 64 + b'","size":9,"mode":33261,'
                 b'"mtime_ns":1700000000000000001,"ino":43,"unsynced_boot":"boot-1","dereference":true}]}')
EARLIER_ENTRIES = {
    "a.bin": IndexEntry("a.bin", "4" * 64, 7, 0o100644, 1700000000000000000, 42),
    "b/c.bin": IndexEntry("b/c.bin", "5" * 64, 9, 0o100755, 1700000000000000001, 43, "boot-1", True)}

EDGE_ENTRIES = [  # every field at its edges: names a line format would trip on, the largest numbers
    IndexEntry("plain.bin", "0" * 64, 0, 0o100644),
    IndexEntry("dir/run.sh", "a" * 64, 2**63 - 1, 0o100755, -1, 2**64 - 1),
    IndexEntry("dir/link", "f" * 64, 11, 0o120000, 2**63 - 1, 1, "boot-a"),
    IndexEntry("dir/sub/ünï cödé\tand\nnewline.bin", "0123456789abcdef" * 4, 5, 0o100644, 1, 2, "boot-b", True),
    IndexEntry("dir/sub/\\back slash\r.bin", "fedcba9876543210" * 4, 6, 0o100755, 3, 4, "boot-a"),
]


def test_every_field_round_trips_and_equal_indexes_are_byte_identical(tmp_path):
    path = tmp_path / "index"
    written = Index(path, load=False)
    written.entries = {e.path: e for e in EDGE_ENTRIES}
    written.save("9" * 64)
    data = path.read_bytes()
    assert data.startswith(MAGIC)

    Index(path).save("9" * 64)  # written from its columns, no entry object built
    assert path.read_bytes() == data
    read = Index(path)
    assert read.entries == {e.path: e for e in EDGE_ENTRIES}
    assert read.tree_id == "9" * 64
    assert read.paths() == sorted(e.path for e in EDGE_ENTRIES)
    read.save("9" * 64)
    assert path.read_bytes() == data
    shuffled = Index(tmp_path / "other", load=False)
    shuffled.entries = {e.path: e for e in reversed(EDGE_ENTRIES)}
    shuffled.save("9" * 64)
    assert (tmp_path / "other").read_bytes() == data


def test_one_entry_is_read_without_building_the_others(tmp_path):
    path = tmp_path / "index"
    written = Index(path, load=False)
    written.entries = {e.path: e for e in EDGE_ENTRIES}
    written.save()
    read = Index(path)
    assert read.entry("dir/link") == EDGE_ENTRIES[2] and read.entry("missing") is None
    assert read.tree_id is None
    assert read._entries is None  # noqa: SLF001 - the columns were not turned into objects


def test_a_save_without_a_tree_id_drops_it(tmp_path):
    path = tmp_path / "index"
    index = Index(path, load=False)
    index.entries = {"a.bin": EARLIER_ENTRIES["a.bin"]}
    index.save("9" * 64)
    index = Index(path)
    index.entries["b.bin"] = IndexEntry("b.bin", "5" * 64, 1, 0o100644)
    index.save()
    assert Index(path).tree_id is None


def test_an_index_written_before_loads_and_is_converted_on_the_next_write(tmp_path):
    path = tmp_path / "index"
    path.write_bytes(EARLIER_INDEX)
    index = Index(path)
    assert index.entries == EARLIER_ENTRIES and index.tree_id is None
    index.save()
    assert path.read_bytes().startswith(MAGIC)
    assert Index(path).entries == EARLIER_ENTRIES


def test_a_repository_with_a_json_index_keeps_working(mvc, work):
    """An index as the previous mvc left it: status reads it, the next write converts it."""
    write(work / "a.bin", random_bytes(3000))
    write(work / "b.bin", random_bytes(3000, seed=1))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    (work / ".mvc" / "index").write_text(json.dumps(index_as_json(work)))
    write(work / "a.bin", random_bytes(3000, seed=2))
    assert mvc("status", "--porcelain").stdout == " M a.bin\n"
    mvc("add", "a.bin")
    assert (work / ".mvc" / "index").read_bytes().startswith(MAGIC)
    assert mvc("status", "--porcelain").stdout == "M  a.bin\n"


@pytest.mark.parametrize("entry", ['["a.bin"]',
                                   '{"path":"a.bin","manifest_id":"' + "4" * 64 + '","size":7,"mode":33188}'])
def test_an_entry_not_in_the_index_encoding_is_refused(tmp_path, entry):
    path = tmp_path / "index"
    path.write_text('{"version":1,"written_ns":1,"entries":[' + entry + "]}")
    with pytest.raises(CorruptIndexError, match=r"the index file .*index is corrupt \(an entry is not an object"):
        Index(path)


def _damaged(data: bytes, how: str) -> bytes:
    if how == "truncated":
        return data[:-40]
    if how == "flipped":
        return data[:len(MAGIC) + 60] + bytes([data[len(MAGIC) + 60] ^ 1]) + data[len(MAGIC) + 61:]
    if how == "empty":
        return b""
    return MAGIC + b"{}\n"  # "no header"


@pytest.mark.parametrize("how, reason", [("truncated", "its checksum does not match"),
                                         ("flipped", "its checksum does not match"),
                                         ("no header", "its checksum does not match"),
                                         ("empty", "Expecting value")])
def test_a_damaged_index_is_refused_with_the_rebuild_hint(tmp_path, how, reason):
    path = tmp_path / "index"
    index = Index(path, load=False)
    index.entries = {e.path: e for e in EDGE_ENTRIES}
    index.save()
    path.write_bytes(_damaged(path.read_bytes(), how))
    with pytest.raises(CorruptIndexError) as caught:
        Index(path)
    assert str(caught.value).startswith(f"the index file {path} is corrupt ({reason}")
    assert caught.value.hint == REBUILD_HINT


@pytest.mark.parametrize("paths, problem", [
    (["../outside.bin"], "'../outside.bin': it has an empty, '.' or '..' component"),
    (["a/.MVC/config"], "'a/.MVC/config': it is inside .mvc"),
    ([".git/config"], "'.git/config': it is inside .git"),
    (["/etc/passwd"], "'/etc/passwd': it is absolute"),
    (["a//b"], "'a//b': it has an empty, '.' or '..' component"),
    (["m", "m/x.bin"], "'m': it is both a file and the directory of 'm/x.bin'"),
])
def test_an_unsafe_path_in_an_index_file_is_refused(tmp_path, paths, problem):
    path = tmp_path / "index"
    path.write_bytes(encode_index({p: IndexEntry(p, "4" * 64, 1, 0o100644) for p in paths}, None))
    with pytest.raises(UnsafePathError) as caught:
        Index(path)
    assert str(caught.value) == f"the index file {path} has an unsafe path {problem}"


@pytest.mark.parametrize("paths", [
    [], ["a"], ["a/b", "a/c", "b"], ["a-b", "a/b", "a.b"], ["x/.gitignore", "x/.mvcignore", "x/...", "x/.g"],
    [".", "a"], ["a/./b"], ["a/"], [""], ["a\0b"], ["a", "a"], ["a", "a/b/c"], ["a/b", "a/b/c/d"], ["x/.Git/y"],
    ["x/.mvc"], ["\udcff.bin"], ["/a"], ["a//b"], ["a/.."], ["../a"],
    ["a", "a.txt", "a/b"], ["a", "a-b", "a-b/c", "a.d", "a/x/y"], ["a", "a.txt"], ["a", "ab/c"],
    ["d/a", "d/a b", "d/a/c"],
    ["a/.hidden/b", "a/..b", "a./b", "b.", ".c"], ["./a"], ["a/b/"], [".mvc"], ["A/.MvC/x"], ["x/.git"], ["a", ""],
])
def test_the_quick_path_check_never_passes_what_check_paths_refuses(paths):
    try:
        check_paths(paths, "the index")
        safe = True
    except UnsafePathError:
        safe = False
    assert paths_look_safe(paths) == safe


def test_add_with_nothing_changed_reads_no_file_and_leaves_the_index_alone(mvc, work, monkeypatch):
    for i in range(5):
        write(work / "d" / f"f{i}.bin", random_bytes(2000, seed=i))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    index = work / ".mvc" / "index"
    stamp = 1_000_000_000
    for file in (work / "d").iterdir():  # out of the racy window: the stat cache vouches for them
        os.utime(file, ns=(stamp, stamp))
    mvc("add", ".")
    before, before_stat = index.read_bytes(), index.stat()

    from modelvc.store import filedata, smallfiles

    read = []  # files read, whichever path reads them: streamed, or small ones in batches
    real, real_small = filedata.ingest_file, smallfiles.read_and_code

    def streamed(path, *a, **k):
        read.append(Path(path))
        return real(path, *a, **k)

    monkeypatch.setattr(filedata, "ingest_file", streamed)
    monkeypatch.setattr(smallfiles, "ingest_file", streamed)
    monkeypatch.setattr(smallfiles, "read_and_code",
                        lambda file, *a, **k: read.append(Path(file.path)) or real_small(file, *a, **k))
    assert mvc.json("add", ".", "--json")["unchanged_count"] == 5
    assert read == []
    assert (index.read_bytes(), index.stat().st_mtime_ns, index.stat().st_ino) == (
        before, before_stat.st_mtime_ns, before_stat.st_ino)

    write(work / "d" / "f3.bin", random_bytes(2000, seed=30))
    (work / "d" / "f1.bin").unlink()
    result = mvc.json("commit", "-a", "-m", "two", "--json")
    assert read == [work / "d" / "f3.bin"]  # only the changed file is read
    assert result["change_count"] == 2
    assert mvc("status", "--porcelain").stdout == ""


def test_status_reads_no_tree_when_the_index_records_head_s(mvc, work, monkeypatch):
    write(work / "a.bin", random_bytes(2000))
    write(work / "b.bin", random_bytes(2000, seed=1))
    mvc("add", ".")
    mvc("commit", "-m", "one")
    from modelvc.repo import Repo

    head_tree = Repo(work).read_commit(Repo(work).head_commit()).tree
    assert Index(work / ".mvc" / "index").tree_id == head_tree  # commit knew it
    (work / "a.bin").unlink()
    mvc("checkout", "HEAD", "--", "a.bin")
    assert Index(work / ".mvc" / "index").tree_id is None
    assert mvc("status", "--porcelain").stdout == ""  # finds the index equal to HEAD's tree, and says so
    assert Index(work / ".mvc" / "index").tree_id == head_tree

    read_trees = []
    real = Repo.read_tree
    monkeypatch.setattr(Repo, "read_tree", lambda self, tree_id: read_trees.append(tree_id) or real(self, tree_id))
    write(work / "c.bin", b"new")
    assert mvc("status", "--porcelain").stdout == "?? c.bin\n"
    assert read_trees == []

    mvc("add", "c.bin")  # the index no longer makes HEAD's tree: status compares again
    assert Index(work / ".mvc" / "index").tree_id is None
    read_trees.clear()
    assert mvc("status", "--porcelain").stdout == "A  c.bin\n"
    assert read_trees == [head_tree]
