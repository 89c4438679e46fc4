"""Canonical encodings and the loose object store."""

from __future__ import annotations

import json

import pytest

from modelvc.errors import CorruptObjectError, IntegrityError
from modelvc.ids import hash_bytes
from modelvc.objects import (
    MODE_EXEC,
    Commit,
    Manifest,
    Signature,
    Tree,
    TreeEntry,
    decode,
    encode,
    local_tz_minutes,
    tz_text,
)
from modelvc.store.objects import ObjectStore


def sample_commit(**changes) -> Commit:
    fields = dict(tree="ab" * 32, parents=(), author=Signature("A", "a@x", 1700000000, 60),
                  message="m", metrics={"loss": 1.5, "step": 3}, params={"lr": "0.1"})
    fields.update(changes)
    return Commit(**fields)


def test_encoding_is_canonical():
    a = sample_commit(metrics={"b": 1, "a": 2.5})
    b = sample_commit(metrics={"a": 2.5, "b": 1})
    assert encode(a) == encode(b)
    assert encode(a).startswith(b'{"author":{"email":"a@x","name":"A","time":1700000000,"tz":60}')


def test_tree_order_does_not_change_the_id():
    e1, e2 = TreeEntry("b", "1" * 64, 3), TreeEntry("a", "2" * 64, 4, MODE_EXEC)
    assert encode(Tree((e1, e2))) == encode(Tree((e2, e1)))


def test_tree_encoding_and_id_are_those_of_earlier_versions():
    """The entry field is `manifest_id` in code but stays "file" on disk: tree ids must not move."""
    tree = Tree((TreeEntry("weights/model.bin", "1" * 64, 3), TreeEntry("run.sh", "2" * 64, 4, MODE_EXEC),
                 TreeEntry("latest", "3" * 64, 5, 0o120000)))
    encoded = encode(tree)
    assert encoded == (b'{"entries":[{"file":"' + b"3" * 64 + b'","mode":"120000","path":"latest","size":5},'
                       b'{"file":"' + b"2" * 64 + b'","mode":"100755","path":"run.sh","size":4},'
                       b'{"file":"' + b"1" * 64 + b'","mode":"100644","path":"weights/model.bin","size":3}],'
                       b'"type":"tree"}')
    assert hash_bytes(encoded) == "bc10bdc539e5a33e33dd57f8a5b5559f8efd8ec781d0c7e2984f1e1e26e2363e"
    assert Tree.from_dict(json.loads(encoded)) == Tree(tuple(sorted(tree.entries, key=lambda e: e.path)))


def test_store_round_trip_and_id(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    manifest = Manifest(7, (("c" * 64, 3), ("d" * 64, 4)))
    object_id = store.put(manifest)
    assert object_id == hash_bytes(encode(manifest))
    assert ObjectStore(tmp_path / "objects").get(object_id) == manifest
    assert ObjectStore(tmp_path / "objects").get_typed(object_id, Manifest) == manifest
    with pytest.raises(IntegrityError, match="is a manifest, expected a commit"):
        ObjectStore(tmp_path / "objects").get_typed(object_id, Commit)


def test_corrupt_and_missing_objects(tmp_path):
    store = ObjectStore(tmp_path / "objects")
    object_id = store.put(sample_commit())
    path = store.path_of(object_id)
    import zstandard

    path.write_bytes(zstandard.ZstdCompressor().compress(encode(sample_commit(message="forged"))))
    with pytest.raises(IntegrityError, match=f"object {object_id[:10]} is corrupt: its content does not match its id"):
        ObjectStore(tmp_path / "objects").get(object_id)
    path.unlink()
    with pytest.raises(IntegrityError, match=f"object {object_id[:10]} is missing"):
        ObjectStore(tmp_path / "objects").get(object_id)


def test_non_finite_metric_is_refused():
    with pytest.raises(ValueError):
        encode(sample_commit(metrics={"loss": float("nan")}))


def test_manifest_lengths_must_add_up():
    with pytest.raises(ValueError):
        Manifest.from_dict({"type": "file", "size": 10, "chunks": [["a" * 64, 3]]})


def test_time_zone_offsets_are_written_as_git_writes_them():
    assert [tz_text(minutes) for minutes in (0, 60, 330, -90, -720, 845)] == [
        "+0000", "+0100", "+0530", "-0130", "-1200", "+1405"]


def test_local_offset_follows_the_tz_environment(monkeypatch):
    import time

    winter, summer = 1700000000, 1720000000  # November 2023, July 2024
    try:
        for zone, expected in (("UTC0", (0, 0)), ("IST-5:30", (330, 330)), ("EST5EDT,M3.2.0,M11.1.0", (-300, -240))):
            monkeypatch.setenv("TZ", zone)
            time.tzset()
            assert (local_tz_minutes(winter), local_tz_minutes(summer)) == expected
    finally:
        monkeypatch.undo()
        time.tzset()


def test_decoding_reads_what_json_reads_and_refuses_what_it_refuses():
    """decode() skips json.loads's encoding detection for canonical UTF-8 (whole-history walks
    decode every object), but reads any other JSON text as json.loads does and refuses the rest."""
    commit = sample_commit(message="d\u00e9j\u00e0 vu \u2014 \U0001f600", params={"\u00fc": "\u00e9"})
    canonical = encode(commit)
    assert decode(canonical, "c" * 64) == commit
    for readable in (canonical + b" \n", b"\xef\xbb\xbf" + canonical, b" " + canonical,
                     canonical.decode().encode("utf-16")):
        assert decode(readable, "c" * 64) == commit
    for unreadable, reason in ((canonical + b"{}", "Extra data"), (canonical[:-1], "Expecting"),
                               (b"\xff" + canonical, "can.t decode byte 0xff"), (b"[1]", "list indices")):
        with pytest.raises(CorruptObjectError, match=f"object cccccccccc is not a valid modelvc object .*{reason}"):
            decode(unreadable, "c" * 64)
