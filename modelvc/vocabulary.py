"""The one JSON vocabulary every `--json` shape is built from (docs/cli.md, "JSON vocabulary").

Each result object's `to_dict()` is what `--json` prints; the shapes several results share
(a signature, a path change, a mode) are made here only, so they cannot drift apart.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from modelvc.ids import ObjectId

# What happened to a path (or a tensor, or a header key) between two versions. One word each:
# never "removed", "deleted_files", "changed" or "new".
ADDED, MODIFIED, DELETED, RENAMED = "added", "modified", "deleted", "renamed"
PATH_STATUSES = (ADDED, MODIFIED, DELETED, RENAMED, "mode")  # "mode": only the file mode differs

_IDENTITY = re.compile(r"^(.*?) <([^<>]*)>$")


def iso_time(timestamp: int, tz_minutes: int) -> str:
    """ISO 8601 in the signer's own offset, to the second: '2026-11-30T12:08:04+01:00'."""
    return datetime.fromtimestamp(timestamp, timezone(timedelta(minutes=tz_minutes))).isoformat()


def tz_minutes_of(text: str) -> int:
    """Minutes east of UTC from '+hhmm' / '-hhmm'."""
    minutes = int(text[1:3]) * 60 + int(text[3:5])
    return -minutes if text.startswith("-") else minutes


def signature_dict(name: str, email: str, timestamp: int, tz_minutes: int) -> dict[str, Any]:
    """Every author and committer, everywhere: {"name", "email", "time"} (time as iso_time)."""
    return {"name": name, "email": email, "time": iso_time(timestamp, tz_minutes)}


def identity_signature(identity: str, timestamp: int, tz: str) -> dict[str, Any]:
    """signature_dict of a reflog's 'name <email>' and '+hhmm'."""
    found = _IDENTITY.match(identity)
    name, email = (found.group(1), found.group(2)) if found else (identity, "")
    return signature_dict(name, email, timestamp, tz_minutes_of(tz))


def path_change(status: str, path: str, old_path: str | None = None) -> dict[str, Any]:
    """One path's change: {"status", "path", "old_path"}; old_path is set for "renamed" only."""
    return {"status": status, "path": path, "old_path": old_path}


def mode_text(mode: int | None) -> str | None:
    """File modes as git writes them: octal text, '100644'."""
    return None if mode is None else f"{mode:o}"


def commit_dict(commit_id: ObjectId, commit: Any, names: list[str] | None = None) -> dict[str, Any]:
    """A commit as log, show and commit print it (a modelvc.objects.Commit and its id)."""
    author = commit.author
    return {"id": commit_id, "tree": commit.tree, "parents": list(commit.parents),
            "author": signature_dict(author.name, author.email, author.time, author.tz_minutes),
            "subject": commit.subject, "message": commit.message, "metrics": dict(commit.metrics),
            "params": dict(commit.params), "meta": dict(commit.meta),
            "git": commit.git.to_dict() if commit.git else None, "names": list(names or [])}
