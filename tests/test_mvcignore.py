"""`.mvcignore` follows `.gitignore` exactly: each case is also checked against git itself."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import write
from gitrepo import git, isolate_git

from modelvc.ignore import IgnoreRules

FILES = ["a.bin", "models/a.bin", "models/sub/b.bin", "logs/run.log", "src/logs/x.txt",
         "keep.log", "deep/x/tmp/t.bin", "build", "out/build/o.bin", "docs/a.md", "x/docs/a.md"]

CASES = [
    # (patterns, the files among FILES that stay, i.e. are not ignored)
    (["/*", "!/models/"], ["models/a.bin", "models/sub/b.bin"]),
    (["*.log", "!keep.log"], [f for f in FILES if f != "logs/run.log"]),
    (["logs/"], [f for f in FILES if f not in ("logs/run.log", "src/logs/x.txt")]),
    (["/logs/"], [f for f in FILES if f != "logs/run.log"]),
    (["**/tmp/**"], [f for f in FILES if f != "deep/x/tmp/t.bin"]),
    (["build/"], [f for f in FILES if f != "out/build/o.bin"]),  # a file named build stays
    (["docs/*.md"], [f for f in FILES if f != "docs/a.md"]),  # an inner slash anchors
    (["models/", "!models/a.bin"], [f for f in FILES if not f.startswith("models/")]),  # parent excluded
    (["# comment", "\\#not", "*.bin", "!/models/**"], [f for f in FILES if not f.endswith(".bin")
                                                      or f.startswith("models/")]),
]


def make_tree(work, patterns):
    for name in FILES:
        write(work / name, name.encode())
    write(work / ".mvcignore", ("\n".join(patterns) + "\n").encode())


@pytest.mark.parametrize("patterns,kept", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_status_lists_what_git_would_not_ignore(mvc, work, patterns, kept):
    make_tree(work, patterns)
    untracked = mvc.json("status")["untracked"]
    assert [p for p in untracked if p != ".mvcignore"] == sorted(kept)


@pytest.mark.parametrize("patterns,kept", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_the_expected_answers_are_gits(tmp_path, monkeypatch, patterns, kept):
    isolate_git(monkeypatch)
    make_tree(tmp_path, patterns)
    (tmp_path / ".gitignore").write_bytes((tmp_path / ".mvcignore").read_bytes())
    git(tmp_path, "init", "-q")
    listed = git(tmp_path, "ls-files", "--others", "--exclude-standard").split()
    assert sorted(p for p in listed if p in FILES) == sorted(kept)


def test_add_of_an_ignored_path_needs_force(mvc, work):
    write(work / ".mvcignore", b"*.tmp\ncache/\n")
    write(work / "x.tmp", b"x")
    write(work / "cache" / "c.bin", b"c")
    write(work / "ok.bin", b"o")
    result = mvc("add", "x.tmp", "ok.bin", ok=False)
    assert result.exit_code == 1
    assert result.stderr == ("error: the following paths are ignored by .mvcignore:\nx.tmp\n"
                             "hint: use -f if you really want to add them\n")
    assert mvc.json("status")["staged"] == []
    refused = mvc("add", "cache", ok=False).stderr
    assert refused.startswith("error: the following paths are ignored by .mvcignore:\ncache\n")
    assert mvc.json("add", "-f", "x.tmp", "cache")["staged"] == ["cache/c.bin", "x.tmp"]
    assert mvc.json("add", ".")["staged"] == [".mvcignore", "ok.bin"]
    write(work / "x.tmp", b"changed")
    assert mvc.json("add", "x.tmp")["staged"] == ["x.tmp"]  # tracked already: no -f needed, as git


def test_a_non_utf8_mvcignore_is_a_config_error(mvc, work):
    write(work / ".mvcignore", b"caf\xe9/\n")
    result = mvc("status", ok=False)
    assert result.exit_code == 14
    assert result.stderr == (f"error: {work / '.mvcignore'} is not UTF-8 text (byte 3 is 0xe9)\n"
                             "hint: save .mvcignore as UTF-8\n")


def test_empty_rules_never_load_pathspec():
    assert IgnoreRules(["# only a comment", ""]).ignored("x", False) is False
    code = ("import sys; from modelvc.ignore import IgnoreRules; from pathlib import Path; "
            "IgnoreRules.load(Path('.')); print('pathspec' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd="/")
    assert done.stdout == "False\n", done.stderr
