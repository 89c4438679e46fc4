"""Git's habits: restore, mv with renames, commit messages, and reading stored bytes without
touching the working tree."""

from __future__ import annotations

import os

import numpy as np
from conftest import index_as_json, random_bytes, write
from modelfiles import write_safetensors

from modelvc.cli.main import cli


def committed(mvc, work, name: str, data: bytes, message: str) -> str:
    write(work / name, data)
    mvc("add", name)
    return mvc("commit", "-q", "-m", message).stdout.strip()


def index_entries(work) -> dict[str, dict]:
    return {e["path"]: e for e in index_as_json(work)["entries"]}


# ---- undo staging ---------------------------------------------------------------------

def test_restore_staged_unstages_and_keeps_the_working_file(mvc, work):
    committed(mvc, work, "a.bin", b"committed", "one")
    write(work / "a.bin", b"edited")
    write(work / "new.bin", b"new")
    mvc("add", "a.bin", "new.bin")
    assert mvc("status", "-s").stdout == "M  a.bin\nA  new.bin\n"
    assert mvc("restore", "--staged", "a.bin", "new.bin").stdout == "unstaged 'a.bin'\nunstaged 'new.bin'\n"
    assert mvc("status", "-s").stdout == " M a.bin\n?? new.bin\n"
    assert (work / "a.bin").read_bytes() == b"edited" and (work / "new.bin").read_bytes() == b"new"
    head_file = mvc.json("show", "HEAD:a.bin")
    assert index_entries(work)["a.bin"]["size"] == head_file["size"] == len(b"committed")
    result = mvc("restore", "--staged", "ghost.bin", ok=False)
    assert (result.exit_code, result.stderr) == (4, "error: pathspec 'ghost.bin' did not match any files\n")


def test_restore_and_checkout_dashdash_bring_the_index_version_back(mvc, work):
    committed(mvc, work, "a.bin", b"committed", "one")
    write(work / "a.bin", b"staged")
    mvc("add", "a.bin")
    write(work / "a.bin", b"scribbled")
    assert mvc("restore", "a.bin").stdout == "restored 'a.bin'\n"
    assert (work / "a.bin").read_bytes() == b"staged"  # the index's version, not HEAD's
    assert mvc("status", "-s").stdout == "M  a.bin\n"
    write(work / "a.bin", b"scribbled again")
    (work / "sub").mkdir()
    write(work / "sub" / "b.bin", b"b")
    mvc("add", "sub/b.bin")
    (work / "sub" / "b.bin").unlink()
    assert mvc("checkout", "--", "a.bin", "sub").stdout == "Updated 2 paths from the index\n"
    assert (work / "a.bin").read_bytes() == b"staged" and (work / "sub" / "b.bin").read_bytes() == b"b"
    assert mvc("restore", "-S", "-W", "a.bin").stdout == "unstaged 'a.bin'\nrestored 'a.bin'\n"
    assert (work / "a.bin").read_bytes() == b"committed"
    assert mvc("status", "-s").stdout == "A  sub/b.bin\n"


# ---- mv and renames -------------------------------------------------------------------

def test_mv_keeps_the_file_id_and_shows_a_rename(mvc, work):
    data = random_bytes(300_000, seed=7)
    committed(mvc, work, "model.bin", data, "one")
    committed(mvc, work, "other.bin", b"other", "two")
    file_id = index_entries(work)["model.bin"]["file"]
    objects_before = sorted(os.listdir(work / ".mvc" / "objects"))
    packs_before = sorted(os.listdir(work / ".mvc" / "packs"))
    assert mvc("mv", "model.bin", "models/final.bin").stdout == "rename 'model.bin' -> 'models/final.bin'\n"
    assert not (work / "model.bin").exists() and (work / "models" / "final.bin").read_bytes() == data
    assert index_entries(work)["models/final.bin"]["file"] == file_id
    assert sorted(os.listdir(work / ".mvc" / "objects")) == objects_before
    assert sorted(os.listdir(work / ".mvc" / "packs")) == packs_before
    assert mvc("status", "-s").stdout == "R  model.bin -> models/final.bin\n"
    assert "\trenamed:    model.bin -> models/final.bin\n" in mvc("status").stdout
    assert mvc.json("status")["staged"] == [{"status": "renamed", "path": "models/final.bin",
                                              "old_path": "model.bin"}]
    assert mvc("diff", "--no-tensors").stdout == "renamed   model.bin -> models/final.bin  293.0 KiB\n"
    mvc("commit", "-m", "move")
    files = mvc.json("diff", "HEAD~1", "HEAD")["files"]
    assert [(f["status"], f["old_path"], f["path"], f["shared_bytes"]) for f in files] == [
        ("renamed", "model.bin", "models/final.bin", 300_000)]
    result = mvc("mv", "other.bin", "models/final.bin", ok=False)
    assert result.exit_code == 5
    assert result.stderr.startswith("error: destination exists, source=other.bin, destination=models/final.bin\n")
    result = mvc("mv", "untracked.bin", "x.bin", ok=False)
    assert result.exit_code == 4
    mvc("mv", "models", "weights")  # a directory: every entry under it moves
    assert sorted(index_entries(work)) == ["other.bin", "weights/final.bin"]
    assert mvc("status", "-s").stdout == "R  models/final.bin -> weights/final.bin\n"


# ---- commit messages ------------------------------------------------------------------

def test_commit_message_paragraphs_and_files(mvc, work):
    write(work / "a.bin", b"1")
    mvc("add", "a.bin")
    mvc("commit", "-m", "Subject", "-m", "Body paragraph.\nSecond line.")
    assert mvc.json("log", "-n", "1")[0]["message"] == "Subject\n\nBody paragraph.\nSecond line."
    write(work / "msg.txt", b"From a file  \n\n\n\nwith a body\n\n")
    mvc("commit", "--allow-empty", "-F", str(work / "msg.txt"))
    assert mvc.json("log", "-n", "1")[0]["message"] == "From a file\n\nwith a body"
    result = mvc.runner.invoke(cli, ["-C", str(work), "commit", "--allow-empty", "-F", "-"],
                               input="From stdin\n")
    assert result.exit_code == 0, result.stderr
    assert mvc.json("log", "-n", "1")[0]["message"] == "From stdin"
    assert mvc("commit", "--allow-empty", "-m", "x", "-F", "-", ok=False).exit_code == 2
    result = mvc("commit", "--allow-empty", ok=False)
    assert (result.exit_code, result.stderr) == (
        2, "error: no commit message\nhint: give one with -m MESSAGE or -F FILE\n")


# ---- reading stored bytes -------------------------------------------------------------

def test_cat_and_show_raw_stream_stored_bytes_and_touch_nothing(mvc, work):
    v1, v2 = random_bytes(200_000, seed=1), random_bytes(200_000, seed=2)
    committed(mvc, work, "m.bin", v1, "one")
    write(work / "m.bin", v2)
    mvc("add", "m.bin")
    write(work / "m.bin", b"unsaved work")
    index_before = (work / ".mvc" / "index").read_bytes()
    assert mvc("cat", "HEAD:m.bin").stdout_bytes == v1
    assert mvc("show", "--raw", "HEAD:m.bin").stdout_bytes == v1
    mvc("cat", "HEAD:m.bin", "-o", "copy.bin")
    assert (work / "copy.bin").read_bytes() == v1
    assert (work / "m.bin").read_bytes() == b"unsaved work"
    assert (work / ".mvc" / "index").read_bytes() == index_before
    result = mvc("cat", "HEAD:nope.bin", ok=False)
    assert (result.exit_code, result.stdout) == (4, "")
    assert mvc("cat", "HEAD", ok=False).exit_code == 2


def test_cat_of_corrupt_data_fails_and_leaves_no_output_file(mvc, work):
    committed(mvc, work, "m.bin", random_bytes(100_000, seed=3), "one")
    pack = next(p for p in (work / ".mvc" / "packs").iterdir() if p.suffix == ".pack")
    data = bytearray(pack.read_bytes())
    data[len(data) // 2] ^= 0xFF
    os.chmod(pack, 0o644)
    pack.write_bytes(bytes(data))
    result = mvc("cat", "HEAD:m.bin", "-o", "copy.bin", ok=False)
    assert result.exit_code == 7
    assert sorted(p.name for p in work.iterdir()) == [".mvc", "m.bin"]


def test_show_of_a_working_file_lists_its_tensors(mvc, work):
    write_safetensors(work / "m.safetensors", {"w": np.ones((2, 3), np.float32)})
    text = mvc("show", "m.safetensors").stdout
    assert text.splitlines()[:2] == ["m.safetensors (working tree): 96 B",
                                     "format: safetensors, 1 tensors, 6 parameters, 24 B"]
    data = mvc.json("show", "m.safetensors")
    assert (data["commit"], data["path"], data["size"]) == (None, "m.safetensors", 96)
    assert [(t["name"], t["dtype"], t["shape"]) for t in data["model"]["tensors"]] == [("w", "F32", [2, 3])]
    mvc("add", "m.safetensors")
    mvc("commit", "-m", "one")
    mvc("branch", "m.safetensors")
    result = mvc("show", "m.safetensors", ok=False)
    assert (result.exit_code, result.stderr.splitlines()[0]) == (
        2, "error: ambiguous argument 'm.safetensors': both revision and filename")


def test_help_of_each_new_command_and_option(mvc):
    expected = {("mv",): "Move or rename tracked files", ("restore",): "Undo staging or local edits",
                ("cat",): "Write the bytes of PATH as stored in REV", ("completion",): "completion script",
                ("reflog", "expire"): "--expire-unreachable", ("reflog",): "mvc reflog expire",
                ("branch",): "-D", ("log",): "--all", ("commit",): "-F, --file", ("show",): "--raw",
                ("gc",): "--prune TIME"}
    listing = mvc("--help").stdout
    for words, text in expected.items():
        assert words[0] in listing
        assert text in mvc(*words, "--help").stdout, words
