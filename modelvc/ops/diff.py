"""mvc diff: what changed between two versions, file by file, and in their metrics and params."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelvc.ids import ObjectId
from modelvc.objects import MODE_LINK, Manifest
from modelvc.ops.annotate import NO_ANNOTATIONS, Annotations, all_annotations, effective_values
from modelvc.ops.pathspec import under
from modelvc.ops.workstate import WorkingFile, working_file
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.vocabulary import mode_text, path_change
from modelvc.worktree import to_repo_path

if TYPE_CHECKING:
    from modelvc.formats import FileSource
    from modelvc.modeldiff import FileVersion, ModelDiff
    from modelvc.store.filedata import StoredFileSource


@dataclass(frozen=True)
class FileChange:
    """One path's change between two versions; sizes and shared bytes say how much really moved."""
    path: str
    status: str  # added | deleted | modified | mode | renamed
    old_size: int | None
    new_size: int | None
    shared_bytes: int  # bytes of the new version found in the old one's chunks
    old_mode: int | None = None
    new_mode: int | None = None
    model: Any = None  # a modeldiff.ModelDiff for model files
    bytes_read: int = 0  # file bytes read to compare the tensors (headers included)
    old_path: str | None = None  # where a renamed file was

    def to_dict(self, all_tensors: bool = True) -> dict[str, Any]:
        """With all_tensors False, a model's unchanged tensors are left out (only counted)."""
        model = self.model.to_dict() if self.model is not None else None
        if model is not None and not all_tensors:
            model["tensors"] = [t for t in model["tensors"] if t["status"] != "unchanged"]
        return path_change(self.status, self.path, self.old_path) | {
            "old_size": self.old_size, "new_size": self.new_size, "shared_bytes": self.shared_bytes,
            "old_mode": mode_text(self.old_mode), "new_mode": mode_text(self.new_mode),
            "model": model, "read_bytes": self.bytes_read}


@dataclass(frozen=True)
class ValueChange:
    """A metric or param that differs between two commits; `delta` only for two numbers."""
    key: str
    old: Any
    new: Any
    delta: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "old": self.old, "new": self.new, "delta": self.delta}


@dataclass
class DiffResult:
    """Everything `mvc diff` reports: files (with tensors for model files), metrics and params."""
    old_label: str
    new_label: str
    old_commit: str | None
    new_commit: str | None  # None: the working tree
    files: list[FileChange] = field(default_factory=list)
    metrics: list[ValueChange] = field(default_factory=list)
    params: list[ValueChange] = field(default_factory=list)
    old_annotations: Annotations | None = None  # what notes added to each commit (None: the working tree)
    new_annotations: Annotations | None = None

    @property
    def has_changes(self) -> bool:
        """Files differ (metrics and params are the commits' notes, not the files)."""
        return bool(self.files)

    @property
    def values_changed(self) -> bool:
        return bool(self.metrics or self.params)

    def to_dict(self, all_tensors: bool = True) -> dict[str, Any]:
        return {"old": {"label": self.old_label, "commit": self.old_commit,
                        "annotations": _annotations_dict(self.old_annotations)},
                "new": {"label": self.new_label, "commit": self.new_commit,
                        "annotations": _annotations_dict(self.new_annotations)},
                "files": [f.to_dict(all_tensors) for f in self.files],
                "metrics": [m.to_dict() for m in self.metrics], "params": [p.to_dict() for p in self.params]}


def _annotations_dict(found: Annotations | None) -> dict[str, Any] | None:
    return found.to_dict() if found is not None else None


@dataclass(frozen=True)
class _Side:
    """One file version: a stored manifest id, or a working file (maybe already hashed)."""

    file: str
    size: int
    mode: int
    manifest: Manifest | None = None
    path: str | None = None  # a working file (else a stored version)


def shared_bytes(old: Manifest, new: Manifest) -> int:
    """Bytes of `new` already in `old`'s chunks: what a new version really cost to store."""
    old_ids = {chunk_id for chunk_id, _ in old.chunks}
    return sum(length for chunk_id, length in new.chunks if chunk_id in old_ids)


def _manifest(repo: Repo, side: _Side) -> Manifest:
    return side.manifest if side.manifest is not None else repo.read_manifest(side.file)


def _tree_sides(repo: Repo, commit_id: ObjectId) -> dict[str, _Side]:
    return {p: _Side(e.manifest_id, e.size, e.mode) for p, e in repo.tree_of(commit_id).as_map().items()}


def _worktree_sides(repo: Repo, base: dict[str, _Side], progress: Progress) -> dict[str, _Side]:
    sides = {}
    for path in sorted(set(base) | set(repo.index.entries)):
        now: WorkingFile = working_file(repo, path, repo.index.entries.get(path), progress)
        if now.manifest_id is not None and now.size is not None and now.mode is not None:
            sides[path] = _Side(now.manifest_id, now.size, now.mode, now.manifest, path)
    return sides


def compare_values(old: dict[str, Any], new: dict[str, Any], numeric: bool) -> list[ValueChange]:
    """Keys whose values differ, sorted; numbers get their difference when `numeric`."""
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        delta = b - a if numeric and isinstance(a, (int, float)) and isinstance(b, (int, float)) else None
        changes.append(ValueChange(key, a, b, delta))
    return changes


def _version(repo: Repo, side: _Side, name: str, opened: list[FileSource | StoredFileSource]) -> FileVersion:
    """A modeldiff FileVersion over a stored version or a working file, with its chunk list."""
    from modelvc.formats import FileSource
    from modelvc.modeldiff import FileVersion
    from modelvc.ops.materialize import fetch_absent_chunks
    from modelvc.store.filedata import StoredFileSource

    manifest = _manifest(repo, side)
    if not side.path:
        fetch_absent_chunks(repo, [manifest])  # a partial clone's version: one bulk fetch first
    source = FileSource(str(repo.root / side.path)) if side.path else StoredFileSource(manifest, repo.chunks)
    opened.append(source)
    offsets = manifest.chunk_offsets()
    chunks = tuple((chunk_id, offset, length)
                   for (chunk_id, length), offset in zip(manifest.chunks, offsets, strict=True))
    return FileVersion.read(source, name, chunks)


def model_diff(repo: Repo, a: _Side, b: _Side, path: str, stats: bool,
               progress: Progress) -> tuple[ModelDiff | None, int]:
    """Tensor-level changes when either side is a model file of a known layout, else None."""
    from modelvc.modeldiff import compare_models

    if MODE_LINK in (a.mode, b.mode):  # a link's content is its target string, never what it points to
        return None, 0
    opened: list[FileSource | StoredFileSource] = []
    try:
        name = path.rsplit("/", 1)[-1]
        old, new = _version(repo, a, name, opened), _version(repo, b, name, opened)
        if old.layout is None and new.layout is None:
            return None, sum(s.bytes_read for s in opened)
        result = compare_models(old, new, stats=stats, progress=progress)
        return result, sum(s.bytes_read for s in opened)
    finally:
        for source in opened:
            if hasattr(source, "close"):
                source.close()


def _pair_renames(result: DiffResult, old: dict[str, _Side], new: dict[str, _Side]) -> None:
    """A deleted and an added file of the same content are one renamed file."""
    from modelvc.ops.renames import pair_renames

    gone = {f.path: old[f.path].file for f in result.files if f.status == "deleted"}
    appeared = {f.path: new[f.path].file for f in result.files if f.status == "added"}
    pairs = pair_renames(gone, appeared) if gone and appeared else {}
    if not pairs:
        return
    olds = set(pairs.values())
    files = []
    for f in result.files:
        if f.path in olds:
            continue
        if f.path in pairs:
            was = old[pairs[f.path]]
            f = FileChange(f.path, "renamed", was.size, f.new_size, f.new_size or 0, was.mode, f.new_mode,
                           old_path=pairs[f.path])
        files.append(f)
    result.files = files


def diff(repo: Repo, old_rev: str | None = None, new_rev: str | None = None,
         paths: list[str] | None = None, cwd: Path | None = None,
         progress: Progress = NO_PROGRESS, models: bool = True, stats: bool = False) -> DiffResult:
    """No revision: HEAD vs the working tree; one: REV vs the working tree; two: REV vs REV.

    With `models`, modified model files also get a tensor-level comparison (and with
    `stats`, numeric statistics of each changed tensor).
    """
    old_commit = repo.resolve(old_rev or "HEAD") if (old_rev or repo.head_commit()) else None
    old = _tree_sides(repo, old_commit) if old_commit else {}
    if new_rev is None:
        new_commit, new = None, _worktree_sides(repo, old, progress)
    else:
        new_commit = repo.resolve(new_rev)
        new = _tree_sides(repo, new_commit)
    result = DiffResult(old_rev or "HEAD", new_rev or "working tree", old_commit, new_commit)
    filters = [to_repo_path(repo.root, p, cwd) for p in paths] if paths else None
    for path in sorted(set(old) | set(new)):
        if filters is not None and not any(under(path, f) for f in filters):
            continue
        a, b = old.get(path), new.get(path)
        if a is None:
            assert b is not None  # the path is on one of the two sides
            result.files.append(FileChange(path, "added", None, b.size, 0, None, b.mode))
        elif b is None:
            result.files.append(FileChange(path, "deleted", a.size, None, 0, a.mode, None))
        elif a.file != b.file:
            shared = shared_bytes(_manifest(repo, a), _manifest(repo, b))
            model, read = model_diff(repo, a, b, path, stats, progress) if models else (None, 0)
            result.files.append(FileChange(path, "modified", a.size, b.size, shared, a.mode, b.mode, model, read))
        elif a.mode != b.mode:
            result.files.append(FileChange(path, "mode", a.size, b.size, b.size, a.mode, b.mode))
    _pair_renames(result, old, new)
    if old_commit and new_commit:  # the values annotations added count, as log and show show them
        notes = all_annotations(repo)
        result.old_annotations = notes.get(old_commit, NO_ANNOTATIONS)
        result.new_annotations = notes.get(new_commit, NO_ANNOTATIONS)
        a_metrics, a_params, _, _ = effective_values(repo, old_commit, repo.read_commit(old_commit), notes)
        b_metrics, b_params, _, _ = effective_values(repo, new_commit, repo.read_commit(new_commit), notes)
        result.metrics = compare_values(a_metrics, b_metrics, numeric=True)
        result.params = compare_values(a_params, b_params, numeric=False)
    return result

