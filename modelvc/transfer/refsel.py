"""Which refs travel, and under which names: the one place that knows the shared namespaces.

Branches, tags and the registry (the note chain refs/notes/commits and the stages
refs/stages/X) are shared with remotes. A remote's branch `refs/heads/X` is kept locally as the
remote-tracking ref `refs/remotes/NAME/X`; a tag keeps its own name, as in git. A remote's note
chain and stages are kept under `refs/remote-registry/NAME/` (notes/commits, stages/X): outside
refs/remotes/, so they are no branch to `branch -r`, clone or `log --all`, and a remote stage
never makes a stage name ambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelvc.errors import UnknownRevisionError, UsageError
from modelvc.refname import is_valid_ref_name

HEADS = "refs/heads/"
TAGS = "refs/tags/"
REMOTES = "refs/remotes/"
NOTES = "refs/notes/"
STAGES = "refs/stages/"
REMOTE_REGISTRY = "refs/remote-registry/"
REGISTRY_NAMESPACES = (NOTES, STAGES)
BRANCHES_AND_TAGS = (HEADS, TAGS)
SHARED_NAMESPACES = BRANCHES_AND_TAGS + REGISTRY_NAMESPACES


def tracking_name(remote: str, refname: str) -> str:
    """Where a remote's ref is kept locally: refs/remotes/NAME/X for a branch, the tag itself,
    refs/remote-registry/NAME/notes/commits and .../stages/X for the registry."""
    if refname.startswith(HEADS):
        return f"{REMOTES}{remote}/{refname[len(HEADS):]}"
    if refname.startswith(REGISTRY_NAMESPACES):
        return f"{REMOTE_REGISTRY}{remote}/{refname[len('refs/'):]}"
    return refname


def short_name(refname: str) -> str:
    for prefix in (HEADS, TAGS, REMOTES, REMOTE_REGISTRY):
        if refname.startswith(prefix):
            return refname[len(prefix):]
    return refname


@dataclass(frozen=True)
class RefSpec:
    """One ref to push: the local ref and its name on the remote."""

    source: str  # refs/heads/main, refs/tags/v1, or HEAD: a detached HEAD's commit
    destination: str
    commit: str


def push_specs(local: dict[str, str], names: list[str], *, current: str | None, upstream: str | None,
               all_branches: bool, tags: bool, detached: str | None = None) -> list[RefSpec]:
    """The refs a push sends. `local`: full ref name -> id of every local branch and tag;
    `names`: what the command line gave (NAME, SRC:DST, full names, HEAD: the current branch);
    `current`: the current branch's ref, pushed to `upstream` (its merge ref, else its own name)
    when nothing is named; `detached`: the commit of a detached HEAD, pushed by HEAD:DST."""
    specs: dict[str, RefSpec] = {}
    for name in names:
        source, _, destination = name.partition(":")
        if not source:
            raise UsageError(f"cannot delete the remote ref '{destination}': nothing on a remote is deleted yet")
        if source == "HEAD" and detached is not None:
            if not destination:
                raise _detached_error()
            spec = RefSpec(source, _remote_name(destination, HEADS), detached)
        else:
            full = current if source == "HEAD" and current in local else _local_ref(source, local)
            spec = RefSpec(full, _remote_name(destination, full) if destination else full, local[full])
        specs[spec.destination] = spec
    if all_branches:
        specs.update({ref: RefSpec(ref, ref, commit) for ref, commit in local.items() if ref.startswith(HEADS)})
    if tags:
        specs.update({ref: RefSpec(ref, ref, commit) for ref, commit in local.items() if ref.startswith(TAGS)})
    if not names and not all_branches and not tags:
        if detached is not None:
            raise _detached_error()
        if current is None or current not in local:
            raise UsageError("You are not currently on a branch with commits to push.",
                             hint="name what to push: 'mvc push origin BRANCH'")
        destination = upstream or current
        specs[destination] = RefSpec(current, destination, local[current])
    return sorted(specs.values(), key=lambda spec: spec.destination)


def _detached_error() -> UsageError:
    return UsageError("You are not currently on a branch.",
                      hint="To push the history leading to the current (detached HEAD) state now, use "
                           "'mvc push origin HEAD:<name-of-remote-branch>'")


def _local_ref(name: str, local: dict[str, str]) -> str:
    for candidate in (name, f"{HEADS}{name}", f"{TAGS}{name}"):
        if candidate.startswith(BRANCHES_AND_TAGS) and candidate in local:
            return candidate
    raise UnknownRevisionError(f"src refspec {name} does not match any",
                               hint="name a local branch or tag ('mvc branch', 'mvc tag')")


def _remote_name(destination: str, source: str) -> str:
    if destination.startswith(BRANCHES_AND_TAGS):
        full = destination
    else:
        full = (TAGS if source.startswith(TAGS) else HEADS) + destination
    if not is_valid_ref_name(full[len("refs/"):]):
        raise UsageError(f"invalid destination ref '{destination}'")
    return full
