"""mvc promote / history / stages: stages that name one commit each and move with history."""

from __future__ import annotations

import shutil
import threading

from conftest import Mvc, write

from modelvc.errors import UsageError


def three_versions(mvc, work) -> list[str]:
    """v1, v2, v3 on main; their full ids."""
    ids = []
    for number in (1, 2, 3):
        write(work / "model.bin", f"version {number}\n".encode() * 100)
        mvc("add", "model.bin")
        mvc("commit", "-q", "-m", f"v{number}", "--metric", f"val_loss={3 - number * 0.5}")
        ids.append(mvc.json("log")[0]["id"])
    return ids


def test_history_says_who_moved_a_stage_when_and_why(mvc, work, monkeypatch):
    v1, v2, v3 = three_versions(mvc, work)
    first = mvc.json("promote", "HEAD~2", "production", "-m", "baseline")
    assert (first["stage"], first["commit"], first["previous_commit"], first["message"]) == (
        "production", v1, None, "baseline")
    monkeypatch.setenv("MVC_AUTHOR_NAME", "Grace Hopper")
    assert mvc("promote", "HEAD", "production", "-m", "val_loss 1.5").stdout == (
        f"Promoted {v3[:10]} to production (was {v1[:10]})\n")
    mvc("promote", v2, "staging")
    moves = mvc.json("history", "production")
    assert [(m["commit"], m["previous_commit"], m["author"]["name"], m["message"]) for m in moves] == [
        (v3, v1, "Grace Hopper", "val_loss 1.5"), (v1, None, "Test Author", "baseline")]
    assert moves[0]["author"]["time"] >= moves[1]["author"]["time"]
    assert moves[1]["id"] == first["id"]
    every = mvc.json("history")
    assert {m["stage"] for m in every} == {"production", "staging"} and len(every) == 3
    assert [m["stage"] for m in mvc.json("history", "-n", "1", "production")] == ["production"]
    text = mvc("history", "production").stdout.splitlines()
    assert text[0].split("  ", 1)[1] == f"production  {v3[:10]} (was {v1[:10]})  Grace Hopper <test@example.com>  " \
                                        "val_loss 1.5"
    assert text[1].endswith(f"  production  {v1[:10]}  Test Author <test@example.com>  baseline")
    assert [(s["stage"], s["commit"]) for s in mvc.json("stages")] == [("production", v3), ("staging", v2)]


def test_a_stage_is_a_revision_everywhere(mvc, work):
    v1, v2, v3 = three_versions(mvc, work)
    mvc("promote", v1, "production")
    mvc("promote", v2, "staging")
    assert mvc.json("show", "production")["id"] == v1
    assert [e["id"] for e in mvc.json("log", "staging")] == [v2, v1]
    assert mvc.json("log", "-n", "1", "refs/stages/staging")[0]["id"] == v2
    diffed = mvc.json("diff", "production", "staging")
    assert (diffed["old"]["commit"], diffed["new"]["commit"], diffed["metrics"][0]["key"]) == (v1, v2, "val_loss")
    assert mvc.json("log")[2]["names"] == ["stage: production"]
    assert mvc("log", "--oneline").stdout.splitlines()[1].startswith(f"{v2[:10]} (stage: staging) v2")
    mvc("promote", "staging", "production")  # a stage names the commit to promote, too
    assert mvc.json("show", "production")["id"] == v2
    assert mvc.json("show", "production@{1}")["id"] == v1  # the stage's reflog
    checked = mvc.json("checkout", "production")
    assert (checked["commit"], checked["branch"]) == (v2, None)
    assert (work / "model.bin").read_bytes() == b"version 2\n" * 100
    assert (work / ".mvc" / "HEAD").read_text() == f"{v2}\n"
    mvc("checkout", "-q", "main")
    assert sorted(e["message"] for e in mvc.json("log", "--all")) == ["v1", "v2", "v3"]


def test_a_branch_comes_before_a_stage_of_the_same_name(mvc, work):
    v1, v2, _ = three_versions(mvc, work)
    mvc("promote", v1, "candidate")
    mvc("branch", "candidate", v2)
    logged = mvc("log", "-n", "1", "candidate", "--json")
    assert logged.stderr == "warning: refname 'candidate' is ambiguous.\n"
    assert mvc.json("log", "-n", "1", "candidate")[0]["id"] == v2
    assert mvc.json("log", "-n", "1", "refs/stages/candidate")[0]["id"] == v1
    switched = mvc("checkout", "candidate")
    assert switched.stdout.startswith("Switched to branch 'candidate'")


def test_delete_is_a_move_to_nothing_and_keeps_the_history(mvc, work):
    v1, v2, _ = three_versions(mvc, work)
    mvc("promote", v1, "staging")
    mvc("promote", v2, "staging")
    assert mvc("promote", "--delete", "staging", "-m", "retired").stdout == f"Deleted stage staging (was {v2[:10]})\n"
    moves = mvc.json("history", "staging")
    assert [(m["commit"], m["previous_commit"], m["message"]) for m in moves] == [
        (None, v2, "retired"), (v2, v1, ""), (v1, None, "")]
    assert "  staging  (deleted) (was " in mvc("history", "staging").stdout.splitlines()[0]
    assert mvc.json("stages") == []
    gone = mvc("show", "staging", ok=False)
    assert (gone.exit_code, gone.stderr) == (
        4, "error: stage 'staging' names no commit: it was deleted\nhint: see its moves with 'mvc history staging'\n")
    again = mvc("promote", "--delete", "staging", ok=False)
    assert (again.exit_code, again.stderr.splitlines()[0]) == (4, "error: stage 'staging' not found")
    mvc("promote", v1, "staging")  # a deleted stage can be used again: its history goes on
    assert [m["commit"] for m in mvc.json("history", "staging")] == [v1, None, v2, v1]


def test_bad_stage_names_revisions_and_arguments(mvc, work):
    three_versions(mvc, work)
    cases = [
        (["promote", "HEAD", "bad name"], 10, "error: invalid stage name 'bad name': contains a space"),
        (["promote", "nope", "production"], 4, "error: unknown revision 'nope'"),
        (["promote", "HEAD"], 2, "error: promote takes REV STAGE (or --delete STAGE)"),
        (["promote", "--delete", "a", "b"], 2, "error: promote --delete takes one STAGE"),
        (["history", "nothing"], 4, "error: stage 'nothing' not found"),
        (["promote", "--delete", "nothing"], 4, "error: stage 'nothing' not found"),
    ]
    for args, code, message in cases:
        result = mvc(*args, ok=False)
        assert (result.exit_code, result.stderr.splitlines()[0]) == (code, message), args
    assert not (work / ".mvc" / "refs" / "stages").exists()


def test_every_commit_a_stage_named_survives_gc(mvc, work):
    v1, _, _ = three_versions(mvc, work)
    mvc("checkout", "-q", "-b", "experiment")
    write(work / "model.bin", b"experiment\n" * 100)
    mvc("commit", "-q", "-a", "-m", "experiment")
    tried = mvc.json("log")[0]["id"]
    mvc("promote", "experiment", "production", "-m", "try it")
    mvc("promote", v1, "production", "-m", "back to v1")
    mvc("checkout", "-q", "main")
    mvc("branch", "-D", "experiment")
    mvc("reflog", "expire", "--expire=now", "--all")
    mvc("gc", "--prune", "now")
    assert mvc.json("fsck")["ok"] is True
    assert mvc.json("show", tried)["message"] == "experiment"  # kept by the stage's history
    assert mvc("cat", f"{tried}:model.bin").stdout_bytes == b"experiment\n" * 100


def test_concurrent_promotions_are_serialised_by_the_writer_lock(mvc, work):
    from modelvc.api import Repo

    ids = three_versions(mvc, work)
    errors: list[BaseException] = []

    def promote_many(commit_id: str) -> None:
        try:
            with Repo.open(work, lock_timeout=60) as repo:
                for _ in range(5):
                    repo.promote(commit_id, "production")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=promote_many, args=(commit_id,)) for commit_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    moves = mvc.json("history", "production")
    assert len(moves) == 15 and sorted(m["commit"] for m in moves) == sorted(ids * 5)
    assert [m["previous_commit"] for m in moves[:-1]] == [m["commit"] for m in moves[1:]]  # one unbroken chain


def test_stages_and_notes_travel_with_the_stores_packs_and_refs(mvc, work, tmp_path):
    """A directory remote holds the same packs, objects and refs: copying them carries the
    registry (push and fetch copy the closure of the refs)."""
    v1, v2, _ = three_versions(mvc, work)
    mvc("promote", v1, "production", "-m", "baseline")
    mvc("promote", v2, "production", "-m", "better")
    mvc("annotate", v1, "--metric", "bleu=31", "-m", "evaluated later")
    mvc("gc", "--prune", "now")  # the objects in packs, as a pushed store holds them
    clone = tmp_path / "clone"
    clone.mkdir()
    other = Mvc(clone)
    other("init")
    for part in ("objects", "packs", "refs"):
        shutil.copytree(work / ".mvc" / part, clone / ".mvc" / part, dirs_exist_ok=True)
    assert other.json("history", "production") == mvc.json("history", "production")
    assert other.json("annotate", "--list", v1) == mvc.json("annotate", "--list", v1)
    assert other.json("show", v1)["annotations"]["metrics"] == {"bleu": 31}
    assert other.json("checkout", "production")["commit"] == v2
    assert (clone / "model.bin").read_bytes() == b"version 2\n" * 100
    assert other.json("fsck")["ok"] is True


def test_the_api_returns_what_the_commands_print(mvc, work):
    from modelvc import Repo

    v1, v2, _ = three_versions(mvc, work)
    with Repo.open(work) as repo:
        note = repo.annotate(v1, metrics={"eval": {"bleu": 31}}, meta={"by": "api"}, message="from python")
        moved = repo.promote(v2, "production", message="api")
        deleted = repo.promote(stage="production", delete=True)
        assert note.note.metrics == {"eval.bleu": 31}  # nested keys flattened, as commit's
        assert [r.to_dict() for r in repo.annotations(v1)] == mvc.json("annotate", "--list", v1)
        assert [r.to_dict() for r in repo.history("production")] == mvc.json("history", "production")
        assert [m.id for m in repo.history()] == [deleted.id, moved.id]
        assert repo.stages() == []
        repo.promote("HEAD", "staging")
        assert [r.to_dict() for r in repo.stages()] == mvc.json("stages")
        assert repo.log()[2].to_dict() == mvc.json("log")[2]
        assert repo.show(v1).to_dict() == mvc.json("show", v1)
        try:
            repo.promote("HEAD")
        except UsageError as error:
            assert error.message == "promote takes rev and stage (or stage and delete=True)"
        else:
            raise AssertionError("promote without a stage must be refused")
