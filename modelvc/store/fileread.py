"""Reading a working file so that what is read is one version of it, or an error saying not.

The file is opened once and read with pread into buffers of the reader's own (never a memory
map: a writer could change the bytes between two looks at them, and a truncation would kill
the process with SIGBUS). Its stat when opened is compared, after the last read, with the
stat of its path (size, mtime, ctime, inode, as git compares them); any difference, a short
read or a vanished file is a FileChangedError.
"""

from __future__ import annotations

import errno
import mmap
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from modelvc.errors import FileChangedError

# How long after a file's last change mvc waits before reading it: timestamps advance by the
# kernel's clock tick (up to 10 ms), so a write within the same tick as the one before would
# leave the stat as it was; once a tick has passed, any write moves ctime.
TIMESTAMP_TICK_NS = 20_000_000
_SETTLE_TRIES = 5


class DescriptorSource:
    """A ByteSource over an open file, read with pread: the layout comes from the very file the
    chunks are read from, and only the header bytes a format reader asks for are read."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        return os.pread(self.fd, max(0, min(length, self.size - offset)), offset)


@contextmanager
def stable_file(path: str | Path, shown: str, follow_links: bool = False) -> Iterator[tuple[int, os.stat_result]]:
    """The file opened for reading, and the stat its reading is checked against.

    A link is followed only when asked (`add --dereference`): a file swapped for a link since
    the caller looked at it is refused, never read through.

    A file changed within the last timestamp tick is given that tick before it is read; one
    still changing after a few ticks is refused.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW))
    except (FileNotFoundError, NotADirectoryError):  # deleted since the caller saw it
        raise FileChangedError(shown) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a link since the caller saw it
            raise FileChangedError(shown) from None
        raise
    try:
        before = os.fstat(fd)
        tries = 0
        while 0 < (wait := before.st_ctime_ns + TIMESTAMP_TICK_NS - time.time_ns()) <= TIMESTAMP_TICK_NS:
            if tries == _SETTLE_TRIES:  # written to again at every look: it is being written now
                raise FileChangedError(shown)
            time.sleep(wait / 1e9)
            before = os.fstat(fd)
            tries += 1
        yield fd, before
    finally:
        os.close(fd)


def read_exact(fd: int, offset: int, length: int, shown: str) -> bytes:
    """`length` bytes at `offset`, in a new buffer; fewer means the file shrank while read."""
    data = os.pread(fd, length, offset)
    while 0 < len(data) < length:  # pread may stop short of the end: ask for the rest
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            break
        data += more
    if len(data) != length:
        raise FileChangedError(shown)
    return data


def read_whole(fd: int, size: int, shown: str) -> bytes:
    """The whole file, which its stat says is `size` bytes, in one buffer of its own.

    One byte more than `size` is asked for: getting it means the file grew while read, and
    fewer than `size` that it shrank; either is a FileChangedError.
    """
    data = os.pread(fd, size + 1, 0)
    while 0 < len(data) <= size:  # pread may stop short of the end: ask for the rest
        more = os.pread(fd, size + 1 - len(data), len(data))
        if not more:
            break
        data += more
    if len(data) != size:
        raise FileChangedError(shown)
    return data


def read_ahead(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to read a range ahead (a no-op when it is in the page cache)."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_WILLNEED)


_cachestat: Callable[[int, int, int], int | None] | None | bool = False
_CACHESTAT_SYSCALL = 451  # the same number on every Linux architecture (6.5 and later)


def cached_pages(fd: int, offset: int, length: int) -> int | None:
    """How many of the pages holding a range of a file are in the page cache, or None where
    the kernel cannot tell (cachestat(2) is Linux 6.5 and later)."""
    global _cachestat
    if _cachestat is False:
        _cachestat = _load_cachestat()
    return _cachestat(fd, offset, length) if callable(_cachestat) else None


def pages_spanned(offset: int, length: int) -> int:
    page = mmap.PAGESIZE
    return (offset + length + page - 1) // page - offset // page if length > 0 else 0


def _load_cachestat() -> Callable[[int, int, int], int | None] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        syscall = ctypes.CDLL(None, use_errno=True).syscall
    except (OSError, AttributeError):
        return None
    syscall.restype = ctypes.c_long
    span = ctypes.c_uint64 * 2  # struct cachestat_range: off, len
    counts = ctypes.c_uint64 * 5  # struct cachestat: nr_cache, nr_dirty, nr_writeback, nr_evicted, ...

    def cachestat(fd: int, offset: int, length: int) -> int | None:
        answer = counts()
        # syscall(2) takes longs: each argument is passed as one, whatever the kernel reads of it
        if syscall(ctypes.c_long(_CACHESTAT_SYSCALL), ctypes.c_long(fd), ctypes.byref(span(offset, length)),
                   ctypes.byref(answer), ctypes.c_long(0)) != 0:
            return None
        return int(answer[0])

    probe = os.open(os.devnull, os.O_RDONLY)
    try:
        works = cachestat(probe, 0, 1) is not None  # ENOSYS before Linux 6.5, or where a sandbox forbids it
    finally:
        os.close(probe)
    return cachestat if works else None


def check_unchanged(path: str | Path, before: os.stat_result, shown: str, follow_links: bool = False) -> None:
    """Raise FileChangedError unless the path still names the file as it was when opened."""
    try:
        after = os.stat(path) if follow_links else os.lstat(path)
    except OSError:
        raise FileChangedError(shown) from None
    if _stat_key(after) != _stat_key(before):
        raise FileChangedError(shown)


def _stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino
