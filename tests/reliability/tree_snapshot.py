"""A byte-for-byte picture of a directory (names, types, contents, link targets, mtimes), taken
without following links, to prove that nothing outside a working tree was touched."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, tuple]:
    picture: dict[str, tuple] = {}
    for directory, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if os.path.relpath(os.path.join(directory, d), root) not in skip]
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            if os.path.relpath(path, root) in skip:
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                content = os.readlink(os.fsencode(path))
            elif stat.S_ISREG(st.st_mode):
                content = Path(path).read_bytes()
            else:
                content = None
            picture[os.path.relpath(path, root)] = (stat.S_IFMT(st.st_mode), st.st_mode & 0o777, content,
                                                    st.st_mtime_ns)
    return picture


def make_outside(tmp_path: Path) -> Path:
    """A sentinel directory beside the working tree, with files an attack would overwrite."""
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "w.bin").write_bytes(b"outside: must survive\n")
    (outside / "secret.txt").write_bytes(b"secret outside the tree\n")
    (outside / "sub" / "x").write_bytes(b"x")
    os.utime(outside / "w.bin", ns=(1_000_000_000, 1_000_000_000))
    return outside
