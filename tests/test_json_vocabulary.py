"""Every command's --json against the one vocabulary written in docs/cli.md ("JSON vocabulary").

One repository goes through every command that takes --json; each output is checked twice:
against the shapes of the docs' table (exact key sets, nested shapes included) and against the
vocabulary's rules (status words, full ids, one signature shape, ISO times, sizes and counts).
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from modelvc.cli.main import cli
from tests.conftest import Mvc, write
from tests.modelfiles import write_safetensors

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"

# The output of each run below and the docs shape it must have (a list output: each item).
OUTPUT_SHAPES = {
    "init": "init", "add": "add", "status": "status", "commit": "commit_made", "log": "logged",
    "show": "show", "show REV:PATH": "show_path", "diff REV REV": "diff", "diff": "diff",
    "checkout": "checkout", "checkout -b": "checkout", "rollback": "rollback",
    "rollback --hard": "rollback", "branch": "name", "branch NAME": "name", "tag": "name",
    "tag NAME": "name", "branch -m": "name", "reflog show": "reflog_entry", "reflog expire": "reflog_expire",
    "gc": "gc", "stats": "stats", "fsck": "fsck", "fsck (broken)": "fsck", "status (renamed)": "status",
    "diff (renamed)": "diff", "show PATH": "show_path", "show REV:LINK": "show_path", "checkout --": "restore",
    "runs": "run",
    "push": "push", "fetch": "fetch", "pull": "pull", "clone": "clone",
    "annotate": "note", "annotate --list": "note", "promote": "stage_move", "promote --delete": "stage_move",
    "history": "stage_move", "stages": "stage_move", "remote show": "remote_shown",
}
USER_KEYED = {"config KEY", "config --list"}  # {user's dotted key: value}, see test_config_prints_the_users_dotted_keys

# (shape, key) -> the shape of the value found there (of each item, for a list).
NESTED = {
    ("commit", "author"): "signature", ("reflog_entry", "committer"): "signature",
    ("init", "gitignore"): "gitignore", ("add", "gitignore"): "gitignore",
    ("status", "staged"): "change", ("status", "unstaged"): "change",
    ("show", "files"): "show_file", ("show_path", "model"): "model_summary",
    ("model_summary", "tensors"): "tensor", ("diff", "old"): "diff_side", ("diff", "new"): "diff_side",
    ("diff", "files"): "diff_file", ("diff", "metrics"): "value_change", ("diff", "params"): "value_change",
    ("diff_file", "model"): "model_diff", ("model_diff", "tensors"): "tensor_change",
    ("tensor_change", "stats"): "tensor_stats", ("fsck", "problems"): "problem", ("problem", "breaks"): "break",
    ("run", "author"): "signature", ("stats", "held_by_refs"): "held", ("stats", "held_by_reflogs_only"): "held",
    ("fetch", "refs"): "ref_update", ("checkout", "fetched"): "fetched", ("rollback", "fetched"): "fetched",
    ("fsck", "on_remote"): "on_remote",
    ("logged", "annotations"): "annotations", ("show", "annotations"): "annotations",
    ("diff_side", "annotations"): "annotations", ("annotations", "notes"): "note",
    ("note", "author"): "signature", ("stage_move", "author"): "signature",
    ("remote_shown", "remote_branches"): "remote_branch", ("remote_shown", "pulled_by"): "pull_setting",
}

STATUSES = {"added", "modified", "deleted", "renamed", "mode", "dtype", "shape", "uncompared", "unchanged"}
FULL_ID = re.compile(r"^[0-9a-f]{64}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
MODE = re.compile(r"^[0-7]{6}$")
ID_KEYS = {"id", "commit", "tree"}
FORBIDDEN_KEYS = {"oid", "hash", "sha", "short", "timestamp", "date", "tz", "who", "bytes", "object",
                  "head", "old", "new"}  # "old"/"new" are allowed only where a shape lists them
FORBIDDEN_WORDS = ("removed", "changed")  # in any key
PLURALS = {"files", "tensors", "problems", "parents", "breaks", "names", "notes", "staged", "unstaged",
           "untracked", "written", "deleted", "kept_local", "left_to_git", "versioned_twice"}
PATH_LISTS = {"staged", "untracked", "written", "deleted", "kept_local", "left_to_git", "versioned_twice"}
INT_KEYS = {"format_version", "numel", "offset", "total_numel", "total_size"}
# Subtrees whose keys the user (or git, or a model file) chose.
FREE = {"metrics", "params", "meta", "metadata", "warnings", "git", "counts", "chunk_count_by_codec",
        "expired_count_by_ref"}


def doc_shapes() -> dict[str, set[str]]:
    """{shape: its keys} from the table in docs/cli.md's "JSON vocabulary" section."""
    section = DOCS.read_text().split("## JSON vocabulary", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:-1] for line in section.splitlines() if line.startswith("| `")]
    shapes: dict[str, set[str]] = {}
    for name, _printed_by, keys in rows:
        included = re.match(r"\s*the `(\w+)` keys and", keys)
        own = set(re.findall(r"`(\w+)`", keys.split(" and ", 1)[1] if included else keys))
        shapes[name.strip().strip("`")] = own | (shapes[included.group(1)] if included else set())
    return shapes


def base_of(shape: str) -> str | None:
    """The shape whose keys a shape includes ("the `commit` keys and ...")."""
    section = DOCS.read_text().split("## JSON vocabulary", 1)[1]
    found = re.search(rf"^\| `{shape}` \|[^|]*\|\s*the `(\w+)` keys", section, re.MULTILINE)
    return found.group(1) if found else None


def shape_problems(value, shape: str, shapes: dict[str, set[str]], where: str = "$") -> list[str]:
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in shape_problems(item, shape, shapes, f"{where}[{i}]")]
    if not isinstance(value, dict):
        return [f"{where}: a {shape} must be an object, not {value!r}"]
    problems = [] if set(value) == shapes[shape] else [
        f"{where}: {shape} keys {sorted(value)} != docs {sorted(shapes[shape])}"]
    for key, item in value.items():
        child = NESTED.get((shape, key)) or NESTED.get((base_of(shape), key))
        if child is not None and item is not None:
            problems += shape_problems(item, child, shapes, f"{where}.{key}")
    return problems


def vocabulary_problems(value, where: str = "$", key: str | None = None) -> list[str]:
    """The vocabulary's rules, for any output: what a key may be called and hold."""
    problems: list[str] = []
    if isinstance(value, list):
        if key in PATH_LISTS and any(isinstance(item, str) and not _repo_path(item) for item in value):
            problems.append(f"{where}: {key} holds a path that is not repository-relative: {value}")
        for i, item in enumerate(value):
            problems += vocabulary_problems(item, f"{where}[{i}]", "parents" if key == "parents" else None)
        return problems
    if not isinstance(value, dict):
        return problems
    for name, item in value.items():
        at = f"{where}.{name}"
        if name in FORBIDDEN_KEYS and not (name in ("old", "new") and _allowed_old_new(value)):
            problems.append(f"{at}: '{name}' is not in the vocabulary")
        if set(name.split("_")) & set(FORBIDDEN_WORDS) or name.startswith("bytes_"):
            problems.append(f"{at}: '{name}' uses a synonym the vocabulary replaces")
        if name == "status" and item not in STATUSES:
            problems.append(f"{at}: status {item!r} is not one of {sorted(STATUSES)}")
        if name == "counts" and not set(item) <= STATUSES:
            problems.append(f"{at}: counts by {sorted(item)}, not by status words")
        if (name in ID_KEYS or name.endswith("_commit")) and item is not None and not FULL_ID.match(str(item)):
            problems.append(f"{at}: {item!r} is not a full 64-hex id")
        if name == "parents" and not all(FULL_ID.match(p) for p in item):
            problems.append(f"{at}: parents {item} are not full ids")
        if name in ("author", "committer"):
            problems += _signature_problems(item, at)
        if name.endswith("mode") and item is not None and not MODE.match(str(item)):
            problems.append(f"{at}: mode {item!r} is not octal text")
        if name in ("path", "old_path") and item is not None and not _repo_path(item):
            problems.append(f"{at}: {item!r} is not repository-relative")
        if name in PLURALS and not isinstance(item, list):
            problems.append(f"{at}: a plural must be a list, not {item!r}")
        if isinstance(item, int) and not isinstance(item, bool) and not _int_key(name):
            problems.append(f"{at}: a number under '{name}': counts end in _count, sizes are size or _bytes")
        if name.endswith(("_count", "_bytes")) or name == "size":
            if not isinstance(item, int) or isinstance(item, bool):
                if item is None and name == "chunk_count":  # a working-tree file is not chunked
                    continue
                problems.append(f"{at}: {item!r} is not an integer")
        if name not in FREE:
            problems += vocabulary_problems(item, at, name)
    return problems


def _allowed_old_new(record: dict) -> bool:
    """A diff's two sides, and a value_change's two values, are the shapes that hold old/new."""
    return set(record) in ({"old", "new", "files", "metrics", "params"}, {"key", "old", "new", "delta"})


def _int_key(name: str) -> bool:
    return name.endswith(("_count", "_bytes", "_size")) or name in INT_KEYS or name == "size"


def _repo_path(path: str) -> bool:
    return bool(path) and not path.startswith(("/", "./", "../")) and "\\" not in path and not path.endswith("/")


def _signature_problems(signature, where: str) -> list[str]:
    if not isinstance(signature, dict) or set(signature) != {"name", "email", "time"}:
        return [f"{where}: a signature is {{name, email, time}}, not {signature!r}"]
    if not TIME.match(signature["time"]) or datetime.fromisoformat(signature["time"]).tzinfo is None:
        return [f"{where}: time {signature['time']!r} is not ISO 8601 with its offset"]
    return []


def _tensors(scale: float) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(5)
    tensors = {"keep": rng.standard_normal((16, 8)).astype(np.float32),
               "tune": rng.standard_normal(32).astype(np.float32) * np.float32(scale)}
    tensors["gone" if scale == 1 else "fresh"] = np.zeros(4, dtype=np.float32)
    return tensors


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> dict[str, object]:
    """Every command with --json, run once in one repository that gives each something to say."""
    work = tmp_path_factory.mktemp("vocabulary")
    out: dict[str, object] = {}
    with pytest.MonkeyPatch.context() as env:
        env.setenv("MVC_AUTHOR_NAME", "Ada Lovelace")
        env.setenv("MVC_AUTHOR_EMAIL", "ada@example.com")
        env.setenv("HOME", str(work / "home"))
        env.delenv("XDG_CONFIG_HOME", raising=False)
        mvc = Mvc(work)
        out["init"] = mvc.json("init")
        (work / "models").mkdir()
        write_safetensors(work / "models" / "m.safetensors", _tensors(1), metadata={"epoch": "1"})
        write(work / "notes.txt", b"v1\n")
        write(work / "old.bin", b"old")
        (work / "latest").symlink_to("notes.txt")  # a link: mode 120000
        mvc("add", ".")
        mvc("commit", "-m", "v1", "--metric", "loss=2", "--param", "lr=0.1")
        write_safetensors(work / "models" / "m.safetensors", _tensors(2), metadata={"epoch": "2"})
        (work / "old.bin").unlink()
        write(work / "run.sh", b"#!/bin/sh\n", executable=True)
        out["add"] = mvc.json("add", ".")
        write(work / "notes.txt", b"v2, unstaged\n")
        write(work / "scratch.tmp", b"untracked")
        out["status"] = mvc.json("status")
        out["show PATH"] = mvc.json("show", "models/m.safetensors")
        out["commit"] = mvc.json("commit", "-m", "v2\n\nmore", "--metric", "loss=1.5", "--meta", "by=ci")
        out["annotate"] = mvc.json("annotate", "HEAD~1", "--metric", "bleu=31", "--param", "eval=b", "-m", "later")
        out["annotate --list"] = mvc.json("annotate", "--list", "HEAD~1")
        out["log"] = mvc.json("log")
        out["runs"] = mvc.json("runs", "--all", "--sort", "-loss")
        out["show"] = mvc.json("show")
        out["show REV:PATH"] = mvc.json("show", "HEAD:models/m.safetensors")
        out["show REV:LINK"] = mvc.json("show", "HEAD:latest")
        out["diff REV REV"] = mvc.json("diff", "HEAD~1", "HEAD", "--stats", "--all")
        out["diff"] = mvc.json("diff")
        write(work / "notes.txt", b"edited, then restored from the index\n")
        out["checkout --"] = json.loads(mvc("checkout", "--json", "--", "notes.txt").stdout)
        write(work / "notes.txt", b"v3\n")
        mvc("commit", "-a", "-m", "v3")
        (work / "scratch.tmp").unlink()
        out["branch NAME"] = mvc.json("branch", "exp", "HEAD~1")
        out["tag NAME"] = mvc.json("tag", "v1", "HEAD~2", "-m", "first")
        mvc("tag", "light")
        out["branch"] = mvc.json("branch")
        out["tag"] = mvc.json("tag")
        out["checkout"] = mvc.json("checkout", "v1")
        out["checkout -b"] = mvc.json("checkout", "-b", "side", "main")
        out["rollback"] = mvc.json("rollback")
        out["rollback --hard"] = mvc.json("rollback", "--hard", "HEAD~2")
        mvc("mv", "run.sh", "tools/run.sh")
        out["status (renamed)"] = mvc.json("status")
        mvc("commit", "-m", "move")
        out["diff (renamed)"] = mvc.json("diff", "HEAD~1", "HEAD")
        out["branch -m"] = mvc.json("branch", "-m", "exp", "experiment")
        out["reflog show"] = mvc.json("reflog")
        mvc("promote", "HEAD~1", "production")
        out["promote"] = mvc.json("promote", "HEAD", "production", "-m", "better")
        out["stages"] = mvc.json("stages")
        out["promote --delete"] = mvc.json("promote", "--delete", "production")
        out["history"] = mvc.json("history")
        out["reflog expire"] = mvc.json("reflog", "expire", "--expire=now", "experiment")
        out["gc"] = mvc.json("gc", "--grace", "0")
        out["stats"] = mvc.json("stats")
        out["fsck"] = mvc.json("fsck")
        mvc("config", "user.name", "Ada L.")
        out["config KEY"] = mvc.json("config", "user.name")
        out["config --list"] = mvc.json("config", "--list")
        remote = tmp_path_factory.mktemp("vocabulary-remote")
        mvc("remote", "add", "origin", str(remote))
        out["push"] = mvc.json("push", "-u", "origin", "side")
        out["remote show"] = mvc.json("remote", "show", "origin")
        elsewhere = tmp_path_factory.mktemp("vocabulary-clone")
        out["clone"] = Mvc(elsewhere).json("clone", str(remote), "copy")
        out["fetch"] = Mvc(elsewhere / "copy").json("fetch")
        out["pull"] = Mvc(elsewhere / "copy").json("pull")
        for pack in (work / ".mvc" / "packs").glob("*.pack"):
            pack.unlink()
        broken = mvc("fsck", "--json", ok=False)
        assert broken.exit_code == 7
        out["fsck (broken)"] = json.loads(broken.stdout)
    return out


def commands_with_json(group, ctx, prefix: str = "") -> set[str]:
    import click

    found = set()
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found |= commands_with_json(command, click.Context(command, parent=ctx), f"{prefix}{name} ")
        elif any(p.name == "as_json" for p in command.params):
            found.add(prefix + name)
    return found


def test_every_command_with_json_is_run():
    import click

    labels = [*OUTPUT_SHAPES, *USER_KEYED]
    found = commands_with_json(cli, click.Context(cli))
    assert {"reflog show", "reflog expire", "status", "config"} <= found
    assert {c for c in found if not any(label == c or label.startswith(c + " ") for label in labels)} == set()


def test_the_docs_define_every_shape_the_test_uses():
    shapes = doc_shapes()
    assert set(OUTPUT_SHAPES.values()) | set(NESTED.values()) | {s for s, _ in NESTED} <= set(shapes)


@pytest.mark.parametrize("label", sorted(OUTPUT_SHAPES))
def test_output_has_the_documented_shape(outputs, label):
    assert shape_problems(outputs[label], OUTPUT_SHAPES[label], doc_shapes()) == []


@pytest.mark.parametrize("label", sorted(OUTPUT_SHAPES))
def test_output_follows_the_vocabulary(outputs, label):
    assert vocabulary_problems(outputs[label]) == []


def test_config_prints_the_users_dotted_keys(outputs):
    assert outputs["config KEY"] == {"user.name": "Ada L."}
    listed = outputs["config --list"]
    assert listed["user.name"] == "Ada L." and "format_version" in listed
    assert all(re.fullmatch(r"[A-Za-z_]+(\.[A-Za-z_]+)*", key) and not isinstance(value, dict)
               for key, value in listed.items())


def test_the_run_reaches_every_word(outputs):
    """Each rule above met real data: a rule checked against nothing proves nothing."""
    assert {c["status"] for c in outputs["status"]["staged"]} == {"added", "modified", "deleted"}
    assert outputs["status"]["unstaged"][0]["status"] == "modified"
    diff = outputs["diff REV REV"]
    assert {f["status"] for f in diff["files"]} == {"added", "modified", "deleted"}
    model = next(f["model"] for f in diff["files"] if f["model"] is not None)
    assert {t["status"] for t in model["tensors"]} == {"added", "deleted", "modified", "unchanged"}
    assert any(t["stats"] is not None for t in model["tensors"])
    assert outputs["add"]["deleted"] == ["old.bin"] and outputs["checkout"]["deleted"]
    assert outputs["reflog show"][-1]["old_commit"] is None  # the branch's creation
    assert outputs["status (renamed)"]["staged"] == [{"status": "renamed", "path": "tools/run.sh",
                                                      "old_path": "run.sh"}]
    assert [(f["status"], f["old_path"]) for f in outputs["diff (renamed)"]["files"]] == [("renamed", "run.sh")]
    assert outputs["checkout --"]["written"] == ["notes.txt"]
    assert (outputs["show REV:PATH"]["mode"], outputs["show REV:LINK"]["mode"]) == ("100644", "120000")
    assert outputs["show PATH"]["commit"] is None and outputs["show PATH"]["model"]["tensor_count"] == 3
    assert outputs["reflog expire"]["expired_count"] >= 1
    assert outputs["log"][1]["annotations"]["notes"][0]["metrics"] == {"bleu": 31}
    assert outputs["diff REV REV"]["old"]["annotations"]["notes"] and outputs["diff"]["new"]["annotations"] is None
    assert [m["commit"] is None for m in outputs["history"]] == [True, False, False]
    assert outputs["promote"]["previous_commit"] is not None
    problems = outputs["fsck (broken)"]["problems"]
    assert problems and any(b["commit"] is None for p in problems for b in p["breaks"])
    assert any(b["commit"] is not None for p in problems for b in p["breaks"])


def test_one_signature_for_one_commit_everywhere(outputs):
    head = outputs["show"]
    made, logged = outputs["commit"], outputs["log"][0]
    assert made["id"] == logged["id"] == head["id"]
    assert made["author"] == logged["author"] == head["author"]
    committer = outputs["reflog show"][0]["committer"]
    assert set(head["author"]) == set(committer) == {"name", "email", "time"}
    assert head["author"]["name"] == "Ada Lovelace" and head["author"]["email"] == "ada@example.com"
    moment = datetime.fromisoformat(head["author"]["time"])
    assert abs(moment.timestamp() - datetime.fromisoformat(committer["time"]).timestamp()) < 3600


@pytest.mark.parametrize("old_shape", [
    {"status": "removed", "path": "a.bin"},
    {"author": {"name": "A", "email": "a@x"}},
    {"author": {"name": "A", "email": "a@x", "time": 1700000000, "tz": 60}},
    {"id": "0123456789"},
    {"short": "0123456789"},
    {"timestamp": 1700000000},
    {"bytes_freed": 10},
    {"commits": 3},
    {"files_changed": 1},
    {"problems": [{"object": "a" * 64}]},
    {"mode": 33188},
    {"counts": {"changed": 1}},
    {"written": ["/abs/path"]},
])
def test_the_checker_rejects_the_old_shapes(old_shape):
    assert vocabulary_problems(old_shape) != []
