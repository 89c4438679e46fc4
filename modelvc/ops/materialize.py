"""Moving the working tree and index from one tree to another, safely.

Shared by checkout, rollback and reset-like operations. Local changes that the move would
overwrite are refused (named) unless forced; every file is written to a temporary file,
verified chunk by chunk, and renamed into place, so a corrupt store never replaces a good
working file with wrong bytes.
"""

from __future__ import annotations

import contextlib
import os
import stat as statmod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelvc.errors import LocalChangesError, MvcError
from modelvc.fsutil import current_boot_id, naming
from modelvc.index import stat_entry
from modelvc.objects import MODE_EXEC, MODE_LINK, Tree, TreeEntry
from modelvc.ops.workstate import WorkingFile, same_content, working_file
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.safefs import TreeDirs, create_temp, in_the_way, new_file, replace_in_dir
from modelvc.worktree import directories_unchanged, is_protected, link_on_the_way, stat_path

if TYPE_CHECKING:
    from modelvc.objects import Manifest
    from modelvc.ops.filling import FilesBeingFilled, FilledFile
    from modelvc.promisor import FetchedChunks
    from modelvc.store.filedata import LocalCopy


@dataclass
class MoveResult:
    """What a checkout, rollback or restore did to the working tree, for its summary and --json."""
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept_local: list[str] = field(default_factory=list)
    fetched: FetchedChunks | None = None  # a partial clone's chunks fetched first

    def to_dict(self) -> dict[str, Any]:
        return {"written": self.written, "deleted": self.removed, "kept_local": self.kept_local,
                "fetched": self.fetched.to_dict() if self.fetched is not None else None}


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


def find_conflicts(repo: Repo, old: dict[str, TreeEntry], new: dict[str, TreeEntry], candidates: set[str],
                   paths_given: bool, files: _WorkingFiles) -> tuple[list[str], list[str]]:
    """Which of `candidates` the move would overwrite holding uncommitted work, or untracked
    files in the way (`old` and `new` are the two trees' maps).

    Returns (conflicts, kept): `kept` are locally changed paths a whole-tree move leaves as
    they are (git carries such changes over). Restoring given paths keeps nothing: there a
    conflict is a working file that differs from both the target and the index (unsaved work).
    """
    index = repo.index.entries
    conflicts, kept = [], []
    for path in sorted(candidates):
        entry = index.get(path)
        now = files.get(path)
        on_disk = now is not None and now.manifest_id is not None
        if entry is None:  # untracked here: only in the way if the target writes this path
            if on_disk and path in new and not same_content(now, new[path]):
                conflicts.append(path)
            continue
        if paths_given:
            if on_disk and not same_content(now, new.get(path)) and not same_content(now, entry):
                conflicts.append(path)
            continue
        locally_changed = not same_content(old.get(path), entry) or not same_content(entry, now)
        if not locally_changed:
            continue
        if same_content(old.get(path), new.get(path)):
            kept.append(path)
        elif on_disk and not same_content(now, new.get(path)):
            conflicts.append(path)  # (a deleted file holds no work to lose: it is restored)
    return conflicts, kept


def refuse_conflicts(conflicts: list[str], action: str) -> None:
    """Stop before anything is written when the move would overwrite local changes (git's rule)."""
    if conflicts:
        raise LocalChangesError(
            f"{action} would overwrite local changes in: " + ", ".join(conflicts), conflicts,
            hint="commit them, or use --force to discard them")


def write_entry(repo: Repo, entry: TreeEntry, dirs: TreeDirs, progress: Progress = NO_PROGRESS,
                replacing: WorkingFile | None = None, filled: FilledFile | None = None) -> tuple[os.stat_result, bool]:
    """Write one file (or link) in place; returns its lstat and whether it was left unsynced.

    It is created exclusively under a temporary name in its directory, opened without
    following links (see modelvc/safefs.py), and renamed over the target, so what was there
    (a link included) is replaced, never written through. Chunks that `replacing` (the file
    now at that path) already holds are copied from it, verified, rather than decoded from the
    store; `filled`, its temporary file already holding the chunks a fetch brought (filling.py),
    is completed instead of a new one. The bytes are not fsynced where the kernel gives a boot
    id (see modelvc/index.py): waiting for the disk would cost most of a checkout's time, and
    the store keeps the durable copy.
    """
    from modelvc.store.filedata import write_file

    directory, _, name = entry.path.rpartition("/")
    dir_fd = dirs.open(directory, True, entry.path) if filled is None else filled.dir_fd
    with contextlib.suppress(FileNotFoundError):
        if statmod.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise LocalChangesError(f"cannot write {entry.path}: a directory is in the way", [entry.path])
    if entry.is_link:
        return _write_link(repo, entry, dir_fd, name), False
    manifest = repo.read_manifest(entry.manifest_id)
    unsynced = current_boot_id() is not None
    tmp, fd = new_file(dir_fd) if filled is None else (filled.tmp, filled.fd)
    done = frozenset(filled.done) if filled is not None else frozenset()
    try:
        with naming(repo.root / entry.path), os.fdopen(fd, "wb") as handle:
            progress.advance(sum(manifest.chunks[index][1] for index in done))
            write_file(manifest, handle, repo.chunks, progress.advance,
                       _local_copy(repo, entry.path, replacing) if len(done) < len(manifest.chunks) else None, done)
            handle.flush()
            os.fchmod(handle.fileno(), 0o755 if entry.mode == MODE_EXEC else 0o644)
            if not unsynced:
                os.fsync(handle.fileno())
        replace_in_dir(dir_fd, tmp, name, unlink_first=unsynced)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False), unsynced


def _write_link(repo: Repo, entry: TreeEntry, dir_fd: int, name: str) -> os.stat_result:
    from modelvc.ops.links import stored_link_target

    target = stored_link_target(repo, entry.manifest_id, entry.path)
    tmp, _ = create_temp(dir_fd, lambda name: os.symlink(target, name, dir_fd=dir_fd))
    try:
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def _local_copy(repo: Repo, path: str, now: WorkingFile | None) -> LocalCopy | None:
    from modelvc.store.filedata import LocalCopy

    if now is None or now.manifest_id is None or now.mode == MODE_LINK:
        return None
    try:
        manifest = now.manifest or repo.read_manifest(now.manifest_id)
    except MvcError:  # its manifest was never stored: nothing to reuse
        return None
    return LocalCopy(repo.root / path, manifest)


def refuse_links_in_the_way(repo: Repo, paths: Iterable[str], tracked_links: Iterable[str] = ()) -> None:
    """Refuse before touching anything when a directory on the way to one of `paths` is a
    symbolic link (a tracked directory replaced by `d -> elsewhere`), unless that link is
    itself a tracked path about to be replaced."""
    exempt = set(tracked_links)
    for path in sorted(paths):
        directory = link_on_the_way(repo.root, path)
        if directory is not None and directory not in exempt:
            raise in_the_way(repo.root, directory, path)


def _check_link_targets(repo: Repo, entries: list[TreeEntry]) -> None:
    """Read (and so verify) every link target before the first file is touched."""
    from modelvc.ops.links import stored_link_target

    for entry in entries:
        if entry.is_link:
            stored_link_target(repo, entry.manifest_id, entry.path)


def move_tree(repo: Repo, current: Tree, target: Tree, force: bool,
              progress: Progress = NO_PROGRESS, paths: list[str] | None = None,
              action: str = "checkout") -> MoveResult:
    """Make the working tree and index hold `target` (for `paths` only, when given).

    The caller holds the lock and moves HEAD afterwards. The index is saved even when a
    write fails part-way, so it always describes what is on disk. Paths the move leaves as
    they are cost one lstat each; files of at most one chunk are written in batches
    (modelvc/ops/batchwrite.py), the others one by one.
    """
    from modelvc.ops.batchwrite import SmallFile, is_small, read_manifests, write_small_files
    from modelvc.ops.filling import FilesBeingFilled

    index = repo.index
    old, new = current.as_map(), target.as_map()
    candidates = set(old) | set(new) | set(index.entries)
    if paths is not None:
        candidates &= set(paths)
    with directories_unchanged():  # nothing is written before the conflicts are settled
        candidates -= _untouched(repo, old, new, candidates)
        tracked_links = [p for p in candidates if any(e is not None and e.mode == MODE_LINK
                                                      for e in (old.get(p), index.entries.get(p)))]
        refuse_links_in_the_way(repo, candidates, tracked_links)
        files = _WorkingFiles(repo)
        conflicts, kept = find_conflicts(repo, old, new, candidates, paths is not None, files)
    if not force:
        refuse_conflicts(conflicts, action)
    index_only = set(index.entries) - set(old) - set(new)
    scope = candidates if force else candidates - index_only
    scope = {p for p in scope if not is_protected(p)}  # never .git or .mvc (a tree naming them is refused at load)
    result = MoveResult(kept_local=[] if force else kept)
    skip = set() if force else set(kept)
    to_write = [new[p] for p in sorted(scope) if p in new and p not in skip]
    to_remove = [p for p in sorted(scope) if p not in new and p not in skip and p in index.entries]
    unchanged = [e for e in to_write if same_content(files.get(e.path), e)]
    changed = [e for e in to_write if not same_content(files.get(e.path), e)]
    manifests = read_manifests(repo, changed)
    small = [e for e in changed if not e.is_link and is_small(manifests[e.manifest_id])]
    one_by_one = [e for e in changed if e.is_link or not is_small(manifests[e.manifest_id])]
    fillable = [(e, manifests[e.manifest_id]) for e in one_by_one if not e.is_link]
    unsynced = current_boot_id() is not None

    def record(entry: TreeEntry, st: os.stat_result, written_unsynced: bool = unsynced) -> None:
        result.written.append(entry.path)
        index.entries[entry.path] = stat_entry(entry.path, entry.manifest_id, entry.size, entry.mode, st,
                                               index.entries.get(entry.path), written_unsynced)

    with TreeDirs(repo.root) as dirs, FilesBeingFilled(dirs) as filling:
        # a partial clone's absent chunks first, written into the files as they come (filling.py)
        result.fetched = fetch_absent_chunks(repo, [*manifests.values(), *_link_manifests(repo, changed)], progress,
                                             filling, fillable)
        _check_link_targets(repo, to_write)
        progress.start("Checking out", sum(e.size for e in to_write))
        try:
            # Removals first, so a path that changes from a file to a directory (or back) is free.
            for path in to_remove:
                if stat_path(repo.root, path) is not None and dirs.unlink(path):
                    result.removed.append(path)
                index.entries.pop(path, None)
            for entry in unchanged:
                previous = index.entries.get(entry.path)
                dereference = previous is not None and previous.dereference
                st = stat_path(repo.root, entry.path, follow=dereference)
                if st is None:  # gone since it was looked at: written below
                    one_by_one.append(entry)
                    continue
                progress.advance(entry.size)
                index.entries[entry.path] = stat_entry(entry.path, entry.manifest_id, entry.size, entry.mode, st,
                                                       previous, False, dereference)
            replaced = [SmallFile.of(e, manifests[e.manifest_id], _stands(files.get(e.path))) for e in small]
            write_small_files(repo, replaced, dirs, unsynced, record, progress.advance)
            for entry in sorted(one_by_one, key=lambda e: e.path):
                st, written_unsynced = write_entry(repo, entry, dirs, progress, files.get(entry.path),
                                                   filling.hand_over(entry.path))
                record(entry, st, written_unsynced)
        finally:
            index.save()
            progress.finish()
    result.written.sort()
    return result


def fetch_absent_chunks(repo: Repo, manifests: Iterable[Manifest], progress: Progress = NO_PROGRESS,
                        filling: FilesBeingFilled | None = None,
                        fillable: Iterable[tuple[TreeEntry, Manifest]] = ()) -> FetchedChunks | None:
    """In a partial clone, fetch every chunk of `manifests` the store lacks, in one bulk plan,
    before any working file is replaced (so a corrupt remote leaves the working tree untouched).
    The `fillable` files that lack a chunk are started in `filling`, which the fetch fills."""
    if repo.promisor is None:
        return None
    store = repo.chunks
    absent = {chunk_id for manifest in manifests for chunk_hex, _ in manifest.chunks
              if not store.has_good(chunk_id := bytes.fromhex(chunk_hex))}
    if not absent:
        return None
    if filling is None:
        return repo.promisor.fetch_chunks(absent, progress)
    for entry, manifest in fillable:
        if any(bytes.fromhex(chunk_hex) in absent for chunk_hex, _ in manifest.chunks):
            filling.open(entry, manifest)
    return repo.promisor.fetch_chunks(absent, progress, filling.take)


def _link_manifests(repo: Repo, entries: list[TreeEntry]) -> list[Manifest]:
    """The manifests of the links among `entries` (read_manifests leaves them out); only a
    partial clone needs them before the targets are read."""
    if repo.promisor is None:
        return []
    from modelvc.objects import Manifest

    return [repo.objects.get_typed(entry.manifest_id, Manifest) for entry in entries if entry.is_link]


def _stands(now: WorkingFile | None) -> bool:
    """Whether a file or link is at the path now."""
    return now is not None and now.manifest_id is not None


def _untouched(repo: Repo, old: dict[str, TreeEntry], new: dict[str, TreeEntry], candidates: set[str]) -> set[str]:
    """Paths the same in both trees and the index whose lstat still matches the index: nothing
    to write, check or refresh there (the bulk of a switch between nearby versions). Called
    where directories are checked for links once each (worktree.directories_unchanged)."""
    index = repo.index
    root = os.fspath(repo.root)
    untouched = set()
    for path in candidates:
        entry, before, after = index.entries.get(path), old.get(path), new.get(path)
        if (entry is None or before is None or after is None or entry.dereference
                or not before.manifest_id == after.manifest_id == entry.manifest_id
                or not before.mode == after.mode == entry.mode):
            continue
        try:
            st = os.lstat(f"{root}/{path}")  # stat_path's checks, without its per-call path joins
        except OSError:
            continue
        if ((statmod.S_ISREG(st.st_mode) or statmod.S_ISLNK(st.st_mode)) and index.is_unchanged(entry, st)
                and link_on_the_way(repo.root, path) is None):
            untouched.add(path)
    return untouched
