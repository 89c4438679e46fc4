"""Turning the paths a user typed into repository paths: files, directories, globs."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from modelvc.errors import IgnoredPathError, PathNotFoundError, UsageError
from modelvc.ignore import IGNORE_FILE, IgnoreRules
from modelvc.worktree import (
    is_utf8_name,
    link_on_the_way,
    printable_name,
    stat_path,
    to_repo_path,
    walk_against,
    walk_files,
)

GLOB_CHARS = set("*?[")


def under(path: str, prefix: str) -> bool:
    """Whether `path` is `prefix` or inside it ("" is the root): a path component match, never a
    string prefix, so "models" does not match "models2/a"."""
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


@dataclass
class Expansion:
    """Paths a spec matched, and which were named one by one (add refuses ignored files only then)."""
    paths: list[str] = field(default_factory=list)
    named: set[str] = field(default_factory=set)  # files named one by one, not found by a walk or glob
    stats: dict[str, os.stat_result] = field(default_factory=dict)  # lstats the walks took, by path
    unchanged: set[str] = field(default_factory=set)  # walked files `trusted` vouched for, not in paths


def expand(root: Path, specs: Iterable[str], cwd: Path, known: Iterable[str],
           include_worktree: bool = True) -> list[str]:
    """Repository paths matched by the specs, from the working tree and from `known` paths
    (the index or a tree: so a deleted file still matches). A spec matching nothing is an error."""
    return expand_specs(root, specs, cwd, known, include_worktree).paths


def expand_specs(root: Path, specs: Iterable[str], cwd: Path, known: Iterable[str],
                 include_worktree: bool = True, force: bool = False,
                 trusted: dict[str, tuple[int, int, int, int]] | None = None) -> Expansion:
    """As `expand`, for `add`: without `force`, a spec naming an ignored path is refused as git
    refuses it, and walks skip ignored paths; with it, ignored paths are taken too. A named file
    whose name is not UTF-8 is refused (found by walking, `add` skips it with a warning).

    With `trusted` (Index.trusted_stats), a directory's walk compares each known file's lstat
    with it as it goes: files it vouches for go to `unchanged`, not `paths`, so `add .` with
    nothing changed handles no path one by one after the walk."""
    known = set(known)
    rules = IgnoreRules.load(root) if include_worktree else IgnoreRules([])
    walk_rules = IgnoreRules([]) if force else rules
    result = Expansion()
    matched: set[str] = set()
    refused: list[str] = []
    for spec in specs:
        found: set[str] = set()
        vouched = False  # whether the spec matched files `trusted` vouched for
        if GLOB_CHARS & set(spec):
            pattern = to_repo_path(root, spec, cwd)
            candidates = set(known)
            if include_worktree:
                candidates.update(p for p, _ in walk_files(root, "", walk_rules))
            found = {p for p in candidates if fnmatch.fnmatchcase(p, pattern)}
        else:
            target = to_repo_path(root, spec, cwd)
            if include_worktree and link_on_the_way(root, target) is not None:
                raise UsageError(f"pathspec '{spec}' is beyond a symbolic link")
            is_file = include_worktree and stat_path(root, target) is not None
            is_dir = include_worktree and not is_file and (target == "" or (root / target).is_dir())
            if (is_file or is_dir) and target and target not in known and not force \
                    and rules.ignored(target, is_dir):
                refused.append(spec)
                continue
            if is_file:
                if not is_utf8_name(target):
                    raise UsageError(f"cannot add '{printable_name(target)}': its name is not valid UTF-8",
                                     hint="rename the file: modelvc stores file names as UTF-8")
                found = {target}
                result.named.add(target)
            else:
                if is_dir:
                    found, vouched = _walk_directory(root, target, known, walk_rules, trusted, result)
                else:  # gone from the working tree: the tracked files that were there
                    found = {p for p in known if under(p, target)}
        if not found and not vouched:
            raise PathNotFoundError(f"pathspec '{spec}' did not match any files")
        matched |= found
    if refused:
        raise IgnoredPathError(f"the following paths are ignored by {IGNORE_FILE}:\n" + "\n".join(refused),
                               refused, hint="use -f if you really want to add them")
    result.paths = sorted(matched)
    result.unchanged -= matched  # found changed through another spec
    return result


def _walk_directory(root: Path, target: str, known: set[str], rules: IgnoreRules,
                    trusted: dict[str, tuple[int, int, int, int]] | None, result: Expansion) -> tuple[set[str], bool]:
    """The files under the directory `target` (walked, and the known ones: a deleted file too);
    with `trusted`, those it vouches for go to result.unchanged instead. Also: whether any did."""
    tracked_here = known if target == "" else {p for p in known if under(p, target)}
    if trusted is None:
        walked = dict(walk_files(root, target, rules))
        result.stats.update(walked)
        return set(walked) | tracked_here, False
    walk = walk_against(root, known, trusted, rules, target)
    result.stats.update(walk.differing)
    result.stats.update(walk.untracked)
    result.unchanged.update(walk.matched)
    return walk.differing.keys() | walk.untracked.keys() | walk.unseen(tracked_here), bool(walk.matched)
