"""Moving the working tree and index from one tree to another, safely.

Shared by checkout, rollback and reset-like operations. Local changes that the move would
overwrite are refused (named) unless forced; every file is written to a temporary file,
verified chunk by chunk, and renamed into place, so a corrupt store never replaces a good
working file with wrong bytes.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from modelvc.errors import LocalChangesError, MvcError
from modelvc.fsutil import current_boot_id, naming
from modelvc.index import stat_entry
from modelvc.objects import MODE_EXEC, Tree, TreeEntry
from modelvc.ops.workstate import WorkingFile, same_content, working_file
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.worktree import is_protected, stat_path

if TYPE_CHECKING:
    from modelvc.store.filedata import LocalCopy


@dataclass
class MoveResult:
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_local: list[str] = field(default_factory=list)


class _WorkingFiles:
    """What each working file holds, hashed at most once per move (racy files are re-read)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self._seen: dict[str, WorkingFile | None] = {}

    def get(self, path: str) -> WorkingFile | None:
        if path not in self._seen:
            entry = self.repo.index.entries.get(path)
            on_disk = stat_path(self.repo.root, path) is not None
            self._seen[path] = working_file(self.repo, path, entry) if (entry or on_disk) else None
        return self._seen[path]


def find_conflicts(repo: Repo, current: Tree, target: Tree, paths: list[str] | None = None,
                   files: _WorkingFiles | None = None) -> tuple[list[str], list[str]]:
    """Paths the move would overwrite that hold uncommitted work, and untracked files in the way.

    Returns (conflicts, kept): `kept` are locally changed paths a whole-tree move leaves as
    they are (git carries such changes over). Restoring given `paths` keeps nothing: there a
    conflict is a working file that differs from both the target and the index (unsaved work).
    """
    index = repo.index.entries
    old, new = current.as_map(), target.as_map()
    candidates = set(old) | set(new) | set(index)
    if paths is not None:
        candidates &= set(paths)
    files = files or _WorkingFiles(repo)
    conflicts, kept = [], []
    for path in sorted(candidates):
        entry = index.get(path)
        now = files.get(path)
        on_disk = now is not None and now.file is not None
        if entry is None:  # untracked here: only in the way if the target writes this path
            if on_disk and path in new and not same_content(now, new[path]):
                conflicts.append(path)
            continue
        if paths is not None:
            if on_disk and not same_content(now, new.get(path)) and not same_content(now, entry):
                conflicts.append(path)
            continue
        locally_changed = not same_content(old.get(path), entry) or not same_content(entry, now)
        if not locally_changed:
            continue
        if same_content(old.get(path), new.get(path)):
            kept.append(path)
        elif not same_content(now, new.get(path)):
            conflicts.append(path)
    return conflicts, kept


def refuse_conflicts(conflicts: list[str], action: str) -> None:
    if conflicts:
        raise LocalChangesError(
            f"{action} would overwrite local changes in: " + ", ".join(conflicts), conflicts,
            hint="commit them, or use --force to discard them")


def write_entry(repo: Repo, entry: TreeEntry, progress: Progress = NO_PROGRESS,
                replacing: WorkingFile | None = None) -> tuple[os.stat_result, bool]:
    """Write one file in place; returns its stat and whether it was left unsynced.

    Chunks that `replacing` (the file now at that path) already holds are copied from it,
    verified, rather than decoded from the store. The bytes are not fsynced where the
    kernel gives a boot id (see modelvc/index.py): waiting for the disk would cost most of a
    checkout's time, and the store keeps the durable copy.
    """
    from modelvc.store.filedata import write_file

    target = repo.root / entry.path
    manifest = repo.manifest(entry.file)
    if target.is_dir() and not target.is_symlink():
        raise LocalChangesError(f"cannot write {entry.path}: a directory is in the way", [entry.path])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.mvc-tmp-{os.getpid()}"
    unsynced = current_boot_id() is not None
    try:
        with naming(target, str(tmp)), open(tmp, "wb") as handle:
            write_file(manifest, handle, repo.chunks, progress.advance, _local_copy(repo, target, replacing))
            handle.flush()
            if not unsynced:
                os.fsync(handle.fileno())
        os.chmod(tmp, 0o755 if entry.mode == MODE_EXEC else 0o644)
        if unsynced:
            # Renaming over an existing file makes ext4 flush the new one first (its
            # auto_da_alloc guard against empty files after a crash): the whole wait for the
            # disk that skipping fsync avoids, 2.5 s for 1 GiB here. A crash between the two
            # calls leaves the path missing, which status reports and checkout restores.
            with contextlib.suppress(FileNotFoundError):
                os.unlink(target)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return os.stat(target), unsynced


def _local_copy(repo: Repo, target: Path, now: WorkingFile | None) -> LocalCopy | None:
    from modelvc.store.filedata import LocalCopy

    if now is None or now.file is None:
        return None
    try:
        manifest = now.manifest or repo.manifest(now.file)
    except MvcError:  # its manifest was never stored: nothing to reuse
        return None
    return LocalCopy(target, manifest)


def remove_path(repo: Repo, path: str) -> None:
    target = repo.root / path
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    parent = target.parent
    while parent != repo.root:
        try:
            parent.rmdir()
        except OSError:
            break
        parent = parent.parent


def move_tree(repo: Repo, current: Tree, target: Tree, force: bool,
              progress: Progress = NO_PROGRESS, paths: list[str] | None = None,
              action: str = "checkout") -> MoveResult:
    """Make the working tree and index hold `target` (for `paths` only, when given).

    The caller holds the lock and moves HEAD afterwards. The index is saved even when a
    write fails part-way, so it always describes what is on disk.
    """
    index = repo.index
    files = _WorkingFiles(repo)
    conflicts, kept = find_conflicts(repo, current, target, paths, files)
    if not force:
        refuse_conflicts(conflicts, action)
    old, new = current.as_map(), target.as_map()
    scope = set(old) | set(new) | (set(index.entries) if force else set())
    if paths is not None:
        scope &= set(paths)
    scope = {p for p in scope if not is_protected(p)}  # never write into .git or .mvc, even if a tree says so
    result = MoveResult(kept_local=[] if force else kept)
    skip = set() if force else set(kept)
    to_write = [new[p] for p in sorted(scope) if p in new and p not in skip]
    to_remove = [p for p in sorted(scope) if p not in new and p not in skip and p in index.entries]
    progress.start("Checking out", sum(e.size for e in to_write))
    try:
        for entry in to_write:
            now = files.get(entry.path)
            unsynced = False
            if now is not None and same_content(now, entry):
                st = os.stat(repo.root / entry.path)
                progress.advance(entry.size)
            else:
                st, unsynced = write_entry(repo, entry, progress, now)
                result.written.append(entry.path)
            index.entries[entry.path] = stat_entry(entry.path, entry.file, entry.size, entry.mode, st,
                                                   index.entries.get(entry.path), unsynced)
        for path in to_remove:
            if stat_path(repo.root, path) is not None:
                remove_path(repo, path)
                result.removed.append(path)
            index.entries.pop(path, None)
    finally:
        index.save()
        progress.finish()
    return result
