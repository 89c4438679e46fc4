"""Symbolic links versioned as links, as git does: the target string is the content.

A link's manifest is an ordinary one whose bytes are the target (one chunk: targets are at
most PATH_MAX). The target is never followed, whether it is read from the working tree or
written back by checkout.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from modelvc.errors import UnsafePathError
from modelvc.ids import ObjectId, hash_bytes_raw, short
from modelvc.objects import Manifest
from modelvc.repo import Repo
from modelvc.safepath import check_link_target

if TYPE_CHECKING:
    from modelvc.store.chunkstore import ChunkWriter

LINK_TARGET_MAX = 4096  # PATH_MAX on Linux: no real link has a longer target


def link_manifest(target: bytes, writer: ChunkWriter | None = None) -> Manifest:
    """The manifest of a link to `target`; with a chunk writer its chunk is stored too."""
    chunk_id = hash_bytes_raw(target)
    if writer is not None and writer.needs(chunk_id):
        from modelvc.store.codecs import encode_chunk

        codec, payload = encode_chunk(target, None)
        writer.append(chunk_id, codec, len(target), payload)
    return Manifest(len(target), ((chunk_id.hex(), len(target)),))


def working_link_target(root: Path, path: str) -> bytes:
    """The target of the link at `path`, exactly as the filesystem holds it."""
    return os.readlink(os.fsencode(os.path.join(root, path)))


def stored_link_target(repo: Repo, file_id: ObjectId, path: str) -> str:
    """The verified target of a stored link, in the form os.symlink takes (bytes round-trip)."""
    manifest = repo.read_manifest(file_id)
    if manifest.size > LINK_TARGET_MAX:  # a crafted tree could name a huge file as a link
        raise UnsafePathError(f"{path} (file {short(file_id)}) is a symbolic link with a "
                              f"{manifest.size}-byte target; the most a system allows is {LINK_TARGET_MAX}")
    target = b"".join(repo.chunks.read(bytes.fromhex(chunk_id)) for chunk_id, _ in manifest.chunks)
    text = os.fsdecode(target)
    check_link_target(text, f"{path} (file {short(file_id)})")
    return text
