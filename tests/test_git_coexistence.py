"""mvc in a git work tree: .git untouched, .gitignore kept, each commit names the git commit."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from conftest import random_bytes, write
from gitrepo import git, isolate_git, snapshot

from modelvc.objects import CodeVersion, Commit, Signature, encode


@pytest.fixture
def code_repo(work, monkeypatch) -> Path:
    """A git repository with code committed, and a stale git index (a plain `git status` would
    rewrite .git/index: the test that .git stays byte-identical can fail)."""
    isolate_git(monkeypatch)
    git(work, "init", "-q", "-b", "main")
    write(work / "train.py", b"print('train')\n")
    write(work / "src" / "util.py", b"X = 1\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "code")
    future = time.time() + 5
    os.utime(work / "train.py", (future, future))
    return work


def test_init_adds_the_store_to_gitignore_once(code_repo, mvc_runner):
    result = mvc_runner("init")
    assert result.stdout == (f"Initialized empty modelvc repository in {code_repo / '.mvc'}\n"
                             f"Added /.mvc/ to {code_repo / '.gitignore'}\n")
    assert (code_repo / ".gitignore").read_bytes() == b"/.mvc/\n"
    assert git(code_repo, "status", "--porcelain") == "?? .gitignore\n"


def test_init_quiet_prints_nothing_and_still_ignores_the_store(code_repo, mvc_runner):
    result = mvc_runner("init", "-q")
    assert (result.exit_code, result.stdout) == (0, "")
    assert (code_repo / ".mvc" / "HEAD").is_file()
    assert (code_repo / ".gitignore").read_bytes() == b"/.mvc/\n"
    assert mvc_runner("init", "-q", ok=False).exit_code == 3  # an existing repository is refused, quiet or not


def test_init_keeps_an_existing_gitignore_and_says_so_in_json(code_repo, mvc_runner):
    write(code_repo / ".gitignore", b"__pycache__/\n*.pyc")
    data = json.loads(mvc_runner("init", "--json").stdout)
    assert data["gitignore"] == {"file": str(code_repo / ".gitignore"), "added": ["/.mvc/"]}
    assert (code_repo / ".gitignore").read_bytes() == b"__pycache__/\n*.pyc\n/.mvc/\n"
    assert oct((code_repo / ".gitignore").stat().st_mode & 0o777) == oct(0o644 & ~_umask())


def test_init_outside_git_writes_no_gitignore(work, mvc_runner):
    data = json.loads(mvc_runner("init", "--json").stdout)
    assert data["gitignore"] is None
    assert not (work / ".gitignore").exists()


def test_add_dot_leaves_git_files_to_git_and_ignores_what_it_stores(code_repo, mvc_runner):
    mvc_runner("init")
    write(code_repo / "models" / "model.bin", random_bytes(3000))
    write(code_repo / "weights [v1].bin", b"w")
    data = json.loads(mvc_runner("add", ".", "--json").stdout)
    assert data["staged"] == ["models/model.bin", "weights [v1].bin"]
    assert data["left_to_git"] == [".gitignore", "src/util.py", "train.py"]
    assert data["gitignore"]["added"] == ["/models/model.bin", "/weights \\[v1].bin"]
    assert (code_repo / ".gitignore").read_bytes() == b"/.mvc/\n/models/model.bin\n/weights \\[v1].bin\n"
    assert git(code_repo, "status", "--porcelain", "--untracked-files=all") == "?? .gitignore\n"
    again = json.loads(mvc_runner("add", ".", "--json").stdout)
    assert again["gitignore"]["added"] == []
    status = json.loads(mvc_runner("status", "--json").stdout)
    assert status["untracked"] == []


def test_add_of_a_file_git_tracks_warns_it_is_versioned_twice(code_repo, mvc_runner):
    mvc_runner("init")
    result = mvc_runner("add", "train.py")
    assert result.stderr == "warning: train.py is tracked by git too: it is now versioned twice\n"
    assert b"train.py" not in (code_repo / ".gitignore").read_bytes()


def test_no_gitignore_option_and_config_key(code_repo, mvc_runner):
    mvc_runner("init")
    write(code_repo / "a.bin", b"a")
    write(code_repo / "b.bin", b"b")
    assert json.loads(mvc_runner("add", "a.bin", "--no-gitignore", "--json").stdout)["gitignore"] is None
    mvc_runner("config", "core.gitignore", "false")
    mvc_runner("add", "b.bin")
    assert (code_repo / ".gitignore").read_bytes() == b"/.mvc/\n"
    mvc_runner("add", "b.bin", "--gitignore")
    assert (code_repo / ".gitignore").read_bytes() == b"/.mvc/\n/b.bin\n"


def test_commits_record_git_head_and_dirtiness(code_repo, mvc_runner):
    mvc_runner("init")
    head = git(code_repo, "rev-parse", "HEAD").strip()
    write(code_repo / "model.bin", b"v1")
    mvc_runner("add", "model.bin")
    mvc_runner("commit", "-m", "clean")
    assert mvc_runner.json("show")["git"] == {"commit": head, "dirty": False}
    write(code_repo / "train.py", b"print('changed')\n")
    write(code_repo / "model.bin", b"v2")
    mvc_runner("commit", "-a", "-m", "dirty")
    log = mvc_runner.json("log")
    assert [e["git"] for e in log] == [{"commit": head, "dirty": True}, {"commit": head, "dirty": False}]
    text = mvc_runner("log").stdout
    assert f"Git:    {head} (dirty)\n" in text and f"Git:    {head}\n" in text
    assert f"Git:    {head} (dirty)\n" in mvc_runner("show").stdout


def test_git_is_byte_identical_after_add_commit_checkout_rollback(code_repo, mvc_runner):
    mvc_runner("init")
    before = snapshot(code_repo / ".git")
    write(code_repo / "model.bin", random_bytes(5000, seed=1))
    write(code_repo / "nested" / ".git", b"gitdir: ../.git/modules/nested\n")
    write(code_repo / "sub" / ".git" / "HEAD", b"ref: refs/heads/main\n")
    mvc_runner("add", ".")
    mvc_runner("commit", "-m", "one")
    write(code_repo / "model.bin", random_bytes(5000, seed=2))
    mvc_runner("commit", "-a", "-m", "two")
    mvc_runner("checkout", "HEAD~1")
    mvc_runner("checkout", "main")
    mvc_runner("rollback")
    assert snapshot(code_repo / ".git") == before
    assert [f["path"] for f in mvc_runner.json("show", "HEAD~2")["files"]] == ["model.bin"]
    assert mvc_runner.json("show")["git"]["commit"] == git(code_repo, "rev-parse", "HEAD").strip()
    git(code_repo, "status")  # plain git status rewrites the stale index: the check could fail
    assert snapshot(code_repo / ".git") != before


def test_dot_git_and_dot_mvc_are_never_listed_added_or_written(mvc, work):
    write(work / ".mvcignore", b"!.git\n!.mvc\n!**/.git/**\n")
    write(work / "inner" / ".git" / "config", b"[core]\n")
    write(work / "inner" / ".mvc" / "config", b"{}")
    write(work / "deep" / "a" / ".git", b"gitdir: elsewhere\n")
    write(work / "m.bin", b"m")
    assert mvc.json("status")["untracked"] == [".mvcignore", "m.bin"]
    assert mvc.json("add", ".")["staged"] == [".mvcignore", "m.bin"]
    for path in ("inner/.git/config", ".git", "deep/a/.git", ".mvc/config"):
        result = mvc("add", "-f", path, ok=False)
        assert result.exit_code == 2, path
        assert result.stderr == f"error: path '{path}' is inside a .mvc or .git directory, which mvc never touches\n"


def test_checkout_never_writes_a_dot_git_path_a_tree_holds(mvc, work):
    """A tree made by an older mvc that versioned .git: checking it out leaves .git alone."""
    from modelvc.objects import Tree, TreeEntry
    from modelvc.repo import Repo

    write(work / "m.bin", b"m")
    mvc("add", "m.bin")
    mvc("commit", "-m", "one")
    repo = Repo.discover(work)
    manifest = repo.read_manifest(repo.tree_of(repo.head_commit()).entries[0].manifest_id)
    bad = Tree((TreeEntry(".git/config", repo.objects.put(manifest), manifest.size),
                TreeEntry("m.bin", repo.objects.put(manifest), manifest.size)))
    commit = Commit(repo.objects.put(bad), (repo.head_commit(),), repo.signature_now(), "bad")
    commit_id = repo.objects.put(commit)
    mvc("checkout", commit_id)  # an older mvc versioned .git/: its commits stay readable
    assert not (work / ".git").exists()
    assert (work / "m.bin").read_bytes() == b"m"


def test_without_git_on_path_nothing_fails_and_commits_encode_as_before(code_repo, tmp_path, monkeypatch,
                                                                       mvc_runner):
    empty = tmp_path / "nobin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert json.loads(mvc_runner("init", "--json").stdout)["gitignore"] is None
    write(code_repo / "model.bin", b"m")
    mvc_runner("add", ".")
    mvc_runner("commit", "-m", "no git")
    assert mvc_runner.json("show")["git"] is None
    assert not (code_repo / ".gitignore").exists()


def test_a_commit_without_git_keeps_its_old_encoding_and_one_with_git_round_trips():
    author = Signature("A", "a@x", 1700000000, 60)
    plain = Commit("ab" * 32, (), author, "m")
    assert encode(plain) == (b'{"author":{"email":"a@x","name":"A","time":1700000000,"tz":60},"message":"m",'
                             b'"meta":{},"metrics":{},"params":{},"parents":[],"tree":"' + b"ab" * 32
                             + b'","type":"commit"}')
    with_git = Commit("ab" * 32, (), author, "m", git=CodeVersion("c" * 40, True))
    assert b',"git":{"commit":"' + b"c" * 40 + b'","dirty":true},' in encode(with_git)
    assert Commit.from_dict(json.loads(encode(with_git))) == with_git


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
