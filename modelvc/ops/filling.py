"""Working files filled while their chunks are fetched: one decode and one hash per chunk.

A partial clone's checkout (and so `clone --partial`, and a full clone, which checks out first)
fetches the chunks of the files it writes before it writes them. Rather than store each chunk
and then read, decode and hash it again from the local pack, the fetch hands every chunk it has
just verified to `FilesBeingFilled.take`, on the worker thread that verified it, which writes it
at its offsets in the temporary files of the files being built: the writes overlap the
download. `write_entry` (materialize.py) then writes what is still missing (chunks the store
already had) and renames each file into place as always, after the fetch has sealed its pack.

Only big files are filled (small ones are batched by batchwrite.py), and only those whose
directory can be opened now (not one where a file stands that the move removes first). A fetch
that fails removes every temporary file and each directory made for them: the working tree is
left as it was.
"""

from __future__ import annotations

import contextlib
import os
import stat as statmod
import threading
from dataclasses import dataclass, field

from modelvc.errors import MvcError
from modelvc.objects import Manifest, TreeEntry
from modelvc.safefs import TreeDirs, new_file
from modelvc.store.filedata import pwrite_all


@dataclass
class FilledFile:
    """A file being built under a temporary name: its descriptor and the chunks already in it."""

    entry: TreeEntry
    dir_fd: int
    tmp: str
    fd: int
    done: set[int] = field(default_factory=set)  # indexes of the manifest's chunks written


class FilesBeingFilled:
    """Temporary files of the big files a move writes, filled as their chunks are fetched."""

    def __init__(self, dirs: TreeDirs) -> None:
        self.dirs = dirs
        self.files: dict[str, FilledFile] = {}
        self._targets: dict[bytes, list[tuple[FilledFile, int, int]]] = {}  # chunk id: (file, index, offset)
        self._made_dirs: list[str] = []
        self._lock = threading.Lock()

    def open(self, entry: TreeEntry, manifest: Manifest) -> None:
        """Start `entry`'s file, unless something in its way is write_entry's to report."""
        directory, _, name = entry.path.rpartition("/")
        try:
            missing = self._missing_on_the_way(directory)
            dir_fd = self.dirs.open(directory, True, entry.path)
        except MvcError:  # a file on the way (that the move removes first) or a link: not now
            return
        self._made_dirs.extend(missing)
        with contextlib.suppress(FileNotFoundError):
            if statmod.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
                return
        tmp, fd = new_file(dir_fd)
        filled = FilledFile(entry, dir_fd, tmp, fd)
        self.files[entry.path] = filled
        for index, ((chunk_hex, _), offset) in enumerate(zip(manifest.chunks, manifest.chunk_offsets(), strict=True)):
            self._targets.setdefault(bytes.fromhex(chunk_hex), []).append((filled, index, offset))

    def _missing_on_the_way(self, directory: str) -> list[str]:
        """The directories on the way to `directory` (itself included) that do not exist yet."""
        parts = directory.split("/") if directory else []
        prefixes = ["/".join(parts[:depth]) for depth in range(1, len(parts) + 1)]
        for number, prefix in enumerate(prefixes):
            if self.dirs.open(prefix, False) is None:
                return prefixes[number:]
        return []

    def take(self, chunk_id: bytes, raw: bytes | memoryview) -> None:
        """Write a fetched, verified chunk wherever the files being built hold it."""
        for filled, index, offset in self._targets.get(chunk_id, ()):
            pwrite_all(filled.fd, raw, offset)
            with self._lock:
                filled.done.add(index)

    def hand_over(self, path: str) -> FilledFile | None:
        """The file at `path`, now the caller's to complete, rename or remove."""
        return self.files.pop(path, None)

    def __enter__(self) -> FilesBeingFilled:
        return self

    def __exit__(self, *exc: object) -> None:
        """Remove what was not handed over, and the directories made for it that stay empty."""
        for filled in self.files.values():
            os.close(filled.fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(filled.tmp, dir_fd=filled.dir_fd)
        self.files.clear()
        self._targets.clear()
        if exc[0] is None:
            return
        for directory in sorted(set(self._made_dirs), key=lambda d: -d.count("/")):
            parent, _, name = directory.rpartition("/")
            parent_fd = self.dirs.open(parent, False)
            self.dirs.forget(directory)
            with contextlib.suppress(OSError):  # not empty: something else was put there
                if parent_fd is not None:
                    os.rmdir(name, dir_fd=parent_fd)
