"""fsck's shortcuts for long histories find what the long way found: a tree whose paths repeat
the tree before it is still reported, and the commit-metadata cache is checked against its
rows' own bodies without reading every commit object again."""

from __future__ import annotations

import json
import sqlite3

from conftest import write
from test_query import T0, build

from modelvc import commitcache
from modelvc.ids import hash_bytes
from modelvc.objects import Commit, Signature, Tree, TreeEntry, encode
from modelvc.repo import Repo


def problems(mvc) -> tuple[int, list[dict]]:
    result = mvc("fsck", "--json", ok=False)
    return result.exit_code, json.loads(result.stdout)["problems"]


def test_consecutive_trees_with_the_same_unsafe_paths_are_each_reported(mvc, work):
    write(work / "good.bin", b"good")
    mvc("add", ".")
    mvc("commit", "-m", "good", "-q")
    with Repo(work) as repo:
        good = repo.tree_of(repo.head_commit()).entries[0]
        parent, planted = repo.head_commit(), []
        for size in (4, 5):  # the same paths, other sizes: two trees, the second walked right after the first
            tree_id = repo.objects.put(Tree((TreeEntry("../x", good.manifest_id, size),)))
            parent = repo.objects.put(Commit(tree_id, (parent,), repo.signature_now(), f"evil {size}"))
            planted.append((tree_id, parent))
        repo.refs.update("refs/heads/evil", parent, None, "planted")
    code, found = problems(mvc)
    unsafe = [p for p in found if p["kind"] == "unsafe"]
    assert code == 7
    reason = "it has an empty, '.' or '..' component"
    assert unsafe == [{"kind": "unsafe", "id": tree_id, "name": None,
                       "detail": f"tree {tree_id[:10]} has an unsafe path '../x': {reason}",
                       "breaks": [{"commit": commit_id, "path": "../x"}]}
                      for tree_id, commit_id in sorted(planted)]


def rewrite_rows(work, change) -> None:
    """Apply `change` to the cache's rows and store their checksum again, so only the rows disagree."""
    path = work / ".mvc" / commitcache.CACHE_FILE
    with sqlite3.connect(path) as connection:
        change(connection)
        rows, _ = commitcache._load(connection)
        connection.execute("UPDATE info SET value = ? WHERE key = 'checksum'", (commitcache.checksum(rows),))
    connection.close()


def disagreement(first: str, count: int = 1) -> dict:
    return {"kind": "corrupt", "id": None, "name": "commit-graph.sqlite", "breaks": [],
            "detail": f"commit-graph.sqlite has {count} row(s) that disagree with the commit objects "
                      f"(first {first[:10]}): it is ignored; 'mvc gc' rebuilds it"}


def test_a_cache_row_whose_body_is_not_its_commit_is_reported(mvc, work):
    ids = build(work)
    mvc("log", "--all")
    assert problems(mvc) == (0, [])
    other = Commit("0" * 64, (), Signature("T", "t@x", T0, 0), "a\n")  # another commit's canonical bytes
    rewrite_rows(work, lambda connection: connection.execute(
        "UPDATE commits SET body = ? WHERE id = ?", (encode(other), ids["a"])))
    assert problems(mvc) == (7, [disagreement(ids["a"])])


def test_a_cache_row_for_a_commit_the_store_lacks_is_reported(mvc, work):
    build(work)
    mvc("log", "--all")
    absent = Commit("0" * 64, (), Signature("T", "t@x", T0, 0), "never stored\n")
    body = encode(absent)
    absent_id = hash_bytes(body)
    row = commitcache.row_of(absent_id, absent, body)  # a true row: its body hashes to its id
    rewrite_rows(work, lambda connection: connection.execute("INSERT INTO commits VALUES (?, ?, ?, ?, ?)", row))
    assert problems(mvc) == (7, [disagreement(absent_id)])
