"""The list of pack records known to be corrupt, so that the store can heal.

A chunk whose stored bytes no longer match its id (written by an older mvc from a file that
changed under it, or damaged on disk) would otherwise stay "known" forever: every later add
of the same content would skip it as already stored. When a verified read finds a record
bad, its (chunk id, pack) goes into `.mvc/bad-chunks`, one `<id hex> <pack>` line each. The
writer treats a chunk whose only record is listed as absent, so the next add of that content
stores a fresh copy; lookups prefer a record that is not listed; gc drops listed records that
have a good copy, and the lines of packs that are gone.

The list is only a hint: a line lost to two readers marking at once is written again at
the next failed read, and a store where it cannot be written (read-only) still reports
the corruption as before.
"""

from __future__ import annotations

from pathlib import Path

from modelvc.fsutil import atomic_write

BadRecords = frozenset[tuple[bytes, str]]  # (chunk id, pack name)


def load_bad_records(path: Path) -> BadRecords:
    """The listed records; an unreadable or damaged list counts as empty (it is only a hint)."""
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError):
        return frozenset()
    records = set()
    for line in text.splitlines():
        chunk_hex, _, pack = line.partition(" ")
        try:
            chunk_id = bytes.fromhex(chunk_hex)
        except ValueError:
            continue
        if len(chunk_id) == 32 and pack.startswith("pack-"):
            records.add((chunk_id, pack))
    return frozenset(records)


def save_bad_records(path: Path, records: BadRecords) -> None:
    """Write the list (atomically), or remove it when nothing is listed."""
    if not records:
        path.unlink(missing_ok=True)
        return
    lines = sorted(f"{chunk_id.hex()} {pack}\n" for chunk_id, pack in records)
    atomic_write(path, "".join(lines).encode("ascii"))
