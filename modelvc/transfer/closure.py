"""What a set of tips needs: every object below them and every chunk their files hold.

The one walk push and fetch share. It stops wherever the other side already has an object:
a store only ever holds an object after everything below it (chunks, then manifests, trees,
commits, in that order), so what lies below is there too. The kinds of objects and what each
points to are in CHILDREN: a new kind of object is one entry there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from modelvc import objects as objmod


def _commit_children(commit: objmod.Commit) -> tuple[list[str], list[bytes]]:
    return [commit.tree, *commit.parents], []


def _tree_children(tree: objmod.Tree) -> tuple[list[str], list[bytes]]:
    return [entry.manifest_id for entry in tree.entries], []


def _manifest_children(manifest: objmod.Manifest) -> tuple[list[str], list[bytes]]:
    return [], [bytes.fromhex(chunk_id) for chunk_id, _ in manifest.chunks]


def _tag_children(tag: objmod.Tag) -> tuple[list[str], list[bytes]]:
    return [tag.object], []


def _record_children(record: objmod.Note | objmod.StageMove) -> tuple[list[str], list[bytes]]:
    """A note's or stage move's parent, and a move's commit (a note's commit is weak: not sent)."""
    return objmod.object_references(record), []


# What each kind of object points to: (object ids, chunk ids).
CHILDREN: dict[type, Callable] = {objmod.Commit: _commit_children, objmod.Tree: _tree_children,
                                  objmod.Manifest: _manifest_children, objmod.Tag: _tag_children,
                                  objmod.Note: _record_children, objmod.StageMove: _record_children}


@dataclass
class Closure:
    """The objects found (parents before children are not promised) and the chunks they hold."""

    objects: list[str] = field(default_factory=list)
    chunks: set[bytes] = field(default_factory=set)
    commits: int = 0


def closure(tips: Iterable[str], load: Callable[[str], objmod.StoredObject],
            have: Callable[[str], bool]) -> Closure:
    """Walk from `tips` through CHILDREN, not into objects `have` says are there already.
    `load` gives an object (or raises the error that names what is missing)."""
    found = Closure()
    seen: set[str] = set()
    pending = list(tips)
    while pending:
        object_id = pending.pop()
        if object_id in seen:
            continue
        seen.add(object_id)
        if have(object_id):
            continue
        obj = load(object_id)
        found.objects.append(object_id)
        found.commits += isinstance(obj, objmod.Commit)
        object_ids, chunk_ids = CHILDREN[type(obj)](obj)
        pending.extend(object_ids)
        found.chunks.update(chunk_ids)
    return found
