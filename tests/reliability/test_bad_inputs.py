"""Bad inputs, table-driven: each gets its exact exit code and message, and changes nothing.

Malformed model files, bad branch and tag names, bad revisions and refs, bad repository
states. The other files of this directory hold the bad inputs of issue 11's items.
"""

from __future__ import annotations

import json
import os
import struct
import zipfile
from io import BytesIO
from pathlib import Path

import numpy as np
import pytest

from modelvc.ids import MIN_PREFIX, hash_bytes, short
from modelvc.objects import Commit, Signature, encode
from modelvc.repo import Repo
from tests.modelfiles import write_safetensors

UNKNOWN_HINT = "hint: list commits with 'mvc log', names with 'mvc branch' and 'mvc tag'\n"
NO_COMMITS = ("error: HEAD does not point to a commit yet (branch 'main' has no commits)\n"
              "hint: make the first commit with 'mvc commit'\n")
PAST_ROOT = "hint: count the commits with 'mvc log'\n"


def store_state(work: Path) -> dict[str, bytes]:
    """Every file under .mvc but the lock (which holds the last writer's pid)."""
    mvc = work / ".mvc"
    return {p.relative_to(mvc).as_posix(): p.read_bytes() for p in sorted(mvc.rglob("*"))
            if p.is_file() and p.name != "lock"}


def assert_refused(mvc, args: list[str], code: int, message: str) -> None:
    """`mvc args` exits `code` printing exactly `message` on stderr, and leaves .mvc as it was."""
    before = store_state(mvc.cwd)
    result = mvc(*args, ok=False)
    assert (result.exit_code, result.stderr) == (code, message)
    assert result.stdout == ""
    assert store_state(mvc.cwd) == before


@pytest.fixture
def two(mvc, work):
    """Two commits of a.bin (the first tagged v1)."""
    (work / "a.bin").write_bytes(b"a" * 100)
    mvc("add", "a.bin")
    mvc("commit", "-m", "one")
    mvc("tag", "v1")
    (work / "a.bin").write_bytes(b"b" * 100)
    mvc("add", "a.bin")
    mvc("commit", "-m", "two")
    return mvc


# ---- revisions and refs ----------------------------------------------------------------

REVISIONS = [
    (["log", "HEAD~999"], "error: revision 'HEAD~999' goes past the first commit\n" + PAST_ROOT),
    (["log", "HEAD^^^"], "error: revision 'HEAD^^^' goes past the first commit\n" + PAST_ROOT),
    (["checkout", "v1~5"], "error: revision 'v1~5' goes past the first commit\n" + PAST_ROOT),
    (["log", "^^^"], "error: unknown revision '^^'\n" + UNKNOWN_HINT),  # git: '^X' excludes X, here '^^'
    (["log", "HEAD~x"], "error: unknown revision 'HEAD~x'\n" + UNKNOWN_HINT),
    (["log", "v1@{1}"], "error: log for 'v1' only has 1 entries\nhint: see 'mvc reflog v1'\n"),
    (["show", "deadbeef"], "error: unknown revision 'deadbeef'\n" + UNKNOWN_HINT),
    (["show", "0" * 64], "error: object 0000000000 does not exist\n"),
    (["diff", "nosuch"], "error: unknown revision 'nosuch'\n" + UNKNOWN_HINT),
    (["diff", "HEAD", "nosuch"], "error: unknown revision 'nosuch'\n" + UNKNOWN_HINT),
    (["checkout", "nosuch"], "error: unknown revision 'nosuch'\n" + UNKNOWN_HINT),
    (["rollback", "nosuch"], "error: unknown revision 'nosuch'\n" + UNKNOWN_HINT),
    (["log", "refs/heads/nosuch"], "error: unknown revision 'refs/heads/nosuch'\n" + UNKNOWN_HINT),
    (["show", "HEAD:nosuch.bin"], "error: path 'nosuch.bin' does not exist in HEAD\n"
                                  "hint: list its files with 'mvc show HEAD'\n"),
    (["show", ":a.bin"], "error: missing revision before ':' in ':a.bin'\n"
                         "hint: write <revision>:<path>, e.g. HEAD:model.safetensors\n"),
    (["tag", "-d", "nosuch"], "error: tag 'nosuch' not found\n"),
    (["branch", "-d", "nosuch"], "error: branch 'nosuch' not found\n"),
]


@pytest.mark.parametrize("args, message", REVISIONS, ids=[" ".join(a) for a, _ in REVISIONS])
def test_bad_revision_or_ref(two, args, message):
    assert_refused(two, args, 4, message)


def test_parent_number_beyond_the_parents(two):
    head = two.cwd.joinpath(".mvc/refs/heads/main").read_text().strip()
    assert_refused(two, ["log", "HEAD^2"], 4, f"error: commit {short(head)} has no parent 2\nhint: it has 1 parent\n")


def test_ambiguous_short_id(two):
    """Two commits whose ids share their first MIN_PREFIX hex digits: the prefix names neither."""
    repo = Repo(two.cwd)
    head = repo.read_commit(repo.head_commit())
    seen: dict[str, Commit] = {}
    for number in range(100_000):
        commit = Commit(head.tree, (), Signature("T", "t@e", 0, 0), f"probe {number}")
        prefix = hash_bytes(encode(commit))[:MIN_PREFIX]
        if prefix in seen:
            break
        seen[prefix] = commit
    ids = sorted(repo.objects.put(c) for c in (seen[prefix], commit))
    assert_refused(two, ["show", prefix], 4, f"error: short id '{prefix}' is ambiguous: it matches "
                   f"{short(ids[0])}, {short(ids[1])}\nhint: type more characters of the id\n")


# ---- names (git's check-ref-format rules) ----------------------------------------------

BAD_NAMES = [
    ("a..b", "contains '..'"), ("a b", "contains a space"), ("a\tb", "contains a control character"),
    ("a~b", "contains '~'"), ("a^b", "contains '^'"), ("a:b", "contains ':'"), ("a?b", "contains '?'"),
    ("a*b", "contains '*'"), ("a[b", "contains '['"), ("a\\b", "contains '\\'"),
    ("a@{b", "contains '@{'"), ("a//b", "contains '//'"), ("-x", "starts with '-'"),
    (".a", "starts with '.'"), ("/a", "starts with '/'"), ("a/", "ends with '/'"), ("a.", "ends with '.'"),
    ("a.lock", "ends with '.lock'"), ("x/y.lock", "ends with '.lock'"),
    ("x.lock/y", "component 'x.lock' ends with '.lock'"),
    ("a/.b", "component '.b' starts with '.'"), ("@", "'@' alone is reserved"), ("HEAD", "'HEAD' is reserved"),
]


@pytest.mark.parametrize("name, problem", BAD_NAMES, ids=[repr(n) for n, _ in BAD_NAMES])
def test_bad_branch_name(two, name, problem):
    assert_refused(two, ["branch", "--", name], 10, f"error: invalid branch name '{name}': {problem}\n")


@pytest.mark.parametrize("name, problem", BAD_NAMES[::4], ids=[repr(n) for n, _ in BAD_NAMES[::4]])
def test_bad_tag_name(two, name, problem):
    assert_refused(two, ["tag", "--", name], 10, f"error: invalid tag name '{name}': {problem}\n")


def test_existing_names(two):
    assert_refused(two, ["tag", "v1"], 10, "error: a tag named 'v1' already exists\nhint: use --force to move it\n")
    assert_refused(two, ["branch", "main"], 10, "error: a branch named 'main' already exists\n")
    assert_refused(two, ["branch", "-d", "main"], 10, "error: cannot delete branch 'main': it is the current "
                   "branch\nhint: switch to another branch first\n")


# ---- repository states -------------------------------------------------------------------

NO_COMMIT_YET = [["show"], ["diff", "HEAD"], ["checkout", "HEAD"], ["tag", "x"], ["branch", "b"], ["log", "HEAD~1"]]


@pytest.mark.parametrize("args", NO_COMMIT_YET, ids=[" ".join(a) for a in NO_COMMIT_YET])
def test_no_commits_yet(mvc, args):
    assert_refused(mvc, args, 4, NO_COMMITS)


def test_no_commits_yet_rollback_and_empty_index(mvc):
    assert_refused(mvc, ["rollback"], 4, "error: there is nothing to roll back: HEAD has no commits yet\n")
    assert_refused(mvc, ["commit", "-m", "x"], 9, "error: nothing to commit: the index matches HEAD\n"
                   "hint: stage changes with 'mvc add', or use --allow-empty\n")
    result = mvc("log")
    assert (result.stdout, result.stderr) == ("", "no commits yet\n")


def test_detached_head_commits_and_rolls_back_without_a_branch(two):
    head = two.cwd.joinpath(".mvc/refs/heads/main").read_text().strip()
    assert two("checkout", head).stdout == f"HEAD is now at {short(head)} (detached)\n"
    assert_refused(two, ["commit", "-m", "x"], 9, "error: nothing to commit: the index matches HEAD\n"
                   "hint: stage changes with 'mvc add', or use --allow-empty\n")
    two("rollback")
    assert two.cwd.joinpath(".mvc/refs/heads/main").read_text().strip() == head  # the branch stays
    assert (two.cwd / "a.bin").read_bytes() == b"a" * 100


def test_missing_config_is_not_a_repository(two):
    os.unlink(two.cwd / ".mvc" / "config")
    result = two("status", ok=False)
    assert (result.exit_code, result.stderr) == (
        3, f"error: not a modelvc repository (or any parent up to /): {two.cwd}\nhint: create one with 'mvc init'\n")


@pytest.mark.parametrize("version", [99, 0])
def test_unknown_format_version(two, version):
    config = two.cwd / ".mvc" / "config"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"format_version": version}))
    assert_refused(two, ["status"], 8, f"error: repository format version {version!r} is not supported by "
                   "this modelvc (it reads versions 1, 2, 3)\nhint: upgrade modelvc to work with this repository\n")


@pytest.mark.parametrize("version", ["2", True, None])
def test_a_format_version_that_is_no_integer_is_a_damaged_config(two, version):
    """No modelvc writes such a version: damage to repair (exit 14), not a newer format to upgrade to."""
    config = two.cwd / ".mvc" / "config"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"format_version": version}))
    assert_refused(two, ["status"], 14, f"error: the repository config {config} is damaged: format_version must "
                   f"be an integer, not {version!r}\nhint: repair it by hand (docs/format.md describes every key), "
                   "or restore it from a backup\n")


def test_missing_head(two):
    os.unlink(two.cwd / ".mvc" / "HEAD")
    assert_refused(two, ["log"], 7, f"error: {two.cwd / '.mvc' / 'HEAD'} is missing or corrupt\n"
                   "hint: it should hold 'ref: refs/heads/<branch>' or a commit id\n")


# ---- malformed model files: stored byte-exact, shown and diffed as plain files -------------

def _safetensors(header: bytes, declared: int | None = None, tail: bytes = b"") -> bytes:
    return struct.pack("<Q", len(header) if declared is None else declared) + header + tail


def _zip_with_bad_central_directory() -> bytes:
    buffer = BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"x" * 100)
        archive.writestr("archive/data/0", bytes(64))
    data = bytearray(buffer.getvalue())
    data[data.rfind(b"PK\x01\x02") + 2] ^= 0x05  # the central directory entry's signature
    return bytes(data)


MALFORMED = {
    "truncated-header.safetensors": _safetensors(b'{"w": {"dtype": "F32"', declared=1000),
    "header-beyond-file.safetensors": _safetensors(b"{}", declared=1 << 40),
    "bad-json.safetensors": _safetensors(b'{"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]', tail=bytes(8)),
    "offsets-beyond-data.safetensors":
        _safetensors(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', tail=bytes(8)),
    "bad-magic.gguf": b"GGUX" + struct.pack("<IQQ", 3, 1, 0) + bytes(32),
    "bad-counts.gguf": b"GGUF" + struct.pack("<IQQ", 3, 1 << 60, 1 << 60) + bytes(32),
    "bad-central-directory.pt": _zip_with_bad_central_directory(),
    "bad-header.npy": b"\x93NUMPY\x01\x00" + struct.pack("<H", 20) + b"{'descr': '<f4', 'fo" + bytes(16),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_model_file_is_stored_exactly_and_read_as_plain_bytes(mvc, work, name):
    """add, show and diff never fail on a bad header, nor pretend to read tensors from it."""
    stem, suffix = name.rsplit(".", 1)
    path = f"{stem}.{suffix}"
    good = write_safetensors(work / path, {"w": np.arange(4, dtype=np.float32)}) if suffix == "safetensors" else None
    if good is not None:
        mvc("add", path)
        mvc("commit", "-m", "good")
    data = MALFORMED[name]
    (work / path).write_bytes(data)
    added = mvc("add", path)
    assert added.stdout.startswith(f"add '{path}'\n1 file staged: {len(data)} B new data, stored as ")
    commit = mvc("commit", "-q", "-m", "malformed").stdout.strip()
    assert mvc("show", f"HEAD:{path}").stdout == f"{path} at {commit}: {len(data)} B, 1 chunk\n"
    if good is not None:
        assert mvc("diff", "HEAD~1", "HEAD").stdout == (
            f"modified  {path}  {len(good)} B -> {len(data)} B  (shares 0 B, 0% with the old version)\n"
            "    tensors: 1 deleted\n    deleted   w  F32 [4]\n"
            "    note: the new version is not a model file of a known format\n")
    os.unlink(work / path)
    mvc("checkout", "--force", "HEAD")
    assert (work / path).read_bytes() == data
