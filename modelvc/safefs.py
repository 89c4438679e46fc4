"""Creating and deleting in the working tree without ever following a symbolic link.

Every directory on the way to a target is opened from its parent's descriptor with
O_NOFOLLOW (openat-style), so a directory replaced by a link to elsewhere is refused rather
than written through; files are created with O_EXCL|O_NOFOLLOW under that descriptor, and
renames and unlinks go through it too. Temporary files are short (`.mvc-tmp-<pid>-<8 hex>`),
so a file whose own name is at the 255-byte limit still gets one, and those of a process that
is gone are removed when a checkout next writes into their directory, or by `mvc gc`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar, overload

from modelvc.errors import LocalChangesError, SymlinkInWayError
from modelvc.fsutil import durable_step
from modelvc.ignore import PROTECTED_NAMES

TEMP_PREFIX = ".mvc-tmp-"
# Also the longer names of earlier versions (`.NAME.mvc-tmp-PID`), so their leftovers go too.
_TEMP_NAME = re.compile(r"\.mvc-tmp-(\d+)-[0-9a-f]{8}|\..+\.mvc-tmp-(\d+)", re.DOTALL)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
T = TypeVar("T")


def temp_name() -> str:
    return f"{TEMP_PREFIX}{os.getpid()}-{os.urandom(4).hex()}"


def create_temp(dir_fd: int, create: Callable[[str], T]) -> tuple[str, T]:
    """Run `create(name)` (which must fail on an existing name, never follow it) with fresh
    temporary names until one is free: whatever was planted at a name is left alone."""
    for _ in range(16):
        name = temp_name()
        try:
            return name, create(name)
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", temp_name())


def new_file(dir_fd: int, mode: int = 0o600) -> tuple[str, int]:
    """A new file under a temporary name in the directory, created exclusively, never via a link."""
    return create_temp(dir_fd, lambda name: os.open(name, NEW_FILE_FLAGS, mode, dir_fd=dir_fd))


def is_temp_name(name: str) -> bool:
    return name.startswith(".") and ".mvc-tmp-" in name and _TEMP_NAME.fullmatch(name) is not None


def _stale_temp(name: str) -> bool:
    match = _TEMP_NAME.fullmatch(name)
    if match is None:
        return False
    pid = int(match.group(1) or match.group(2))
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    except (OverflowError, ValueError):  # not a pid any process can have
        return True
    return False


def remove_stale_temps(dir_fd: int) -> list[str]:
    """Delete the temporary files of dead processes in one directory; returns their names."""
    removed = []
    with os.scandir(dir_fd) as entries:
        names = [e.name for e in entries if is_temp_name(e.name) and not e.is_dir(follow_symlinks=False)]
    for name in names:
        if _stale_temp(name):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name, dir_fd=dir_fd)
                removed.append(name)
    return removed


def in_the_way(root: Path, directory: str, path: str) -> LocalChangesError:
    """The error for a non-directory where `path` needs `directory` to be one."""
    try:
        is_link = stat.S_ISLNK(os.lstat(os.path.join(root, directory)).st_mode)
    except OSError:
        is_link = False
    if is_link:
        return SymlinkInWayError(
            f"a symbolic link is in the way: '{directory}' is a link where {path} needs a directory",
            [path], hint="mvc never writes or deletes through a link: move it away, then run the command again")
    return LocalChangesError(f"a file is in the way: '{directory}' is a file where {path} needs a directory",
                             [path], hint="move it away, then run the command again")


class TreeDirs:
    """Descriptors of working-tree directories, each opened from its parent without following links."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._fds: dict[str, int] = {"": os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)}
        self._swept: set[str] = set()

    def __enter__(self) -> TreeDirs:
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    @overload
    def open(self, directory: str, create: Literal[True], for_path: str = "") -> int: ...

    @overload
    def open(self, directory: str, create: bool, for_path: str = "") -> int | None: ...

    def open(self, directory: str, create: bool, for_path: str = "") -> int | None:
        """The descriptor of `directory` (a repo path, "" for the root); None when it is missing
        and not `create`d. A link or a file on the way raises, naming `for_path`."""
        fd = self._fds.get(directory)
        if fd is None:
            parent, _, name = directory.rpartition("/")
            parent_fd = self.open(parent, create, for_path)
            if parent_fd is None:
                return None
            fd = self._open_child(parent_fd, name, directory, create, for_path or directory)
            if fd is None:
                return None
            self._fds[directory] = fd
        if create and directory not in self._swept:
            self._swept.add(directory)
            remove_stale_temps(fd)
        return fd

    def _open_child(self, parent_fd: int, name: str, directory: str, create: bool, for_path: str) -> int | None:
        for attempt in range(2):
            try:
                return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
            except FileNotFoundError:
                if not create or attempt:
                    return None
                with contextlib.suppress(FileExistsError):
                    os.mkdir(name, 0o777, dir_fd=parent_fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise in_the_way(self.root, directory, for_path) from None
                raise
        return None

    def forget(self, directory: str) -> None:
        """Close `directory` and everything under it (after it was removed)."""
        for key in [k for k in self._fds if k == directory or k.startswith(directory + "/")]:
            os.close(self._fds.pop(key))
            self._swept.discard(key)

    def unlink(self, path: str) -> bool:
        """Delete the file or link at `path` (never what a link points to) and the directories
        it leaves empty; False when it was not there."""
        directory, _, name = path.rpartition("/")
        dir_fd = self.open(directory, False, path)
        if dir_fd is None:
            return False
        try:
            os.unlink(name, dir_fd=dir_fd)
        except FileNotFoundError:
            return False
        while directory:
            parent, _, leaf = directory.rpartition("/")
            try:
                os.rmdir(leaf, dir_fd=self._fds[parent])
            except OSError:
                break
            self.forget(directory)
            directory = parent
        return True


def sweep_tree(root: Path) -> list[str]:
    """Remove stale temporary files everywhere in the working tree (not following links)."""
    removed = []
    with TreeDirs(root) as dirs:
        pending = [""]
        while pending:
            directory = pending.pop()
            fd = dirs.open(directory, False)
            if fd is None:
                continue
            removed += [f"{directory}/{n}" if directory else n for n in remove_stale_temps(fd)]
            with os.scandir(fd) as entries:
                subdirs = [e.name for e in entries
                           if e.is_dir(follow_symlinks=False) and e.name not in PROTECTED_NAMES]
            pending += [f"{directory}/{n}" if directory else n for n in subdirs]
            if directory:
                dirs.forget(directory)
    return removed


def replace_in_dir(dir_fd: int, tmp: str, name: str, unlink_first: bool) -> None:
    """Rename a finished temporary file over `name` in the same directory.

    With `unlink_first` (a file left unsynced) what stands there is unlinked before: renaming
    over an existing file makes ext4 flush the new one first (its auto_da_alloc guard against
    empty files after a crash), the whole wait for the disk that skipping fsync avoids (2.5 s
    for 1 GiB here). A crash between the two calls leaves the path missing, which status
    reports and checkout restores."""
    if unlink_first:
        durable_step("unlink")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=dir_fd)
    durable_step("rename")
    os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
