"""The commit-metadata cache (.mvc/commit-graph.sqlite) is derived data: with it, without it,
damaged or out of date, every answer is the objects' answer; fsck checks it, gc rebuilds it."""

from __future__ import annotations

import json
import sqlite3

from test_query import T0, build

from modelvc.objects import Commit, Signature
from modelvc.repo import Repo

QUERIES = [
    ("log", "--all", "--json"),
    ("log", "--all", "--where", "val_loss<2 and lr=3e-4", "--sort", "-val_loss", "--json"),
    ("log", "-n", "2", "--json"),
    ("runs", "--all", "--sort", "acc", "--csv"),
    ("runs", "side", "--where", "task=summarization", "--md"),
]


def answers(mvc) -> list[str]:
    return [mvc(*query).stdout for query in QUERIES]


def cache_rows(work) -> dict[str, str]:
    """id -> its cached own values, read from the file as any SQLite reader would."""
    with sqlite3.connect(work / ".mvc" / "commit-graph.sqlite") as connection:
        return dict(connection.execute("SELECT id, own_values FROM commits"))


def fsck_problems(mvc) -> tuple[int, list[dict]]:
    result = mvc("fsck", "--json", ok=False)
    return result.exit_code, [p for p in json.loads(result.stdout)["problems"]]


def test_the_cache_is_made_by_a_walk_and_deleting_it_changes_no_answer(mvc, work):
    ids = build(work)
    cache = work / ".mvc" / "commit-graph.sqlite"
    first = answers(mvc)
    assert set(cache_rows(work)) == set(ids.values())  # filled from the objects by the first walk
    assert json.loads(cache_rows(work)[ids["c"]]) == {
        "meta": {"task": "translation"}, "metrics": {"val_loss": 1.5}, "params": {"lr": "3e-4", "opt": "sgd"}}
    assert answers(mvc) == first  # answered from the cache
    cache.unlink()
    assert answers(mvc) == first
    assert mvc("fsck").exit_code == 0


def test_a_commit_made_without_the_cache_is_still_found(mvc, work):
    ids = build(work)
    mvc("log", "--all")
    with Repo(work) as repo, repo.transaction():  # as an older mvc commits: the cache is not told
        with repo.objects.batch():
            late = repo.objects.put(Commit(repo.read_commit(ids["c"]).tree, (ids["c"],),
                                           Signature("T", "t@x", T0 + 500, 0), "late\n", {"val_loss": 0.5}))
        repo.refs.update_head(late, ids["c"], "commit: late")
    assert [c["subject"] for c in mvc.json("log", "--all", "--where", "val_loss<1")] == ["late"]
    assert late in cache_rows(work)  # and added to the cache by that walk
    assert mvc("fsck").exit_code == 0


def test_a_damaged_row_is_ignored_reported_by_fsck_and_rebuilt_by_gc(mvc, work):
    ids = build(work)
    first = answers(mvc)
    with sqlite3.connect(work / ".mvc" / "commit-graph.sqlite") as connection:
        connection.execute("UPDATE commits SET own_values = ? WHERE id = ?",
                           ('{"meta":{},"metrics":{"val_loss":0.1},"params":{}}', ids["a"]))
    assert mvc.json("log", "--all", "--where", "val_loss<1") == []  # the objects' answer, not the row's
    assert answers(mvc) == first
    code, problems = fsck_problems(mvc)
    assert code == 7
    assert problems == [
        {"kind": "corrupt", "id": None, "name": "commit-graph.sqlite", "breaks": [],
         "detail": "commit-graph.sqlite fails its checksum: it is ignored; 'mvc gc' rebuilds it"},
        {"kind": "corrupt", "id": None, "name": "commit-graph.sqlite", "breaks": [],
         "detail": f"commit-graph.sqlite has 1 row(s) that disagree with the commit objects (first {ids['a'][:10]}): "
                   "it is ignored; 'mvc gc' rebuilds it"}]
    mvc("gc")
    assert fsck_problems(mvc) == (0, [])
    assert json.loads(cache_rows(work)[ids["a"]])["metrics"] == {"val_loss": 2.5, "acc": 0.5}
    assert answers(mvc) == first


def test_a_file_that_is_not_sqlite_is_ignored_and_gc_replaces_it(mvc, work):
    build(work)
    first = answers(mvc)
    cache = work / ".mvc" / "commit-graph.sqlite"
    cache.write_bytes(b"not a database at all" * 100)
    assert answers(mvc) == first
    assert cache.read_bytes() == b"not a database at all" * 100  # a walk does not write into it
    code, problems = fsck_problems(mvc)
    assert (code, [p["detail"] for p in problems]) == (
        7, ["commit-graph.sqlite is unreadable (file is not a database): it is ignored; 'mvc gc' rebuilds it"])
    mvc("gc")
    assert fsck_problems(mvc) == (0, [])
    assert len(cache_rows(work)) == 5
    assert answers(mvc) == first


def test_gc_keeps_rows_only_for_what_is_reachable(mvc, work):
    ids = build(work)
    mvc("log", "--all")
    mvc("branch", "-D", "side")
    mvc("reflog", "expire", "--expire=now", "--all")
    mvc("gc")
    assert set(cache_rows(work)) == {ids["a"], ids["b"], ids["c"]}
    assert [c["subject"] for c in mvc.json("log", "--all")] == ["c", "b", "a"]
    assert fsck_problems(mvc) == (0, [])
