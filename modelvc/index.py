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
import operator
import os
import stat as statmod
from bisect import bisect_left
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from modelvc.errors import CorruptIndexError
from modelvc.fsutil import atomic_write, current_boot_id
from modelvc.ids import ObjectId, hash_bytes_raw, is_full_id
from modelvc.indexfile import MAGIC, decode_index, encode_columns, encode_index, trailer
from modelvc.objects import MODE_EXEC, MODE_FILE, MODE_LINK
from modelvc.safepath import check_paths, paths_look_safe
from modelvc.worktree import KINDS_BY_MODE

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
    """The entries by path. A loaded index keeps its file's columns and builds entry objects
    only when `entries` is first used: status and `add` with nothing changed compare stats
    from the columns and never need them."""

    def __init__(self, path: Path, load: bool = True) -> None:
        self.path = path
        self._entries: dict[str, IndexEntry] | None = {}
        self._columns: tuple[Any, ...] | None = None
        self.mtime_ns = 0  # of the index file: entries modified at or after it are racy
        # The id of the tree the entries make, when the last writer knew it (git's cache-tree):
        # status compares it with HEAD's instead of reading HEAD's tree. Only a save that
        # passes it on keeps it; any other save drops it.
        self.tree_id: ObjectId | None = None
        # The commit whose tree tree_id is, when the writer knew it: status then takes HEAD's
        # tree id from here instead of reading HEAD's commit (a commit's tree never changes).
        self.commit_id: ObjectId | None = None
        # In memory only: the tree the entries made when read or last saved with a tree id, and
        # what `add` changed since (path -> (manifest id, size, mode) in that tree, None if
        # absent), so that `commit -a` counts its changes without reading HEAD's tree.
        self.base_tree: ObjectId | None = None
        self.changed_since_base: dict[str, tuple[str, int, int] | None] = {}
        self.digest = b""  # of the file as read or written: tells whether another process rewrote it
        # Staged by an add that left the save to a commit in the same transaction (one write
        # of the index per commit): Repo.fresh_index keeps it, the next save clears it.
        self.unsaved = False
        self._trusted: dict[str, tuple[int, int, int, int]] | None = None  # trusted_stats, until a change
        if load and path.exists():
            self._load()

    @property
    def entries(self) -> dict[str, IndexEntry]:
        self._trusted = None  # whoever takes the dict may change it
        if self._entries is None:
            assert self._columns is not None
            self._entries = dict(zip(self._columns[0], map(IndexEntry, *self._columns), strict=True))
            self._columns = None
        return self._entries

    @entries.setter
    def entries(self, entries: dict[str, IndexEntry]) -> None:
        self._entries, self._columns, self._trusted = entries, None, None

    def paths(self) -> list[str]:
        """Every tracked path, in path order when the index was just read."""
        return list(self._entries) if self._entries is not None else self._columns[0]  # type: ignore[index]

    def entry(self, path: str) -> IndexEntry | None:
        """One entry, without building all of them."""
        if self._entries is not None:
            return self._entries.get(path)
        position = self._position(path)
        if position is None or self._columns is None:
            return None
        return IndexEntry(*(column[position] for column in self._columns))

    def restat(self, entry: IndexEntry) -> None:
        """Replace an entry by one differing only in its stat fields (mtime, inode, unsynced
        boot): in the columns when no entry object was built, so the save does not build them."""
        self._trusted = None
        position = self._position(entry.path)
        if position is None:
            self.entries[entry.path] = entry
            return
        _, _, sizes, modes, mtimes, inos, unsynced, dereference = self._columns  # type: ignore[misc]
        sizes[position], modes[position], mtimes[position] = entry.size, entry.mode, entry.mtime_ns
        inos[position], unsynced[position], dereference[position] = entry.ino, entry.unsynced_boot, entry.dereference

    def put(self, entry: IndexEntry) -> None:
        """Add or replace an entry: a replaced one in the columns when no entry object was
        built, so that staging a few files of tens of thousands builds no others."""
        position = self._position(entry.path)
        if position is None:
            self.entries[entry.path] = entry
            return
        self._columns[1][position] = entry.manifest_id  # type: ignore[index]
        self.restat(entry)

    def tree_of(self, commit_id: ObjectId | None) -> ObjectId | None:
        """The tree id of `commit_id` when this index recorded it with its own tree id (then
        the caller need not read the commit), else None."""
        return self.tree_id if commit_id is not None and commit_id == self.commit_id else None

    def tree_columns(self) -> tuple[Sequence[str], Sequence[str], Sequence[int], Sequence[int]]:
        """(paths, manifest ids, sizes, modes) of every entry in path order: what a commit of
        the index records, without building an entry object when the columns are loaded."""
        if self._columns is not None:
            paths, ids, sizes, modes = self._columns[:4]
            return paths, ids, sizes, modes
        entries = self.entries
        ordered = [entries[path] for path in sorted(entries)]
        return ([e.path for e in ordered], [e.manifest_id for e in ordered], [e.size for e in ordered],
                [e.mode for e in ordered])

    def is_current(self) -> bool:
        """Whether the file holds what this object read or wrote (for a writer that read the
        index before taking the lock and would otherwise read it again)."""
        try:
            return bool(self.digest) and _digest(self.path.read_bytes()) == self.digest
        except FileNotFoundError:
            return False

    def _load(self) -> None:
        with open(self.path, "rb") as handle:
            raw = handle.read()
            self.mtime_ns = os.fstat(handle.fileno()).st_mtime_ns
        self.digest = _digest(raw)
        try:
            if raw.startswith(MAGIC):
                columns, self.tree_id, self.commit_id = decode_index(raw)
                self.base_tree = self.tree_id
                paths = columns[0]
            else:
                entries = _decode_json(raw)
                paths = [e.path for e in entries]
        except (ValueError, KeyError, TypeError) as exc:
            raise CorruptIndexError(f"the index file {self.path} is corrupt ({exc})",
                                    hint=REBUILD_HINT) from exc
        if not paths_look_safe(paths):
            check_paths(paths, f"the index file {self.path}",
                        hint=f"delete {self.path}, then 'mvc checkout --force HEAD' rebuilds it")
        if raw.startswith(MAGIC) and all(map(operator.lt, paths, islice(paths, 1, None))):
            self._entries, self._columns = None, columns  # in path order, as mvc writes them: bisected
        elif raw.startswith(MAGIC):  # written out of order by something else: read it all the same
            self._entries, self._columns = None, columns
            self._entries = self.entries
        else:
            self._entries = dict(zip(paths, entries, strict=True))

    def note_change(self, path: str) -> None:
        """Record `path`'s entry as it was in the base tree, before a change `save(keep_base=True)`
        will keep track of."""
        if self.base_tree is not None and path not in self.changed_since_base:
            before = self.entry(path)
            self.changed_since_base[path] = None if before is None else (before.manifest_id, before.size, before.mode)

    def changed_from_base(self) -> set[str]:
        """The paths whose (manifest id, size, mode) differ from base_tree's (see note_change)."""
        changed = set()
        for path, before in self.changed_since_base.items():
            now = self.entry(path)
            if before != (None if now is None else (now.manifest_id, now.size, now.mode)):
                changed.add(path)
        return changed

    def save(self, tree_id: ObjectId | None = None, keep_base: bool = False,
             commit_id: ObjectId | None = None) -> None:
        """Write every entry; `tree_id` only by a caller that knows the entries make that tree,
        `commit_id` only with the tree id of that commit. `keep_base` only by one that called
        note_change before each change it made."""
        self.tree_id, self._trusted = tree_id, None  # the racy limit moves with the file's mtime
        self.unsaved = False
        self.commit_id = commit_id if tree_id is not None else None
        if tree_id is not None or not keep_base:
            self.base_tree, self.changed_since_base = tree_id, {}
        if self._columns is not None:  # no entry object was built: the columns are the entries
            data = encode_columns(self._columns, tree_id, self.commit_id)
        else:
            data = encode_index(self.entries, tree_id, self.commit_id)
        atomic_write(self.path, data)
        self.digest = _digest(data)
        self.mtime_ns = os.stat(self.path).st_mtime_ns

    def save_staged(self) -> None:
        """Save what `add` staged (having called note_change before each change). When only stat
        fields changed (files touched, found the same when read), the entries still make the
        tree the index recorded: it is kept, so status and commit need not read it."""
        if self.tree_id is not None and self.base_tree == self.tree_id and not self.changed_from_base():
            self.save(self.tree_id, commit_id=self.commit_id)
        else:
            self.save(keep_base=True)

    def is_unchanged(self, entry: IndexEntry, st: os.stat_result) -> bool:
        return entry.matches_stat(st, self.mtime_ns)

    def trusted_stats(self) -> dict[str, tuple[int, int, int, int]]:
        """worktree.stat_key of every entry whose stat may vouch for its content, by path: what
        a working file's lstat is compared with, in bulk. Racy entries, entries unsynced in
        another boot and --dereference entries (whose stat is their target's) are left out:
        their files are read."""
        boot = current_boot_id() or ""
        racy_from = self.mtime_ns
        kinds = KINDS_BY_MODE
        if self._entries is not None:
            return {path: (e.size, e.mtime_ns, e.ino, kinds[e.mode]) for path, e in self._entries.items()
                    if e.mtime_ns < racy_from and not e.dereference
                    and (not e.unsynced_boot or e.unsynced_boot == boot)}
        if self._trusted is not None:  # add_tracked and the _stage it calls both ask
            return self._trusted
        paths, _, sizes, modes, mtimes, inos, unsynced, dereference = self._columns  # type: ignore[misc]
        if max(mtimes, default=0) < racy_from and not any(dereference) and {boot, ""}.issuperset(unsynced):
            self._trusted = dict(zip(paths, zip(sizes, mtimes, inos, map(kinds.__getitem__, modes), strict=True),
                                     strict=True))  # all, in C
            return self._trusted
        self._trusted = {path: (size, mtime, ino, kinds[mode])
                         for path, size, mtime, ino, mode, unsynced_boot, linked
                         in zip(paths, sizes, mtimes, inos, modes, unsynced, dereference, strict=True)
                         if mtime < racy_from and not linked and (not unsynced_boot or unsynced_boot == boot)}
        return self._trusted

    def tracked(self) -> Collection[str]:
        """Every tracked path, for `in` and len (without building a set of tens of thousands)."""
        return self._entries.keys() if self._entries is not None else _SortedPaths(self._columns[0])  # type: ignore[index]

    def _position(self, path: str) -> int | None:
        """Where `path` is in the columns (None: not there, or no columns): found by bisection in
        the paths, which are in order, rather than through a dict of 50,000 positions built at
        every load (6 ms and 1,000 page faults)."""
        if self._columns is None:
            return None
        paths = self._columns[0]
        position = bisect_left(paths, path)
        return position if position < len(paths) and paths[position] == path else None


class _SortedPaths(Collection[str]):
    """The index's paths in order, for `in` (by bisection), len and iteration."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._paths = paths

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str):
            return False
        position = bisect_left(self._paths, path)
        return position < len(self._paths) and self._paths[position] == path

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)


def _digest(raw: bytes) -> bytes:
    """What tells one index file from another: a version 2 file's trailer (the blake3 of the
    rest, checked when it is read), else the blake3 of the file."""
    return trailer(raw) if raw.startswith(MAGIC) else hash_bytes_raw(raw)


def _decode_json(raw: bytes) -> list[IndexEntry]:
    """The index as mvc wrote it before version 2 (one JSON object per entry)."""
    data = json.loads(raw)
    entries = [IndexEntry.from_json(e) for e in data["entries"]]
    for entry in entries:
        if not is_full_id(entry.manifest_id) or not isinstance(entry.size, int) or entry.size < 0:
            raise ValueError(f"entry {entry.path!r} has no valid content id and size")
    return entries
