"""A partial clone's promisor: the remote that holds the chunks the local store was not given.

`clone --partial` marks its remote `remote.NAME.partial: true` in `.mvc/config` (git's
`remote.NAME.promisor`). Whoever opens such a repository from above (the CLI, modelvc.api)
gives the Repo a ChunkPromisor (modelvc/transfer/lazy.py): ops/ cannot reach a remote
themselves, so materialize and fsck ask it, and the store stays ignorant of remotes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from modelvc.progress import Progress

# Told each fetched chunk's id and raw bytes once they are verified (on a worker thread), so a
# checkout writes them into its working files while the fetch goes on (ops/filling.py).
ChunkSink = Callable[[bytes, "bytes | memoryview"], None]


@dataclass
class FetchedChunks:
    """What one lazy fetch brought: the remote it came from, chunks stored, bytes and requests."""

    remote: str
    chunks: int = 0
    bytes_received: int = 0
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"remote": self.remote, "chunk_count": self.chunks, "received_bytes": self.bytes_received,
                "request_count": self.requests}


class ChunkPromisor(Protocol):
    """The remote a partial clone may fetch absent chunks from."""

    name: str
    offline: bool  # has_chunk answered from the cached indexes: the remote could not be reached

    def has_chunk(self, chunk_id: bytes) -> bool:
        """Whether the cached indexes of the remote list the chunk (offline: no request)."""

    def fetch_chunks(self, chunk_ids: set[bytes], progress: Progress, sink: ChunkSink | None = None) -> FetchedChunks:
        """Store every chunk of `chunk_ids` the local store lacks, in one bulk plan, handing
        each to `sink` once verified."""


def partial_remote(config: dict[str, Any]) -> str | None:
    """The name of the remote a partial clone promises chunks from (`origin` first), or None."""
    section = config.get("remote")
    if not isinstance(section, dict):
        return None
    names = [name for name, entry in section.items() if isinstance(entry, dict) and entry.get("partial") is True]
    if not names:
        return None
    return "origin" if "origin" in names else sorted(names)[0]
