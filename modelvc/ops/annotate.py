"""mvc annotate: metrics, params and metadata added to a commit after the fact.

A commit's id is the hash of its content, so it can never change; what is learnt later (an
evaluation run a week after training) goes into a note instead, as git notes do. Notes are
immutable objects (objects.Note) chained newest first from refs/notes/commits, a ref's objects
like any other (gc, fsck, the transfer closure follow them); the chain itself says who added
what and when. The chain is read once per Repo and then only its new notes (`_Chain`); a
later note's value of a key wins over an earlier one and over the commit's own.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelvc.errors import UsageError
from modelvc.ids import ObjectId, short
from modelvc.objects import Commit, Note
from modelvc.repo import Repo
from modelvc.vocabulary import signature_dict

NOTES_REF = "refs/notes/commits"
SECTIONS = ("metrics", "params", "meta")


@dataclass(frozen=True)
class NoteRecord:
    """One annotation: its id and the note, for `annotate` and `annotate --list` and their --json."""
    id: str
    note: Note

    def to_dict(self) -> dict[str, Any]:
        author = self.note.author
        return {"id": self.id, "commit": self.note.commit,
                "author": signature_dict(author.name, author.email, author.time, author.tz_minutes),
                "message": self.note.message, "metrics": dict(self.note.metrics),
                "params": dict(self.note.params), "meta": dict(self.note.meta)}


@dataclass(frozen=True)
class Annotations:
    """What notes add to one commit: the latest value of each key, and the notes, newest first."""
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    notes: list[NoteRecord] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": dict(self.metrics), "params": dict(self.params), "meta": dict(self.meta),
                "notes": [record.to_dict() for record in self.notes]}

    def section(self, name: str) -> dict[str, Any]:
        return {"metrics": self.metrics, "params": self.params, "meta": self.meta}[name]


NO_ANNOTATIONS = Annotations()


class _Chain:
    """One repository's note chain as last read: its head and every note met, by id."""

    def __init__(self) -> None:
        self.head: str | None = None
        self.notes: dict[str, Note] = {}
        self.by_commit: dict[str, Annotations] = {}
        self.lock = threading.Lock()


_chains: weakref.WeakKeyDictionary[Repo, _Chain] = weakref.WeakKeyDictionary()
_chains_lock = threading.Lock()


def all_annotations(repo: Repo) -> dict[str, Annotations]:
    """Every annotated commit's annotations, by commit id. One read of refs/notes/commits per
    call; the chain's objects are read once per Repo (notes are immutable), so after the
    first call only notes added since are read. Callers looping over many commits call this
    once and pass it to effective_values."""
    with _chains_lock:
        chain = _chains.setdefault(repo, _Chain())
    head = repo.refs.read(NOTES_REF)
    with chain.lock:
        if head != chain.head:
            chain.by_commit = _group(_walk(repo, head, chain.notes))
            chain.head = head
        return chain.by_commit


def annotations_of(repo: Repo, commit_id: ObjectId) -> Annotations:
    """One commit's annotations (empty when it has none)."""
    return all_annotations(repo).get(commit_id, NO_ANNOTATIONS)


def effective_values(repo: Repo, commit_id: ObjectId, commit: Commit,
                     annotations: Mapping[str, Annotations] | None = None
                     ) -> tuple[dict[str, Any], dict[str, str], dict[str, str], dict[str, frozenset[str]]]:
    """(metrics, params, meta, annotated_keys): the commit's own values with its annotations on
    top (a note's value wins), and per section ("metrics", "params", "meta") the keys whose
    value came from a note. This is what queries (log --where, runs) should see; `annotations`
    is all_annotations(repo), given when called for many commits."""
    found = (annotations if annotations is not None else all_annotations(repo)).get(commit_id, NO_ANNOTATIONS)
    return (commit.metrics | found.metrics, commit.params | found.params, commit.meta | found.meta,
            {name: frozenset(found.section(name)) for name in SECTIONS})


def annotate(repo: Repo, rev: str, metrics: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
             meta: Mapping[str, Any] | None = None, message: str = "") -> NoteRecord:
    """Add a note to the commit `rev` names, as the chain's new head (under the writer lock,
    the ref moved by compare-and-swap: two annotators never lose one another's note)."""
    from modelvc.metricsfiles import flatten, metric_values, param_values

    metric_map = metric_values(flatten(dict(metrics or {}), None), None)
    param_map = param_values(flatten(dict(params or {}), None), None)
    meta_map = param_values(flatten(dict(meta or {}), None), None)
    if not (metric_map or param_map or meta_map or message.strip()):
        raise UsageError("nothing to annotate", hint="give --metric, --param, --meta or -m NOTE")
    author = repo.signature_now()
    with repo.transaction():
        commit_id = repo.resolve(rev)
        head = repo.refs.read(NOTES_REF)
        note = Note(commit_id, author, message.strip(), metric_map, param_map, meta_map, head)
        note_id = repo.objects.put(note)
        repo.refs.update(NOTES_REF, note_id, head, f"annotate: {short(commit_id)}")
    return NoteRecord(note_id, note)


def notes_of(repo: Repo, rev: str) -> list[NoteRecord]:
    """The notes of the commit `rev` names, newest first (`annotate --list`)."""
    return list(annotations_of(repo, repo.resolve(rev)).notes)


def _walk(repo: Repo, head: str | None, known: dict[str, Note]) -> list[tuple[str, Note]]:
    """The chain from `head`, newest first; notes already in `known` are not read again."""
    chain = []
    note_id = head
    while note_id is not None:
        note = known.get(note_id)
        if note is None:
            note = known[note_id] = repo.objects.get_typed(note_id, Note)
        chain.append((note_id, note))
        note_id = note.parent
    return chain


def _group(chain: list[tuple[str, Note]]) -> dict[str, Annotations]:
    grouped: dict[str, Annotations] = {}
    for note_id, note in reversed(chain):  # oldest first: a later note's value wins
        found = grouped.setdefault(note.commit, Annotations())
        found.metrics.update(note.metrics)
        found.params.update(note.params)
        found.meta.update(note.meta)
        found.notes.insert(0, NoteRecord(note_id, note))
    return grouped
