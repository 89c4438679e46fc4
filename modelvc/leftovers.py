"""Leftovers of killed writers under .mvc: the temporary files of atomic writes.

fsutil.atomic_writer writes `.NAME.<hex>.tmp` beside its target and renames it into place;
a writer killed before the rename leaves it behind. Readers never take such a name for data
(objects, refs, reflogs and pack indexes all pass over names that start with a dot).

Every write under .mvc is made by a holder of the writer lock (init aside, before anyone
can see the repository), and the kernel drops a dead process's lock: so whoever holds the
lock knows that the writer of any such file is gone, whatever the file's age. Writer
commands remove them everywhere but objects/ when they take the lock; gc also from
objects/, whose hundreds of directories are too many to list on every command.
"""

from __future__ import annotations

import os
from pathlib import Path

from modelvc.fsutil import is_atomic_temp


def remove_leftovers(mvc_dir: Path, include_objects: bool = False) -> int:
    """Delete the temporary files of dead writers; the caller holds the writer lock.

    Returns how many were removed.
    """
    removed = 0
    top = os.fspath(mvc_dir)
    for directory, subdirs, files in os.walk(top):
        if directory == top and not include_objects and "objects" in subdirs:
            subdirs.remove("objects")
        for name in files:
            if is_atomic_temp(name):
                try:
                    os.unlink(os.path.join(directory, name))
                except FileNotFoundError:
                    continue
                removed += 1
    return removed
