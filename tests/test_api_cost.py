"""What an API commit costs beyond storing the chunks: the index written once per commit,
no fsync for derived hints, no index of packs read again after this process's own writes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from conftest import write
from modelfiles import write_safetensors
from test_api import both, fixed_clock, pair, weights  # noqa: F401 - fixtures used by name

import modelvc
from modelvc import fsutil
from modelvc.errors import NothingToCommitError, UsageError
from modelvc.indexfile import decode_index


class DurableSteps:
    """Counts fsutil's durable steps by kind (fsync, rename, dirsync, append, seal) through the
    crash hook's seam; the writes themselves happen as always."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()

    def __call__(self, kind: str) -> None:
        self.kinds[kind] += 1

    def take(self) -> Counter[str]:
        taken, self.kinds = self.kinds, Counter()
        return taken


@pytest.fixture
def steps(monkeypatch) -> DurableSteps:
    recorder = DurableSteps()
    monkeypatch.setattr(fsutil, "_crash_at", recorder)
    return recorder


def staged(repo: modelvc.Repo) -> tuple:
    """The index file's paths, manifest ids, sizes and modes, and the tree and commit it records."""
    columns, tree_id, commit_id = decode_index((repo.mvc_dir / "index").read_bytes())
    return tuple(list(column) for column in columns[:4]), tree_id, commit_id


@pytest.fixture
def two(tmp_path, fixed_clock):  # noqa: F811 - the fixture imported above
    """Two repositories driven alike, one committed as add() + commit(), one in one call."""
    with modelvc.Repo.init(tmp_path / "apart", workers=1) as apart, \
            modelvc.Repo.init(tmp_path / "together", workers=1) as together:
        yield apart, together


def test_commit_add_is_add_then_commit_with_one_index_write_less(two, steps):
    apart, together = two
    roots = (apart.root, together.root)
    for version in (1, 2):
        both(roots, "model.safetensors", tensors=weights(version, 1e-3))
        both(roots, "notes.txt", f"epoch {version}\n".encode())
        steps.take()
        apart.add("model.safetensors", "notes.txt")
        first = apart.commit(f"v{version}", metrics={"loss": 1.0 / version})
        separate = steps.take()
        second = together.commit(f"v{version}", metrics={"loss": 1.0 / version},
                                 add=["model.safetensors", "notes.txt"])
        one_call = steps.take()
        assert second.to_dict() == first.to_dict()
        assert separate - one_call == Counter({"fsync": 1, "rename": 1, "dirsync": 1})  # the index, once
        assert one_call - separate == Counter()
    assert together.status().to_dict() == apart.status().to_dict()
    assert staged(together) == staged(apart)
    with together.open_file("HEAD", "model.safetensors") as handle:
        assert handle.read() == (together.root / "model.safetensors").read_bytes()


def test_commit_all_writes_the_index_once(two, steps):
    apart, together = two
    roots = (apart.root, together.root)
    both(roots, "model.safetensors", tensors=weights(1))
    for repo in two:
        repo.commit("v1", add=["model.safetensors"])
    both(roots, "model.safetensors", tensors=weights(2, 1e-3))
    steps.take()
    apart.add("model.safetensors")
    first = apart.commit("v2")
    separate = steps.take()
    second = together.commit("v2", all=True)
    assert second.to_dict() == first.to_dict()
    assert separate - steps.take() == Counter({"fsync": 1, "rename": 1, "dirsync": 1})
    assert staged(together) == staged(apart)


def test_a_commit_that_fails_keeps_what_it_staged(tmp_path):
    with modelvc.Repo.init(tmp_path, workers=1) as repo:
        write_safetensors(tmp_path / "model.safetensors", weights(1))
        repo.commit("v1", add=["model.safetensors"])
        write_safetensors(tmp_path / "model.safetensors", weights(2, 1e-3))
        with pytest.raises(UsageError, match="^metric 'loss' is not a finite number: nan$"):
            repo.commit("v2", metrics={"loss": float("nan")}, add=["model.safetensors"])
    with modelvc.Repo.open(tmp_path) as reopened:  # what is on disk: staged, as after add()
        staged_now = reopened.status().to_dict()["staged"]
        assert staged_now == [{"path": "model.safetensors", "status": "modified", "old_path": None}]
        reopened.commit("v2")
        with reopened.open_file("HEAD", "model.safetensors") as handle:
            assert handle.read() == (tmp_path / "model.safetensors").read_bytes()
        assert reopened.fsck().ok


def test_commit_add_of_an_unchanged_file_is_nothing_to_commit_and_writes_nothing(tmp_path, steps):
    with modelvc.Repo.init(tmp_path, workers=1) as repo:
        write(tmp_path / "a.bin", b"x" * 100)
        repo.commit("one", add=["a.bin"])
        index_before = (repo.mvc_dir / "index").read_bytes()
        steps.take()
        with pytest.raises(NothingToCommitError) as caught:
            repo.commit("again", add=["a.bin"])
        assert caught.value.exit_code == 9
        assert steps.take() == Counter()
        assert (repo.mvc_dir / "index").read_bytes() == index_before


def test_a_writer_keeps_the_indexes_of_packs_it_loaded(tmp_path):
    """The packs a commit seals join the loaded indexes: nothing is read again after it."""
    with modelvc.Repo.init(tmp_path, workers=1) as repo:
        write_safetensors(tmp_path / "model.safetensors", weights(1))
        repo.commit("v1", add=["model.safetensors"])
        chunk_index, object_index = repo.chunks.index, repo.objects.index
        write_safetensors(tmp_path / "model.safetensors", weights(2, 1e-3))
        write(tmp_path / "a.bin", b"a" * 100)
        write(tmp_path / "b.bin", b"b" * 100)
        repo.commit("v2", add=["model.safetensors", "a.bin", "b.bin"])  # 3 manifests: a metadata pack
        assert repo.chunks.index is chunk_index and repo.objects.index is object_index
        manifest_id = repo.index.entry("a.bin").manifest_id
        assert object_index.contains(bytes.fromhex(manifest_id))
        with repo.open_file("HEAD", "model.safetensors") as handle:
            assert handle.read() == (tmp_path / "model.safetensors").read_bytes()


def test_a_derived_file_is_replaced_atomically_without_fsync(tmp_path, steps):
    target = tmp_path / "derived"
    fsutil.atomic_write(target, b"old")
    assert steps.take() == Counter({"fsync": 1, "rename": 1, "dirsync": 1})
    fsutil.atomic_write(target, b"new", durable=False)
    assert steps.take() == Counter({"rename": 1})
    assert target.read_bytes() == b"new" and sorted(p.name for p in tmp_path.iterdir()) == ["derived"]


def test_the_next_version_takes_its_base_from_what_this_repo_staged(tmp_path):
    """The layout and chunks of a version just staged are kept for its path's next add, equal
    to what reading the stored version back gives, and the next version is delta-coded."""
    from modelvc.ops.add import _stored_version

    big = {"embed": np.random.default_rng(0).standard_normal((512, 256)).astype(np.float32)}
    with modelvc.Repo.init(tmp_path, workers=1) as repo:
        write_safetensors(tmp_path / "model.safetensors", big)
        repo.commit("v1", add=["model.safetensors"])
        first = repo.index.entry("model.safetensors").manifest_id
        assert list(repo.staged_layouts) == [first]
        assert repo.staged_layouts[first] == _stored_version(repo, first, "model.safetensors")
        big["embed"] += np.float32(1e-4)
        write_safetensors(tmp_path / "model.safetensors", big)
        before = repo.stats().stored_bytes
        repo.commit("v2", add=["model.safetensors"])
        assert repo.stats().stored_bytes - before < 0.4 * before  # a delta (0.25 of v1), not a second copy
        assert list(repo.staged_layouts) == [first, repo.index.entry("model.safetensors").manifest_id]
        with repo.open_file("HEAD", "model.safetensors") as handle:
            assert handle.read() == (tmp_path / "model.safetensors").read_bytes()
