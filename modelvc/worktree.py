"""The working tree: path normalisation, ignore rules, walking the files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from modelvc.errors import UsageError
from modelvc.ignore import PROTECTED_NAMES, IgnoreRules, is_protected
from modelvc.safefs import is_temp_name

MVC_DIR = ".mvc"


def to_repo_path(root: Path, user_path: str, cwd: Path | None = None) -> str:
    """A user's path (relative to cwd, or absolute) as a slash-separated path from the root."""
    cwd = cwd or Path.cwd()
    absolute = Path(os.path.normpath(os.path.join(cwd, user_path)))
    try:
        relative = absolute.relative_to(root)
    except ValueError:
        raise UsageError(f"path '{user_path}' is outside the working tree at {root}") from None
    text = relative.as_posix()
    if is_protected(text):
        raise UsageError(f"path '{user_path}' is inside a {MVC_DIR} or .git directory, which mvc never touches")
    return "" if text == "." else text


def walk_files(root: Path, start: str = "", rules: IgnoreRules | None = None
               ) -> Iterator[tuple[str, os.stat_result]]:
    """Regular files and symbolic links under `start` (a repo path), sorted, with their lstat.

    Never descends into a link, and skips ignored paths, every .mvc and .git, and mvc's own
    temporary files.
    """
    rules = rules or IgnoreRules.load(root)
    prefix = len(os.path.join(root, ""))  # slicing strings: pathlib per entry cost status half its time
    stack = [os.path.join(root, start) if start else str(root)]
    found: list[tuple[str, os.stat_result]] = []
    while stack:
        directory = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for entry in entries:
            rel = entry.path[prefix:].replace(os.sep, "/")
            if entry.name in PROTECTED_NAMES or is_temp_name(entry.name):
                continue
            if entry.is_dir(follow_symlinks=False):
                if not rules.ignored(rel, True):
                    stack.append(entry.path)
            elif (entry.is_file(follow_symlinks=False) or entry.is_symlink()) and not rules.ignored(rel, False):
                found.append((rel, entry.stat(follow_symlinks=False)))
    found.sort()
    yield from found


def stat_path(root: Path, path: str, follow: bool = False) -> os.stat_result | None:
    """The lstat of a regular file or symbolic link at a repo path, or None.

    None too when a directory on the way is a link: what lies beyond it is not in the tree.
    With `follow` (a path added with --dereference) a link gives the stat of its target.
    """
    full = os.path.join(root, path)
    try:
        st = os.lstat(full)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if "/" in path and link_on_the_way(root, path) is not None:
        return None
    if follow and stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(full)
        except OSError:
            return None
    return st if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode) else None


def link_on_the_way(root: Path, path: str) -> str | None:
    """The first directory of `path` (a repo path) that is a symbolic link, if any."""
    directory = path.rpartition("/")[0]
    if not directory:
        return None
    cache = _link_dirs.get()
    if cache is not None and directory in cache:
        return cache[directory]
    found = link_on_the_way(root, directory)
    if found is None:
        try:
            if stat.S_ISLNK(os.lstat(os.path.join(root, directory)).st_mode):
                found = directory
        except (FileNotFoundError, NotADirectoryError):
            pass
    if cache is not None:
        cache[directory] = found
    return found


_link_dirs: ContextVar[dict[str, str | None] | None] = ContextVar("_link_dirs", default=None)


@contextmanager
def directories_unchanged() -> Iterator[None]:
    """Within the block, each directory is checked for being a link once: for readers
    (status, add) that look at thousands of paths in a few directories and change none."""
    token = _link_dirs.set({})
    try:
        yield
    finally:
        _link_dirs.reset(token)


def is_utf8_name(path: str) -> bool:
    """Whether a path read from the file system is UTF-8 (what trees, the index and JSON hold);
    other bytes arrive as lone surrogates (Python's surrogateescape)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_name(path: str) -> str:
    """A path as text a terminal shows, its non-UTF-8 bytes as \\xNN escapes."""
    return os.fsencode(path).decode("utf-8", errors="backslashreplace")
