"""The working tree: path normalisation, ignore rules, walking the files."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

from modelvc.errors import UsageError
from modelvc.ignore import PROTECTED_NAMES, IgnoreRules, is_protected

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
    """Regular files under `start` (a repo path), skipping .mvc, .git and ignored paths, sorted."""
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
            if entry.name in PROTECTED_NAMES:
                continue
            if entry.is_dir(follow_symlinks=False):
                if not rules.ignored(rel, True):
                    stack.append(entry.path)
            elif entry.is_file(follow_symlinks=False) and not rules.ignored(rel, False):
                found.append((rel, entry.stat(follow_symlinks=False)))
    found.sort()
    yield from found


def stat_path(root: Path, path: str) -> os.stat_result | None:
    """The stat of a regular file (not a symlink) at a repo path, or None."""
    try:
        st = os.lstat(os.path.join(root, path))
    except (FileNotFoundError, NotADirectoryError):
        return None
    return st if stat.S_ISREG(st.st_mode) else None


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
