"""Where each kind of data lives in a backend: the one module that knows the key names.

    packs/pack-<hex>.pack        chunk records        packs/pack-<hex>.idx   its index
    packs/tmp-pack-<hex>.pack    a pack being written (or left by a killed writer)
    packs/multi-pack-index       the combined index of many packs (derived; modelvc.store.combined)
    objects/ab/cdef...           a loose metadata object (fan-out on the first two hex digits)
    refs/heads/NAME, refs/tags/NAME    a ref: its id and a newline

A pack counts only once both its `.pack` and its `.idx` exist (the index is written last);
anything else under packs/ that looks like a pack is an incomplete one. gc, fsck, stats and
the chunk index all ask this module, so that rule is decided here only.

Pack names are `pack-` and the blake3 of the pack's bytes (64 hex digits), so the same pack
written twice is one pack; packs written before that have 32 random hex digits, and every
reader takes either.

A `PackFamily` names one kind of pack (a directory and a name prefix): chunk packs are
CHUNK_PACKS; another kind of record kept in packs of the same format gets its own family, and
consolidation and the combined index work on any family.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from modelvc.ids import ObjectId
from modelvc.store.backend import Backend, NotFoundInBackend

PACKS = "packs/"
OBJECTS = "objects/"
REFS = "refs/"
PACK_PREFIX = "pack-"
TEMP_PREFIX = "tmp-"
PACK_SUFFIX = ".pack"
IDX_SUFFIX = ".idx"


def pack_name(digest: bytes) -> str:
    """The name of a pack whose bytes hash to `digest`."""
    return CHUNK_PACKS.pack_name(digest)


def is_pack_name(name: str) -> bool:
    return CHUNK_PACKS.is_pack_name(name)


def pack_key(name: str) -> str:
    return CHUNK_PACKS.pack_key(name)


def idx_key(name: str) -> str:
    return CHUNK_PACKS.idx_key(name)


def temp_pack_key() -> str:
    """A fresh name for a pack being written, before its content (and so its name) is known."""
    return CHUNK_PACKS.temp_pack_key()


def file_name(key: str) -> str:
    """The last part of a key, as messages show it (`pack-<hex>.idx`)."""
    return key.rpartition("/")[2]


def object_key(object_id: ObjectId) -> str:
    """The key of an object, or the key prefix of the objects whose ids start with `object_id`
    (at least two hex digits)."""
    return f"{OBJECTS}{object_id[:2]}/{object_id[2:]}"


def object_id_of(key: str) -> str | None:
    """The object id a key under objects/ names, None for anything else found there."""
    fan, _, rest = key[len(OBJECTS):].partition("/")
    if not key.startswith(OBJECTS) or len(fan) != 2 or not rest or "/" in rest:
        return None
    return fan + rest


def ref_key(refname: str) -> str:
    """The key of a branch or tag (`refs/heads/main`): ref names are keys as they are."""
    if not refname.startswith(REFS):
        raise ValueError(f"not a ref under {REFS}: {refname!r}")
    return refname


@dataclass(frozen=True)
class PackListing:
    complete: list[str]  # pack names, sorted
    incomplete: list[str]  # keys: temp packs and packs without an index


def list_packs(backend: Backend, family: PackFamily | None = None) -> PackListing:
    """Sort one listing of a family's directory (chunk packs by default) into complete packs
    and incomplete ones."""
    family = family or CHUNK_PACKS
    keys = backend.list(family.directory)
    indexed = {file_name(k)[:-len(IDX_SUFFIX)] for k in keys if k.endswith(IDX_SUFFIX)}
    complete, incomplete = [], []
    for key in keys:
        name = file_name(key)
        if not name.endswith(PACK_SUFFIX) or "/" in key[len(family.directory):]:
            continue
        stem = name[:-len(PACK_SUFFIX)]
        if family.is_pack_name(stem) and stem in indexed:
            complete.append(stem)
        elif family.is_pack_name(stem) or name.startswith(TEMP_PREFIX + family.prefix):
            incomplete.append(key)
    return PackListing(sorted(complete), incomplete)


def complete_packs(backend: Backend, family: PackFamily | None = None) -> list[str]:
    """Names of the packs readers use (those whose index exists)."""
    return list_packs(backend, family).complete


def incomplete_packs(backend: Backend, family: PackFamily | None = None) -> list[str]:
    """Keys of incomplete packs that are still incomplete after a second look.

    A writer may seal a pack between the listing and now: such a pack is complete, not left
    over, and one gc removed meanwhile is gone; neither is reported.
    """
    listed = list_packs(backend, family).incomplete
    complete = set(complete_packs(backend, family))
    still = []
    for key in listed:
        if file_name(key)[:-len(PACK_SUFFIX)] in complete:
            continue
        try:
            backend.stat(key)
        except NotFoundInBackend:
            continue
        still.append(key)
    return still


@dataclass(frozen=True)
class PackFamily:
    """One kind of pack: `<directory><prefix><hex>.pack` and `.idx`, with its own combined index."""

    directory: str = PACKS
    prefix: str = PACK_PREFIX

    def pack_name(self, digest: bytes) -> str:
        return self.prefix + digest.hex()

    def is_pack_name(self, name: str) -> bool:
        return name.startswith(self.prefix) and len(name) > len(self.prefix)

    def pack_key(self, name: str) -> str:
        return f"{self.directory}{name}{PACK_SUFFIX}"

    def idx_key(self, name: str) -> str:
        return f"{self.directory}{name}{IDX_SUFFIX}"

    def temp_pack_key(self) -> str:
        return f"{self.directory}{TEMP_PREFIX}{self.prefix}{os.urandom(16).hex()}{PACK_SUFFIX}"

    @property
    def combined_key(self) -> str:
        """The family's combined index (`packs/multi-pack-index` for chunk packs)."""
        return f"{self.directory}multi-{self.prefix}index"


CHUNK_PACKS = PackFamily()
