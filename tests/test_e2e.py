"""End to end: the installed `mvc` driven in subprocesses, the way a shell script would."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from modelvc.samples import ModelShape, init_weights, nudge, retrain, write_safetensors

SHAPE = ModelShape(vocab=4096, d_model=256, layers=4, d_ff=704)  # about 6 MB in bf16


def mvc_executable() -> str:
    beside = Path(sys.executable).parent / "mvc"
    found = str(beside) if beside.exists() else shutil.which("mvc")
    if not found:
        pytest.fail("the mvc console script is not installed (pip install -e .)")
    return found


def sh(cwd: Path, *args: str, expect: int = 0) -> subprocess.CompletedProcess:
    from gitrepo import GIT_ENV

    env = dict(os.environ, MVC_AUTHOR_NAME="CI", MVC_AUTHOR_EMAIL="ci@example.com", **GIT_ENV)
    result = subprocess.run([mvc_executable(), *args], cwd=cwd, capture_output=True, text=True, env=env)
    assert result.returncode == expect, f"mvc {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_three_versions_end_to_end(tmp_path):
    work = tmp_path / "proj"
    work.mkdir()
    sh(work, "init")
    v1 = init_weights(SHAPE, seed=0)
    last_layer = [n for n in v1 if n.startswith("model.layers.3.")]
    v2 = nudge(v1, last_layer, 1e-3, seed=1)
    v3 = retrain(v2, ["lm_head.weight"], seed=2)
    snapshots = {}
    for number, (weights, loss) in enumerate([(v1, 2.5), (v2, 2.1), (v3, 1.9)], start=1):
        write_safetensors(work / "model.safetensors", weights, "bf16", {"epoch": str(number)})
        (work / "config.json").write_text(json.dumps({"epoch": number, "d_model": SHAPE.d_model}))
        sh(work, "add", "model.safetensors", "config.json")
        short = sh(work, "commit", "-m", f"epoch {number}", "--metric", f"val_loss={loss}",
                   "--param", "lr=0.001", "-q").stdout.strip()
        snapshots[number] = (short, (work / "model.safetensors").read_bytes(), (work / "config.json").read_bytes())
    assert (work / "model.safetensors").stat().st_size > 4_000_000

    log = json.loads(sh(work, "log", "--json").stdout)
    assert [e["message"] for e in log] == ["epoch 3", "epoch 2", "epoch 1"]
    assert [e["metrics"]["val_loss"] for e in log] == [1.9, 2.1, 2.5]
    assert [e["id"][:10] for e in log] == [snapshots[3][0], snapshots[2][0], snapshots[1][0]]

    first, third = snapshots[1][0], snapshots[3][0]
    diff = json.loads(sh(work, "diff", first, third, "--json").stdout)
    assert sorted(f["path"] for f in diff["files"]) == ["config.json", "model.safetensors"]
    model_change = next(f for f in diff["files"] if f["path"] == "model.safetensors")
    assert model_change["status"] == "modified"
    assert 0 < model_change["shared_bytes"] < model_change["new_size"]
    assert diff["metrics"] == [{"key": "val_loss", "old": 2.5, "new": 1.9, "delta": pytest.approx(-0.6)}]
    sh(work, "diff", first, third, "--exit-code", expect=1)
    sh(work, "diff", third, third, "--exit-code", expect=0)

    sh(work, "checkout", first)
    assert (work / "model.safetensors").read_bytes() == snapshots[1][1]
    assert (work / "config.json").read_bytes() == snapshots[1][2]
    sh(work, "checkout", "main")
    assert (work / "model.safetensors").read_bytes() == snapshots[3][1]

    sh(work, "rollback", snapshots[2][0])
    assert (work / "model.safetensors").read_bytes() == snapshots[2][1]
    head = json.loads(sh(work, "show", "HEAD", "--json").stdout)
    assert head["message"].startswith(f"Rollback to {snapshots[2][0]}: epoch 2")
    assert len(json.loads(sh(work, "log", "--json").stdout)) == 4
    assert sh(work, "status", "--porcelain").stdout == ""

    sh(work, "tag", "best", snapshots[2][0])
    sh(work, "branch", "experiment", first)
    tags = json.loads(sh(work, "tag", "--json").stdout)
    assert [(t["name"], t["commit"][:10]) for t in tags] == [("best", snapshots[2][0])]
    branches = {b["name"]: b["commit"][:10] for b in json.loads(sh(work, "branch", "--json").stdout)}
    assert branches["experiment"] == first
    assert json.loads(sh(work, "show", "best", "--json").stdout)["id"][:10] == snapshots[2][0]
    assert json.loads(sh(work, "show", "experiment", "--json").stdout)["id"][:10] == first

    fsck = json.loads(sh(work, "fsck", "--json").stdout)
    assert fsck["ok"] is True and fsck["commit_count"] == 4

    stats = json.loads(sh(work, "stats", "--json").stdout)
    assert stats["stored_bytes"] < stats["tracked_bytes"]


SMALL = ModelShape(vocab=512, d_model=64, layers=2, d_ff=128)


def test_git_workflow_end_to_end(tmp_path):
    """Code in git, models in mvc, in one working tree: commits on both sides, rollback and
    checkout of an older model leave git's history, index and every file it tracks (but
    .gitignore, which mvc extends) as they were, and each mvc commit names its git commit."""
    from gitrepo import git, snapshot

    work = tmp_path / "proj"
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "train.py").write_text("lr = 0.001\n")
    git(work, "add", "train.py")
    git(work, "commit", "-q", "-m", "training code")
    assert sh(work, "init").stdout.endswith(f"Added /.mvc/ to {work / '.gitignore'}\n")
    git(work, "add", ".gitignore")
    git(work, "commit", "-q", "-m", "ignore the mvc store")

    v1 = init_weights(SMALL, seed=0)
    (work / "models").mkdir()
    write_safetensors(work / "models" / "model.safetensors", v1, "bf16", {"epoch": "1"})
    added = json.loads(sh(work, "add", ".", "--json").stdout)
    assert added["staged"] == ["models/model.safetensors"]
    assert added["left_to_git"] == [".gitignore", "train.py"]
    assert (work / ".gitignore").read_text() == "/.mvc/\n/models/model.safetensors\n"
    git(work, "commit", "-q", "-am", "ignore the model")
    code_v1 = git(work, "rev-parse", "HEAD").strip()
    sh(work, "commit", "-m", "epoch 1", "--metric", "val_loss=2.5")
    model_v1 = (work / "models" / "model.safetensors").read_bytes()

    (work / "train.py").write_text("lr = 0.0005\n")
    git(work, "commit", "-q", "-am", "lower lr")
    code_v2 = git(work, "rev-parse", "HEAD").strip()
    write_safetensors(work / "models" / "model.safetensors", nudge(v1, list(v1)[:2], 1e-3, seed=1), "bf16",
                      {"epoch": "2"})
    sh(work, "add", ".")
    sh(work, "commit", "-m", "epoch 2", "--metric", "val_loss=2.1")
    model_v2 = (work / "models" / "model.safetensors").read_bytes()

    git_dir = snapshot(work / ".git")
    tracked = {name: (work / name).read_bytes() for name in git(work, "ls-files").split()}
    sh(work, "rollback")
    assert (work / "models" / "model.safetensors").read_bytes() == model_v1
    sh(work, "checkout", "HEAD~1")
    assert (work / "models" / "model.safetensors").read_bytes() == model_v2
    sh(work, "checkout", "HEAD~1")
    assert (work / "models" / "model.safetensors").read_bytes() == model_v1
    sh(work, "checkout", "main")
    assert snapshot(work / ".git") == git_dir
    assert {name: (work / name).read_bytes() for name in git(work, "ls-files").split()} == tracked
    assert git(work, "status", "--porcelain", "--untracked-files=all") == ""
    assert git(work, "log", "--format=%s").splitlines() == [
        "lower lr", "ignore the model", "ignore the mvc store", "training code"]

    log = json.loads(sh(work, "log", "--json").stdout)
    assert [(e["message"].split(":")[0], e["git"]) for e in log] == [
        (f"Rollback to {log[2]['id'][:10]}", {"commit": code_v2, "dirty": False}),
        ("epoch 2", {"commit": code_v2, "dirty": False}),
        ("epoch 1", {"commit": code_v1, "dirty": False})]
    assert f"Git:    {code_v1}" in sh(work, "show", "HEAD~2").stdout
    sh(work, "status", "--exit-code")


def test_python_dash_m_and_help(tmp_path):
    result = subprocess.run([sys.executable, "-m", "modelvc", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("init", "add", "status", "commit", "log", "show", "checkout", "diff", "rollback",
                    "branch", "tag", "reflog", "fsck", "gc", "stats", "rm"):
        assert command in result.stdout
