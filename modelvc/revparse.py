"""Turn what a user types ("HEAD~2", "v1", "3fa9c0", "main^2") into a full commit id.

The syntax and lookup order follow git, so habits carry over: names are tried as refs
before being read as id prefixes (a tag before a branch of the same name, a branch before a
stage, with git's warning that the name is ambiguous), and a short id must be unique among commits.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from .errors import CorruptRefError, UnknownRevisionError
from .ids import ObjectId, is_full_id, is_hex_prefix, short
from .refname import is_valid_ref_name
from .refs import Refs

_NAVIGATION = re.compile(r"(?:[~^]\d*)*")
_REFLOG_SELECTOR = re.compile(r"^(.*)@\{(\d+)\}$")
_STEP = re.compile(r"([~^])(\d*)")
_MAX_LISTED = 5
_UNKNOWN_HINT = "list commits with 'mvc log', names with 'mvc branch' and 'mvc tag'"


class CommitGraph(Protocol):
    """What resolving needs from the object store."""

    def parents(self, commit_id: ObjectId) -> list[str]: ...

    def peel(self, object_id: ObjectId) -> str:
        """A tag object's commit id; a commit's own id; UnknownRevisionError otherwise."""
        ...

    def commits_with_prefix(self, prefix: str) -> list[str]: ...


def split_rev_path(spec: str) -> tuple[str, str | None]:
    """Split "v1:model.safetensors" into ("v1", "model.safetensors"); no ":" gives a None path.

    Ref names cannot contain ":", so the first one always ends the revision. "v1:" gives an
    empty path (the whole tree).
    """
    rev, colon, path = spec.partition(":")
    if not colon:
        return spec, None
    if not rev:
        raise UnknownRevisionError(
            f"missing revision before ':' in '{spec}'",
            hint="write <revision>:<path>, e.g. HEAD:model.safetensors",
        )
    return rev, path


def resolve(rev: str, refs: Refs, graph: CommitGraph, warn: Callable[[str], None] | None = None) -> str:
    """The full id of the commit `rev` names; `warn` hears of a name that several refs have."""
    cut = min((i for i in (rev.find("~"), rev.find("^")) if i >= 0), default=len(rev))
    base, navigation = rev[:cut], rev[cut:]
    if not base or not _NAVIGATION.fullmatch(navigation):
        raise _unknown(rev)
    commit = _resolve_base(rev, base, refs, graph, warn)
    for operator, count in _STEP.findall(navigation):
        number = int(count) if count else 1
        if operator == "~":
            commit = _first_parent_ancestor(rev, commit, number, graph)
        else:
            commit = _nth_parent(rev, commit, number, graph)
    return commit


def matching_refs(name: str, refs: Refs) -> list[str]:
    """The refs a short name can mean, in git's order of precedence: refs/NAME, the tag, the
    branch, the stage (refs/stages/NAME), the remote-tracking ref (origin/main). More than one is
    an ambiguous name: the first wins, except for checkout, which takes the branch."""
    candidates = [name] if name.startswith("refs/") else []
    candidates += [f"refs/{name}", f"refs/tags/{name}", f"refs/heads/{name}", f"refs/stages/{name}",
                   f"refs/remotes/{name}", f"refs/remotes/{name}/HEAD"]
    found: list[str] = []
    for refname in candidates:
        try:
            if refs.read(refname) is not None:
                found.append(refname)
        except CorruptRefError:
            if not found:
                raise
            found.append(refname)  # damaged, but there: the name is still ambiguous
    return found


def ambiguous_name(name: str) -> str:
    """git's warning, word for word."""
    return f"refname '{name}' is ambiguous."


def _resolve_base(rev: str, base: str, refs: Refs, graph: CommitGraph,
                  warn: Callable[[str], None] | None) -> str:
    selector = _REFLOG_SELECTOR.match(base)
    if selector:
        return _from_reflog(selector[1], int(selector[2]), refs, graph)
    if base in ("HEAD", "@"):
        head = refs.head()
        if head.commit is None:
            raise UnknownRevisionError(
                f"HEAD does not point to a commit yet (branch '{head.branch}' has no commits)",
                hint="make the first commit with 'mvc commit'",
            )
        return head.commit
    lowered = base.lower()
    if is_full_id(lowered):
        return graph.peel(lowered)
    if is_valid_ref_name(base):
        found = matching_refs(base, refs)
        if found:
            if len(found) > 1 and warn is not None:
                warn(ambiguous_name(base))
            target = refs.read(found[0])
            if target is not None:  # else deleted since it was listed: as if never there
                return graph.peel(target)
    if is_hex_prefix(lowered):
        matches = sorted(set(graph.commits_with_prefix(lowered)))
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise _ambiguous(base, matches)
    raise _unknown(rev)


def _from_reflog(name: str, number: int, refs: Refs, graph: CommitGraph) -> str:
    """NAME@{n}: where NAME pointed n moves ago (HEAD@{n}, main@{n}, production@{n} of a stage;
    '@{n}' is the current branch)."""
    if not name:
        name = refs.head().branch or "HEAD"
    if name == "HEAD" or name.startswith("refs/"):
        refname = name
    elif is_valid_ref_name(name):
        refname = f"refs/heads/{name}"
        if not refs.reflog(refname):
            refname = next((r for r in (f"refs/tags/{name}", f"refs/stages/{name}") if refs.reflog(r)), refname)
    else:
        raise _unknown(f"{name}@{{{number}}}")
    entries = refs.reflog(refname)
    if number >= len(entries):
        if not entries:
            raise UnknownRevisionError(f"no reflog for '{name}'", hint="see 'mvc reflog'")
        raise UnknownRevisionError(f"log for '{name}' only has {len(entries)} entries",
                                   hint=f"see 'mvc reflog {name}'")
    value = entries[number].new
    if set(value) == {"0"}:
        raise UnknownRevisionError(f"'{name}@{{{number}}}' is where '{name}' was deleted: it names no commit")
    return graph.peel(value)


def _first_parent_ancestor(rev: str, commit: str, generations: int, graph: CommitGraph) -> str:
    for _ in range(generations):
        parents = graph.parents(commit)
        if not parents:
            raise _past_root(rev)
        commit = parents[0]
    return commit


def _nth_parent(rev: str, commit: str, number: int, graph: CommitGraph) -> str:
    if number == 0:
        return commit
    parents = graph.parents(commit)
    if not parents:
        raise _past_root(rev)
    if number > len(parents):
        raise UnknownRevisionError(
            f"commit {short(commit)} has no parent {number}",
            hint=f"it has {len(parents)} parent{'s' if len(parents) > 1 else ''}",
        )
    return parents[number - 1]


def _unknown(rev: str) -> UnknownRevisionError:
    return UnknownRevisionError(f"unknown revision '{rev}'", hint=_UNKNOWN_HINT)


def _past_root(rev: str) -> UnknownRevisionError:
    return UnknownRevisionError(
        f"revision '{rev}' goes past the first commit",
        hint="count the commits with 'mvc log'",
    )


def _ambiguous(prefix: str, matches: list[str]) -> UnknownRevisionError:
    listed = ", ".join(short(m) for m in matches[:_MAX_LISTED])
    more = len(matches) - _MAX_LISTED
    if more > 0:
        listed += f" and {more} more"
    return UnknownRevisionError(
        f"short id '{prefix}' is ambiguous: it matches {listed}",
        hint="type more characters of the id",
    )
