"""The layout decides, in one place, which packs count and which are incomplete."""

from __future__ import annotations

from modelvc.store import layout
from modelvc.store.backend import MemoryBackend

NEW = "pack-" + "ab" * 32  # named by content
OLD = "pack-" + "cd" * 16  # a random name of earlier versions


def test_complete_and_incomplete_packs():
    backend = MemoryBackend()
    for key in (f"packs/{NEW}.pack", f"packs/{NEW}.idx", f"packs/{OLD}.pack", f"packs/{OLD}.idx",
                "packs/pack-11.pack",  # renamed into place, index not yet written
                "packs/tmp-pack-22.pack",  # still being written, or its writer was killed
                "packs/pack-33.idx",  # an index without its pack: not a pack at all
                "packs/notes.txt", "objects/ab/cdef"):
        backend.write(key, b"x")
    listing = layout.list_packs(backend)
    assert listing.complete == sorted([NEW, OLD])
    assert listing.incomplete == ["packs/pack-11.pack", "packs/tmp-pack-22.pack"]
    assert layout.complete_packs(backend) == sorted([NEW, OLD])
    assert layout.incomplete_packs(backend) == ["packs/pack-11.pack", "packs/tmp-pack-22.pack"]
    backend.write("packs/pack-11.idx", b"x")  # sealed since: complete, no longer reported
    assert layout.incomplete_packs(backend) == ["packs/tmp-pack-22.pack"]


def test_keys_of_objects_and_packs():
    object_id = "0123" + "f" * 60
    assert layout.object_key(object_id) == f"objects/01/23{'f' * 60}"
    assert layout.object_id_of(layout.object_key(object_id)) == object_id
    assert layout.object_id_of("objects/0123") is None and layout.object_id_of("packs/01/23") is None
    assert layout.object_key("01a") == "objects/01/a"  # the prefix of the ids starting so
    assert layout.pack_key(NEW) == f"packs/{NEW}.pack" and layout.idx_key(OLD) == f"packs/{OLD}.idx"
    assert layout.pack_name(bytes(32)) == "pack-" + "00" * 32
    assert layout.temp_pack_key().startswith("packs/tmp-pack-") and layout.temp_pack_key() != layout.temp_pack_key()
