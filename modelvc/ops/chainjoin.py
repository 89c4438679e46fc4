"""Join two diverged chains of notes or stage moves, for fetch (and push after it).

The note chain (refs/notes/commits) and each stage (refs/stages/NAME) are single-parent chains.
When two clones both added to one, the ref cannot simply move to the other's head without
losing records. As each record is self-contained (a note names its commit and values, a move
its stage and commit), the local records the other chain lacks are written again on top of it,
in their order, like a rebase: nothing is lost, the other side's history stays as it is, and
the local records come last (so for a key both annotated, and for a stage both moved, the local
one wins). The caller then moves the ref to the returned head by compare-and-swap.
"""

from __future__ import annotations

from dataclasses import replace

from modelvc.ids import ObjectId, short
from modelvc.objects import Note, StageMove
from modelvc.repo import Repo

Record = Note | StageMove


def join_chains(repo: Repo, onto: ObjectId | None, ours: ObjectId | None) -> ObjectId | None:
    """The head of a chain holding `onto`'s chain, then the records of `ours` it lacks.

    When one chain contains the other, that head is returned and nothing is written. The new
    records are written in one batch; the caller holds the writer lock.
    """
    mine_ids = chain_ids(repo, ours)
    if onto is None or onto in mine_ids:
        return ours  # ours already holds their chain (or there is none)
    theirs = set(chain_ids(repo, onto))
    if ours is None or ours in theirs:
        return onto  # theirs holds ours
    mine: list[Record] = []
    for record_id in mine_ids:
        if record_id in theirs:
            break  # the common part: both chains have it and everything below it
        mine.append(_record(repo, record_id))
    head = onto
    with repo.objects.batch():
        for record in reversed(mine):
            head = repo.objects.put(replace(record, parent=head))
    return head


def chain_ids(repo: Repo, head: ObjectId | None) -> list[ObjectId]:
    """The chain's ids from `head`, newest first (push: is the remote's head in ours?)."""
    found = []
    while head is not None:
        found.append(head)
        head = _record(repo, head).parent
    return found


def _record(repo: Repo, record_id: ObjectId) -> Record:
    record = repo.objects.get(record_id)
    if not isinstance(record, (Note, StageMove)):
        from modelvc.errors import CorruptObjectError

        raise CorruptObjectError(f"object {short(record_id)} is a {type(record).__name__.lower()}, "
                                 "expected a note or a stage move")
    return record
