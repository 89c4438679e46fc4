"""mvc config: dotted keys in .mvc/config and the global file; identity as git finds it."""

from __future__ import annotations

import json

import pytest
from conftest import write
from gitrepo import git, isolate_git

from modelvc.repo import IDENTITY_UNKNOWN


@pytest.fixture
def home(tmp_path, monkeypatch):
    directory = tmp_path / "home"
    directory.mkdir()
    monkeypatch.setenv("HOME", str(directory))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    isolate_git(monkeypatch)
    return directory


def test_set_get_list_unset_in_the_repository(mvc, work, home):
    mvc("config", "user.name", "Ada Lovelace")
    mvc("config", "gc.reflogExpire", "2.weeks")
    mvc("config", "core.gitignore", "off")
    mvc("config", "delta_max_depth", "3")
    config = json.loads((work / ".mvc" / "config").read_bytes())
    assert config["user"] == {"name": "Ada Lovelace"}
    assert config["gc"] == {"reflogExpire": "2.weeks"}
    assert config["core"] == {"gitignore": False} and config["delta_max_depth"] == 3
    assert mvc("config", "user.name").stdout == "Ada Lovelace\n"
    assert mvc("config", "core.gitignore").stdout == "false\n"
    listed = mvc("config", "--list").stdout.splitlines()
    assert {"core.gitignore=false", "delta_max_depth=3", "gc.reflogExpire=2.weeks",
            "user.name=Ada Lovelace", "format_version=3"} <= set(listed)
    mvc("config", "--unset", "gc.reflogExpire")
    assert "gc" not in json.loads((work / ".mvc" / "config").read_bytes())
    assert mvc("config", "gc.reflogExpire", ok=False).exit_code == 1
    assert mvc("config", "--unset", "gc.reflogExpire", ok=False).exit_code == 1


def test_global_file_and_precedence(mvc, work, home, monkeypatch):
    mvc("config", "--global", "user.email", "ada@example.com")
    assert json.loads((home / ".mvcconfig").read_bytes()) == {"user": {"email": "ada@example.com"}}
    assert mvc("config", "user.email").stdout == "ada@example.com\n"
    mvc("config", "user.email", "repo@example.com")
    assert mvc("config", "user.email").stdout == "repo@example.com\n"
    assert mvc("config", "--global", "user.email").stdout == "ada@example.com\n"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "xdg"))
    mvc("config", "--global", "user.name", "X")
    assert json.loads((home / "xdg" / "mvc" / "config").read_bytes()) == {"user": {"name": "X"}}


def test_unknown_keys_and_bad_values(mvc, home):
    result = mvc("config", "user.nmae", "x", ok=False)
    assert result.exit_code == 14
    assert result.stderr.startswith("error: unknown config key 'user.nmae'\nhint: the keys are: core.gitignore,")
    assert mvc("config", "format_version", "9", ok=False).exit_code == 14
    assert mvc("config", "nosuch.key", ok=False).exit_code == 14
    result = mvc("config", "core.gitignore", "maybe", ok=False)
    assert (result.exit_code, result.stderr) == (
        14, "error: bad value 'maybe' for config key 'core.gitignore': expected true or false\n")
    assert mvc("config", ok=False).exit_code == 2
    assert mvc("config", "--list", "user.name", ok=False).exit_code == 2


def _commit(mvc, work, name="m.bin"):
    write(work / name, name.encode())
    mvc("add", name)
    return mvc("commit", "-m", name, ok=False)


def _author(mvc) -> tuple[str, str]:
    author = mvc.json("show")["author"]
    return author["name"], author["email"]


def test_identity_comes_from_config_then_git_then_fails_like_git(mvc, work, home, monkeypatch):
    monkeypatch.delenv("MVC_AUTHOR_NAME")
    monkeypatch.delenv("MVC_AUTHOR_EMAIL")
    result = _commit(mvc, work, "a.bin")
    assert result.exit_code == 15
    assert result.stderr == f"error: {IDENTITY_UNKNOWN}\nhint: or set MVC_AUTHOR_NAME and MVC_AUTHOR_EMAIL\n"
    assert "Please tell me who you are." in result.stderr
    assert mvc.json("log") == []
    gitconfig = home / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Git Name\n\temail = git@example.com\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    assert _commit(mvc, work, "a.bin").exit_code == 0
    assert _author(mvc) == ("Git Name", "git@example.com")
    mvc("config", "user.name", "Mvc Name")
    assert _commit(mvc, work, "b.bin").exit_code == 0
    assert _author(mvc) == ("Mvc Name", "git@example.com")
    monkeypatch.setenv("MVC_AUTHOR_NAME", "Env Name")
    assert _commit(mvc, work, "c.bin").exit_code == 0
    assert mvc.json("show")["author"]["name"] == "Env Name"


def test_identity_from_git_is_what_git_config_get_gives_each_key_from_one_git_process(mvc, work, home, monkeypatch):
    from modelvc import gitinfo

    monkeypatch.delenv("MVC_AUTHOR_NAME")
    monkeypatch.delenv("MVC_AUTHOR_EMAIL")
    asked = []
    real = gitinfo.run_git
    monkeypatch.setattr(gitinfo, "run_git", lambda cwd, *args, **kw: asked.append(args) or real(cwd, *args, **kw))
    gitconfig = home / "gitconfig"
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    gitconfig.write_text("[user]\n\tname = Only Name\n")
    result = _commit(mvc, work, "a.bin")  # one key is not an identity
    assert result.exit_code == 15
    assert result.stderr == f"error: {IDENTITY_UNKNOWN}\nhint: or set MVC_AUTHOR_NAME and MVC_AUTHOR_EMAIL\n"
    mvc("config", "user.email", "mvc@example.com")  # the other from mvc's config
    asked.clear()
    assert _commit(mvc, work, "a.bin").exit_code == 0
    assert _author(mvc) == ("Only Name", "mvc@example.com")
    assert [args for args in asked if "config" in args] == [
        ("config", "-z", "--get-regexp", r"^user\.(name|email)$")]  # the commit and its reflog line: one process
    mvc("config", "--unset", "user.email")
    # Of several values the last, whatever the case of the section and key; a key without a
    # value is none, and a subsection's key is another key.
    gitconfig.write_text("[user]\n\tname\n\temail = first@example.com\n[user]\n\temail = last@example.com\n"
                         "[User]\n\tNAME = Last Name\n[user \"work\"]\n\tname = Sub Name\n")
    assert _commit(mvc, work, "b.bin").exit_code == 0
    assert _author(mvc) == ("Last Name", "last@example.com")
    git(work, "init", "-q")  # a repository's own config wins over the global one
    git(work, "config", "user.email", "local@example.com")
    assert _commit(mvc, work, "c.bin").exit_code == 0
    assert _author(mvc) == ("Last Name", "local@example.com")
    gitconfig.write_text("[user]\n\tname\n")
    git(work, "config", "--unset", "user.email")
    assert _commit(mvc, work, "d.bin").exit_code == 15  # a value-less name is no name


def test_rollback_without_identity_changes_nothing(mvc, work, home, monkeypatch):
    for data in (b"one", b"two"):
        write(work / "m.bin", data)
        mvc("add", "m.bin")
        mvc("commit", "-m", data.decode())
    monkeypatch.delenv("MVC_AUTHOR_NAME")
    assert mvc("rollback", ok=False).exit_code == 15
    assert (work / "m.bin").read_bytes() == b"two"


def test_add_to_gitignore_follows_the_global_config_key(work, home, mvc_runner):
    git(work, "init", "-q")
    mvc_runner("init")
    mvc_runner("config", "--global", "core.gitignore", "no")
    write(work / "m.bin", b"m")
    mvc_runner("add", "m.bin")
    assert (work / ".gitignore").read_bytes() == b"/.mvc/\n"
