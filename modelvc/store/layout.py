"""Where each kind of data lives in a backend: the one module that knows the key names.

    packs/pack-<hex>.pack        chunk records        packs/pack-<hex>.idx   its index
    packs/meta-<hex>.pack        metadata objects     packs/meta-<hex>.idx   its index
    packs/tmp-pack-<hex>.pack    a pack being written (or left by a killed writer; tmp-meta- too)
    packs/multi-pack-index       the combined index of the pack- family (multi-meta-index: meta-)
    objects/ab/cdef...           a loose metadata object (fan-out on the first two hex digits)
    refs/heads/NAME, refs/tags/NAME    a ref: its id and a newline

A pack counts only once both its `.pack` and its `.idx` exist (the index is written last);
anything else under packs/ that looks like a pack is an incomplete one. gc, fsck, stats and
the chunk index all ask this module, so that rule is decided here only.

Packs come in two families told apart by their prefix: chunk data (`pack-`) and metadata
objects (`meta-`), so a remote can fetch every metadata pack and only some data packs. The
functions below take the family's prefix; the default is the chunk family.

Pack names are `pack-` (or `meta-`) and the blake3 of the pack's bytes (64 hex digits), so the same pack
written twice is one pack; packs written before that have 32 random hex digits, and every
reader takes either.
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
META_PREFIX = "meta-"
FAMILIES = (PACK_PREFIX, META_PREFIX)
TEMP_PREFIX = "tmp-"
PACK_SUFFIX = ".pack"
IDX_SUFFIX = ".idx"


def pack_name(digest: bytes, family: str = PACK_PREFIX) -> str:
    """The name of a pack of `family` whose bytes hash to `digest`."""
    return family + digest.hex()


def is_pack_name(name: str, family: str = PACK_PREFIX) -> bool:
    return name.startswith(family) and len(name) > len(family)


def pack_key(name: str) -> str:
    return f"{PACKS}{name}{PACK_SUFFIX}"


def idx_key(name: str) -> str:
    return f"{PACKS}{name}{IDX_SUFFIX}"


def temp_pack_key(family: str = PACK_PREFIX) -> str:
    """A fresh name for a pack being written, before its content (and so its name) is known."""
    return f"{PACKS}{TEMP_PREFIX}{family}{os.urandom(16).hex()}{PACK_SUFFIX}"


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


def list_packs(backend: Backend, family: str = PACK_PREFIX) -> PackListing:
    """Sort one listing of packs/ into complete packs of `family` and incomplete ones (of any
    family: they are only ever removed)."""
    return sort_listing(backend.list(PACKS), family)


def sort_listing(keys: list[str], family: str = PACK_PREFIX) -> PackListing:
    """list_packs of a listing of packs/ already made (a remote lists once for both families)."""
    indexed = {file_name(k)[:-len(IDX_SUFFIX)] for k in keys if k.endswith(IDX_SUFFIX)}
    complete, incomplete = [], []
    for key in keys:
        name = file_name(key)
        if not name.endswith(PACK_SUFFIX):
            continue
        stem = name[:-len(PACK_SUFFIX)]
        if is_pack_name(stem, family) and stem in indexed:
            complete.append(stem)
        elif (any(is_pack_name(stem, other) for other in FAMILIES) and stem not in indexed) \
                or name.startswith(TEMP_PREFIX):
            incomplete.append(key)
    return PackListing(sorted(complete), incomplete)


def complete_packs(backend: Backend, family: str = PACK_PREFIX) -> list[str]:
    """Names of the packs of `family` readers use (those whose index exists)."""
    return list_packs(backend, family).complete


def incomplete_packs(backend: Backend) -> list[str]:
    """Keys of incomplete packs that are still incomplete after a second look.

    A writer may seal a pack between the listing and now: such a pack is complete, not left
    over, and one gc removed meanwhile is gone; neither is reported.
    """
    listed = list_packs(backend).incomplete
    complete = {name for family in FAMILIES for name in complete_packs(backend, family)}
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


def combined_key(family: str = PACK_PREFIX) -> str:
    """The key of a family's combined index (`packs/multi-pack-index`; modelvc.store.combined)."""
    return f"{PACKS}multi-{family}index"
