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
    env = dict(os.environ, MVC_AUTHOR_NAME="CI", MVC_AUTHOR_EMAIL="ci@example.com")
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
    assert [e["short"] for e in log] == [snapshots[3][0], snapshots[2][0], snapshots[1][0]]

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
    assert json.loads(sh(work, "show", "best", "--json").stdout)["short"] == snapshots[2][0]
    assert json.loads(sh(work, "show", "experiment", "--json").stdout)["short"] == first

    fsck = json.loads(sh(work, "fsck", "--json").stdout)
    assert fsck["ok"] is True and fsck["commits"] == 4

    stats = json.loads(sh(work, "stats", "--json").stdout)
    assert stats["stored_bytes"] < stats["tracked_bytes"]


def test_python_dash_m_and_help(tmp_path):
    result = subprocess.run([sys.executable, "-m", "modelvc", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for command in ("init", "add", "status", "commit", "log", "show", "checkout", "diff", "rollback",
                    "branch", "tag", "reflog", "fsck", "gc", "stats", "rm"):
        assert command in result.stdout
