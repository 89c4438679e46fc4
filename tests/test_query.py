"""Finding versions by their values: log --where/--sort/--since/--until/--path, --all over every
ref, and `mvc runs` in each format."""

from __future__ import annotations

import csv
import io
import json

import pytest
from conftest import write

from modelvc.objects import Commit, Signature, Tree
from modelvc.repo import Repo

T0 = 1_700_000_000
# name: (parent, seconds after T0, metrics, params, meta)
HISTORY = {
    "a": (None, 0, {"val_loss": 2.5, "acc": 0.5}, {"lr": "0.001", "opt": "adam"}, {"task": "summarization"}),
    "b": ("a", 100, {"val_loss": 1.9, "acc": 0.7}, {"lr": "0.0003", "opt": "adam"}, {"task": "summarization"}),
    "c": ("b", 200, {"val_loss": 1.5}, {"lr": "3e-4", "opt": "sgd"}, {"task": "translation"}),
    "d": ("a", 150, {"val_loss": 1.9, "acc": 0.8}, {"lr": "0.0003", "batch": "32"}, {"task": "summarization"}),
    "e": ("d", 300, {}, {"lr": "1e-2"}, {"task": "summarization", "lr": "meta-lr"}),
}


def build(work) -> dict[str, str]:
    """main: a-b-c; side: a-d-e; tag v1 on b. Written through the library, as an mvc without
    the commit-metadata cache would have (no cache file exists afterwards)."""
    ids: dict[str, str] = {}
    with Repo(work) as repo, repo.transaction():
        with repo.objects.batch():
            tree = repo.objects.put(Tree(()))
            for name, (parent, offset, metrics, params, meta) in HISTORY.items():
                ids[name] = repo.objects.put(Commit(
                    tree, (ids[parent],) if parent else (), Signature("T", "t@x", T0 + offset, 0), f"{name}\n",
                    metrics, params, meta))
        repo.refs.update_head(ids["c"], None, "commit: c")
        repo.refs.update("refs/heads/side", ids["e"], None, "branch: side")
        repo.refs.update("refs/tags/v1", ids["b"], None, "tag: v1")
    assert not (work / ".mvc" / "commit-graph.sqlite").exists()
    return ids


@pytest.fixture
def ids(mvc, work) -> dict[str, str]:
    return build(work)


def subjects(mvc, *args: str) -> list[str]:
    return [c["subject"] for c in mvc.json("log", *args)]


@pytest.mark.parametrize(("expression", "expected"), [
    ("val_loss<2.0", ["c", "d", "b"]),  # newest first
    ("val_loss<=1.9", ["c", "d", "b"]),
    ("val_loss>1.9", ["a"]),
    ("val_loss>=1.9", ["d", "b", "a"]),
    ("val_loss=1.9", ["d", "b"]),
    ("val_loss!=1.9", ["c", "a"]),  # e has no val_loss: a missing key fails, even for !=
    ("lr=3e-4", ["c", "d", "b"]),  # params are text, yet compare as numbers: 0.0003 = 3e-4
    ("lr==0.0003", ["c", "d", "b"]),
    ("lr>0.0005", ["e", "a"]),  # 1e-2 and 0.001
    ("task=summarization", ["e", "d", "b", "a"]),
    ("task!=summarization", ["c"]),
    ("meta.task=translation", ["c"]),
    ("params.lr=0.01", ["e"]),
    ("meta.lr=meta-lr", ["e"]),
    ("metrics.acc>0.6", ["d", "b"]),
    ("opt<b", ["b", "a"]),  # text against text: 'adam' < 'b' < 'sgd'
    ("opt='sgd'", ["c"]),
    ("val_loss<2 and lr=3e-4", ["c", "d", "b"]),
    ("val_loss<2 AND task=summarization and acc>0.75", ["d"]),
    ("no_such_key=1", []),  # an unknown key is no error: nothing matches
    ("metrics.lr=0.0003", []),  # lr is no metric
])
def test_each_where_form_selects_exactly_its_commits(mvc, ids, expression, expected):
    assert subjects(mvc, "--all", "--where", expression) == expected


def test_a_bare_key_looks_in_metrics_then_params_then_meta(mvc, ids):
    assert subjects(mvc, "--all", "--where", "lr=meta-lr") == []  # e's param lr (1e-2) is found first
    assert subjects(mvc, "--all", "--where", "lr=1e-2") == ["e"]


def test_several_where_options_must_all_hold(mvc, ids):
    assert subjects(mvc, "--all", "--where", "val_loss<2", "--where", "opt=adam") == ["b"]
    assert subjects(mvc, "side", "--where", "val_loss<2") == ["d"]  # only what side reaches


@pytest.mark.parametrize(("expression", "message"), [
    ("", "empty expression"),
    ("  ", "empty expression"),
    ("val_loss", "'val_loss' is no comparison"),
    ("val_loss~2", "'val_loss~2' is no comparison"),
    ("<2", "no key before '<'"),
    ("val loss<2", "key 'val loss' contains a space"),
    ("val_loss<", "no value after '<'"),
    ("val_loss=<2", "'=<' is not an operator"),
    ("val_loss<>2", "'<>' is not an operator"),
    ("metrics.<2", "no key after 'metrics.'"),
    ("val_loss<2 and", "a condition is missing before or after 'and'"),
    ("and val_loss<2", "a condition is missing before or after 'and'"),
    ("val_loss<2 or acc>1", "only 'and' joins conditions"),
])
def test_a_bad_expression_is_a_usage_error_saying_what_is_wrong(mvc, ids, expression, message):
    for command in ("log", "runs"):
        result = mvc(command, "--where", expression, ok=False)
        assert result.exit_code == 2
        assert result.stderr.splitlines() == [
            f"error: --where '{expression}': {message}",
            "hint: write conditions as KEY<VALUE, with < <= > >= = or !=, joined with 'and'"]
        assert result.stdout == ""


def test_sort_ascending_descending_missing_last_and_ties_in_date_order(mvc, ids):
    assert subjects(mvc, "--all", "--sort", "val_loss") == ["c", "d", "b", "a", "e"]
    assert subjects(mvc, "--all", "--sort", "-val_loss") == ["a", "d", "b", "c", "e"]  # e has none: still last
    assert subjects(mvc, "--all", "--sort", "acc") == ["a", "b", "d", "e", "c"]
    assert subjects(mvc, "--all", "--sort", "-acc") == ["d", "b", "a", "e", "c"]  # e, c: missing, newest first
    assert subjects(mvc, "--all", "--sort", "-val_loss", "--sort", "acc") == ["a", "b", "d", "c", "e"]
    assert subjects(mvc, "--all", "--sort", "opt") == ["b", "a", "c", "e", "d"]  # text: adam, adam, sgd
    assert subjects(mvc, "--all", "--sort", "lr") == ["c", "d", "b", "a", "e"]  # as numbers; ties newest first
    assert subjects(mvc, "--all", "--sort", "val_loss", "-n", "2") == ["c", "d"]  # the best two, not the newest
    assert subjects(mvc, "--all", "--where", "task=summarization", "--sort", "-acc", "-n", "1") == ["d"]


def test_a_sort_without_a_key_is_a_usage_error(mvc, ids):
    result = mvc("log", "--sort", "-", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (2, "error: --sort '-': no key")


def test_since_and_until_take_iso_dates_unix_times_and_relative_dates(mvc, ids):
    assert subjects(mvc, "--all", "--since", "@1700000150") == ["e", "c", "d"]
    assert subjects(mvc, "--all", "--since", str(T0 + 150), "--until", str(T0 + 200)) == ["c", "d"]
    assert subjects(mvc, "--all", "--until", "2023-11-14T22:15:00+00:00") == ["b", "a"]  # T0 + 100 is 22:15:00
    assert subjects(mvc, "--all", "--until", "2023-11-14T22:14:59Z") == ["a"]
    assert subjects(mvc, "--all", "--since", "2023-11-15") == []
    assert subjects(mvc, "--all", "--since", "2 weeks ago") == []  # made in 2023
    assert subjects(mvc, "--all", "--until", "3.days.ago") == ["e", "c", "d", "b", "a"]
    assert subjects(mvc, "--all", "--until", "yesterday", "--since", "2000-01-01") == ["e", "c", "d", "b", "a"]
    result = mvc("log", "--since", "last tuesday", ok=False)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: --since 'last tuesday': not a date",
        "hint: use 2026-01-31, '2026-01-31 12:00', '2 weeks ago', yesterday or a unix time"]


def test_path_option_is_the_same_as_after_dash_dash(mvc, work):
    for name, data in (("a.bin", b"1"), ("b.bin", b"2"), ("a.bin", b"3")):
        write(work / name, data)
        mvc("add", name)
        mvc("commit", "-q", "-m", f"{name} {data.decode()}", "--metric", f"n={data.decode()}")
    after_dash_dash = [c["subject"] for c in json.loads(mvc("log", "--json", "--", "a.bin").stdout)]
    assert subjects(mvc, "--path", "a.bin") == after_dash_dash == ["a.bin 3", "a.bin 1"]
    assert subjects(mvc, "--path", "b.bin", "--path", "a.bin", "--where", "n>1") == ["a.bin 3", "b.bin 2"]


def test_all_includes_remote_tracking_refs_and_lists_each_commit_once(mvc, work, ids):
    with Repo(work) as repo, repo.transaction():
        with repo.objects.batch():
            fetched = repo.objects.put(Commit(repo.read_commit(ids["c"]).tree, (ids["c"],),
                                              Signature("T", "t@x", T0 + 400, 0), "fetched\n", {"val_loss": 1.0}))
        repo.refs.update("refs/remotes/origin/main", fetched, None, "fetch")
        repo.refs.update("refs/remotes/origin/side", ids["e"], None, "fetch")
    listed = mvc.json("log", "--all")
    assert [c["subject"] for c in listed] == ["fetched", "e", "c", "d", "b", "a"]
    assert len({c["id"] for c in listed}) == len(listed)
    assert subjects(mvc, "--all", "--sort", "val_loss", "-n", "1") == ["fetched"]


def test_runs_json_csv_and_markdown_hold_the_same_rows(mvc, ids):
    rows = mvc.json("runs", "--all", "--sort", "val_loss")
    assert [row["subject"] for row in rows] == ["c", "d", "b", "a", "e"]
    assert rows[0] == {"id": ids["c"], "author": {"name": "T", "email": "t@x", "time": "2023-11-14T22:16:40+00:00"},
                       "subject": "c", "names": ["HEAD -> main"], "metrics": {"val_loss": 1.5},
                       "params": {"lr": "3e-4", "opt": "sgd"}, "meta": {"task": "translation"}}

    table = list(csv.reader(io.StringIO(mvc("runs", "--all", "--csv").stdout)))
    assert table[0] == ["id", "time", "subject", "acc", "val_loss", "batch", "lr", "opt"]
    assert table[1:3] == [[ids["e"], "2023-11-14T22:18:20+00:00", "e", "", "", "", "1e-2", ""],
                          [ids["c"], "2023-11-14T22:16:40+00:00", "c", "", "1.5", "", "3e-4", "sgd"]]
    assert [row[2] for row in table[1:]] == ["e", "c", "d", "b", "a"]

    markdown = mvc("runs", "--where", "val_loss<2", "--metric", "val_loss", "--param", "lr", "--md").stdout
    assert markdown.splitlines() == [
        "| commit | date | subject | val_loss | lr |",
        "|---|---|---|---|---|",
        f"| {ids['c'][:10]} | 2023-11-14 22:16 | c | 1.5 | 3e-4 |",
        f"| {ids['b'][:10]} | 2023-11-14 22:15 | b | 1.9 | 0.0003 |"]


def test_runs_table_has_a_column_per_metric_and_param_and_qualifies_shared_names(mvc, ids):
    text = mvc("runs", "--all").stdout
    header = text.splitlines()[0].split()
    assert header == ["commit", "date", "subject", "acc", "val_loss", "batch", "lr", "opt"]
    assert text.splitlines()[2].split()[:2] == [ids["c"][:10], "(HEAD"]
    chosen = mvc("runs", "--all", "--metric", "lr", "--param", "lr", "--csv").stdout.splitlines()
    assert chosen[0] == "id,time,subject,metrics.lr,params.lr"
    assert mvc.json("runs", "--all", "--param", "opt", "-n", "1")[0]["metrics"] == {}  # only the chosen columns
    result = mvc("runs", "--csv", "--md", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (2, "error: choose one of --json, --csv and --md")


def test_the_python_api_takes_the_same_query(mvc, work, ids):
    from modelvc import Repo as ApiRepo

    with ApiRepo.open(work) as repo:
        assert [e.commit.subject for e in repo.log(all=True, where=["val_loss<2"], sort=["-acc"])] == ["d", "b", "c"]
        table = repo.runs("side", where=["task=summarization"], params=["lr"])
        assert [(row.commit.subject, row.cell(table.columns[0])) for row in table.rows] == [
            ("e", "1e-2"), ("d", "0.0003"), ("a", "0.001")]
