import re
import time

import pytest

from modelvc.errors import IntegrityError, RefConflictError, RefError
from modelvc.refs import ZERO_ID, Head, ReflogEntry, Refs

A = "a" * 64
B = "b" * 64
C = "c" * 64
D = "d" * 64


def local_tz(seconds: int) -> str:
    offset = time.localtime(seconds).tm_gmtoff // 60
    sign = "+" if offset >= 0 else "-"
    return f"{sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"


@pytest.fixture
def mvc_dir(tmp_path):
    directory = tmp_path / ".mvc"
    directory.mkdir()
    return directory


@pytest.fixture
def refs(mvc_dir):
    r = Refs(mvc_dir, lambda: ("Ada Lovelace", "ada@example.com"))
    r.set_head_branch("main", "init")
    return r


def test_fresh_repository_has_unborn_main(refs, mvc_dir):
    assert (mvc_dir / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert refs.head() == Head(branch="main", commit=None)
    assert refs.read("HEAD") is None
    assert refs.read("refs/heads/main") is None
    assert refs.branches() == {}


def test_update_creates_branch_file_and_logs_to_branch_and_head(refs, mvc_dir):
    before = int(time.time())
    refs.update("refs/heads/main", A, None, "commit (initial): first")
    after = int(time.time())
    assert (mvc_dir / "refs/heads/main").read_text() == f"{A}\n"
    assert refs.head() == Head("main", A)
    assert refs.read("HEAD") == A

    line = (mvc_dir / "logs/refs/heads/main").read_text()
    match = re.fullmatch(
        rf"{ZERO_ID} {A} Ada Lovelace <ada@example\.com> (\d+) ([+-]\d{{4}})"
        r"\tcommit \(initial\): first\n",
        line,
    )
    assert match, line
    assert before <= int(match[1]) <= after
    assert match[2] == local_tz(int(match[1]))
    head_log = (mvc_dir / "logs/HEAD").read_text().splitlines()
    assert head_log[0].startswith(f"{ZERO_ID} {ZERO_ID} Ada Lovelace")  # the init line
    assert head_log[1] == line.rstrip("\n")


def test_updating_another_branch_does_not_touch_head_log(refs, mvc_dir):
    refs.update("refs/heads/main", A, None, "one")
    refs.update("refs/heads/dev", B, None, "branch: created")
    assert [e.new for e in refs.reflog("HEAD")] == [A, ZERO_ID]
    assert [e.new for e in refs.reflog("refs/heads/dev")] == [B]


def test_reflog_is_newest_first_with_all_fields(refs):
    refs.update("refs/heads/main", A, None, "one")
    refs.update("refs/heads/main", B, A, "two")
    entries = refs.reflog("refs/heads/main")
    assert [(e.old, e.new, e.message) for e in entries] == [(A, B, "two"), (ZERO_ID, A, "one")]
    assert entries[0].who == "Ada Lovelace <ada@example.com>"
    assert isinstance(entries[0], ReflogEntry)
    assert entries[0].tz == local_tz(entries[0].time)


def test_compare_and_swap_conflicts_have_exact_messages(refs):
    refs.update("refs/heads/main", A, None, "one")
    with pytest.raises(RefConflictError) as caught:
        refs.update("refs/heads/main", B, None, "x")
    assert str(caught.value) == "ref refs/heads/main moved (expected nothing, found aaaaaaaaaa)"
    with pytest.raises(RefConflictError) as caught:
        refs.update("refs/heads/main", B, C, "x")
    assert str(caught.value) == "ref refs/heads/main moved (expected cccccccccc, found aaaaaaaaaa)"
    with pytest.raises(RefConflictError) as caught:
        refs.update("refs/heads/other", B, C, "x")
    assert str(caught.value) == "ref refs/heads/other moved (expected cccccccccc, found nothing)"
    assert refs.read("refs/heads/main") == A
    assert len(refs.reflog("refs/heads/main")) == 1  # failed updates log nothing


def test_invalid_names_and_ids_are_refused(refs, mvc_dir):
    with pytest.raises(RefError) as caught:
        refs.update("refs/heads/bad..name", A, None, "x")
    assert str(caught.value) == "invalid branch name 'bad..name': contains '..'"
    with pytest.raises(RefError) as caught:
        refs.update("refs/tags/v1.lock", A, None, "x")
    assert str(caught.value) == "invalid tag name 'v1.lock': ends with '.lock'"
    with pytest.raises(RefError) as caught:
        refs.read("config")
    assert str(caught.value) == "invalid ref 'config': expected HEAD or a name under refs/"
    with pytest.raises(ValueError):
        refs.update("refs/heads/main", "abc", None, "x")
    with pytest.raises(ValueError):
        refs.update("refs/heads/main", ZERO_ID, None, "x")
    assert not (mvc_dir / "refs").exists()


def test_nested_branches_list_sorted_and_skip_temp_files(refs, mvc_dir):
    refs.update("refs/heads/zeta", A, None, "x")
    refs.update("refs/heads/feature/b", B, None, "x")
    refs.update("refs/heads/feature/a", C, None, "x")
    refs.update("refs/tags/v2", D, None, "x")
    refs.update("refs/tags/v1", A, None, "x")
    (mvc_dir / "refs/heads/.zeta.123.tmp").write_text("garbage")
    assert list(refs.branches().items()) == [("feature/a", C), ("feature/b", B), ("zeta", A)]
    assert list(refs.tags().items()) == [("v1", A), ("v2", D)]


def test_delete_removes_empty_parents_keeps_reflog(refs, mvc_dir):
    refs.update("refs/heads/team/x/feat", A, None, "create")
    refs.update("refs/heads/team/other", B, None, "create")
    refs.delete("refs/heads/team/x/feat", A, "branch: deleted")
    assert not (mvc_dir / "refs/heads/team/x").exists()
    assert (mvc_dir / "refs/heads/team/other").is_file()
    refs.delete("refs/heads/team/other", B, "branch: deleted")
    assert not (mvc_dir / "refs/heads/team").exists()
    assert (mvc_dir / "refs/heads").is_dir()
    assert refs.branches() == {}
    entries = refs.reflog("refs/heads/team/x/feat")
    assert [(e.old, e.new, e.message) for e in entries] == [
        (A, ZERO_ID, "branch: deleted"),
        (ZERO_ID, A, "create"),
    ]


def test_delete_is_compare_and_swap(refs):
    refs.update("refs/tags/v1", A, None, "x")
    with pytest.raises(RefConflictError) as caught:
        refs.delete("refs/tags/v1", B, "x")
    assert str(caught.value) == "ref refs/tags/v1 moved (expected bbbbbbbbbb, found aaaaaaaaaa)"
    with pytest.raises(RefConflictError):
        refs.delete("refs/tags/none", B, "x")
    assert refs.tags() == {"v1": A}


def test_branch_and_its_path_prefix_cannot_coexist(refs):
    refs.update("refs/heads/a", A, None, "x")
    with pytest.raises(RefError) as caught:
        refs.update("refs/heads/a/b", B, None, "x")
    assert str(caught.value) == "cannot create branch 'a/b': branch 'a' exists"
    assert "cannot coexist" in caught.value.hint

    refs.update("refs/tags/x/y/z", A, None, "x")
    with pytest.raises(RefError) as caught:
        refs.update("refs/tags/x", B, None, "x")
    assert str(caught.value) == "cannot create tag 'x': tag 'x/y/z' exists"
    assert refs.branches() == {"a": A}
    assert refs.tags() == {"x/y/z": A}


def test_recreating_over_a_deleted_refs_log_moves_it_to_the_attic(refs, mvc_dir):
    refs.update("refs/heads/a", A, None, "x")
    refs.delete("refs/heads/a", A, "deleted")
    refs.update("refs/heads/a/b", B, None, "created a/b")
    assert [e.new for e in refs.reflog("refs/heads/a/b")] == [B]
    attic = list((mvc_dir / "logs/attic/refs/heads").iterdir())
    assert len(attic) == 1 and attic[0].name.startswith("a@")

    refs.delete("refs/heads/a/b", B, "deleted")
    refs.update("refs/heads/a", C, None, "a again")  # logs/refs/heads/a is now a directory
    assert [e.new for e in refs.reflog("refs/heads/a")] == [C]
    assert refs.all_reflog_ids() == {A, B, C}


def test_update_head_on_unborn_branch_creates_it(refs, mvc_dir):
    refs.update_head(A, None, "commit (initial)")
    assert refs.branches() == {"main": A}
    refs.update_head(B, A, "commit")
    assert refs.head() == Head("main", B)
    with pytest.raises(RefConflictError) as caught:
        refs.update_head(C, A, "commit")
    assert str(caught.value) == "ref refs/heads/main moved (expected aaaaaaaaaa, found bbbbbbbbbb)"


def test_detached_head(refs, mvc_dir):
    refs.update_head(A, None, "one")
    refs.set_head_detached(B, "checkout: moving to bbbb")
    assert (mvc_dir / "HEAD").read_text() == f"{B}\n"
    assert refs.head() == Head(None, B)
    refs.update_head(C, B, "commit on detached head")
    assert refs.head() == Head(None, C)
    assert refs.branches() == {"main": A}  # the branch did not move
    with pytest.raises(RefConflictError) as caught:
        refs.update_head(D, B, "x")
    assert str(caught.value) == "ref HEAD moved (expected bbbbbbbbbb, found cccccccccc)"
    refs.update("HEAD", D, C, "via update")
    assert refs.head() == Head(None, D)
    assert [(e.old, e.new) for e in refs.reflog()][:4] == [(C, D), (B, C), (A, B), (ZERO_ID, A)]


def test_set_head_branch_logs_the_move(refs, mvc_dir):
    refs.update_head(A, None, "one")
    refs.update("refs/heads/dev", B, None, "branch")
    refs.set_head_branch("dev", "checkout: moving from main to dev")
    assert refs.head() == Head("dev", B)
    newest = refs.reflog()[0]
    assert (newest.old, newest.new, newest.message) == (A, B, "checkout: moving from main to dev")
    refs.set_head_branch("new", "checkout: new unborn branch")
    assert refs.head() == Head("new", None)
    assert (refs.reflog()[0].old, refs.reflog()[0].new) == (B, ZERO_ID)
    with pytest.raises(RefError):
        refs.set_head_branch("-bad", "x")
    assert refs.head() == Head("new", None)


def test_reflog_skips_torn_and_garbled_lines(refs, mvc_dir):
    refs.update("refs/heads/main", A, None, "one")
    log = mvc_dir / "logs/refs/heads/main"
    with open(log, "a") as handle:
        handle.write("this is not a reflog line\n")
        handle.write(f"{A} {B} Ada <a@b> 12 +0000\tmissing newline: torn")
    assert [e.message for e in refs.reflog("refs/heads/main")] == ["one"]
    assert refs.all_reflog_ids() == {A}


def test_messages_and_identity_cannot_break_the_line_format(mvc_dir):
    refs = Refs(mvc_dir, lambda: ("Eve <x>\tNew\nline", "e<v>e@x"))
    refs.set_head_branch("main", "first line\nsecond line")
    (entry,) = refs.reflog()
    assert entry.message == "first line second line"
    assert entry.who == "Eve xNewline <eve@x>"


def test_all_reflog_ids_excludes_zero(refs):
    refs.update("refs/heads/main", A, None, "x")
    refs.update("refs/heads/main", B, A, "x")
    refs.update("refs/tags/v1", C, None, "x")
    refs.delete("refs/tags/v1", C, "x")
    assert refs.all_reflog_ids() == {A, B, C}


def test_corrupt_ref_and_head_are_integrity_errors(refs, mvc_dir):
    (mvc_dir / "refs/heads").mkdir(parents=True)
    (mvc_dir / "refs/heads/main").write_text("not an id\n")
    with pytest.raises(IntegrityError) as caught:
        refs.read("refs/heads/main")
    assert str(caught.value) == (
        "ref refs/heads/main is corrupt: it holds 'not an id' instead of a commit id"
    )
    (mvc_dir / "HEAD").write_text("garbage\n")
    with pytest.raises(IntegrityError) as caught:
        refs.head()
    assert str(caught.value) == f"{mvc_dir / 'HEAD'} is missing or corrupt"


def test_reading_a_directory_ref_is_absent(refs):
    refs.update("refs/heads/a/b", A, None, "x")
    assert refs.read("refs/heads/a") is None
    assert refs.read("refs/heads/a/b/c") is None
    assert refs.read("refs/heads") is None


def test_leftover_empty_directory_does_not_block_a_branch(refs, mvc_dir):
    (mvc_dir / "refs/heads/x/y").mkdir(parents=True)  # left by a crash mid-delete
    (mvc_dir / "refs/heads/x/.tmp-file.tmp").write_text("junk")
    refs.update("refs/heads/x", A, None, "x")
    assert refs.branches() == {"x": A}


def test_a_ref_moved_by_another_writer_mid_update_is_not_overwritten(refs, mvc_dir, monkeypatch):
    """The ref is written by the backend's compare-and-swap against the bytes that were read,
    so a move made between the read and the write (by a writer without the lock) is kept."""
    refs.update("refs/heads/main", A, None, "first")
    log_move = refs._log_ref_move

    def another_writer_moves_it(*args):
        log_move(*args)
        (mvc_dir / "refs/heads/main").write_text(C + "\n")

    monkeypatch.setattr(refs, "_log_ref_move", another_writer_moves_it)
    with pytest.raises(RefConflictError, match=f"ref refs/heads/main moved .*{C[:10]}"):
        refs.update("refs/heads/main", B, A, "second")
    assert (mvc_dir / "refs/heads/main").read_text() == C + "\n"


def test_a_ref_written_by_hand_without_newline_still_moves(refs, mvc_dir):
    (mvc_dir / "refs/heads").mkdir(parents=True, exist_ok=True)
    (mvc_dir / "refs/heads/main").write_text(A)
    refs.update("refs/heads/main", B, A, "move")
    assert (mvc_dir / "refs/heads/main").read_text() == B + "\n"
    assert refs.branches() == {"main": B}


def test_a_reflog_read_again_sees_every_change_since(refs, mvc_dir):
    """Each reflog is parsed once while it stays the same file: an append, a garbled line
    or a rewrite made since the last read is seen by the next one."""
    refs.update("refs/heads/main", A, None, "one")
    assert [e.message for e in refs.reflog("refs/heads/main")] == ["one"]
    assert refs.garbled_reflog_lines() == []
    refs.update("refs/heads/main", B, A, "two")
    assert [e.message for e in refs.reflog("refs/heads/main")] == ["two", "one"]
    with open(mvc_dir / "logs/refs/heads/main", "a") as handle:
        handle.write("garbled\n")
    assert refs.garbled_reflog_lines() == [("logs/refs/heads/main", 3)]
    assert refs.all_reflog_ids() == {A, B}
    refs.rewrite_reflog("refs/heads/main", refs.reflog_file("refs/heads/main")[:1])
    assert [e.message for e in refs.reflog("refs/heads/main")] == ["one"]
    assert refs.garbled_reflog_lines() == []
