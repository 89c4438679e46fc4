"""The packs a push uploads: chunk packs of tens of MiB, then one metadata pack.

Packs are built with the local pack writer in a staging directory (`.mvc/remotes/NAME/outgoing`)
and uploaded `.pack` first, `.idx` last: on a remote too a pack counts only once its index is
there. Records are written in a fixed order (where they are in the local packs), so a push
interrupted and re-run builds the same packs for what is still missing, and a `.pack` already
uploaded under its name (content-named) is not sent again.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import zstandard

from modelvc.errors import MissingChunkError
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.store import layout
from modelvc.store.backend import DirectoryBackend
from modelvc.store.chunkstore import chain_records
from modelvc.store.codecs import CODEC_ZSTD
from modelvc.store.objects import ZSTD_LEVEL
from modelvc.store.packs import Location, PackWriter
from modelvc.transfer.connect import Connection
from modelvc.transfer.view import RemoteView

CHUNK_PACK_BYTES = 32 << 20
META_PACK_BYTES = 1 << 40  # one metadata pack per push


def chunks_to_send(repo: Repo, conn: Connection, chunk_ids: set[bytes]) -> list[tuple[bytes, Location]]:
    """The chunks the remote lacks, with the base of every delta the remote lacks too (and its
    base...), in the order of the local packs.

    Records are picked the way the reader picks them (`chain_records`): while gc rechains, a
    chunk can have two delta records whose bases point opposite ways, and taking one record per
    chunk blindly could send two deltas that are each other's base. A chain stops at a chunk
    already chosen or on the remote, so what is sent always reads down to a whole record.
    """
    index, remote = repo.chunks.index, conn.view
    chosen: dict[bytes, Location] = {}
    settled = _ChosenOrRemote(chosen, remote)
    for chunk_id in sorted(chunk_ids):
        if chunk_id in settled:
            continue
        location = index.locate(chunk_id)
        if location is None:
            raise MissingChunkError(f"chunk {chunk_id.hex()[:10]} is missing from the local store: nothing was pushed",
                                    hint="run 'mvc fsck' to see which versions it breaks")
        chosen.update(chain_records(index, chunk_id, location, settled))
    return sorted(chosen.items(), key=lambda item: (item[1].pack, item[1].offset))


class _ChosenOrRemote:
    """The chunks a new chain may end on: those already chosen, and those on the remote."""

    def __init__(self, chosen: dict[bytes, Location], remote: RemoteView) -> None:
        self.chosen, self.remote = chosen, remote

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self.chosen or (isinstance(chunk_id, bytes) and self.remote.has_chunk(chunk_id))


class Uploader:
    """Builds packs in the staging directory and uploads them, counting what it sends."""

    def __init__(self, conn: Connection, staging: Path, progress: Progress = NO_PROGRESS) -> None:
        shutil.rmtree(staging, ignore_errors=True)  # what a killed push left
        staging.mkdir(parents=True)
        self.conn = conn
        self.staging = DirectoryBackend(staging)
        self.progress = progress
        self.packs = 0

    def send_chunks(self, repo: Repo, chosen: list[tuple[bytes, Location]]) -> None:
        writer = None
        try:
            for chunk_id, location in chosen:
                repo.chunks.read(chunk_id)  # verified: a damaged local chunk never reaches the remote
                payload = repo.chunks.reader.read_record(location, chunk_id)
                if writer is None:
                    writer = PackWriter(self.staging, CHUNK_PACK_BYTES)
                writer.append(chunk_id, location.codec, location.raw_len, payload, location.base)
                if writer.full:
                    self._seal_and_upload(writer)
                    writer = None
            if writer is not None:
                self._seal_and_upload(writer)
                writer = None
        finally:
            if writer is not None:
                writer.abort()

    def send_objects(self, repo: Repo, object_ids: list[str]) -> None:
        if not object_ids:
            return
        compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        writer = PackWriter(self.staging, META_PACK_BYTES, layout.META_PREFIX)
        try:
            for object_id in sorted(object_ids):
                data = repo.objects.read_verified(object_id)
                writer.append(bytes.fromhex(object_id), CODEC_ZSTD, len(data), compressor.compress(data))
        except BaseException:
            writer.abort()
            raise
        self._seal_and_upload(writer)

    def _seal_and_upload(self, writer: PackWriter) -> None:
        name = writer.finish()
        if name is None:
            return
        pack_key, idx_key = layout.pack_key(name), layout.idx_key(name)
        index_data = self.staging.read(idx_key)
        view = self.conn.view
        if pack_key not in view.keys:  # a pack of this name already there holds these very bytes
            data = self.staging.read(pack_key)
            self.conn.backend.write_if_absent(pack_key, data)
            self.progress.advance(len(data))
        if idx_key not in view.keys:
            self.conn.backend.write_if_absent(idx_key, index_data)
        view.learn(name, index_data)
        self.packs += 1
        for key in (pack_key, idx_key):
            self.staging.delete(key)

    def close(self) -> None:
        shutil.rmtree(self.staging.root, ignore_errors=True)
