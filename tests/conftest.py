"""Shared fixtures: a repository in tmp_path and a way to run `mvc` in it through click."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from modelvc.cli.main import cli

pytest_plugins = ["synchelp"]  # the remote and alice fixtures of the sync tests

TEST_AUTHOR = {"MVC_AUTHOR_NAME": "Test Author", "MVC_AUTHOR_EMAIL": "test@example.com"}


def pytest_configure(config):
    """The identity for the whole run, module-scoped fixtures and `monkeypatch.undo()` included:
    the tests must not depend on a global identity of whoever runs them (CI has none)."""
    os.environ.update(TEST_AUTHOR)


@pytest.fixture(autouse=True)
def _author(monkeypatch):
    monkeypatch.setenv("MVC_AUTHOR_NAME", "Test Author")
    monkeypatch.setenv("MVC_AUTHOR_EMAIL", "test@example.com")
    monkeypatch.delenv("MVC_DEBUG", raising=False)


class Mvc:
    """Runs mvc commands in a directory and returns click's Result."""

    def __init__(self, cwd: Path) -> None:
        self.cwd = cwd
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True):
        result = self.runner.invoke(cli, ["-C", str(self.cwd), *args], catch_exceptions=False)
        if ok and result.exit_code != 0:
            raise AssertionError(f"mvc {' '.join(args)} exited {result.exit_code}\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def json(self, *args: str):
        import json

        return json.loads(self(*args, "--json").stdout)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


@pytest.fixture
def mvc(work: Path) -> Mvc:
    runner = Mvc(work)
    runner("init")
    return runner


def write(path: Path, data: bytes, executable: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.chmod(path, 0o755 if executable else 0o644)
    return path


def random_bytes(size: int, seed: int = 0) -> bytes:
    import numpy as np

    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


@pytest.fixture
def mvc_runner(work: Path) -> Mvc:
    """Runs mvc in `work` without creating a repository first."""
    return Mvc(work)


@pytest.fixture
def store_reads(monkeypatch) -> list[bytes]:
    """The chunk ids ChunkStore.read is asked for from here on, in order."""
    from modelvc.store.chunkstore import ChunkStore

    reads: list[bytes] = []
    original = ChunkStore.read

    def counted(self, chunk_id, known=None):
        reads.append(chunk_id)
        return original(self, chunk_id, known)

    monkeypatch.setattr(ChunkStore, "read", counted)
    return reads


def index_as_json(work: Path) -> dict:
    """The index as its version 1 JSON held it ("file" for the manifest id, optional fields
    only when set): what tests inspect, and, written back with json.dumps, an index mvc still
    reads (and converts on its next write)."""
    from modelvc.index import Index

    entries = []
    for entry in Index(work / ".mvc" / "index").entries.values():
        data = {"path": entry.path, "file": entry.manifest_id, "size": entry.size, "mode": entry.mode,
                "mtime_ns": entry.mtime_ns, "ino": entry.ino}
        if entry.unsynced_boot:
            data["unsynced_boot"] = entry.unsynced_boot
        if entry.dereference:
            data["dereference"] = True
        entries.append(data)
    return {"version": 1, "entries": entries}


# Real object-storage servers (tests/servers.py): one of each for the whole run, started only
# when a test asks for it. One that cannot start errors the tests that need it: never a skip.
@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory):
    from servers import start_seaweedfs

    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    from servers import start_azurite

    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()
