"""The layout index: which stored file version last had a given tensor layout.

A checkpoint saved under a new name each time (`ckpt/step_2000.safetensors`,
`checkpoint-1000/model.safetensors`) has no previous version at its own path, yet its tensors
are the previous checkpoint's, nudged. To delta-code it, add needs the most recent version
with the same layout, found without reading every manifest: `.mvc/layouts` maps a layout's
fingerprint to the file version (manifest id and path) add last staged with it.

The file is derived data, only ever a hint: add rewrites it (atomically) when it stages a
big model file, and a missing, damaged or stale entry only costs compression. An entry is
checked before use: its manifest must still read and its layout still have the fingerprint.
"""

from __future__ import annotations

import json
from pathlib import Path

from modelvc.formats import Layout
from modelvc.fsutil import atomic_write
from modelvc.ids import hash_bytes_raw

LAYOUTS_FILE = "layouts"
_VERSION = 1


def fingerprint(layout: Layout) -> str:
    """What a delta base must share with a new version: the format and, for every tensor, its
    name, dtype and row shape (the shape without its first dimension, so appended rows still
    line up, as store/delta.py plan_bases requires)."""
    tensors = sorted((s.name, s.dtype or "", list(s.shape[1:]) if s.shape else [])
                     for s in layout.segments if s.kind == "tensor")
    text = json.dumps([layout.format, tensors], separators=(",", ":"), ensure_ascii=False)
    return hash_bytes_raw(text.encode("utf-8", "surrogatepass")).hex()


class LayoutIndex:
    """fingerprint -> (manifest id, path) of the most recent version staged with that layout."""

    def __init__(self, mvc_dir: Path) -> None:
        self.path = mvc_dir / LAYOUTS_FILE
        self.entries: dict[str, tuple[str, str]] = _read(self.path)
        self._changed = False

    def latest(self, key: str) -> tuple[str, str] | None:
        return self.entries.get(key)

    def note(self, key: str, manifest_id: str, path: str) -> None:
        if self.entries.get(key) != (manifest_id, path):
            self.entries[key] = (manifest_id, path)
            self._changed = True

    def save(self) -> None:
        """Write the file if anything changed; failing to write it only costs compression,
        and so does losing it to a crash: it is written without fsyncs (two per add saved)."""
        if not self._changed:
            return
        data = {"version": _VERSION, "layouts": {key: list(entry) for key, entry in sorted(self.entries.items())}}
        try:
            atomic_write(self.path, (json.dumps(data, separators=(",", ":")) + "\n").encode(), durable=False)
        except OSError:
            return
        self._changed = False


def _read(path: Path) -> dict[str, tuple[str, str]]:
    """The entries of the file; none when it is missing, unreadable or not what we write."""
    try:
        data = json.loads(path.read_bytes())
        layouts = data["layouts"] if data.get("version") == _VERSION else {}
        return {key: (entry[0], entry[1]) for key, entry in layouts.items()
                if isinstance(key, str) and isinstance(entry, list) and len(entry) == 2
                and all(isinstance(part, str) for part in entry)}
    except (OSError, ValueError, TypeError, AttributeError, KeyError):
        return {}
