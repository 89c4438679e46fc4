"""Header metadata as flat key -> value, and the keys whose values differ between versions.

What counts as metadata per format:
- safetensors: the `__metadata__` string map, under its own keys;
- GGUF: every key/value (large arrays as the reader's {type, len, blake3} summary);
- PyTorch and the rest: whatever the reader put in Layout.metadata (the pickle member's
  name, the unsafe globals the pickle imports).
"""

from __future__ import annotations

import json
from typing import Any

from modelvc.formats import Layout
from modelvc.modeldiff.results import MetaChange


def header_metadata(layout: Layout | None) -> dict[str, Any]:
    if layout is None:
        return {}
    if layout.format == "safetensors":
        return dict(layout.metadata.get("__metadata__", {}))
    return dict(layout.metadata)


def _canonical(value: Any) -> str:
    """Equal values give equal text, NaN included (NaN != NaN would report a false change)."""
    return json.dumps(value, sort_keys=True, default=repr)


def metadata_changes(old: dict[str, Any], new: dict[str, Any]) -> list[MetaChange]:
    """Changed, added (old None) and removed (new None) keys: new keys in the new header's
    order after the old header's keys in theirs."""
    changes = []
    for key, old_value in old.items():
        if key not in new:
            changes.append(MetaChange(key, old_value, None))
        elif _canonical(old_value) != _canonical(new[key]):
            changes.append(MetaChange(key, old_value, new[key]))
    changes += [MetaChange(key, None, value) for key, value in new.items() if key not in old]
    return changes
