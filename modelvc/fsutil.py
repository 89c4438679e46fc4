"""Filesystem helpers: the one atomic-write path every persistent file goes through."""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

BOOT_ID_PATH = "/proc/sys/kernel/random/boot_id"

CRASH_ENV = "MVC_TEST_CRASH_AT"
STEP_KINDS = ("fsync", "rename", "dirsync", "append", "seal", "unlink")


class _CrashAtStep:
    """Test-only: SIGKILL this process just before its Nth durable step (of `kinds`, if given).

    MVC_TEST_CRASH_AT is "N" or "N:kind,kind". Tests walk N up from 1 so that a kill lands
    before every step of a command's write order, not only where a timer happens to fall.
    """

    def __init__(self, spec: str) -> None:
        count, _, kinds = spec.partition(":")
        self.target = int(count)
        self.kinds = frozenset(kinds.split(",")) if kinds else frozenset(STEP_KINDS)
        self._steps = itertools.count(1)  # next() is atomic: packs are sealed on a second thread

    def __call__(self, kind: str) -> None:
        if kind in self.kinds:
            if next(self._steps) == self.target:
                os.kill(os.getpid(), signal.SIGKILL)


_crash_at = _CrashAtStep(os.environ[CRASH_ENV]) if os.environ.get(CRASH_ENV) else None


def durable_step(kind: str) -> None:
    """Mark a step of the write order (one of STEP_KINDS); a no-op unless a test asks for a crash."""
    if _crash_at is not None:
        _crash_at(kind)


@functools.cache
def current_boot_id() -> str | None:
    """A random id the kernel picks at each boot (Linux), or None where there is none.

    Working files written without fsync can only lose their bytes if the machine goes down
    before the kernel writes them out, and then the boot id changes: it tells a later run
    whether such a file's cached stat can still be trusted.
    """
    try:
        with open(BOOT_ID_PATH, encoding="ascii") as handle:
            return handle.read().strip() or None
    except OSError:
        return None


@contextlib.contextmanager
def naming(path: str | os.PathLike, temporary: str | None = None) -> Iterator[None]:
    """Make an OSError raised in the block name `path` when the call that failed names no file
    (write, fsync) or only `path`'s temporary file: a full disk is then reported as the file
    it hit."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None or exc.filename == temporary:
            exc.filename = os.fspath(path)
        raise


def fsync_dir(directory: str | os.PathLike) -> None:
    """Make a rename or unlink in `directory` durable."""
    durable_step("dirsync")
    fd = os.open(directory, os.O_RDONLY)
    try:
        with naming(directory):
            os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike, mode: int | None = None,
                  exclusive: bool = False, durable: bool = True) -> Iterator[BinaryIO]:
    """Yield a file that replaces `path` only if the block completes.

    temp file in the same directory -> fsync -> rename -> fsync of the directory, so a
    crash leaves either the old content or the new one, never a torn file. `exclusive`
    links instead of renaming: FileExistsError if `path` exists, which is then left as it was
    (create-only, for writes that must not overwrite). `durable=False` skips both fsyncs,
    only for derived files that nothing depends on and whose readers take a torn or missing
    one as empty (a power loss may leave either): readers still see the old file or the new.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = _new_file_beside(path)
    try:
        with naming(path, tmp_name):
            with os.fdopen(fd, "wb") as handle:
                yield handle
                handle.flush()
                if durable:
                    durable_step("fsync")
                    os.fsync(handle.fileno())
            if mode is not None:
                os.chmod(tmp_name, mode)
            durable_step("rename")
            if exclusive:
                os.link(tmp_name, path)
                os.unlink(tmp_name)
            else:
                os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    if durable:
        fsync_dir(path.parent)


def _new_file_beside(path: Path) -> tuple[int, str]:
    """A new temp file in path's directory (what tempfile.mkstemp does; that module costs
    every command a few milliseconds of start-up). Created 0o666 under the umask, as git
    creates its files, so a group-shared repository (umask 002) stays writable by the group."""
    while True:
        name = str(path.parent / f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            with naming(path, name):
                return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), name
        except FileExistsError:
            continue


def atomic_write(path: str | os.PathLike, data: bytes, mode: int | None = None, durable: bool = True) -> None:
    with atomic_writer(path, mode, durable=durable) as handle:
        handle.write(data)


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line durably (reflogs). A torn last line after a crash is skipped by readers."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    durable_step("append")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            with naming(path):
                rest = memoryview(line.encode("utf-8") + b"\n")
                while rest:  # a nearly full disk takes part of it, then refuses the rest
                    rest = rest[os.write(fd, rest):]
                os.fsync(fd)
        except OSError:  # a full disk: take back a part-written line, or the next append joins it
            with contextlib.suppress(OSError):
                os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


def is_atomic_temp(name: str) -> bool:
    """Whether `name` is the kind atomic_writer gives its temporary files (`.NAME.<hex>.tmp`):
    a rename not yet made, or a killed writer's leftover; never data."""
    return name.startswith(".") and name.endswith(".tmp")
