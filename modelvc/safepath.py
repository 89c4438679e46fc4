"""The one check of paths that come from outside the code: the index, trees read from the store.

A stored path is only ever joined to the working-tree root, so anything that could climb out
of it (`..`, an absolute path), land in a `.mvc` (at any depth), or be cut short by the
filesystem (NUL, empty components) is refused before any file is touched. A `.git` path is not
refused in a tree (an older mvc versioned `.git/` with `add .`): checkout skips it, never writing
there. The index never holds one.
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Iterable
from itertools import compress, islice

from modelvc.errors import UnsafePathError
from modelvc.worktree import MVC_DIR

GIT_DIR = ".git"


def path_problem(path: object, git_ok: bool = False) -> str | None:
    """Why `path` is not a safe relative path inside the working tree, or None when it is.

    `git_ok` lets a `.git` path through: trees may hold one (checkout skips it), the index never.
    """
    if not isinstance(path, str) or path == "":
        return "is not a non-empty text path"
    if "\0" in path:
        return "contains a NUL byte"
    if not path.isascii():
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid text"
    if path[0] == "/":
        return "is absolute"
    parts = path.split("/")
    if "" in parts or "." in parts or ".." in parts:
        return "has an empty, '.' or '..' component"
    if "." not in path:
        return None
    for part in path.lower().split("/"):  # lower(): the same directory on a case-insensitive disk
        if part == MVC_DIR or (part == GIT_DIR and not git_ok):
            return f"is inside {part}"
    return None


def tree_problems(paths: Iterable[str], git_ok: bool = False) -> list[tuple[str, str]]:
    """(path, why) for every unsafe path, and for every path that is also another's directory."""
    found = []
    names: set[str] = set()
    directories: dict[str, str] = {}  # directory -> the first path found under it
    for path in paths:
        reason = path_problem(path, git_ok)
        if reason is None and path in names:
            reason = "is listed twice"
        if reason is not None:
            found.append((path, reason))
            continue
        names.add(path)
        directory = path
        while "/" in directory:
            directory = directory.rsplit("/", 1)[0]
            if directory in directories:
                break
            directories[directory] = path
    for path in sorted(names & directories.keys()):
        found.append((path, f"is both a file and the directory of '{directories[path]}'"))
    return found


def check_paths(paths: Iterable[str], where: str,
                hint: str = "run 'mvc fsck' to see every commit it affects", git_ok: bool = False) -> None:
    """Raise UnsafePathError naming `where` (an object or the index) and the first bad path."""
    problems = tree_problems(paths, git_ok)
    if problems:
        path, reason = problems[0]
        raise UnsafePathError(f"{where} has an unsafe path {path!r}: it {reason}", hint=hint)


def check_link_target(target: str, where: str) -> None:
    """A symbolic link's target is never followed, but it must be one the OS can create."""
    if not target or "\0" in target:
        raise UnsafePathError(f"{where} is a symbolic link with an invalid target {target!r}")


# Components no path may have, in the joined paths with every "/" made a NUL (any case: see
# check_paths): an empty one is two NULs in a row.
_UNSAFE_COMPONENTS = ("\0.\0", "\0..\0", "\0.mvc\0", "\0.git\0")


def paths_look_safe(paths: list[str]) -> bool:
    """True when `paths` surely pass check_paths (without .git): a few searches of the paths
    joined, not a loop over them, for the index's tens of thousands. False means: run
    check_paths for the exact problem (there may be none)."""
    if not paths:
        return True
    try:
        joined = "\0" + "\0".join(paths).lower() + "\0"
        if not joined.isascii():
            joined.encode("utf-8")
    except (TypeError, UnicodeEncodeError):
        return False
    if joined.count("\0") != len(paths) + 1:  # a NUL inside a path
        return False
    components = joined.replace("/", "\0")  # one search for an empty component, not four
    if "\0\0" in components or ("\0." in components and any(part in components for part in _UNSAFE_COMPONENTS)):
        return False  # each search of a 50,000-path text takes ~1.5 ms: the rest only after a dot
    if all(map(operator.lt, paths, islice(paths, 1, None))):
        # Strictly ascending (an index's, a tree's): unique, and a path that is also a directory
        # is followed at once by a path that begins with it (all between it and "it/..." do).
        for path in compress(paths, map(str.startswith, islice(paths, 1, None), paths)):
            below = path + "/"
            at = bisect_left(paths, below)
            if at < len(paths) and paths[at].startswith(below):
                return False
        return True
    if len(set(paths)) != len(paths):
        return False
    directories = {path.rpartition("/")[0] for path in paths}
    ancestors = set(directories)
    for directory in directories:
        while "/" in directory:
            directory = directory.rpartition("/")[0]
            if directory in ancestors:
                break
            ancestors.add(directory)
    return ancestors.isdisjoint(paths)
