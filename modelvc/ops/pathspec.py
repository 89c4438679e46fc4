"""Turning the paths a user typed into repository paths: files, directories, globs."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from pathlib import Path

from modelvc.errors import PathNotFoundError, UsageError
from modelvc.worktree import IgnoreRules, is_utf8_name, printable_name, stat_path, to_repo_path, walk_files

GLOB_CHARS = set("*?[")


def under(path: str, prefix: str) -> bool:
    return prefix == "" or path == prefix or path.startswith(prefix + "/")


def expand(root: Path, specs: Iterable[str], cwd: Path, known: Iterable[str],
           include_worktree: bool = True) -> list[str]:
    """Repository paths matched by the specs, from the working tree and from `known` paths
    (the index or a tree: so a deleted file still matches). A spec matching nothing is an error,
    and so is naming a file whose name is not UTF-8 (found by walking, the caller skips it)."""
    known = sorted(set(known))
    rules = IgnoreRules.load(root)
    matched: set[str] = set()
    for spec in specs:
        found: set[str] = set()
        if GLOB_CHARS & set(spec):
            pattern = to_repo_path(root, spec, cwd)
            candidates = set(known)
            if include_worktree:
                candidates.update(p for p, _ in walk_files(root, "", rules))
            found = {p for p in candidates if fnmatch.fnmatchcase(p, pattern)}
        else:
            target = to_repo_path(root, spec, cwd)
            if include_worktree and stat_path(root, target) is not None:
                if not is_utf8_name(target):
                    raise UsageError(f"cannot add '{printable_name(target)}': its name is not valid UTF-8",
                                     hint="rename the file: modelvc stores file names as UTF-8")
                found = {target}
            else:
                if include_worktree and (target == "" or (root / target).is_dir()):
                    found = {p for p, _ in walk_files(root, target, rules)}
                found.update(p for p in known if under(p, target))
        if not found:
            raise PathNotFoundError(f"pathspec '{spec}' did not match any files")
        matched |= found
    return sorted(matched)
