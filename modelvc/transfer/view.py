"""What a remote holds, as a push or fetch sees it: its refs and where its chunks and objects are.

The refs are read once each with their version tags (`read_tagged`), so a push moves a ref by
If-Match on exactly what it saw. The pack indexes are cached under `.mvc/remotes/NAME/packs/`:
a pack's name is the hash of its bytes and nothing on a remote is ever rewritten, so a cached
index never goes stale. One listing of the remote's `packs/` tells which indexes are new; only
those are downloaded. Lookups reuse the local index reader (store/chunkindex.py) over the cache.
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modelvc.errors import CorruptChunkError, CorruptRefError
from modelvc.fsutil import atomic_write
from modelvc.ids import is_full_id
from modelvc.refname import is_valid_ref_name
from modelvc.store import layout
from modelvc.store.backend import Backend, DirectoryBackend, MemoryBackend, NotFoundInBackend
from modelvc.store.chunkindex import ChunkIndex
from modelvc.store.packs import read_idx_rows
from modelvc.transfer.refsel import SHARED_NAMESPACES

INDEX_DOWNLOADS = 8  # indexes fetched at once on a first contact


@dataclass(frozen=True)
class RemoteRef:
    """A ref as the remote holds it: the id, and the version tag a swap must match."""

    name: str  # refs/heads/main
    commit: str
    tag: str


def cache_dir(mvc_dir: Path, remote: str) -> Path:
    """Where a remote's pack indexes are cached (dropped with `remote remove`)."""
    return mvc_dir / "remotes" / remote


def drop_cache(mvc_dir: Path, remote: str) -> None:
    shutil.rmtree(cache_dir(mvc_dir, remote), ignore_errors=True)


def rename_cache(mvc_dir: Path, old: str, new: str) -> None:
    source = cache_dir(mvc_dir, old)
    if source.is_dir():
        drop_cache(mvc_dir, new)
        source.rename(cache_dir(mvc_dir, new))


def cached_chunk_index(mvc_dir: Path, remote: str) -> ChunkIndex:
    """The remote's chunks as its cached pack indexes list them, without asking the remote."""
    return ChunkIndex(_IndexCache(cache_dir(mvc_dir, remote)), family=layout.PACK_PREFIX)


class _IndexCache(DirectoryBackend):
    """The cache directory as the index reader sees a store: each cached `.idx` stands for a
    complete pack (its `.pack` lives only on the remote)."""

    def list(self, prefix: str) -> list[str]:
        keys = super().list(prefix)
        packs = [key[:-len(layout.IDX_SUFFIX)] + layout.PACK_SUFFIX for key in keys if key.endswith(layout.IDX_SUFFIX)]
        return sorted(keys + packs)


class RemoteView:
    """One remote's refs and pack indexes; `label` (the URL) names it in errors."""

    def __init__(self, backend: Backend, cache: Path, label: str) -> None:
        self.backend = backend
        self.label = label
        self.cache = _IndexCache(cache)
        self.refs: dict[str, RemoteRef] = {}
        self.pack_names: dict[str, list[str]] = {family: [] for family in layout.FAMILIES}
        self.keys: set[str] = set()  # the last listing of packs/, incomplete packs included
        self._indexes: dict[str, ChunkIndex] = {}

    def load(self) -> RemoteView:
        """Read the refs and bring the index cache up to date (one listing of each)."""
        self.refs = self._read_refs()
        self.refresh_packs()
        return self

    def _read_refs(self) -> dict[str, RemoteRef]:
        found = {}
        for key in self.backend.list(layout.REFS):
            if not key.startswith(SHARED_NAMESPACES) or not is_valid_ref_name(key[len(layout.REFS):]):
                continue
            try:
                tagged = self.backend.read_tagged(key)
            except NotFoundInBackend:  # deleted since listed
                continue
            value = tagged.data.decode("utf-8", errors="replace").rstrip("\n")
            if not is_full_id(value):
                raise CorruptRefError(f"ref {key} on the remote {self.label} is corrupt: it holds {value[:80]!r}")
            found[key] = RemoteRef(key, value, tagged.tag)
        return found

    def refresh_packs(self) -> None:
        keys = self.backend.list(layout.PACKS)
        self.keys = set(keys)
        cached = set(layout.complete_packs(self.cache, layout.PACK_PREFIX)) | \
            set(layout.complete_packs(self.cache, layout.META_PREFIX))
        missing = []
        for family in layout.FAMILIES:
            names = layout.sort_listing(keys, family).complete
            self.pack_names[family] = names
            missing += [name for name in names if name not in cached]
        if missing:
            with ThreadPoolExecutor(INDEX_DOWNLOADS) as pool:
                list(pool.map(self._download_index, missing))
        self._indexes = {}

    def _download_index(self, name: str) -> None:
        key = layout.idx_key(name)
        data = self.backend.read(key)
        check = MemoryBackend()
        check.write(key, data)
        try:
            read_idx_rows(check, name)
        except CorruptChunkError:
            raise CorruptChunkError(f"{key} on the remote {self.label} is corrupt (checksum mismatch)",
                                    hint="nothing was stored; the remote needs repair") from None
        atomic_write(self.cache.local_path(key), data)

    def learn(self, name: str, index_data: bytes) -> None:
        """A pack this process uploaded: its index joins the cache, without a download."""
        atomic_write(self.cache.local_path(layout.idx_key(name)), index_data)
        self.keys |= {layout.pack_key(name), layout.idx_key(name)}
        family = next(family for family in layout.FAMILIES if layout.is_pack_name(name, family))
        if name not in self.pack_names[family]:
            self.pack_names[family] = sorted([*self.pack_names[family], name])
        self._indexes.pop(family, None)

    def index(self, family: str) -> ChunkIndex:
        """Chunk id (or object id) -> place on the remote, over the cached indexes of `family`
        that the last listing saw (a cached index of a pack since gone is not used)."""
        if family not in self._indexes:
            index = ChunkIndex(self.cache, family=family)
            listed = set(self.pack_names[family])
            if set(index.packs) - listed:
                index = ChunkIndex(_Only(self.cache.root, listed), family=family)
            self._indexes[family] = index
        return self._indexes[family]

    @property
    def chunks(self) -> ChunkIndex:
        return self.index(layout.PACK_PREFIX)

    @property
    def objects(self) -> ChunkIndex:
        return self.index(layout.META_PREFIX)

    def has_object(self, object_id: str) -> bool:
        return self.objects.contains(bytes.fromhex(object_id))

    def has_chunk(self, chunk_id: bytes) -> bool:
        return self.chunks.contains(chunk_id)


class _Only(_IndexCache):
    """The cache restricted to the packs a listing of the remote saw."""

    def __init__(self, root: Path, names: set[str]) -> None:
        super().__init__(root)
        self.names = names

    def list(self, prefix: str) -> list[str]:
        return [key for key in super().list(prefix)
                if layout.file_name(key).rpartition(".")[0] in self.names]
