"""mvc clone: a new repository with the remote as `origin`, fetched and checked out.

The branch checked out is `-b BRANCH`, else the remote's `main`, else its only branch (a remote
keeps no HEAD key: it is shared by many writers, none of whom owns a default). A clone that
fails leaves no trace of the directory it created. A `partial` clone fetches every metadata
object but only the chunks of the files it checks out, and marks origin as the promisor of the
rest (`remote.origin.partial`; lazy.py).

Every clone starts as a partial one, so the files it checks out are written from the chunks as
they arrive (ops/filling.py: one decode and one hash each); a full clone then fetches the rest
(`fetch --all-data`, which clears the mark). Killed between the two, it is a sound partial clone.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from modelvc.errors import RepositoryExistsError, UnknownRevisionError, UsageError
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.remotes import parse_url
from modelvc.repo import Repo
from modelvc.transfer.fetch import fetch
from modelvc.transfer.refsel import HEADS, tracking_name
from modelvc.transfer.result import TransferResult
from modelvc.transfer.upstream import DEFAULT_REMOTE, Upstream, set_upstream

DEFAULT_BRANCH = "main"


def default_directory(url: str) -> str:
    """git's rule: the last part of the URL's path (or its bucket/container)."""
    location = parse_url(url)
    if location.directory is not None:
        name = location.directory.name
    else:
        name = (location.prefix.rstrip("/").rpartition("/")[2] or location.container)
    name = name.removesuffix(".mvc")
    if not name or name in (".", ".."):
        raise UsageError(f"cannot guess a directory name from '{url}'", hint="give one: mvc clone URL DIR")
    return name


def clone_target(directory: Path, cwd: Path) -> Path:
    """Where a clone goes: a directory that does not exist or is empty (git's refusal otherwise)."""
    target = (cwd / directory).resolve()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise RepositoryExistsError(f"destination path '{directory}' already exists and is not an empty directory.")
    return target


def clone(url: str, directory: Path, *, cwd: Path, branch: str | None = None, endpoint: str | None = None,
          region: str | None = None, path_style: bool | None = None, repo_class: type[Repo] = Repo,
          progress: Progress = NO_PROGRESS, partial: bool = False, **options) -> tuple[Repo, TransferResult]:
    """Clone `url` into `directory` (which must not exist or be empty)."""
    from modelvc.ops.materialize import move_tree
    from modelvc.ops.remote import add_remote, set_partial
    from modelvc.transfer.lazy import install_promisor

    target = clone_target(directory, cwd)
    created = not target.exists()
    repo = None
    try:
        repo = repo_class.init(target, **options)
        add_remote(repo, DEFAULT_REMOTE, url, cwd=cwd, endpoint=endpoint, region=region, path_style=path_style)
        set_partial(repo, DEFAULT_REMOTE, True)
        install_promisor(repo)
        result = fetch(repo, DEFAULT_REMOTE, progress)
        result.operation, result.directory = "clone", str(target)
        branches = sorted(name[len(HEADS):] for name in _remote_branches(repo))
        chosen = branch or (DEFAULT_BRANCH if DEFAULT_BRANCH in branches or not branches else
                            branches[0] if len(branches) == 1 else None)
        if chosen is None:
            raise UsageError(f"the remote has no branch '{DEFAULT_BRANCH}' and several others: "
                             f"{', '.join(branches)}", hint="choose one: mvc clone -b BRANCH URL")
        commit = repo.refs.read(tracking_name(DEFAULT_REMOTE, f"{HEADS}{chosen}"))
        if commit is None and (branch or branches):
            raise UnknownRevisionError(f"Remote branch {chosen} not found in upstream {DEFAULT_REMOTE}")
        result.branch = chosen
        with repo.transaction():
            if commit is not None:
                repo.fresh_index()
                move = move_tree(repo, repo.tree_of(None), repo.tree_of(commit), False, progress)
                if move.fetched is not None:
                    result.chunks += move.fetched.chunks
                    result.traffic.bytes_received += move.fetched.bytes_received
                    result.traffic.requests += move.fetched.requests
                repo.refs.update(f"{HEADS}{chosen}", commit, None, f"clone: from {url}")
                set_upstream(repo, chosen, Upstream(DEFAULT_REMOTE, f"{HEADS}{chosen}"))
                result.commit = commit
            repo.refs.set_head_branch(chosen, f"clone: from {url}")
        if not partial:
            rest = fetch(repo, DEFAULT_REMOTE, progress, all_data=True)
            result.chunks += rest.chunks
            result.refs += rest.refs  # moved on the remote since the first fetch
            result.traffic.bytes_received += rest.traffic.bytes_received
            result.traffic.requests += rest.traffic.requests
        result.partial = partial
        return repo, result
    except BaseException:
        if repo is not None:
            repo.close()
        if created:
            shutil.rmtree(target, ignore_errors=True)
        elif target.is_dir():
            for child in target.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        raise


def _remote_branches(repo: Repo) -> list[str]:
    """The branches fetched from origin, as full names on the remote."""
    prefix = f"{DEFAULT_REMOTE}/"
    return [HEADS + name[len(prefix):] for name in repo.refs.remote_branches() if name.startswith(prefix)]
