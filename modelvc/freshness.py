"""Whether a file or directory that other processes rewrite has changed since it was read.

A long-lived Repo keeps what it read (the config, the index, the pack list) and checks by
one stat before using it again. The stamp is taken before reading, so any later change
shows as a different stamp, except one made within the filesystem's timestamp granularity
of the stamped time, which stat cannot see. A stamp taken that close to its file's last
change is "racy" (as git calls such index entries) and never trusted: the caller looks
closer (reads again, or lists the directory), until a stamp taken later is trustworthy.

Files replaced by rename (the config, the index) get a new inode with every write, whatever
the clock says; the racy rule is for what changes in place, as a directory does when a pack
is added to it or removed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import NamedTuple

# A timestamp with a fraction of a second comes from a filesystem with fine timestamps (ext4,
# xfs, btrfs, tmpfs: a kernel tick of a few milliseconds, taken from a clock that lags
# time.time_ns() by at most a tick); one in whole seconds may come from a coarse one (FAT
# counts in 2 s). A stamp is racy while its mtime is closer to the present than this.
RACY_NS = 100_000_000
COARSE_RACY_NS = 2_000_000_000

Key = tuple[int, int, int, int]  # inode, size, mtime, ctime


class Stamp(NamedTuple):
    """What stat said of a path (None: it did not exist), and whether that can be trusted."""

    key: Key | None
    racy: bool


def stamp(path: Path) -> Stamp:
    """Stat `path` now; take this before reading what it holds."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return Stamp(None, False)
    window = COARSE_RACY_NS if st.st_mtime_ns % 1_000_000_000 == 0 else RACY_NS
    return Stamp((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns), time.time_ns() - st.st_mtime_ns < window)


def unchanged_since(before: Stamp | None, path: Path) -> bool:
    """True only when `path` has surely not changed since `before` was taken."""
    if before is None or before.racy:
        return False
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return before.key is None
    return before.key == (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
