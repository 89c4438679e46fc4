"""One flipped bit in every kind of file under .mvc: detected and named, or harmless by design.

Never a version that reads back wrong bytes, never a ref that silently moves (flips.judge
asserts both for every case). Each flip is made in one shared repository and undone
right after its verdict.
"""

from __future__ import annotations

import json
import random

import pytest

from modelvc.store.packs import RECORD_HEADER
from tests.reliability.flips import byte_range, config_change, files_by_kind, judge, pack_field
from tests.reliability.scenes import two_versions


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    scene = two_versions(tmp_path_factory.mktemp("flips"))
    yield scene
    scene.check()  # every flip was undone: the store is as sound as before


@pytest.fixture(scope="module")
def kinds(template):
    return files_by_kind(template.work)


def record_position(field_offset: int) -> int:
    """A byte of the first record header of a pack (right after the pack magic)."""
    return 8 + field_offset


# Every field of a pack record, the pack magic and the payload; the expected outcome of each.
PACK_CASES = [
    pytest.param(0, "detected", False, id="pack magic"),  # every chunk still reads: nothing breaks
    pytest.param(record_position(0), "detected", True, id="record magic"),
    pytest.param(record_position(2), "detected", True, id="codec"),
    pytest.param(record_position(3), "harmless", False, id="reserved byte"),
    pytest.param(record_position(5), "detected", True, id="raw length"),
    pytest.param(record_position(9), "detected", True, id="payload length"),
    pytest.param(record_position(20), "detected", False, id="chunk id"),
    pytest.param(record_position(50), "detected", True, id="base id"),
    pytest.param(record_position(RECORD_HEADER.size + 100), "detected", True, id="payload start"),
    pytest.param(-1, "detected", True, id="payload end"),
]


@pytest.mark.parametrize("position, outcome, names_versions", PACK_CASES)
def test_flip_in_a_pack(template, kinds, position, outcome, names_versions):
    path = kinds["pack"][0]
    size = (template.work / path).stat().st_size
    position %= size
    verdict = judge(template, "pack", path, position)
    assert verdict.outcome == outcome, (pack_field(template.work / path, position), verdict)
    if outcome == "detected":
        assert verdict.exit_codes[1] == 7
        if names_versions:
            assert {c for c, _ in verdict.breaks} & set(template.versions), verdict


@pytest.mark.parametrize("kind", ["commit", "tree", "manifest", "tag", "pack index"])
def test_flip_in_an_object_or_pack_index(template, kinds, kind):
    """Anywhere in the file: exit 7 from plain fsck, naming what it breaks (a tag: its ref)."""
    rng = random.Random(kind)
    assert kinds[kind]
    for entry in kinds[kind][:2]:
        path, start, end = byte_range(template.work, entry)
        for position in sorted({start, end - 1, *rng.sample(range(start, end), 3)}):
            verdict = judge(template, kind, path, position)
            assert verdict.outcome == "detected" and verdict.exit_codes == (7, 7), verdict
            if kind == "tag":
                assert "refs/tags/v2" in verdict.report, verdict
            else:
                named = {c for c, _ in verdict.breaks} & set(template.versions)
                assert named and all(p for _, p in verdict.breaks), verdict


def test_flip_in_a_metadata_pack_index_is_an_integrity_error(template, kinds):
    """Its checksum fails: every command that reads an object says so (exit 7), naming the file."""
    path = kinds["meta pack index"][0]
    size = (template.work / path).stat().st_size
    for position in (0, 20, size // 2, size - 1):
        verdict = judge(template, "meta pack index", path, position)
        assert verdict.outcome == "detected" and verdict.exit_codes == (7, 7), verdict
        assert path.rpartition("/")[2] in verdict.report, verdict


@pytest.mark.parametrize("kind", ["branch ref", "tag ref", "HEAD"])
def test_flip_in_a_ref_or_head_is_refused(template, kinds, kind):
    """Every byte: the ref names a missing commit, or cannot be read: exit 7 either way."""
    path = kinds[kind][0]
    size = (template.work / path).stat().st_size
    for position in range(size):
        verdict = judge(template, kind, path, position)
        assert verdict.outcome == "detected" and verdict.exit_codes == (7, 7), verdict


def _reflog_cases(template) -> dict[str, int]:
    """Positions in the second line of HEAD's reflog, by what they hold."""
    text = (template.work / ".mvc" / "logs" / "HEAD").read_bytes()
    start = text.index(b"\n") + 1
    line = text[start:text.index(b"\n", start)]
    new_id = line[65:129]
    return {"old id digit": start + next(i for i, c in enumerate(line[:64]) if chr(c).isdigit()),
            "new id letter": start + 65 + next(i for i, c in enumerate(new_id) if chr(c) in "af"),
            "author name": start + 131,
            "message": start + line.index(b"\t") + 3}


@pytest.mark.parametrize("where, outcome", [
    ("old id digit", "detected"),  # names a commit the store does not hold
    ("new id letter", "detected"),  # no longer an id: the line is garbled
    ("author name", "harmless"),  # who and why are never read back as ids
    ("message", "harmless"),
])
def test_flip_in_a_reflog(template, where, outcome):
    position = _reflog_cases(template)[where]
    verdict = judge(template, "reflog", ".mvc/logs/HEAD", position)
    assert verdict.outcome == outcome, verdict
    if outcome == "detected":
        assert verdict.exit_codes == (7, 7)


def _index_position(template, field: str) -> int:
    """A byte of the first entry's `field` in the index file (columns: see docs/format.md)."""
    data = (template.work / ".mvc" / "index").read_bytes()
    header_end = data.index(b"\n", len(b"MVCINDEX\n"))
    header = json.loads(data[len(b"MVCINDEX\n"):header_end])
    paths_at = header_end + 1
    count = header["count"]
    numbers_at = paths_at + header["paths_bytes"] + 32 * count
    return {"version": data.index(b'"version":') + 10, "path": paths_at,
            "file": paths_at + header["paths_bytes"] + 5,
            "ino": numbers_at + 8 * count, "mtime_ns": numbers_at + 4 * 8 * count}[field]


@pytest.mark.parametrize("field", ["file", "path", "mtime_ns", "ino", "version"])
def test_flip_in_the_index_is_refused(template, field):
    """The index's checksum refuses any flipped byte, even one that would only have cost a
    stat-cache miss: never a staged entry silently naming other content or another path."""
    verdict = judge(template, "index", ".mvc/index", _index_position(template, field))
    assert verdict.outcome == "detected" and verdict.exit_codes == (7, 7), verdict
    assert "the index file" in verdict.report and "checksum does not match" in verdict.report


def test_unreadable_index_is_an_integrity_error(template):
    verdict = judge(template, "index", ".mvc/index", 0)
    assert verdict.outcome == "detected" and verdict.exit_codes == (7, 7)
    assert "the index file" in verdict.report and "is corrupt" in verdict.report


def _config_position(template, text: str, after: int = 0) -> int:
    return (template.work / ".mvc" / "config").read_bytes().index(text.encode()) + after


@pytest.mark.parametrize("anchor, after, change, outcome, code", [
    # 3 -> 2: every reader still looks in metadata packs; writes go loose until gc upgrades again
    ('"format_version": 3', 18, "format_version", "harmless", 0),
    ('"format_version": 3', 18 - 2, "unreadable", "refused", 14),  # '"' -> '#': not JSON
    ('"pack_max_bytes": 2', 19, "pack_max_bytes", "harmless", 0),  # a write-time policy only
    ("{", 0, "unreadable", "refused", 14),  # not JSON: a damaged config
    ('"cdc_avg": 2', 12, "chunking", "detected", 7),  # 262144 -> 272144: valid, but not format 2's
])
def test_flip_in_the_config(template, anchor, after, change, outcome, code):
    position = _config_position(template, anchor, after)
    before = (template.work / ".mvc" / "config").read_bytes()
    flipped = bytearray(before)
    flipped[position] ^= 1
    assert config_change(before, bytes(flipped)) == change
    verdict = judge(template, "config", ".mvc/config", position)
    assert verdict.outcome == outcome, verdict
    if outcome == "refused":
        assert verdict.exit_codes == (code, code)


@pytest.mark.parametrize("kind", ["HEAD", "branch ref", "tag ref"])
def test_non_utf8_byte_in_head_or_a_ref_is_an_integrity_error(template, kinds, kind):
    verdict = judge(template, kind, kinds[kind][0], 9, 0x80)
    assert verdict.outcome == "detected" and verdict.exit_codes == (7, 7), verdict


def test_a_lost_commit_names_itself_and_the_history_of_later_commits(template):
    from modelvc.repo import Repo

    repo = Repo(template.work)
    v2 = repo.resolve("v2")
    v1 = repo.resolve("v1")
    path = repo.objects.path_of(v1).relative_to(template.work).as_posix()
    verdict = judge(template, "commit", path, 20)
    assert verdict.exit_codes == (7, 7)
    assert set(verdict.breaks) == {(v1, "(every file)"), (v2, "(history)")}
