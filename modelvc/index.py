"""The index: what the next commit will contain, plus a stat cache of the working files.

A file whose size, mtime_ns, inode and executable bit match its entry is taken as unchanged
without reading it. As in git, an entry whose mtime is not older than the index file's own
mtime is "racy": the file could have changed again within the same timestamp tick, unseen by
stat, so it is re-hashed. Both times come from the same filesystem clock, at its granularity.

Files that checkout writes are not fsynced (as git does not): their entries carry the boot id
they were written in, and are not trusted after a reboot, when a crash may have lost bytes
that never reached the disk. Such a file is re-hashed once; what is read then is on disk.
"""

from __future__ import annotations

import json
import os
import stat as statmod
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from modelvc.errors import CorruptIndexError
from modelvc.fsutil import atomic_write, current_boot_id
from modelvc.ids import ObjectId, is_full_id
from modelvc.objects import MODE_EXEC, MODE_FILE, MODE_LINK
from modelvc.safepath import check_paths

INDEX_VERSION = 1
REBUILD_HINT = ("rebuild it from the last commit with 'mvc checkout --force HEAD' "
                "(staged changes are lost; working files are set back to that commit)")


@dataclass(frozen=True)
class IndexEntry:
    path: str
    manifest_id: ObjectId  # stored as "file" in the index file, as it always was
    size: int
    mode: int
    mtime_ns: int = 0
    ino: int = 0
    unsynced_boot: str = ""  # the boot in which mvc wrote this file without waiting for the disk
    dereference: bool = False  # added with --dereference: a link here stands for its target's bytes

    def matches_stat(self, st: os.stat_result, index_mtime_ns: int) -> bool:
        return (st.st_size == self.size and st.st_mtime_ns == self.mtime_ns and st.st_ino == self.ino
                and mode_of(st) == self.mode and self.mtime_ns < index_mtime_ns
                and (not self.unsynced_boot or self.unsynced_boot == current_boot_id()))

    def as_json(self) -> dict:
        data = {("file" if key == "manifest_id" else key): value for key, value in asdict(self).items()}
        if not self.unsynced_boot:
            del data["unsynced_boot"]
        if not self.dereference:
            del data["dereference"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> IndexEntry:
        if not isinstance(data, dict) or "manifest_id" in data:
            raise TypeError("an entry is not an object of the index's fields")
        return cls(**{("manifest_id" if key == "file" else key): value for key, value in data.items()})


def stat_entry(path: str, manifest_id: ObjectId, size: int, mode: int, st: os.stat_result,
               previous: IndexEntry | None = None, written_unsynced: bool = False,
               dereference: bool = False) -> IndexEntry:
    """An entry caching `st`, still marked unsynced while its bytes may be in the page cache only.

    That is when mvc has just written it without fsync, or when `previous` was so marked in
    this same boot and the file is still the same inode (not replaced since).
    """
    boot = current_boot_id() or ""
    carried = previous is not None and previous.unsynced_boot == boot and previous.ino == st.st_ino
    unsynced = boot if written_unsynced or carried else ""
    return IndexEntry(path, manifest_id, size, mode, st.st_mtime_ns, st.st_ino, unsynced, dereference)


def mode_of(st: os.stat_result) -> int:
    if statmod.S_ISLNK(st.st_mode):
        return MODE_LINK
    return MODE_EXEC if st.st_mode & statmod.S_IXUSR else MODE_FILE


class Index:
    def __init__(self, path: Path, load: bool = True) -> None:
        self.path = path
        self.entries: dict[str, IndexEntry] = {}
        self.mtime_ns = 0  # of the index file: entries modified at or after it are racy
        if load and path.exists():
            self._load()

    def _load(self) -> None:
        with open(self.path, "rb") as handle:
            raw = handle.read()
            self.mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
        try:
            data = json.loads(raw)
            entries = [IndexEntry.from_json(e) for e in data["entries"]]
            for entry in entries:
                if not is_full_id(entry.manifest_id) or not isinstance(entry.size, int) or entry.size < 0:
                    raise ValueError(f"entry {entry.path!r} has no valid content id and size")
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptIndexError(f"the index file {self.path} is corrupt ({exc})",
                                    hint=REBUILD_HINT) from exc
        check_paths((e.path for e in entries), f"the index file {self.path}",
                    hint=f"delete {self.path}, then 'mvc checkout --force HEAD' rebuilds it")
        self.entries = {e.path: e for e in entries}

    def save(self) -> None:
        data = {"version": INDEX_VERSION, "written_ns": time.time_ns(),
                "entries": [self.entries[p].as_json() for p in sorted(self.entries)]}
        atomic_write(self.path, json.dumps(data, separators=(",", ":")).encode())
        self.mtime_ns = os.stat(self.path).st_mtime_ns

    def is_unchanged(self, entry: IndexEntry, st: os.stat_result) -> bool:
        return entry.matches_stat(st, self.mtime_ns)
