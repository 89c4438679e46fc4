"""What a push, fetch, pull or clone did: the refs it moved and what went over the wire."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelvc.ids import short
from modelvc.transfer.counting import Traffic
from modelvc.transfer.refsel import short_name

_KINDS = (("refs/tags/", "tag"), ("refs/notes/", "notes"), ("refs/stages/", "stage"))


@dataclass
class RefUpdate:
    """One ref's fate, as git prints it: status is "new", "fast-forward", "forced", "up to date",
    "joined" (a local note chain or stage that fetch joined with the remote's: chainjoin.py)
    or "rejected" (with `reason`: "non-fast-forward", "fetch first", "already exists")."""

    source: str
    destination: str
    old: str | None
    new: str
    status: str
    reason: str | None = None

    @property
    def moved(self) -> bool:
        return self.status in ("new", "fast-forward", "forced", "joined")

    def line(self) -> str:
        names = f"{short_name(self.source)} -> {short_name(self.destination)}"
        if self.status == "new":
            kind = next((kind for prefix, kind in _KINDS if self.source.startswith(prefix)), "branch")
            return f" * {f'[new {kind}]':<18}{names}"  # git pads the summary to one column
        if self.status == "rejected":
            return f" ! [rejected]        {names} ({self.reason})"
        if self.status == "up to date":
            return f" = [up to date]      {names}"
        if self.status == "joined":
            return f" + {short(self.old or '')}...{short(self.new)} {names} (joined)"
        separator = "..." if self.status == "forced" else ".."
        flag = "+" if self.status == "forced" else " "
        return f" {flag} {short(self.old or '')}{separator}{short(self.new)} {names}" + \
            (" (forced update)" if self.status == "forced" else "")

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "destination": self.destination, "old_commit": self.old,
                "new_commit": self.new, "update": self.status, "reason": self.reason}


@dataclass
class TransferResult:
    """The summary of push, fetch, pull and clone (`to_dict()` is their --json)."""

    operation: str
    remote: str
    url: str
    refs: list[RefUpdate] = field(default_factory=list)
    objects: int = 0
    chunks: int = 0
    packs: int = 0
    traffic: Traffic = field(default_factory=Traffic)
    dry_run: bool = False
    branch: str | None = None  # pull and clone: the branch checked out or moved
    commit: str | None = None
    fast_forward: bool = False
    directory: str | None = None  # clone
    partial: bool = False  # fetch and clone: metadata only, chunks fetched when checked out

    @property
    def rejected(self) -> list[RefUpdate]:
        return [ref for ref in self.refs if ref.status == "rejected"]

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "operation": self.operation, "remote": self.remote, "url": self.url,
            "refs": [ref.to_dict() for ref in self.refs], "object_count": self.objects,
            "chunk_count": self.chunks, "pack_count": self.packs, "sent_bytes": self.traffic.bytes_sent,
            "received_bytes": self.traffic.bytes_received, "request_count": self.traffic.requests}
        if self.operation == "push":
            data["dry_run"] = self.dry_run
        else:
            data["partial"] = self.partial
        if self.operation in ("pull", "clone"):
            data |= {"branch": self.branch, "commit": self.commit}
        if self.operation == "pull":
            data["fast_forward"] = self.fast_forward
        if self.operation == "clone":
            data["root"] = self.directory
        return data
