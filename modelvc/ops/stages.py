"""mvc promote / history / stages: named stages (production, staging, ...) that move with history.

A stage is the ref refs/stages/NAME holding its latest move (objects.StageMove: the commit,
who, when, why, the previous move). The moves are immutable objects chained from the ref, so
the whole history is a ref's objects like any other, and each move keeps its commit alive: every
version that was ever in production can be checked out again. A stage works as a revision
wherever one does (revparse: after tags and branches of the same name). Deleting a stage is
one more move, to no commit: its history stays.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from modelvc.errors import UnknownRevisionError
from modelvc.ids import ObjectId, short
from modelvc.objects import StageMove
from modelvc.refname import check_ref_name
from modelvc.repo import Repo
from modelvc.vocabulary import signature_dict

STAGES_PREFIX = "refs/stages/"


@dataclass(frozen=True)
class StageMoveRecord:
    """One move of a stage with the commit it moved from, for promote, history, stages and --json."""
    id: str
    move: StageMove
    previous_commit: str | None

    @property
    def stage(self) -> str:
        return self.move.stage

    @property
    def commit(self) -> str | None:
        """None: the move deleted the stage."""
        return self.move.commit

    def to_dict(self) -> dict[str, Any]:
        author = self.move.author
        return {"id": self.id, "stage": self.move.stage, "commit": self.move.commit,
                "previous_commit": self.previous_commit,
                "author": signature_dict(author.name, author.email, author.time, author.tz_minutes),
                "message": self.move.message}


def promote(repo: Repo, rev: str, stage: str, message: str = "") -> StageMoveRecord:
    """Move `stage` to the commit `rev` names (creating the stage on its first move)."""
    check_ref_name(stage, "stage")
    author = repo.signature_now()
    with repo.transaction():
        commit_id = repo.resolve(rev)
        return _move(repo, stage, StageMove(stage, commit_id, author, message.strip()),
                     f"promote: {short(commit_id)} to {stage}")


def delete_stage(repo: Repo, stage: str, message: str = "") -> StageMoveRecord:
    """Move `stage` to no commit: it no longer names a version, and its history is kept."""
    check_ref_name(stage, "stage")
    author = repo.signature_now()
    with repo.transaction():
        current = _latest(repo, stage)
        if current is None or current.commit is None:
            raise UnknownRevisionError(f"stage '{stage}' not found", hint="list the stages with 'mvc stages'")
        return _move(repo, stage, StageMove(stage, None, author, message.strip()), f"promote: deleted {stage}")


def history(repo: Repo, stages: list[str] | None = None) -> list[StageMoveRecord]:
    """Every move of the given stages (None: of all), newest first."""
    names = list(stages) if stages else sorted(repo.refs.under(STAGES_PREFIX))
    moves: list[StageMoveRecord] = []
    for name in names:
        check_ref_name(name, "stage")
        head = repo.refs.read(STAGES_PREFIX + name)
        if head is None:
            raise UnknownRevisionError(f"stage '{name}' not found", hint="list the stages with 'mvc stages'")
        moves += _chain(repo, head)
    return sorted(moves, key=lambda record: -record.move.author.time) if len(names) > 1 else moves


def list_stages(repo: Repo) -> list[StageMoveRecord]:
    """The latest move of every stage that names a commit, by stage name."""
    found = [next(_chain(repo, head)) for head in repo.refs.under(STAGES_PREFIX).values()]
    return [record for record in found if record.commit is not None]


def stage_commits(repo: Repo) -> dict[str, str]:
    """Stage name -> the commit it names, for the stages that name one."""
    return {record.stage: record.move.commit for record in list_stages(repo) if record.move.commit is not None}


def _move(repo: Repo, stage: str, move: StageMove, reason: str) -> StageMoveRecord:
    """Write the move (its parent: the stage's current move), then the ref by compare-and-swap."""
    refname = STAGES_PREFIX + stage
    head = repo.refs.read(refname)
    previous = repo.objects.get_typed(head, StageMove).commit if head is not None else None
    move = StageMove(move.stage, move.commit, move.author, move.message, head)
    move_id = repo.objects.put(move)
    repo.refs.update(refname, move_id, head, reason)
    return StageMoveRecord(move_id, move, previous)


def _latest(repo: Repo, stage: str) -> StageMoveRecord | None:
    head = repo.refs.read(STAGES_PREFIX + stage)
    return next(_chain(repo, head)) if head is not None else None


def _chain(repo: Repo, head: ObjectId) -> Iterator[StageMoveRecord]:
    """The moves from `head`, newest first, each with the commit the stage named before it."""
    move_id: str | None = head
    move = repo.objects.get_typed(head, StageMove)
    while move_id is not None:
        parent = repo.objects.get_typed(move.parent, StageMove) if move.parent is not None else None
        yield StageMoveRecord(move_id, move, parent.commit if parent is not None else None)
        move_id, move = move.parent, parent  # type: ignore[assignment]
