"""What git says about the working tree mvc shares with it, read through the `git` command.

Every call passes --no-optional-locks, so that nothing (not even git's index refresh) is
written into .git, and every call answers None or an empty set when git is not installed or
the directory is not in a git work tree: mvc never needs git.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from modelvc.objects import CodeVersion


def run_git(cwd: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    """git's stdout, or None when git is absent or fails (not a work tree, no such key...)."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    try:
        done = subprocess.run(["git", "--no-optional-locks", *args], cwd=cwd, input=stdin,
                              capture_output=True, env=env, check=False)
    except OSError:  # git not installed, or not runnable
        return None
    return done.stdout if done.returncode == 0 else None


def work_tree_root(path: Path) -> Path | None:
    """The top of the git work tree that holds `path`, or None."""
    if not _may_be_in_git(path):
        return None
    out = run_git(path, "rev-parse", "--show-toplevel")
    return Path(out.decode(errors="surrogateescape").strip()) if out else None


def _may_be_in_git(path: Path) -> bool:
    """False when git cannot find a repository from `path`: no `.git` (directory or file) in
    it or any parent, and no GIT_DIR or GIT_WORK_TREE. Saves a `git` process (about 10 ms)
    per add and commit outside git, where training runs commit often."""
    if "GIT_DIR" in os.environ or "GIT_WORK_TREE" in os.environ:
        return True
    resolved = path.resolve()
    return any(os.path.lexists(directory / ".git") for directory in (resolved, *resolved.parents))


def code_version(root: Path) -> CodeVersion | None:
    """git's HEAD and whether its tracked files differ from it, for the work tree holding
    `root` (untracked files do not count, as for `git describe --dirty`); None outside one."""
    if work_tree_root(root) is None:
        return None
    head = run_git(root, "rev-parse", "--verify", "-q", "HEAD^{commit}")
    status = run_git(root, "status", "--porcelain", "--untracked-files=no", "-z")
    return CodeVersion(head.decode().strip() if head else None, bool(status))


def tracked_by_git(root: Path) -> set[str]:
    """Every path under `root` that git tracks, relative to `root` (one call, however many)."""
    out = run_git(root, "ls-files", "-z")
    return {name for name in out.decode(errors="surrogateescape").split("\0") if name} if out else set()


def ignored_by_git(root: Path, paths: list[str]) -> set[str]:
    """Which of these paths (relative to `root`) git's ignore rules already cover."""
    if not paths:
        return set()
    out = run_git(root, "check-ignore", "--stdin", "-z", stdin="".join(p + "\0" for p in paths).encode())
    return {name for name in out.decode(errors="surrogateescape").split("\0") if name} if out else set()


def gitignore_line(path: str) -> str:
    """An anchored .gitignore pattern that matches exactly this one path."""
    escaped = "".join("\\" + c if c in "\\*?[" else c for c in path)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return "/" + escaped


def add_to_gitignore(root: Path, lines: list[str]) -> list[str]:
    """Append the lines `root/.gitignore` lacks (creating it); returns those appended."""
    from modelvc.fsutil import atomic_write

    path = root / ".gitignore"
    try:
        text = path.read_bytes().decode("utf-8", errors="surrogateescape")
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        text, mode = "", 0o666 & ~_umask()
    present = set(text.splitlines())
    missing = [line for line in dict.fromkeys(lines) if line not in present]
    if missing:
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(line + "\n" for line in missing)
        atomic_write(path, text.encode("utf-8", errors="surrogateescape"), mode)
    return missing


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def git_identity(root: Path) -> tuple[str | None, str | None]:
    """git's user.name and user.email, each as `git config --get` gives it (of several values
    the last: the repository's over the global file's), from one git process for both."""
    out = run_git(root, "config", "-z", "--get-regexp", r"^user\.(name|email)$")
    values: dict[str, str] = {}
    for item in out.decode(errors="replace").split("\0") if out else ():
        key, _, value = item.partition("\n")  # a key set without a value has no newline
        values[key] = value.strip()
    return values.get("user.name") or None, values.get("user.email") or None
