"""Exact rename detection, as git's status and diff show renames: a path that went away and one
that appeared with the same content are one file moved (R old -> new)."""

from __future__ import annotations


def pair_renames(gone: dict[str, str], appeared: dict[str, str]) -> dict[str, str]:
    """{new path: old path} for each appeared path whose file id (the values) a gone path had.

    Among several candidates, one with the same file name wins, then the first in path order.
    """
    by_id: dict[str, list[str]] = {}
    for path in sorted(gone):
        by_id.setdefault(gone[path], []).append(path)
    pairs: dict[str, str] = {}
    for new in sorted(appeared):
        candidates = by_id.get(appeared[new])
        if not candidates:
            continue
        name = new.rsplit("/", 1)[-1]
        old = next((c for c in candidates if c.rsplit("/", 1)[-1] == name), candidates[0])
        candidates.remove(old)
        pairs[new] = old
    return pairs
