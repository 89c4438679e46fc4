"""Sharing a working tree with git: git keeps the code, mvc the models, neither the other's files.

`mvc init` tells git to ignore `.mvc/`; `mvc add` leaves the files git tracks to git when it
walks a directory, warns when one is named (it would be versioned twice), and adds what it
stores to `.gitignore`, as DVC does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelvc import gitinfo
from modelvc.worktree import MVC_DIR

STORE_PATTERN = f"/{MVC_DIR}/"
# git's own files in a work tree: a walk leaves them to git even before git tracks them.
GIT_FILES = frozenset({".gitignore", ".gitattributes", ".gitmodules"})


@dataclass
class GitignoreUpdate:
    """What mvc did to a `.gitignore`: the file, and the lines appended (none: already there)."""

    path: Path
    added: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"file": str(self.path), "added": self.added}


@dataclass
class GitSplit:
    """The paths an `add` found, sorted into what mvc stores and what it leaves to git."""

    store: list[str]
    left_to_git: list[str] = field(default_factory=list)  # found by a walk; git tracks them
    versioned_twice: list[str] = field(default_factory=list)  # named, and git tracks them too
    in_git_tree: bool = False
    git_tracked: set[str] = field(default_factory=set)


def ignore_store(root: Path) -> GitignoreUpdate | None:
    """In a git work tree, make git ignore the `.mvc` store; None elsewhere."""
    if gitinfo.work_tree_root(root) is None:
        return None
    return GitignoreUpdate(root / ".gitignore", gitinfo.add_to_gitignore(root, [STORE_PATTERN]))


def split_for_git(root: Path, paths: list[str], named: set[str], tracked_by_mvc: set[str]) -> GitSplit:
    """Which found paths mvc should store. Outside a git work tree: all of them."""
    if gitinfo.work_tree_root(root) is None:
        return GitSplit(paths)
    tracked = gitinfo.tracked_by_git(root)
    split = GitSplit([], in_git_tree=True, git_tracked=tracked)
    for path in paths:
        owned_by_git = path in tracked or path.rsplit("/", 1)[-1] in GIT_FILES
        if not owned_by_git or path in tracked_by_mvc:
            split.store.append(path)
        elif path in named:
            split.store.append(path)
            if path in tracked:
                split.versioned_twice.append(path)
        else:
            split.left_to_git.append(path)
    return split


def ignore_stored(root: Path, split: GitSplit, stored: list[str]) -> GitignoreUpdate | None:
    """Add the stored paths git neither tracks nor already ignores to `root/.gitignore`."""
    if not split.in_git_tree:
        return None
    candidates = [p for p in stored if p not in split.git_tracked and p.rsplit("/", 1)[-1] not in GIT_FILES]
    already = gitinfo.ignored_by_git(root, candidates)
    lines = [gitinfo.gitignore_line(p) for p in candidates if p not in already]
    return GitignoreUpdate(root / ".gitignore", gitinfo.add_to_gitignore(root, lines) if lines else [])
