"""mvc annotate: metadata added to a commit after the fact, as notes chained from refs/notes/commits."""

from __future__ import annotations

import json

import zstandard
from conftest import write

from modelvc.ops.annotate import NOTES_REF


def two_commits(mvc, work) -> tuple[str, str]:
    """v1 (val_loss 1.95) and v2 (val_loss 1.5) on main; their full ids."""
    write(work / "model.bin", b"version 1\n" * 100)
    mvc("add", "model.bin")
    mvc("commit", "-q", "-m", "v1", "--metric", "val_loss=1.95", "--param", "lr=0.1")
    write(work / "model.bin", b"version 2\n" * 100)
    mvc("commit", "-q", "-a", "-m", "v2", "--metric", "val_loss=1.5")
    return mvc.json("log", "HEAD~1")[0]["id"], mvc.json("log")[0]["id"]


def commit_object_bytes(work, commit_id: str) -> bytes:
    from modelvc.repo import Repo

    with Repo(work) as repo:
        return repo.objects.read_verified(commit_id)


def test_annotating_keeps_the_commit_id_and_shows_the_values(mvc, work):
    v1, v2 = two_commits(mvc, work)
    stored = commit_object_bytes(work, v1)
    note = mvc.json("annotate", "HEAD~1", "--metric", "val_loss=1.93", "--metric", "bleu=31",
                    "--param", "eval_set=test-b", "--meta", "by=eval-job", "-m", "evaluated again")
    assert note["commit"] == v1 and note["message"] == "evaluated again"
    assert (note["metrics"], note["params"], note["meta"]) == ({"val_loss": 1.93, "bleu": 31},
                                                               {"eval_set": "test-b"}, {"by": "eval-job"})
    assert note["author"]["name"] == "Test Author"
    assert [e["id"] for e in mvc.json("log")] == [v2, v1]  # no id changed
    assert commit_object_bytes(work, v1) == stored
    logged = mvc.json("log")[1]
    assert logged["metrics"] == {"val_loss": 1.95}  # the commit's own values stay apart
    assert logged["annotations"]["metrics"] == {"val_loss": 1.93, "bleu": 31}
    assert logged["annotations"]["params"] == {"eval_set": "test-b"}
    assert [n["id"] for n in logged["annotations"]["notes"]] == [note["id"]]
    assert mvc.json("log")[0]["annotations"] == {"metrics": {}, "params": {}, "meta": {}, "notes": []}
    assert mvc.json("show", v1)["annotations"] == logged["annotations"]
    assert mvc("log", "--oneline").stdout.splitlines()[1] == (
        f"{v1[:10]} v1  [bleu=31 (annotated) val_loss=1.93 (annotated)]")
    shown = mvc("show", "HEAD~1").stdout
    assert "metrics:\n  bleu = 31  (annotated)\n  val_loss = 1.93  (annotated; committed 1.95)\n" in shown
    assert "params:\n  eval_set = test-b  (annotated)\n  lr = 0.1\n" in shown
    assert "meta:\n  by = eval-job  (annotated)\n" in shown
    assert f"annotations (1):\n  {note['id'][:10]}  " in shown
    assert shown.split(f"{note['id'][:10]}  ", 1)[1].split("\n")[0].endswith(
        "Test Author <test@example.com>  evaluated again: bleu=31 val_loss=1.93 eval_set=test-b by=eval-job")


def test_diff_compares_annotated_values_and_marks_them(mvc, work):
    v1, v2 = two_commits(mvc, work)
    mvc("annotate", "HEAD~1", "--metric", "val_loss=1.93")
    diffed = mvc.json("diff", "HEAD~1", "HEAD")
    [change] = diffed["metrics"]
    assert (change["key"], change["old"], change["new"]) == ("val_loss", 1.93, 1.5)
    assert abs(change["delta"] + 0.43) < 1e-9
    assert diffed["old"]["annotations"]["metrics"] == {"val_loss": 1.93}
    assert diffed["new"]["annotations"]["notes"] == []
    text = mvc("diff", "HEAD~1", "HEAD").stdout
    assert "metrics:\n  val_loss: 1.93 (annotated) -> 1.5  (-0.43)\n" in text
    worktree = mvc.json("diff")  # against the working tree: no values are compared
    assert (worktree["old"]["annotations"], worktree["new"]["annotations"], worktree["metrics"]) == (None, None, [])


def test_a_later_annotation_of_a_key_wins_and_the_list_keeps_each(mvc, work, monkeypatch):
    v1, _ = two_commits(mvc, work)
    first = mvc.json("annotate", v1, "--metric", "acc=0.90", "-m", "first eval")
    monkeypatch.setenv("MVC_AUTHOR_NAME", "Grace Hopper")
    second = mvc.json("annotate", v1, "--metric", "acc=0.91")
    assert mvc.json("show", v1)["annotations"]["metrics"] == {"acc": 0.91}
    listed = mvc.json("annotate", "--list", v1)
    assert [n["id"] for n in listed] == [second["id"], first["id"]]  # newest first
    assert [n["author"]["name"] for n in listed] == ["Grace Hopper", "Test Author"]
    assert listed[0]["author"]["time"] >= listed[1]["author"]["time"]
    text = mvc("annotate", "--list", v1).stdout
    assert text.startswith(f"note {second['id']} (commit {v1[:10]})\nAuthor: Grace Hopper <test@example.com>\n")
    assert "    first eval\n    metrics: acc=0.9\n" in text
    assert mvc.json("annotate", "--list", "HEAD") == []


def test_the_note_chain_is_one_ref_and_survives_gc(mvc, work):
    v1, v2 = two_commits(mvc, work)
    one = mvc.json("annotate", v1, "--metric", "acc=0.9")["id"]
    two = mvc.json("annotate", v2, "--meta", "reviewed=yes")["id"]
    assert (work / ".mvc" / NOTES_REF).read_text() == f"{two}\n"
    mvc("gc", "--prune", "now")
    assert mvc.json("fsck")["ok"] is True
    assert [n["id"] for n in mvc.json("annotate", "--list", v1)] == [one]
    assert mvc.json("show", v2)["annotations"]["meta"] == {"reviewed": "yes"}


def test_an_annotation_does_not_keep_its_commit_alive(mvc, work):
    v1, _ = two_commits(mvc, work)
    mvc("checkout", "-q", "-b", "experiment")
    write(work / "model.bin", b"abandoned\n" * 100)
    mvc("commit", "-q", "-a", "-m", "abandoned")
    abandoned = mvc.json("log")[0]["id"]
    mvc("annotate", "experiment", "--metric", "val_loss=9")
    mvc("annotate", v1, "--metric", "acc=0.9")
    mvc("checkout", "-q", "main")
    mvc("branch", "-D", "experiment")
    mvc("reflog", "expire", "--expire=now", "--all")
    mvc("gc", "--prune", "now")
    gone = mvc("show", abandoned, ok=False)
    assert (gone.exit_code, gone.stderr.splitlines()[0]) == (4, f"error: object {abandoned[:10]} does not exist")
    assert mvc.json("fsck")["ok"] is True  # a note of a collected commit is no damage
    assert mvc.json("show", v1)["annotations"]["metrics"] == {"acc": 0.9}


def test_fsck_reports_a_damaged_note(mvc, work):
    two_commits(mvc, work)
    note = mvc.json("annotate", "HEAD", "--metric", "acc=0.9")["id"]
    loose = work / ".mvc" / "objects" / note[:2] / note[2:]
    loose.chmod(0o644)
    loose.write_bytes(zstandard.ZstdCompressor().compress(b'{"type":"note","commit":"damaged"}'))
    result = mvc("fsck", "--json", ok=False)
    assert result.exit_code == 7
    problems = json.loads(result.stdout)["problems"]
    assert {(p["kind"], p["id"]) for p in problems} == {("corrupt", note)}  # from the ref and its reflog
    assert any(p["detail"].endswith("(needed by refs/notes/commits)") for p in problems)
    shown = mvc("log", ok=False)
    assert shown.exit_code == 7


def test_bad_input_is_refused_with_its_exit_code(mvc, work):
    two_commits(mvc, work)
    before = (work / ".mvc" / "refs").rglob("*")
    cases = [
        (["annotate", "nope", "--metric", "a=1"], 4, "error: unknown revision 'nope'"),
        (["annotate", "--metric", "val_loss"], 2, "error: --metric expects KEY=VALUE, got 'val_loss'"),
        (["annotate", "--metric", "acc=high"], 2, "error: --metric acc: 'high' is not a number"),
        (["annotate", "--metric", "acc=nan"], 2, "error: --metric acc: 'nan' is not a finite number"),
        (["annotate", "--param", "=3"], 2, "error: --param expects KEY=VALUE, got '=3'"),
        (["annotate", "HEAD"], 2, "error: nothing to annotate"),
        (["annotate", "--list", "HEAD", "--metric", "a=1"], 2, "error: --list takes no values to add"),
    ]
    for args, code, message in cases:
        result = mvc(*args, ok=False)
        assert (result.exit_code, result.stderr.splitlines()[0]) == (code, message), args
    assert sorted(before) == sorted((work / ".mvc" / "refs").rglob("*"))
    assert not (work / ".mvc" / NOTES_REF).exists()


def test_effective_values_for_queries(mvc, work):
    from modelvc.ops.annotate import all_annotations, effective_values
    from modelvc.repo import Repo

    v1, v2 = two_commits(mvc, work)
    mvc("annotate", v1, "--metric", "val_loss=1.93", "--meta", "dataset=b")
    with Repo(work) as repo:
        commit = repo.read_commit(v1)
        metrics, params, meta, annotated = effective_values(repo, v1, commit)
        assert (metrics, params, meta) == ({"val_loss": 1.93}, {"lr": "0.1"}, {"dataset": "b"})
        assert annotated == {"metrics": {"val_loss"}, "params": set(), "meta": {"dataset"}}
        notes = all_annotations(repo)
        assert effective_values(repo, v2, repo.read_commit(v2), notes)[3] == {
            "metrics": set(), "params": set(), "meta": set()}
        assert all_annotations(repo) is notes  # nothing new: the cached grouping
        mvc("annotate", v2, "--metric", "val_loss=1.4")  # another process moves the chain
        assert effective_values(repo, v2, repo.read_commit(v2))[0] == {"val_loss": 1.4}


def test_queries_see_annotated_values(mvc, work):
    v1, v2 = two_commits(mvc, work)
    assert mvc.json("log", "--where", "bleu>30") == []
    mvc("annotate", v1, "--metric", "bleu=31", "--metric", "val_loss=1.2")
    assert [e["id"] for e in mvc.json("log", "--where", "bleu>30")] == [v1]
    assert [e["id"] for e in mvc.json("log", "--sort", "val_loss")] == [v1, v2]  # 1.2 (annotated) < 1.5
    rows = {row["id"]: row for row in mvc.json("runs")}
    assert rows[v1]["metrics"] == {"val_loss": 1.2, "bleu": 31} and rows[v2]["metrics"] == {"val_loss": 1.5}
