"""The hooks in .pre-commit-hooks.yaml, run by the real pre-commit framework on real git commits.

pre-commit installs this project into a virtualenv of its own (from a copy of the sources, as
they are now, committed to a scratch repository): about a minute, most of it pip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import random_bytes, write
from gitrepo import GIT_ENV, git, isolate_git

PROJECT = Path(__file__).resolve().parents[1]
SAFETENSORS = b"\x1e\x00\x00\x00\x00\x00\x00\x00" + b'{"__metadata__":{"a":"b"}}    '


def test_check_models_in_git_names_model_files(mvc_runner, work):
    write(work / "train.py", b"print(1)\n")
    write(work / "weights.dat", SAFETENSORS)
    write(work / "q.gguf", b"GGUF\x03\x00\x00\x00")
    write(work / "arr.data", b"\x93NUMPY\x01\x00")
    assert mvc_runner("check-models-in-git", "train.py").exit_code == 0
    result = mvc_runner("check-models-in-git", "train.py", "weights.dat", "q.gguf", "arr.data", ok=False)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: weights.dat is a model file (safetensors): version it with mvc, not git\n"
        "error: q.gguf is a model file (GGUF): version it with mvc, not git\n"
        "error: arr.data is a model file (NumPy): version it with mvc, not git\n"
        "hint: git rm --cached weights.dat q.gguf arr.data && mvc add weights.dat q.gguf arr.data\n")


def hook_source(tmp_path: Path) -> tuple[Path, str]:
    """A git repository holding the project's sources as they are now; (path, commit id)."""
    source = tmp_path / "hook-source"
    shutil.copytree(PROJECT / "modelvc", source / "modelvc", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(PROJECT / name, source / name)
    git(source, "init", "-q", "-b", "main")
    git(source, "add", ".")
    git(source, "commit", "-q", "-m", "hooks")
    return source, git(source, "rev-parse", "HEAD").strip()


def test_hooks_in_real_git_commits(tmp_path, work, monkeypatch, mvc_runner):
    if shutil.which("pre-commit", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("pre-commit is not installed (pip install -e '.[test]')")
    isolate_git(monkeypatch)
    source, rev = hook_source(tmp_path)
    git(work, "init", "-q", "-b", "main")
    write(work / ".pre-commit-config.yaml", (
        f"repos:\n- repo: {source}\n  rev: {rev}\n  hooks:\n"
        "  - id: mvc-status\n  - id: mvc-no-models-in-git\n  - id: mvc-fsck\n").encode())
    write(work / "train.py", b"print('train')\n")
    mvc_runner("init")
    write(work / "model.bin", random_bytes(4000))
    mvc_runner("add", "model.bin")
    mvc_runner("commit", "-m", "weights v1")
    env = dict(os.environ, **GIT_ENV, PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")

    def commit(message: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "commit", "-q", "-m", message], cwd=work, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    subprocess.run([str(Path(sys.executable).parent / "pre-commit"), "install"], cwd=work, env=env,
                   check=True, capture_output=True)
    git(work, "add", ".gitignore", ".pre-commit-config.yaml", "train.py")
    first = commit("code")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "models are committed in mvc" in first.stdout and "Failed" not in first.stdout

    write(work / "model.bin", random_bytes(4000, seed=1))  # a model changed, not committed in mvc
    write(work / "train.py", b"print('train v2')\n")
    git(work, "add", "train.py")
    refused = commit("code v2")
    assert refused.returncode == 1
    assert "models are committed in mvc" in refused.stdout and "Failed" in refused.stdout
    assert "modified:   model.bin" in refused.stdout
    mvc_runner("commit", "-a", "-m", "weights v2")
    assert commit("code v2").returncode == 0

    write(work / "weights.safetensors", SAFETENSORS)
    git(work, "add", "weights.safetensors")
    refused = commit("weights in git")
    assert refused.returncode == 1
    assert ("error: weights.safetensors is a model file (safetensors): version it with mvc, not git"
            in refused.stdout)
    assert git(work, "log", "--format=%s") == "code v2\ncode\n"
