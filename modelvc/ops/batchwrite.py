"""Writing many small working files at once: a directory's files in batches, on every core.

A file of one chunk costs little more than its system calls, so handing each one to the thread
pool on its own (as store/filedata.py's write_file does for big files) costs more in hand-offs
than the work. Here one task is a run of files of one directory: every chunk read (and so
verified) first, then each file created under a temporary name with O_EXCL|O_NOFOLLOW through
the directory's descriptor (opened once, by the calling thread, see modelvc/safefs.py), then
the renames, one after the other. A task that fails leaves none of its temporary files, and
the files it already renamed are still reported, so the index describes what is on disk.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from modelvc.errors import LocalChangesError
from modelvc.fsutil import naming
from modelvc.objects import MODE_EXEC, Manifest, TreeEntry
from modelvc.repo import Repo
from modelvc.safefs import TreeDirs, new_file, replace_in_dir
from modelvc.store.parallel import ordered_map

if TYPE_CHECKING:
    from modelvc.store.chunkstore import ChunkStore

BATCH_FILES = 64
BATCH_BYTES = 4 << 20
MANIFEST_BATCH = 256

Record = Callable[[TreeEntry, os.stat_result], None]  # told each file renamed into place


@dataclass(frozen=True)
class SmallFile:
    """A file to write whose content is at most one chunk."""

    entry: TreeEntry
    chunk_id: bytes | None  # None: an empty file
    replaces: bool  # a file or link stands at the path now

    @classmethod
    def of(cls, entry: TreeEntry, manifest: Manifest, replaces: bool) -> SmallFile:
        """The file `entry` names, whose manifest is `manifest` (one chunk at most)."""
        return cls(entry, bytes.fromhex(manifest.chunks[0][0]) if manifest.chunks else None, replaces)


def is_small(manifest: Manifest) -> bool:
    """A file written whole from one chunk (or none), so nothing to reuse from its old version."""
    return len(manifest.chunks) <= 1


def read_manifests(repo: Repo, entries: list[TreeEntry]) -> dict[str, Manifest]:
    """The manifests of `entries` by id, read in parallel: one read each, before any file is touched."""
    store = repo.chunks
    ids = sorted({entry.manifest_id for entry in entries if not entry.is_link})

    def read(group: list[str]) -> list[Manifest]:
        # Repo.read_manifest's two steps, with the store taken once here: Repo.chunks looks at
        # the packs directory at each access, from the calling thread.
        found = []
        for manifest_id in group:
            manifest = repo.objects.get_typed(manifest_id, Manifest)
            store.check_lengths(manifest_id, manifest)
            found.append(manifest)
        return found

    groups = [ids[start:start + MANIFEST_BATCH] for start in range(0, len(ids), MANIFEST_BATCH)]
    manifests: dict[str, Manifest] = {}
    for group, found in zip(groups, ordered_map(read, groups, pool=store.pool), strict=True):
        manifests.update(zip(group, found, strict=True))
    return manifests


@dataclass
class _Outcome:
    renamed: list[tuple[TreeEntry, os.stat_result]] = field(default_factory=list)
    size: int = 0
    error: BaseException | None = None


def write_small_files(repo: Repo, files: list[SmallFile], dirs: TreeDirs, unsynced: bool,
                      record: Record, advance: Callable[[int], None]) -> None:
    """Write `files` in batches per directory, `record`ing each one renamed into place.

    After a failure no new batch starts; those in flight finish and are recorded, then the
    first error is raised.
    """
    store = repo.chunks
    errors: list[BaseException] = []

    def tasks() -> Iterator[tuple[int, list[SmallFile]]]:
        for batch in _batches(files):
            if errors:
                return
            try:
                dir_fd = dirs.open(batch[0].entry.path.rpartition("/")[0], True, batch[0].entry.path)
            except BaseException as exc:  # noqa: BLE001 - raised below, once the batches in flight are recorded
                errors.append(exc)
                return
            yield dir_fd, batch

    def work(task: tuple[int, list[SmallFile]]) -> _Outcome:
        return _write_batch(repo, store, task[0], task[1], unsynced)

    for outcome in ordered_map(work, tasks(), pool=store.pool):
        for entry, st in outcome.renamed:
            record(entry, st)
        advance(outcome.size)
        if outcome.error is not None:
            errors.append(outcome.error)
    if errors:
        raise errors[0]


def _batches(files: list[SmallFile]) -> Iterator[list[SmallFile]]:
    """Runs of files of one directory, at most BATCH_FILES and about BATCH_BYTES each."""
    by_directory: dict[str, list[SmallFile]] = {}
    for file in files:
        by_directory.setdefault(file.entry.path.rpartition("/")[0], []).append(file)
    for group in by_directory.values():
        batch: list[SmallFile] = []
        size = 0
        for file in group:
            batch.append(file)
            size += file.entry.size
            if len(batch) >= BATCH_FILES or size >= BATCH_BYTES:
                yield batch
                batch, size = [], 0
        if batch:
            yield batch


def _write_batch(repo: Repo, store: ChunkStore, dir_fd: int, batch: list[SmallFile], unsynced: bool) -> _Outcome:
    outcome = _Outcome()
    root = os.fspath(repo.root)
    temps: dict[str, str] = {}  # path -> its temporary name, until renamed
    try:
        contents = [store.read(file.chunk_id) if file.chunk_id is not None else b"" for file in batch]
        written = []
        for file, data in zip(batch, contents, strict=True):
            tmp, fd = new_file(dir_fd)
            temps[file.entry.path] = tmp
            try:
                with naming(f"{root}/{file.entry.path}"):
                    _write_all(fd, data)
                    os.fchmod(fd, 0o755 if file.entry.mode == MODE_EXEC else 0o644)
                    if not unsynced:
                        os.fsync(fd)
                    written.append(os.fstat(fd))  # rename keeps inode, size and mtime
            finally:
                os.close(fd)
        for file, st in zip(batch, written, strict=True):
            _rename_into_place(dir_fd, temps[file.entry.path], file, unsynced)
            del temps[file.entry.path]
            outcome.renamed.append((file.entry, st))
            outcome.size += file.entry.size
    except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
        outcome.error = exc
    finally:
        for tmp in temps.values():
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp, dir_fd=dir_fd)
    return outcome


def _rename_into_place(dir_fd: int, tmp: str, file: SmallFile, unsynced: bool) -> None:
    """As materialize.write_entry: unsynced, what stands at the path is unlinked first, so ext4
    does not flush the new file at the rename (see there)."""
    name = file.entry.path.rpartition("/")[2]
    try:
        replace_in_dir(dir_fd, tmp, name, unlink_first=unsynced and file.replaces)
    except IsADirectoryError:
        raise LocalChangesError(f"cannot write {file.entry.path}: a directory is in the way",
                                [file.entry.path]) from None


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
