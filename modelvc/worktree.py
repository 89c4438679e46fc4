"""The working tree: path normalisation, ignore rules, walking the files."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection, Container, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from modelvc.errors import UsageError
from modelvc.ignore import PROTECTED_NAMES, IgnoreRules, is_protected
from modelvc.objects import MODE_EXEC, MODE_FILE, MODE_LINK
from modelvc.safefs import is_temp_name

MVC_DIR = ".mvc"
# What of a file's st_mode its recorded mode depends on: its type and owner-exec bit.
KIND_BITS = stat.S_IFMT(0o177777) | stat.S_IXUSR
# The kind bits (st_mode & KIND_BITS) a file of a recorded mode shows, a link as Linux makes it (0777).
KINDS_BY_MODE = {MODE_FILE: stat.S_IFREG, MODE_EXEC: stat.S_IFREG | stat.S_IXUSR,
                 MODE_LINK: stat.S_IFLNK | stat.S_IXUSR}


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
    walk = walk_against(root, (), {}, rules or IgnoreRules.load(root), start)
    yield from sorted(walk.untracked.items())


@dataclass
class Walk:
    """The working tree seen in one pass, against the index's stat cache."""

    matched: list[str] = field(default_factory=list)  # tracked; lstat equals the cached stat
    differing: dict[str, os.stat_result] = field(default_factory=dict)  # tracked; lstat cannot vouch
    untracked: dict[str, os.stat_result] = field(default_factory=dict)  # neither tracked nor ignored

    def unseen(self, tracked: Collection[str]) -> set[str]:
        """Tracked paths the walk did not meet: gone, not a file, or where it does not go
        (an ignored directory, beyond a link): each is looked at by stat_path. `tracked` holds
        every tracked path the walk could meet (the walk meets each path once)."""
        if len(self.matched) + len(self.differing) == len(tracked):  # it met them all
            return set()
        return set(tracked).difference(self.matched, self.differing)


def walk_against(root: Path, tracked: Container[str], trusted: dict[str, tuple[int, int, int, int]],
                 rules: IgnoreRules, start: str = "", untracked: bool = True) -> Walk:
    """Walk as walk_files does, taking each entry's lstat once (from its directory entry) and
    comparing it with `trusted` (Index.trusted_stats) in the same step; ignore rules are asked
    about untracked files only (a tracked file is never ignored), and untracked files are
    left alone unless `untracked`. Unsorted."""
    walk = Walk()
    matched, differing, found, want_untracked = walk.matched.append, walk.differing, walk.untracked, untracked
    ignored, kind_bits, vouched = rules.ignored, KIND_BITS, trusted.get
    # The common case, a tracked file whose stat is cached, costs one lstat, one concatenation
    # and one dict lookup: everything else (kind, protected and temporary names, ignore rules)
    # is asked only of entries that fail it. pathlib, or slicing and replacing each full path,
    # per entry cost status half its time.
    # Each directory is opened by its path from the root and listed by descriptor, so an
    # entry's lstat resolves its name alone, not every directory above it again (10% of a walk
    # of 50,000 files in 50 directories); one descriptor is open at a time beside the root's.
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    stack = [(start or ".", start + "/" if start else "")]
    try:
        while stack:
            directory, base = stack.pop()
            fd = _open_directory(directory, root_fd)
            if fd is None:
                continue
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:  # gone since the directory was read
                            continue
                        rel = base + entry.name
                        if vouched(rel) == (st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode & kind_bits):
                            matched(rel)
                            continue
                        name = entry.name
                        if name in PROTECTED_NAMES or (name[0] == "." and is_temp_name(name)):
                            continue
                        kind = stat.S_IFMT(st.st_mode)
                        if kind == stat.S_IFDIR:
                            if not ignored(rel, True):
                                stack.append((rel, rel + "/"))
                        elif kind == stat.S_IFREG or kind == stat.S_IFLNK:
                            if rel in tracked:
                                if kind == stat.S_IFLNK and _same_link(vouched(rel), st):
                                    matched(rel)
                                else:
                                    differing[rel] = st
                            elif want_untracked and not ignored(rel, False):
                                found[rel] = st
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
    return walk


def _open_directory(directory: str, root_fd: int) -> int | None:
    """A descriptor of a directory (a path from the root); None if it is gone, not a
    directory (a link to one included) or unreadable."""
    try:
        return os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=root_fd)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a directory replaced by a link since it was listed
            return None
        raise


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    """What Index.trusted_stats holds for a file this lstat vouches for."""
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_mode & KIND_BITS


def _same_link(cached: tuple[int, int, int, int] | None, st: os.stat_result) -> bool:
    """A link whose permission bits are not 0777 (macOS lets them be changed) is still the link
    cached: a link's mode is MODE_LINK whatever its bits."""
    return cached is not None and cached[:3] == (st.st_size, st.st_mtime_ns, st.st_ino) and stat.S_ISLNK(cached[3])


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
