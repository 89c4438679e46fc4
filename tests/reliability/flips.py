"""Single-byte flips in every kind of file under .mvc, and the verdict on each.

A flip is either detected (fsck or fsck --read-data exits 7, or the config is refused: exit 8
for a format version this modelvc does not read, 14 for a damaged config) and named, or
harmless by design (it changes no stored byte and no ref); and it never yields a version
that reads back wrong bytes or a ref that silently points elsewhere.
Shared by test_byte_flips.py and tests/bench/bench_faults.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from modelvc.cli.main import cli
from modelvc.errors import MvcError
from modelvc.store.backend import DirectoryBackend
from modelvc.store.packs import PACK_MAGIC, RECORD_HEADER, scan_pack
from tests.reliability.harness import Scene, mvc_env, read_version

OBJECT_KINDS = {"Commit": "commit", "Tree": "tree", "Manifest": "manifest", "Tag": "tag"}
# Record header fields by byte range (see RECORD_HEADER in modelvc/store/packs.py).
RECORD_FIELDS = ((0, 2, "magic"), (2, 3, "codec"), (3, 4, "reserved"), (4, 8, "raw length"),
                 (8, 12, "payload length"), (12, 44, "chunk id"), (44, 76, "base id"))
CHUNKING_KEYS = ("chunking",)
REFUSED = (8, 14)  # the config: a format version not read here, or damage (FormatVersionError, ConfigError)


def files_by_kind(work: Path) -> dict[str, list[str]]:
    """Every file under .mvc worth flipping, by kind, as paths relative to the working tree."""
    from modelvc.repo import Repo

    mvc = work / ".mvc"
    repo = Repo(work)
    found: dict[str, list[str]] = {kind: [] for kind in (
        "pack", "pack index", "meta pack index", *OBJECT_KINDS.values(), "branch ref", "tag ref", "HEAD", "index",
        "config", "reflog")}
    for object_id in repo.objects.all_ids():
        kind = OBJECT_KINDS[type(repo.objects.get(object_id)).__name__]
        location = repo.objects.location(object_id)
        if location is None:
            found[kind].append(rel(work, repo.objects.path_of(object_id)))
        else:  # its record in a metadata pack: header and payload
            pack = rel(work, mvc / "packs" / f"{location.pack}.pack")
            end = location.payload_offset + location.payload_len
            found[kind].append(f"{pack}#{location.offset}:{end}")
    found["pack"] = [rel(work, p) for p in sorted((mvc / "packs").glob("pack-*.pack"))]
    found["pack index"] = [rel(work, p) for p in sorted((mvc / "packs").glob("pack-*.idx"))]
    found["meta pack index"] = [rel(work, p) for p in sorted((mvc / "packs").glob("meta-*.idx"))]
    found["branch ref"] = [rel(work, p) for p in sorted((mvc / "refs" / "heads").rglob("*")) if p.is_file()]
    found["tag ref"] = [rel(work, p) for p in sorted((mvc / "refs" / "tags").rglob("*")) if p.is_file()]
    found["HEAD"], found["index"], found["config"] = [".mvc/HEAD"], [".mvc/index"], [".mvc/config"]
    found["reflog"] = [rel(work, p) for p in sorted((mvc / "logs").rglob("*")) if p.is_file()]
    return found


def byte_range(work: Path, entry: str) -> tuple[str, int, int]:
    """(path, start, end) of what files_by_kind listed: a whole file, or `path#start:end`, the
    record of a packed object."""
    path, _, span = entry.partition("#")
    if not span:
        return path, 0, (work / path).stat().st_size
    start, _, end = span.partition(":")
    return path, int(start), int(end)


def rel(work: Path, path: Path) -> str:
    return path.relative_to(work).as_posix()


def pack_field(pack: Path, position: int) -> str:
    """Which part of a pack a byte is in: "pack magic", "payload", or a record header field."""
    if position < len(PACK_MAGIC):
        return "pack magic"
    for _chunk, offset, payload_len, *_ in scan_pack(DirectoryBackend(pack.parent.parent), pack.stem):
        if offset <= position < offset + RECORD_HEADER.size:
            return next(name for start, end, name in RECORD_FIELDS if start <= position - offset < end)
        if position < offset + RECORD_HEADER.size + payload_len:
            return "payload"
    return "after the last record"


def config_change(before: bytes, after: bytes) -> str:
    """What a flip did to the config: "unreadable", or the top-level keys whose value changed."""
    try:
        old, new = json.loads(before), json.loads(after)
    except ValueError:
        return "unreadable"
    if not isinstance(new, dict):
        return "unreadable"
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return ",".join(changed) or "nothing"


@dataclass
class Verdict:
    kind: str
    path: str
    position: int
    outcome: str  # detected | refused | harmless
    exit_codes: tuple[int, int]  # fsck, fsck --read-data
    report: str
    breaks: list[tuple[str, str]] = field(default_factory=list)
    unreadable_versions: int = 0


def flip(path: Path, position: int, mask: int = 0x01) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= mask
    path.write_bytes(bytes(data))


def fsck_cli(work: Path, *options: str) -> tuple[int, str, list[tuple[str, str]]]:
    result = CliRunner().invoke(cli, ["-C", str(work), "fsck", "--json", *options], env=mvc_env())
    breaks = []
    try:
        report = json.loads(result.stdout)
        breaks = [(b["commit"], b["path"]) for p in report["problems"] for b in p["breaks"]]
        text = "; ".join(f"{p['kind']} {(p['id'] or p['name'])[:10]}: {p['detail']}" for p in report["problems"])
    except ValueError:
        text = result.stderr.strip()
    return result.exit_code, text, breaks


def judge(scene: Scene, kind: str, path: str, position: int, mask: int = 0x01) -> Verdict:
    """Flip one byte of `scene`'s store, find out what mvc makes of it, and flip it back.

    Raises AssertionError on the one outcome that is never allowed: a version that reads
    back wrong bytes, or a ref that silently names another commit.
    """
    refs_before = _refs(scene.work)
    target = scene.work / path
    original = target.read_bytes()
    flip(target, position, mask)
    try:
        return _verdict(scene, kind, path, position, refs_before)
    finally:
        target.write_bytes(original)


def _verdict(scene: Scene, kind: str, path: str, position: int, refs_before: dict) -> Verdict:
    plain, plain_report, plain_breaks = fsck_cli(scene.work)
    full, full_report, full_breaks = fsck_cli(scene.work, "--read-data")
    assert {plain, full} <= {0, 7, *REFUSED}, f"{kind} {path}@{position}: fsck exited {plain}/{full}: {plain_report}"
    unreadable = 0
    for commit, files in scene.versions.items():
        try:
            got = read_version(scene.work, commit)
        except MvcError:
            unreadable += 1
            continue
        assert got == files, f"{kind} {path}@{position}: version {commit[:10]} reads back wrong bytes"
    try:
        refs_after = _refs(scene.work)
    except MvcError:
        refs_after = None
    if refs_after is not None and plain == 0 and full == 0:
        assert refs_after == refs_before, f"{kind} {path}@{position}: refs moved silently"
    scene.sentinel.assert_untouched()
    if plain == 0 and full == 0:
        assert unreadable == 0, f"{kind} {path}@{position}: fsck is clean but a version cannot be read"
        return Verdict(kind, path, position, "harmless", (0, 0), "", [], 0)
    outcome = "refused" if full in REFUSED else "detected"
    return Verdict(kind, path, position, outcome, (plain, full), full_report or plain_report,
                   full_breaks or plain_breaks, unreadable)


def _refs(work: Path) -> dict[str, str | None]:
    from modelvc.repo import Repo

    refs = Repo(work).refs
    found: dict[str, str | None] = {f"refs/heads/{n}": c for n, c in refs.branches().items()}
    found |= {f"refs/tags/{n}": c for n, c in refs.tags().items()}
    head = refs.head()
    found["HEAD"] = f"{head.branch}:{head.commit}"
    return found
