"""mvc add / mvc rm: stage files into the index (their chunks go into the store now)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from modelvc.index import mode_of, stat_entry
from modelvc.ops.gitside import GitignoreUpdate
from modelvc.ops.pathspec import expand, expand_specs
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.store.filedata import PreviousVersion
from modelvc.worktree import is_utf8_name, printable_name, stat_path


@dataclass
class AddResult:
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


def add(repo: Repo, specs: list[str], cwd: Path | None = None, progress: Progress = NO_PROGRESS,
        force: bool = False, gitignore: bool | None = None) -> AddResult:
    """Stage what the user's paths match (files, directories, globs).

    `force` takes paths .mvcignore ignores. In a git work tree, what is stored is added to
    .gitignore unless `gitignore` is False (None: the core.gitignore setting)."""
    from modelvc.config import effective
    from modelvc.ops.gitside import ignore_stored, split_for_git

    if gitignore is None:
        gitignore = bool(effective(repo.config, "core.gitignore"))
    with repo.lock():
        index = repo.fresh_index()
        found = expand_specs(repo.root, specs, cwd or Path.cwd(), index.entries, force=force)
        split = split_for_git(repo.root, found.paths, found.named, set(index.entries))
        result = _stage(repo, split.store, progress)
        result.left_to_git, result.versioned_twice = split.left_to_git, split.versioned_twice
    if gitignore:
        stored = [p for p in split.store if p in repo.index.entries]
        result.gitignore = ignore_stored(repo.root, split, stored)
    return result


def add_tracked(repo: Repo, progress: Progress = NO_PROGRESS) -> AddResult:
    """Stage every change to tracked files, deletions included (commit --all)."""
    with repo.lock():
        return _stage(repo, sorted(repo.fresh_index().entries), progress)


def _stage(repo: Repo, paths: list[str], progress: Progress) -> AddResult:
    """Store and stage `paths`; the caller holds the lock and has just re-read the index."""
    from modelvc.store.filedata import ingest_file

    result = AddResult()
    index = repo.index
    work: list[tuple[str, os.stat_result]] = []
    for path in paths:
        if not is_utf8_name(path):
            result.skipped.append(printable_name(path))
            continue
        st = stat_path(repo.root, path)
        entry = index.entries.get(path)
        if st is None:
            if entry is not None:
                del index.entries[path]
                result.removed.append(path)
        elif entry is not None and index.is_unchanged(entry, st):
            result.unchanged += 1
        else:
            work.append((path, st))
    progress.start("Adding", sum(st.st_size for _, st in work))
    staged: list[tuple[str, os.stat_result, object]] = []
    head_entries = repo.tree_of(repo.head_commit()).as_map()
    with repo.chunks.writer() as writer:
        for path, st in work:
            previous = previous_version(repo, index.entries.get(path) or head_entries.get(path))
            ingested = ingest_file(repo.root / path, repo.chunk_params, repo.chunks, writer, progress.advance,
                                   previous, repo.delta_max_depth)
            staged.append((path, st, ingested.manifest))
            if ingested.layout is not None and ingested.layout.warnings:
                result.warnings[path] = list(ingested.layout.warnings)
            result.bytes_read += st.st_size
        result.new_chunks = writer.new_chunks
        result.new_raw_bytes = writer.new_raw_bytes
        result.new_stored_bytes = writer.new_stored_bytes
    progress.finish()
    # Chunks are sealed in packs; now the manifests, and the index last.
    for path, st, manifest in staged:
        file_id = repo.objects.put(manifest)
        previous = index.entries.get(path)
        index.entries[path] = stat_entry(path, file_id, manifest.size, mode_of(st), st, previous)
        if previous is None or previous.file != file_id or previous.mode != mode_of(st):
            result.staged.append(path)
        else:
            result.unchanged += 1
    index.save()
    return result


def previous_version(repo: Repo, entry) -> PreviousVersion | None:
    """The stored version a new one of the same path may be delta-encoded against."""
    if entry is None or not repo.chunk_params.model_aware or repo.delta_max_depth == 0:
        return None
    from modelvc.errors import IntegrityError
    from modelvc.formats.detect import read_layout
    from modelvc.store.filedata import StoredFileSource

    try:
        manifest = repo.manifest(entry.file)
        layout = read_layout(StoredFileSource(manifest, repo.chunks), entry.path.rsplit("/", 1)[-1])
    except IntegrityError:  # a damaged previous version: store the new one in full
        return None
    return PreviousVersion(layout, manifest.chunks) if layout is not None else None


@dataclass
class RmResult:
    removed: list[str] = field(default_factory=list)
    deleted_files: list[str] = field(default_factory=list)


def rm(repo: Repo, specs: list[str], cached: bool, force: bool = False, cwd: Path | None = None) -> RmResult:
    """Stop tracking paths; without --cached also delete the working files (if unmodified)."""
    from modelvc.errors import LocalChangesError
    from modelvc.ops.workstate import working_file

    cwd = cwd or Path.cwd()
    result = RmResult()
    with repo.lock():
        index = repo.fresh_index()
        paths = expand(repo.root, specs, cwd, index.entries, include_worktree=False)
        if not cached and not force:
            modified = [p for p in paths
                        if (w := working_file(repo, p, index.entries[p])).file is not None
                        and w.file != index.entries[p].file]
            if modified:
                raise LocalChangesError(
                    "these files have changes that are not staged; removing them would lose them: "
                    + ", ".join(modified), modified, hint="use --cached to keep the files, or --force")
        for path in paths:
            del index.entries[path]
            result.removed.append(path)
            if not cached and stat_path(repo.root, path) is not None:
                (repo.root / path).unlink()
                result.deleted_files.append(path)
        index.save()
    return result
