"""A partial clone's remote as the Repo's ChunkPromisor (modelvc/promisor.py): lazy checkout.

Installed by whoever opens a repository from above (the CLI's open_repo, modelvc.api.Repo),
only when `.mvc/config` marks a remote `partial`. `fetch_chunks` connects, brings the cache of
the remote's pack indexes under `.mvc/remotes/NAME/` up to date (one listing) and reads the
chunks by chunkfetch's coalesced ranged reads. `has_chunk` (fsck) looks in that cache, over the
packs one listing of the remote still shows; a remote it cannot reach is answered from the
cache alone (`offline`).
"""

from __future__ import annotations

from modelvc.errors import RemoteUnreachableError
from modelvc.ops.remote import get_remote
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.promisor import ChunkSink, FetchedChunks, partial_remote
from modelvc.repo import Repo
from modelvc.store.chunkindex import ChunkIndex
from modelvc.transfer.chunkfetch import fetch_chunks
from modelvc.transfer.connect import connected
from modelvc.transfer.view import cached_chunk_index


class RemotePromisor:
    """Fetches a partial clone's absent chunks from the remote `name`."""

    def __init__(self, repo: Repo, name: str) -> None:
        self.repo = repo
        self.name = name
        self.offline = False  # has_chunk answered from the cache alone
        self._listed: ChunkIndex | None = None

    def has_chunk(self, chunk_id: bytes) -> bool:
        if self._listed is None:
            try:
                with connected(self.repo, get_remote(self.repo, self.name)) as conn:
                    conn.view.refresh_packs()
                    self._listed = conn.view.chunks
            except RemoteUnreachableError:
                self.offline = True
                self._listed = cached_chunk_index(self.repo.mvc_dir, self.name)
        return self._listed.contains(chunk_id)

    def fetch_chunks(self, chunk_ids: set[bytes], progress: Progress = NO_PROGRESS,
                     sink: ChunkSink | None = None) -> FetchedChunks:
        remote = get_remote(self.repo, self.name)
        with connected(self.repo, remote) as conn, self.repo.transaction():
            conn.view.refresh_packs()
            self._listed = None
            fetched = fetch_chunks(self.repo, conn, chunk_ids, progress, sink)
            traffic = conn.backend.traffic
        return FetchedChunks(self.name, fetched.chunks, traffic.bytes_received, traffic.requests)


def install_promisor(repo: Repo) -> None:
    """Give `repo` its promisor when a remote is marked partial (none otherwise)."""
    name = partial_remote(repo.config)
    repo.promisor = RemotePromisor(repo, name) if name is not None else None
