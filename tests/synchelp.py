"""Shared pieces of the push/fetch/pull/clone tests: a model whose second version changes one
tensor, repositories side by side, and what a remote or a local store holds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conftest import Mvc
from modelfiles import write_safetensors

TENSORS = 6
TENSOR_VALUES = 160_000  # float32: 640 KB a tensor, 3.8 MB a file


def model(seed: int = 0, changed: int | None = None) -> dict[str, np.ndarray]:
    """Six float32 tensors; `changed` (0-5) gets other values (a fine-tune of one layer)."""
    rng = np.random.default_rng(seed)
    tensors = {f"layer{i}.weight": rng.standard_normal(TENSOR_VALUES).astype(np.float32) for i in range(TENSORS)}
    if changed is not None:
        name = f"layer{changed}.weight"
        tensors[name] = tensors[name] + np.float32(0.01) * rng.standard_normal(TENSOR_VALUES).astype(np.float32)
    return tensors


def write_model(path: Path, seed: int = 0, changed: int | None = None) -> bytes:
    return write_safetensors(path, model(seed, changed))


def new_repo(path: Path) -> Mvc:
    path.mkdir(parents=True, exist_ok=True)
    mvc = Mvc(path)
    mvc("init")
    return mvc


def commit_file(mvc: Mvc, name: str, data: bytes, message: str) -> None:
    (mvc.cwd / name).write_bytes(data)
    mvc("add", name)
    mvc("commit", "-m", message)


def store_snapshot(root: Path) -> dict[str, bytes]:
    """Every file of a repository's store but its config, HEAD, index and logs (what a fetch may
    add to): packs, loose objects, refs."""
    found = {}
    for sub in ("packs", "objects", "refs"):
        base = root / ".mvc" / sub
        for dirpath, _, files in os.walk(base):
            for name in files:
                path = Path(dirpath) / name
                found[str(path.relative_to(root))] = path.read_bytes()
    return found


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """An empty directory remote (tests/conftest.py makes this module a plugin)."""
    path = tmp_path / "remote"
    path.mkdir()
    return path


@pytest.fixture
def alice(tmp_path: Path, remote: Path) -> Mvc:
    """A new repository whose origin is `remote`."""
    mvc = new_repo(tmp_path / "alice")
    mvc("remote", "add", "origin", str(remote))
    return mvc
