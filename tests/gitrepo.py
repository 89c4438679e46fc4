"""A real git repository for tests, isolated from the machine's git configuration."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_AUTHOR_NAME": "Coder", "GIT_AUTHOR_EMAIL": "coder@example.com",
           "GIT_COMMITTER_NAME": "Coder", "GIT_COMMITTER_EMAIL": "coder@example.com"}


def isolate_git(monkeypatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, **GIT_ENV))
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


def snapshot(directory: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `directory` with its bytes and mode: equal snapshots, untouched tree."""
    found = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            found[path.relative_to(directory).as_posix()] = (path.read_bytes(), path.stat().st_mode)
        elif path.is_dir():
            found[path.relative_to(directory).as_posix() + "/"] = (b"", path.stat().st_mode)
    return found
