"""What is reachable: from refs, reflogs and the index down to every chunk.

Branches, tags, the note chain (refs/notes/) and stages (refs/stages/) are the roots; a
note's commit is a weak reference (objects.object_references leaves it out).

fsck uses it to know what to verify and what a damaged object breaks; gc to know what it
must keep.
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from modelvc import objects as objmod
from modelvc.errors import CorruptObjectError, CorruptRefError, IntegrityError, MissingChunkError, MissingObjectError
from modelvc.ids import ZERO_ID, ChunkId, ObjectId, short
from modelvc.repo import Repo

# Refs outside branches and tags whose objects gc keeps and fsck verifies: the note chain and stages.
REGISTRY_NAMESPACES = ("refs/notes/", "refs/stages/", "refs/remote-registry/")  # the last: fetched, refsel.py

_Stored = TypeVar("_Stored", objmod.Manifest, objmod.Tree, objmod.Commit, objmod.Tag)

@dataclass
class Reachable:
    """What refs, reflogs and the index reach, and who uses each object: gc keeps it, fsck
    verifies it and names what a damaged object breaks."""
    commits: set[str] = field(default_factory=set)
    trees: set[str] = field(default_factory=set)
    files: set[str] = field(default_factory=set)
    tags: set[str] = field(default_factory=set)
    records: set[str] = field(default_factory=set)  # notes and stage moves (the registry's objects)
    chunks: dict[bytes, int] = field(default_factory=dict)  # chunk id -> raw length
    chunk_files: dict[bytes, set[str]] = field(default_factory=dict)
    file_users: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # (tree id | "index", path)
    tree_commits: dict[str, list[str]] = field(default_factory=dict)
    # (tree id | "index", path, manifest id, size listed there, size of the manifest): verify only
    wrong_sizes: list[tuple[str, str, str, int, int]] = field(default_factory=list)
    file_sizes: dict[str, int] = field(default_factory=dict)  # manifest id -> file size, as its manifest says
    tree_bytes: dict[str, int] = field(default_factory=dict)  # tree id -> its files' sizes added up

    @property
    def object_ids(self) -> set[str]:
        return self.commits | self.trees | self.files | self.tags | self.records


def roots(repo: Repo, report: Callable[[str, str, str], None],
          reflogs: bool = True) -> list[tuple[str, str]]:
    """(object id, where it came from) for every ref, HEAD and (with `reflogs`) reflog entry.

    A ref that holds no id is reported as corrupt (with the ref's name for the object) and
    the walk goes on from the others.
    """
    def corrupt_ref(refname: str, message: str) -> None:
        report("corrupt", refname, message)

    found = [(object_id, f"refs/heads/{name}") for name, object_id in repo.refs.branches(corrupt_ref).items()]
    found += [(object_id, f"refs/tags/{name}") for name, object_id in repo.refs.tags(corrupt_ref).items()]
    found += [(object_id, f"refs/remotes/{name}")
              for name, object_id in repo.refs.remote_branches(corrupt_ref).items()]
    for namespace in REGISTRY_NAMESPACES:
        found += [(object_id, namespace + name) for name, object_id in repo.refs.under(namespace, corrupt_ref).items()]
    head_problem = repo.refs.head_file_problem()
    if head_problem is not None:
        corrupt_ref("HEAD", head_problem)
    else:
        with contextlib.suppress(CorruptRefError):  # its branch is corrupt: reported above
            head = repo.refs.head()
            if head.commit:
                found.append((head.commit, "HEAD"))
    if reflogs:
        found += [(object_id, "reflog") for object_id in sorted(repo.refs.all_reflog_ids()) if object_id != ZERO_ID]
    return found


# Who needs an object, for the message when it is missing or damaged: a text, or the parts of
# one, formatted only then (a walk over all history meets every object once, nearly all fine)
_COMMIT = "commit"  # (_COMMIT, commit id): "commit 1a2b3c4d5e"
_IN_FILE = "file"  # (_IN_FILE, path, tree id or "index", reach): "PATH in commit 1a2b3c4d5e" or "PATH in the index"
Referrer = str | tuple[Any, ...]


def _referrer_text(referrer: Referrer) -> str:
    if isinstance(referrer, str):
        return referrer
    if referrer[0] == _COMMIT:
        return f"commit {short(referrer[1])}"
    _, path, tree_id, reach = referrer
    return f"{path} in " + ("the index" if tree_id == "index" else f"commit {short(reach.tree_commits[tree_id][0])}")


def problem_kind(error: IntegrityError) -> str:
    """"missing" or "corrupt", told by the error's type."""
    return "missing" if isinstance(error, (MissingObjectError, MissingChunkError)) else "corrupt"


def _without_cycle_collection(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run `function` with Python's cycle collector paused: a walk builds tens of thousands of
    objects that hold no cycles (refcounting frees them), and the collector's repeated passes
    over them cost about 5% of fsck and stats at 5,000 commits."""
    @functools.wraps(function)
    def paused(*args: Any, **kwargs: Any) -> Any:
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            if was_enabled:
                gc.enable()
    return paused


@_without_cycle_collection
def walk(repo: Repo, report: Callable[[str, str, str], None], verify: bool = True,
         reflogs: bool = True, chunk_lengths: bool = True,
         on_tree: Callable[[ObjectId, objmod.Tree], None] | None = None, into: Reachable | None = None) -> Reachable:
    """Walk everything reachable; report(kind, object id, detail) for missing or corrupt objects.

    With verify, every object's bytes are re-read and hashed (bypassing the cache), and every
    manifest is checked against the sizes the tree or index lists and the stored chunks' lengths.
    Without `reflogs`, only what branches, tags, HEAD and the index hold. Without
    `chunk_lengths` the chunk index is not consulted (fsck, when a pack index is unreadable).
    `on_tree` sees each tree once, as it is read (so no one reads it again); `into` is a walk
    to continue (what it reached is not read again), e.g. from the reflogs after the refs.
    """
    reach = Reachable() if into is None else into
    length_checks = repo.chunks if verify and chunk_lengths else None  # once: each access stats the packs
    objects = repo.objects
    read_verified, get, decode = objects.read_verified, objects.get, objmod.decode

    def load_any(object_id: ObjectId, referrer: Referrer) -> objmod.StoredObject | None:
        try:
            if verify:
                return decode(read_verified(object_id), object_id)
            return get(object_id)
        except IntegrityError as exc:
            report(problem_kind(exc), object_id, f"{exc.message} (needed by {_referrer_text(referrer)})")
            return None

    def load(object_id: ObjectId, expected: type[_Stored], referrer: Referrer) -> _Stored | None:
        obj = load_any(object_id, referrer)
        if obj is not None and not isinstance(obj, expected):
            report("corrupt", object_id,
                   f"expected a {expected.__name__.lower()} (needed by {_referrer_text(referrer)})")
            return None
        return obj

    manifest_sizes = reach.file_sizes
    files, file_users, chunk_lengths_of, chunk_files = reach.files, reach.file_users, reach.chunks, reach.chunk_files

    def add_file(file_id: ObjectId, tree_id: ObjectId, path: str, size: int) -> None:
        users = file_users.get(file_id)
        if users is None:
            file_users[file_id] = [(tree_id, path)]
        else:
            users.append((tree_id, path))
        if file_id not in files:
            files.add(file_id)
            manifest = load(file_id, objmod.Manifest, (_IN_FILE, path, tree_id, reach))
            if manifest is None:
                return
            manifest_sizes[file_id] = manifest.size
            for chunk_hex, length in manifest.chunks:
                chunk_id = bytes.fromhex(chunk_hex)
                chunk_lengths_of[chunk_id] = length
                holders = chunk_files.get(chunk_id)
                if holders is None:
                    chunk_files[chunk_id] = {file_id}
                else:
                    holders.add(file_id)
            if length_checks is not None:
                try:
                    length_checks.check_lengths(file_id, manifest)
                except CorruptObjectError as exc:
                    report("corrupt", file_id, exc.message)
        if verify and file_id in manifest_sizes and manifest_sizes[file_id] != size:
            reach.wrong_sizes.append((tree_id, path, file_id, size, manifest_sizes[file_id]))

    pending: list[tuple[ObjectId, Referrer]] = list(roots(repo, report, reflogs))
    commits, tags, records, trees = reach.commits, reach.tags, reach.records, reach.trees
    while pending:
        object_id, origin = pending.pop()
        if object_id in commits or object_id in tags or object_id in records:
            continue
        obj = load_any(object_id, origin)
        if isinstance(obj, objmod.Commit):  # first: nearly every object a walk meets here is one
            commits.add(object_id)
            tree_id = obj.tree
            users = reach.tree_commits.get(tree_id)
            if users is None:
                reach.tree_commits[tree_id] = [object_id]
            else:
                users.append(object_id)
            if tree_id not in trees:
                tree = load(tree_id, objmod.Tree, (_COMMIT, object_id))
                trees.add(tree_id)
                if tree is not None:
                    reach.tree_bytes[tree_id] = sum(entry.size for entry in tree.entries)
                    if on_tree is not None:
                        on_tree(tree_id, tree)
                    for entry in tree.entries:
                        add_file(entry.manifest_id, tree_id, entry.path, entry.size)
            pending.extend((parent, (_COMMIT, object_id)) for parent in obj.parents)
        elif isinstance(obj, objmod.Tag):
            tags.add(object_id)
            pending.append((obj.object, f"tag {obj.name}"))
        elif isinstance(obj, (objmod.Note, objmod.StageMove)):
            records.add(object_id)
            label = f"note {short(object_id)}" if isinstance(obj, objmod.Note) else f"stage {obj.stage}"
            pending.extend((reference, label) for reference in objmod.object_references(obj))
        elif obj is not None:
            report("corrupt", object_id, f"{_referrer_text(origin)} points to a {type(obj).__name__.lower()}, "
                   "not a commit")
    for indexed in repo.index.entries.values():
        add_file(indexed.manifest_id, "index", indexed.path, indexed.size)
    return reach


def users_of_file(reach: Reachable, file_id: ObjectId) -> list[tuple[str, str]]:
    """(commit id or "index", path) of every version that contains this file content."""
    users = set()
    for tree_id, path in reach.file_users.get(file_id, []):
        for commit_id in reach.tree_commits.get(tree_id, ["index"]):
            users.add((commit_id, path))
    return sorted(users)


def users_of_chunk(reach: Reachable, chunk_id: ChunkId) -> list[tuple[str, str]]:
    """The (commit or "index", path) pairs whose files hold the chunk: what its damage breaks."""
    users: set[tuple[str, str]] = set()
    for file_id in reach.chunk_files.get(chunk_id, ()):
        users.update(users_of_file(reach, file_id))
    return sorted(users)


def commit_ancestors(repo: Repo, starts: list[str]) -> set[str]:
    """Every commit reachable from `starts` (commits or tags) through parents, starts included."""
    seen: set[str] = set()
    pending = [repo.peel(start) for start in starts]
    while pending:
        commit_id = pending.pop()
        if commit_id in seen:
            continue
        seen.add(commit_id)
        pending.extend(repo.read_commit(commit_id).parents)
    return seen
