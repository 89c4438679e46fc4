"""Shell completion through click's protocol, in a real subprocess: ref names where a command
takes a revision, files where it takes paths, both where it takes either."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import write


def complete(work, shell: str, words: str, cword: int | None = None) -> list[str]:
    """What `mvc` answers the completion script of `shell` for the command line `words`."""
    # fish passes the word being completed itself; bash and zsh its index
    current = words.rsplit(" ", 1)[-1] if shell == "fish" else str(cword)
    env = dict(os.environ, _MVC_COMPLETE=f"{shell}_complete", COMP_WORDS=words, COMP_CWORD=current)
    result = subprocess.run([sys.executable, "-m", "modelvc"], cwd=work, env=env, capture_output=True,
                            text=True, check=True)
    return result.stdout.splitlines()


@pytest.fixture
def refs_repo(mvc, work):
    write(work / "model.bin", b"m")
    mvc("add", "model.bin")
    mvc("commit", "-m", "one")
    mvc("branch", "matrix")
    mvc("tag", "v1")
    write(work / "mango.bin", b"untracked")
    return work


def test_revisions_complete_to_refs_and_paths_to_files(refs_repo):
    work = refs_repo
    assert complete(work, "bash", "mvc checkout ma", 2) == ["plain,main", "plain,matrix", "file,ma"]
    assert complete(work, "bash", "mvc log ", 2) == ["plain,HEAD", "plain,main", "plain,matrix", "plain,v1"]
    assert complete(work, "bash", "mvc rollback v", 2) == ["plain,v1"]
    assert complete(work, "bash", "mvc branch -d m", 3) == ["plain,main", "plain,matrix"]
    assert complete(work, "bash", "mvc add ma", 2) == ["file,ma"]
    assert complete(work, "bash", "mvc cat HEAD:mo", 2) == ["plain,HEAD:model.bin"]
    assert complete(work, "bash", "mvc res", 1) == ["plain,restore"]
    assert complete(work, "fish", "mvc diff ma") == ["plain,main", "plain,matrix", "file,ma"]
    assert complete(work, "zsh", "mvc show v", 2) == ["plain", "v1", "_", "file", "v", "_"]


def test_outside_a_repository_only_files_are_offered(work):
    assert complete(work, "bash", "mvc checkout ma", 2) == ["file,ma"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_each_shells_script(mvc, shell):
    script = mvc("completion", shell).stdout
    assert "_MVC_COMPLETE" in script and f"={shell}_complete" in script
    assert mvc("completion", "tcsh", ok=False).exit_code == 2


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_the_bash_script_offers_refs_and_files_together(refs_repo):
    """The script itself, run by bash: click's own would drop the refs when asking for files."""
    bin_dir = refs_repo.parent / "bin"
    bin_dir.mkdir()
    write(bin_dir / "mvc", f"#!/bin/sh\nexec {sys.executable} -m modelvc \"$@\"\n".encode(), executable=True)
    run = ('eval "$(mvc completion bash)"; COMP_WORDS=(mvc checkout ma); COMP_CWORD=2; '
           '_mvc_completion mvc; printf "%s\\n" "${COMPREPLY[@]}"')
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", "-c", run], cwd=refs_repo, env=env, capture_output=True, text=True,
                            check=True)
    assert result.stdout.splitlines() == ["main", "matrix", "mango.bin"]
