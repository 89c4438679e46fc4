"""The one writer lock of a repository.

An flock on a lock file: the kernel drops it when the holding process exits or dies, so a
crash never leaves a stale lock behind and there is no lock file to clean up by hand.
Waiters retry with a growing sleep (never spinning) until their timeout, then say which
process holds the lock.

The holder's pid is written into the lock file in place, not by atomic rename: the lock
lives on the file's inode, and replacing the file would hand the next process a different,
unlocked inode.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from .errors import LockTimeoutError
from .fsutil import naming

_FIRST_SLEEP = 0.005
_MAX_SLEEP = 0.1


class RepoLock:
    """Context manager holding the repository's writer lock for the duration of a block."""

    def __init__(self, path: Path, timeout: float) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this RepoLock")
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            self._wait_for_lock(fd)
            _write_pid(fd, self.path)
        except BaseException:
            os.close(fd)  # closing also drops the flock if we had it
            raise
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # while still locked, so no waiter reads our stale pid
        finally:
            os.close(fd)

    def __enter__(self) -> RepoLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()

    def _wait_for_lock(self, fd: int) -> None:
        deadline = time.monotonic() + max(self.timeout, 0.0)
        sleep = _FIRST_SLEEP
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._timeout_error(_holder_pid(fd))
            time.sleep(min(sleep, remaining))
            sleep = min(sleep * 2, _MAX_SLEEP)

    def _timeout_error(self, holder: int | None) -> LockTimeoutError:
        who = f"another mvc process (pid {holder})" if holder else "another mvc process"
        return lock_timeout_error(self.timeout, who)


def lock_timeout_error(timeout: float, who: str) -> LockTimeoutError:
    """The error of a writer that waited `timeout` seconds while `who` held the lock."""
    return LockTimeoutError(
        f"timed out after {timeout:g}s waiting for the repository lock: {who} is writing",
        hint="wait for it to finish, or raise MVC_LOCK_TIMEOUT (seconds)",
    )


def _write_pid(fd: int, path: Path) -> None:
    """Record the holder for waiters' messages. On a full disk the lock is held without it:
    the pid is only informative, and gc, which frees space, must still be able to run."""
    try:
        with naming(path):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise


def _holder_pid(fd: int) -> int | None:
    """The pid the current holder wrote, if it has written it yet."""
    text = os.pread(fd, 32, 0).decode("ascii", errors="replace").strip()
    return int(text) if text.isdigit() else None
