"""mvc add / mvc rm: stage files into the index (their chunks go into the store now)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelvc.errors import UsageError
from modelvc.ignore import IgnoreRules
from modelvc.index import Index, IndexEntry, mode_of, stat_entry
from modelvc.objects import Manifest, TreeEntry
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.worktree import (
    directories_unchanged,
    is_utf8_name,
    printable_name,
    stat_key,
    stat_path,
    walk_against,
)

if TYPE_CHECKING:  # what storing files needs is imported only when a file is stored: `add .` with
    # nothing changed, and status, never load the chunker, codecs and format readers (nor
    # commit -a the path specs and git's side)
    from modelvc.formats import Layout
    from modelvc.layoutindex import LayoutIndex
    from modelvc.ops.gitside import GitignoreUpdate
    from modelvc.store.filedata import PreviousVersion


@dataclass
class AddResult:
    """What `add` staged and what it cost, so the CLI can report it and scripts read it as JSON."""
    staged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    bytes_read: int = 0
    new_chunks: int = 0
    new_raw_bytes: int = 0
    new_stored_bytes: int = 0
    warnings: dict[str, list[str]] = field(default_factory=dict)  # path -> what its reader noticed
    skipped: list[str] = field(default_factory=list)  # found by walking, names not UTF-8 (escaped)
    left_to_git: list[str] = field(default_factory=list)  # found in a directory; git tracks them
    versioned_twice: list[str] = field(default_factory=list)  # named; git tracks them as well
    gitignore: GitignoreUpdate | None = None  # None outside a git work tree or with --no-gitignore

    def to_dict(self) -> dict[str, Any]:
        return {"staged": self.staged, "deleted": self.removed, "unchanged_count": self.unchanged,
                "read_bytes": self.bytes_read, "new_chunk_count": self.new_chunks,
                "new_bytes": self.new_raw_bytes, "stored_bytes": self.new_stored_bytes,
                "warnings": self.warnings, "left_to_git": self.left_to_git,
                "versioned_twice": self.versioned_twice, "skipped": self.skipped,
                "gitignore": self.gitignore.to_dict() if self.gitignore is not None else None}


def add(repo: Repo, specs: list[str], cwd: Path | None = None, progress: Progress = NO_PROGRESS,
        force: bool = False, gitignore: bool | None = None, dereference: bool = False,
        save_index: bool = True) -> AddResult:
    """Stage what the user's paths match (files, directories, globs).

    `force` takes paths .mvcignore ignores. In a git work tree, what is stored is added to
    .gitignore unless `gitignore` is False (None: the core.gitignore setting). A symbolic link
    is staged as a link (its target string), unless `dereference`: then the bytes it points to
    are staged as a regular file, and stay so for later adds and commit -a. `save_index=False`
    only inside staged_for_commit, which sees that the index is written."""
    from modelvc.config import effective
    from modelvc.ops.gitside import ignore_stored, split_for_git
    from modelvc.ops.pathspec import expand_specs

    if gitignore is None:
        gitignore = bool(effective(repo.config, "core.gitignore"))
    with repo.transaction():
        index = repo.fresh_index()
        found = expand_specs(repo.root, specs, cwd or Path.cwd(), index.paths(), force=force,
                             trusted=None if dereference else index.trusted_stats())
        split = split_for_git(repo.root, found.paths, found.named, set(index.paths()))
        result = _stage(repo, split.store, progress, dereference, found.stats, save_index)
        result.unchanged += len(found.unchanged)
        result.left_to_git, result.versioned_twice = split.left_to_git, split.versioned_twice
    if gitignore and split.in_git_tree:
        tracked = set(repo.index.paths())
        stored = sorted(found.unchanged.union(p for p in split.store if p in tracked))
        result.gitignore = ignore_stored(repo.root, split, stored)
    return result


def add_tracked(repo: Repo, progress: Progress = NO_PROGRESS, save_index: bool = True) -> AddResult:
    """Stage every change to tracked files, deletions included (commit --all): one walk takes
    their stats, and only files whose stat differs from the index's are read. `save_index` as
    for add."""
    with repo.transaction():
        index = repo.fresh_index()
        tracked = index.tracked()
        walk = walk_against(repo.root, tracked, index.trusted_stats(), IgnoreRules.load(repo.root),
                            untracked=False)
        result = _stage(repo, sorted(walk.differing.keys() | walk.unseen(tracked)), progress,
                        stats=walk.differing, save_index=save_index)
        result.unchanged += len(walk.matched)
        return result


@contextmanager
def staged_for_commit(repo: Repo) -> Iterator[None]:
    """A transaction in which add and add_tracked (given save_index=False) stage for the
    commit made in it, whose save is then the only write of the index. If the block fails
    before that save, the staging is saved on the way out, as the add alone would have."""
    with repo.transaction():
        try:
            yield
        finally:
            repo.save_unsaved_index()


def _stage(repo: Repo, paths: list[str], progress: Progress, dereference: bool = False,
           stats: dict[str, os.stat_result] | None = None, save_index: bool = True) -> AddResult:
    """Store and stage `paths`; the caller holds the lock and has just re-read the index.

    `stats` holds lstats a walk just took, so no file is stat'ed twice; a path whose stat
    matches the index's is counted unchanged without building its entry.
    """
    result = AddResult()
    index = repo.index
    stats = stats or {}
    trusted = {} if dereference else index.trusted_stats()
    work: list[tuple[str, os.stat_result]] = []
    followed: set[str] = set()
    with directories_unchanged():
        for path in paths:
            st = stats.get(path)
            if st is not None and trusted.get(path) == stat_key(st):
                result.unchanged += 1
                continue
            if not is_utf8_name(path):
                result.skipped.append(printable_name(path))
                continue
            entry = index.entry(path)
            follow = dereference or (entry is not None and entry.dereference)
            if st is None or follow:
                st = stat_path(repo.root, path, follow)
            if follow and _is_link(repo, path):
                if st is None:
                    raise UsageError(f"cannot dereference '{path}': its target is not a regular file")
                followed.add(path)
            if st is None:
                if entry is not None:
                    index.note_change(path)
                    del index.entries[path]
                    result.removed.append(path)
            elif entry is not None and index.is_unchanged(entry, st):
                result.unchanged += 1
            else:
                work.append((path, st))
    if not work:
        if result.removed:
            _save_staged(index, save_index)
        return result
    from modelvc.layoutindex import LayoutIndex, fingerprint
    from modelvc.store.smallfiles import SMALL_FILE_BYTES

    progress.start("Adding", sum(st.st_size for _, st in work))
    layouts = LayoutIndex(repo.mvc_dir)
    staged = _store(repo, work, followed, progress, result, layouts)
    progress.finish()
    # Chunks are sealed in packs (a file that changed while it was read has stopped the whole
    # add before this point: nothing is staged, and its chunks are left for gc); now the
    # manifests (one batch: one pack sealed before the index names them), and the index last.
    bases = []
    with repo.objects.batch():
        for path, st, manifest, layout in staged:
            file_id = repo.objects.put(manifest)
            if layout is not None and manifest.size > SMALL_FILE_BYTES:  # only big files take deltas
                layouts.note(fingerprint(layout), file_id, path)
                bases.append((file_id, layout, manifest.chunks))
            index.note_change(path)
            indexed = index.entry(path)
            index.put(stat_entry(path, file_id, manifest.size, mode_of(st), st, indexed,
                                 dereference=path in followed))
            if indexed is None or indexed.manifest_id != file_id or indexed.mode != mode_of(st):
                result.staged.append(path)
            else:
                result.unchanged += 1
    for base in bases:  # their manifests are written: the next add of their paths reads none back
        repo.note_staged_layout(*base)
    _save_staged(index, save_index)
    layouts.save()  # derived: written last, and only a hint for later adds
    return result


def _save_staged(index: Index, now: bool) -> None:
    """Save now, or leave the save to the commit in the same transaction (staged_for_commit)."""
    if now:
        index.save_staged()
    else:
        index.unsaved = True


def _store(repo: Repo, work: list[tuple[str, os.stat_result]], followed: set[str], progress: Progress,
           result: AddResult, layouts: LayoutIndex) -> list[tuple[str, os.stat_result, Manifest, Layout | None]]:
    """Put the chunks of `work` in the store; each path with the stat it was read at, its
    manifest and its layout, in the order of `work`."""
    from modelvc.ops.links import link_manifest, working_link_target
    from modelvc.store.smallfiles import FileToStore, ingest_files

    done: dict[str, tuple[os.stat_result, Manifest, Layout | None]] = {}
    index = repo.index
    head_entries: dict[str, TreeEntry] | None = None  # read only for a big file new to the index

    def previous_of(file: FileToStore) -> PreviousVersion | None:
        nonlocal head_entries
        before: IndexEntry | TreeEntry | None = index.entry(file.shown)
        if before is None:
            if head_entries is None:
                head_entries = repo.tree_of(repo.head_commit()).as_map()
            before = head_entries.get(file.shown)
        if before is None:
            return cross_path_version(repo, file.path, layouts)
        return previous_version(repo, before)

    root = str(repo.root)
    files = [FileToStore(os.path.join(root, path), path, st.st_size, path in followed)
             for path, st in work if not stat.S_ISLNK(st.st_mode)]
    with repo.chunks.writer() as writer:
        for path, st in work:
            if stat.S_ISLNK(st.st_mode):
                done[path] = st, link_manifest(working_link_target(repo.root, path), writer), None
        for file, ingested in ingest_files(files, repo.chunk_params, repo.chunks, writer, progress.advance,
                                           previous_of, repo.delta_max_depth):
            done[file.shown] = ingested.stat, ingested.manifest, ingested.layout
            if ingested.layout is not None and ingested.layout.warnings:
                result.warnings[file.shown] = list(ingested.layout.warnings)
            result.bytes_read += file.size
        result.new_chunks = writer.new_chunks
        result.new_raw_bytes = writer.new_raw_bytes
        result.new_stored_bytes = writer.new_stored_bytes
    return [(path, *done[path]) for path, _ in work]


def _is_link(repo: Repo, path: str) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(repo.root / path).st_mode)
    except OSError:
        return False


def previous_version(repo: Repo, entry: IndexEntry | TreeEntry | None) -> PreviousVersion | None:
    """The stored version a new one of the same path may be delta-encoded against."""
    from modelvc.store.filedata import PreviousVersion

    if entry is None or not _deltas_on(repo):
        return None
    found = repo.staged_layouts.get(entry.manifest_id) or _stored_version(repo, entry.manifest_id, entry.path)
    return PreviousVersion(*found) if found is not None else None


def cross_path_version(repo: Repo, working_path: str, layouts: LayoutIndex) -> PreviousVersion | None:
    """For a file with no version at its own path: the version most recently staged with the
    same tensor layout, wherever it lives (a checkpoint saved under a new name each time).

    The working file's layout is read here (its header only) to look it up; ingest_file reads
    it again from the descriptor it stores from. The layout index is only a hint: an entry
    whose manifest no longer reads, or whose layout differs, gives no base.
    """
    if not _deltas_on(repo) or not layouts.entries:
        return None
    from modelvc.formats import FileSource
    from modelvc.formats.detect import read_layout
    from modelvc.layoutindex import fingerprint
    from modelvc.store.filedata import PreviousVersion

    try:
        with FileSource(working_path) as source:
            layout = read_layout(source, os.path.basename(working_path))
    except OSError:  # gone or unreadable: ingest_file reports it
        return None
    if layout is None:
        return None
    key = fingerprint(layout)
    entry = layouts.latest(key)
    found = _stored_version(repo, *entry) if entry is not None else None
    if found is None or fingerprint(found[0]) != key:
        return None
    return PreviousVersion(*found)


def _deltas_on(repo: Repo) -> bool:
    return repo.chunk_params.model_aware and repo.delta_max_depth > 0


def _stored_version(repo: Repo, manifest_id: str, path: str) -> tuple[Layout, tuple[tuple[str, int], ...]] | None:
    """A stored version's layout and chunks; None when it has no layout or does not read
    (damaged, or gone since a hint named it): the new version is then stored in full."""
    from modelvc.errors import IntegrityError
    from modelvc.formats.detect import read_layout
    from modelvc.store.filedata import StoredFileSource

    try:
        manifest = repo.read_manifest(manifest_id)
        layout = read_layout(StoredFileSource(manifest, repo.chunks), path.rsplit("/", 1)[-1])
    except IntegrityError:
        return None
    return (layout, manifest.chunks) if layout is not None else None


@dataclass
class RmResult:
    """Paths `rm` untracked, and those whose working files it deleted too (without --cached)."""
    removed: list[str] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)


def rm(repo: Repo, specs: list[str], cached: bool, force: bool = False, cwd: Path | None = None) -> RmResult:
    """Stop tracking paths; without --cached also delete the working files.

    As git's rm: nothing is done when it would lose content no commit holds (see refuse_rm).
    """
    from modelvc.ops.materialize import refuse_links_in_the_way
    from modelvc.ops.pathspec import expand
    from modelvc.safefs import TreeDirs

    cwd = cwd or Path.cwd()
    result = RmResult()
    with repo.transaction():
        index = repo.fresh_index()
        paths = expand(repo.root, specs, cwd, index.entries, include_worktree=False)
        if not force:
            refuse_rm(repo, paths, cached)
        if not cached:
            refuse_links_in_the_way(repo, paths)
        with TreeDirs(repo.root) as dirs:
            for path in paths:
                del index.entries[path]
                result.removed.append(path)
                if not cached and stat_path(repo.root, path) is not None and dirs.unlink(path):
                    result.deleted_files.append(path)
        index.save()
    return result


_RM_PROBLEMS = (  # (what, hint), in git's words and order
    ("staged content different from both the file and the HEAD", "use -f to force removal"),
    ("changes staged in the index", "use --cached to keep the file, or -f to force removal"),
    ("local modifications", "use --cached to keep the file, or -f to force removal"),
)


def refuse_rm(repo: Repo, paths: list[str], cached: bool) -> None:
    """Raise LocalChangesError (git's message) if removing `paths` would lose uncommitted content.

    A staged version that differs from HEAD lives only in the index; a modified working file
    only on disk. --cached keeps the working file, so it is refused only when the index holds
    a version that is in neither HEAD nor the working file.
    """
    from modelvc.errors import LocalChangesError
    from modelvc.ops.workstate import same_content, working_file

    head = repo.tree_of(repo.head_commit()).as_map()
    found: dict[int, list[str]] = {}
    for path in paths:
        entry = repo.index.entries[path]
        now = working_file(repo, path, entry)
        staged = not same_content(head.get(path), entry)
        local = now.manifest_id is not None and not same_content(entry, now)
        if staged and local:
            found.setdefault(0, []).append(path)
        elif not cached and staged:
            found.setdefault(1, []).append(path)
        elif not cached and local:
            found.setdefault(2, []).append(path)
    if found:
        kind = min(found)
        listed = found[kind]
        what, hint = _RM_PROBLEMS[kind]
        noun = "file has" if len(listed) == 1 else "files have"
        raise LocalChangesError(f"the following {noun} {what}:\n" + "\n".join(f"    {p}" for p in listed),
                                listed, hint=hint)
