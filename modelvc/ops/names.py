"""mvc branch / mvc tag: create, list and delete names for commits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelvc.config import move_subsection
from modelvc.errors import AlreadyExistsError, RefError, UnknownRevisionError
from modelvc.objects import Tag
from modelvc.refname import check_ref_name
from modelvc.repo import Repo


@dataclass(frozen=True)
class NameInfo:
    """A branch or tag with the commit it names, for `branch` and `tag` listings and --json."""
    name: str
    commit: str
    subject: str
    current: bool = False
    message: str | None = None  # annotated tags

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "commit": self.commit, "subject": self.subject, "current": self.current,
                "message": self.message}


def list_branches(repo: Repo, local: bool = True, remote: bool = False) -> list[NameInfo]:
    """Every branch, marking the one HEAD is on; with `remote`, the remote-tracking ones too
    (named "origin/main", as `git branch -r` shows them)."""
    head = repo.refs.head()
    found = [NameInfo(name, commit_id, repo.read_commit(commit_id).subject, name == head.branch)
             for name, commit_id in repo.refs.branches().items()] if local else []
    if remote:
        found += [NameInfo(name, commit_id, repo.read_commit(commit_id).subject)
                  for name, commit_id in repo.refs.remote_branches().items()]
    return found


def create_branch(repo: Repo, name: str, start: str | None = None) -> NameInfo:
    """A new branch at `start` (HEAD by default); an existing name is refused, never moved."""
    check_ref_name(name, "branch")
    with repo.transaction():
        if repo.refs.read(f"refs/heads/{name}") is not None:
            raise AlreadyExistsError(f"a branch named '{name}' already exists")
        commit_id = repo.resolve(start or "HEAD")
        repo.refs.update(f"refs/heads/{name}", commit_id, None, f"branch: created from {start or 'HEAD'}")
        track_start(repo, name, start)
    return NameInfo(name, commit_id, repo.read_commit(commit_id).subject)


def delete_branch(repo: Repo, name: str, force: bool = False) -> NameInfo:
    """Delete a branch; unless forced, only when another branch, a tag or HEAD reaches its tip."""
    from modelvc.errors import NotFullyMergedError
    from modelvc.ops.reach import commit_ancestors

    with repo.transaction():
        commit_id = repo.refs.read(f"refs/heads/{name}")
        if commit_id is None:
            raise UnknownRevisionError(f"branch '{name}' not found")
        head = repo.refs.head()
        if head.branch == name:
            raise RefError(f"cannot delete branch '{name}': it is the current branch",
                           hint="switch to another branch first")
        if not force:
            others = [c for b, c in repo.refs.branches().items() if b != name]
            others += list(repo.refs.tags().values()) + ([head.commit] if head.commit else [])
            if commit_id not in commit_ancestors(repo, others):
                raise NotFullyMergedError(f"the branch '{name}' is not fully merged",
                                          hint=f"If you are sure you want to delete it, run 'mvc branch -D {name}'")
        repo.refs.delete(f"refs/heads/{name}", commit_id, "branch: deleted")
        move_subsection(repo.mvc_dir / "config", "branch", name, None)  # its upstream goes too, as in git
    return NameInfo(name, commit_id, "")


def rename_branch(repo: Repo, old: str | None, new: str) -> NameInfo:
    """Rename branch `old` (default: the current one) to `new`, keeping its reflog."""
    check_ref_name(new, "branch")
    with repo.transaction():
        old = old or repo.refs.head().branch
        if old is None:
            raise RefError("cannot rename the current branch: HEAD is detached",
                           hint="name the branch: 'mvc branch -m OLD NEW'")
        if repo.refs.read(f"refs/heads/{old}") is None:
            raise UnknownRevisionError(f"branch '{old}' not found")
        if repo.refs.read(f"refs/heads/{new}") is not None:
            raise AlreadyExistsError(f"a branch named '{new}' already exists")
        commit_id = repo.refs.rename_branch(old, new, f"Branch: renamed refs/heads/{old} to refs/heads/{new}")
        move_subsection(repo.mvc_dir / "config", "branch", old, new)  # its upstream follows, as in git
    return NameInfo(new, commit_id, repo.read_commit(commit_id).subject, repo.refs.head().branch == new)


def track_start(repo: Repo, branch: str, start: str | None) -> None:
    """Make a branch made at a remote-tracking branch track it, as git does (`origin/x`)."""
    from modelvc.transfer.upstream import set_upstream, upstream_of_start

    upstream = upstream_of_start(repo, start)
    if upstream is not None:
        set_upstream(repo, branch, upstream)


def set_branch_upstream(repo: Repo, branch: str | None, upstream: str | None) -> NameInfo:
    """`branch -u UPSTREAM [BRANCH]`: make BRANCH (default: the current one) track the
    remote-tracking branch UPSTREAM (origin/main); None (`--unset-upstream`) forgets its upstream."""
    from modelvc.errors import UsageError
    from modelvc.transfer.upstream import set_upstream, upstream_of, upstream_of_start

    with repo.transaction():
        branch = branch or repo.refs.head().branch
        if branch is None:
            raise UsageError("HEAD does not point to any branch",
                             hint="name the branch: 'mvc branch -u origin/main BRANCH'")
        commit_id = repo.refs.read(f"refs/heads/{branch}")
        if commit_id is None:
            raise UnknownRevisionError(f"branch '{branch}' does not exist")
        info = NameInfo(branch, commit_id, repo.read_commit(commit_id).subject, repo.refs.head().branch == branch)
        if upstream is None:
            if upstream_of(repo.config, branch) is None:
                raise UsageError(f"branch '{branch}' has no upstream information")
            move_subsection(repo.mvc_dir / "config", "branch", branch, None)
            return info
        found = upstream_of_start(repo, upstream)
        if found is None:
            try:
                repo.resolve(upstream)
            except UnknownRevisionError:
                raise UnknownRevisionError(f"the requested upstream branch '{upstream}' does not exist",
                                           hint="'mvc fetch' brings the remote's branches, 'mvc branch -r' "
                                                "lists them") from None
            raise UsageError(f"the requested upstream '{upstream}' is not a remote-tracking branch",
                             hint="name one: 'mvc branch -r' lists them (origin/main)")
        set_upstream(repo, branch, found)
    return info


def list_tags(repo: Repo) -> list[NameInfo]:
    """Every tag, peeled to its commit, with an annotated tag's message."""
    infos = []
    for name, object_id in repo.refs.tags().items():
        obj = repo.objects.get(object_id)
        commit_id = repo.peel(object_id)
        message = obj.message if isinstance(obj, Tag) else None
        infos.append(NameInfo(name, commit_id, repo.read_commit(commit_id).subject, message=message))
    return infos


def create_tag(repo: Repo, name: str, rev: str | None = None, message: str | None = None,
               force: bool = False) -> NameInfo:
    """A tag at `rev` (HEAD by default), annotated when given a message; moving one takes `force`."""
    check_ref_name(name, "tag")
    with repo.transaction():
        existing = repo.refs.read(f"refs/tags/{name}")
        if existing is not None and not force:
            raise AlreadyExistsError(f"a tag named '{name}' already exists",
                                     hint="use --force to move it")
        commit_id = repo.resolve(rev or "HEAD")
        target = commit_id
        if message is not None:
            target = repo.objects.put(Tag(commit_id, name, repo.signature_now(), message))
        repo.refs.update(f"refs/tags/{name}", target, existing, f"tag: {name}")
    return NameInfo(name, commit_id, repo.read_commit(commit_id).subject, message=message)


def delete_tag(repo: Repo, name: str) -> NameInfo:
    """Remove a tag; the commits it named stay until gc finds them unreachable."""
    with repo.transaction():
        object_id = repo.refs.read(f"refs/tags/{name}")
        if object_id is None:
            raise UnknownRevisionError(f"tag '{name}' not found")
        repo.refs.delete(f"refs/tags/{name}", object_id, "tag: deleted")
    return NameInfo(name, object_id, "")
