"""mvc commit: record the index as a new commit with its metrics, params and metadata."""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelvc.errors import CorruptIndexError, MvcError, NothingToCommitError, UsageError
from modelvc.gitinfo import code_version
from modelvc.ids import ObjectId, hash_bytes, short
from modelvc.index import Index, IndexEntry
from modelvc.metricsfiles import TRAINER_STATE, FilePath, parse_document, read_values, trainer_state_metrics
from modelvc.objects import Commit, TreeEntry, encode_tree, patch_tree
from modelvc.repo import Repo
from modelvc.vocabulary import commit_dict


def parse_pairs(items: list[str], option: str, numeric: bool = False) -> dict[str, Any]:
    """KEY=VALUE pairs from the command line; with numeric, the values must be finite numbers."""
    pairs: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UsageError(f"{option} expects KEY=VALUE, got '{item}'")
        if numeric:
            try:
                number = float(value)
            except ValueError:
                raise UsageError(f"{option} {key}: '{value}' is not a number") from None
            if not math.isfinite(number):
                raise UsageError(f"{option} {key}: '{value}' is not a finite number")
            integral = number.is_integer() and "." not in value and "e" not in value.lower()
            pairs[key] = int(number) if integral else number
        else:
            pairs[key] = value
    return pairs


def message_from(paragraphs: list[str], file_text: str | None = None) -> str:
    """The message of `-m A -m B` (paragraphs joined by a blank line) or of `-F FILE`, cleaned
    up as git does: trailing spaces, leading and trailing blank lines and runs of blank lines go."""
    if file_text is None and not paragraphs:
        raise UsageError("no commit message", hint="give one with -m MESSAGE or -F FILE")
    text = file_text if file_text is not None else "\n\n".join(paragraphs)
    lines = [line.rstrip() for line in text.splitlines()]
    cleaned: list[str] = []
    for line in lines:
        if line or (cleaned and cleaned[-1]):
            cleaned.append(line)
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    return "\n".join(cleaned)


@dataclass(frozen=True)
class CommitResult:
    """The new commit and where it went, for the CLI's one-line summary and --json."""
    id: str
    branch: str | None
    parents: tuple[str, ...]
    commit: Commit
    files_changed: int

    def to_dict(self) -> dict[str, Any]:
        return commit_dict(self.id, self.commit) | {"branch": self.branch,
                                                    "change_count": self.files_changed}


def check_staged(repo: Repo, entries: list[IndexEntry]) -> None:
    """Refuse to commit an index entry whose content is missing or is not the size it says.

    Entries unchanged since HEAD were checked when HEAD was made; a wrong size would give a
    tree that checkout and status then disagree with.
    """
    for entry in entries:
        manifest = repo.read_manifest(entry.manifest_id)
        if manifest.size != entry.size:
            raise CorruptIndexError(
                f"the index lists {entry.path} as {entry.size} bytes, but its staged content "
                f"{short(entry.manifest_id)} has {manifest.size}; nothing was committed",
                hint=f"stage it again with 'mvc add {shlex.quote(entry.path)}'")


def _changed_paths(old: tuple[TreeEntry, ...], new: tuple[TreeEntry, ...]) -> set[str]:
    """Paths whose entry differs between two trees, by one set operation over both."""
    before = {(e.path, e.manifest_id, e.size, e.mode) for e in old}
    after = {(e.path, e.manifest_id, e.size, e.mode) for e in new}
    return {key[0] for key in before ^ after}


# Up to this many changed entries, the new tree is HEAD's edited (one search of its encoding
# each, about 1 ms at 50,000 entries) rather than encoded from the index (35 ms).
PATCH_MAX_CHANGES = 16


def _new_tree(repo: Repo, index: Index, head_tree: ObjectId | None, changed_paths: set[str]) -> bytes:
    """The encoding of the tree the index makes: when a few entries of HEAD's tree (the index's
    base) were replaced or removed, that tree edited; else encoded from every entry."""
    if head_tree is not None and index.base_tree == head_tree and 0 < len(changed_paths) <= PATCH_MAX_CHANGES:
        changes: list[tuple[TreeEntry, TreeEntry | None]] = []
        for path in sorted(changed_paths):
            before, now = index.changed_since_base[path], index.entry(path)
            if before is None:  # a new path: where it goes is not looked for
                break
            changes.append((TreeEntry(path, *before),
                            None if now is None else TreeEntry(path, now.manifest_id, now.size, now.mode)))
        else:
            try:
                patched = patch_tree(repo.objects.read_verified(head_tree), changes)
            except MvcError:  # HEAD's tree unreadable: the index alone makes the new one
                patched = None
            if patched is not None:
                return patched
    return encode_tree(*index.tree_columns())


def committed_trainer_metrics(repo: Repo, old: dict[str, TreeEntry], new: dict[str, TreeEntry]) -> dict[str, Any]:
    """The Trainer metrics of the trainer_state.json this commit adds or changes, as staged; of
    several (a whole output directory added), the one with the highest step."""
    import io

    from modelvc.store.filedata import write_file

    found = []
    for path, entry in sorted(new.items()):
        if path.rsplit("/", 1)[-1] == TRAINER_STATE and old.get(path) != entry:
            data = io.BytesIO()
            write_file(repo.read_manifest(entry.manifest_id), data, repo.chunks)
            found.append(trainer_state_metrics(parse_document(data.getvalue(), "JSON", path, "Trainer state"), path))
    if not found:
        raise UsageError(f"this commit adds or changes no {TRAINER_STATE}",
                         hint="stage a checkpoint directory, or name one: --metrics-from-trainer DIR")
    return max(found, key=lambda metrics: metrics["step"])


def commit(repo: Repo, message: str, metrics: dict[str, Any] | None = None, params: dict[str, Any] | None = None,
           meta: dict[str, Any] | None = None, allow_empty: bool = False, *,
           metrics_files: Sequence[FilePath] = (), params_files: Sequence[FilePath] = (),
           trainer_state: FilePath | bool | None = None, params_reset: bool = False,
           cwd: FilePath | None = None) -> CommitResult:
    """Record the index as a commit on HEAD, with its metrics, params and code version.

    Metrics and params files (and a Trainer checkpoint's state: a directory or file, or True for
    the trainer_state.json this commit adds or changes) are read and checked before anything is
    written; params carry over from the parent unless `params_reset`, metrics do not
    (modelvc.metricsfiles has the rules). Written in the store's order (tree, commit, ref
    last) under the writer lock, so a crash leaves the branch where it was; refused when
    nothing changed unless `allow_empty`."""
    if not message.strip():
        raise UsageError("empty commit message", hint="give one with -m MESSAGE")
    values = read_values(metrics, params, metrics_files, params_files, trainer_state, params_reset, cwd)
    author = repo.signature_now()
    code = code_version(repo.root)
    with repo.transaction():
        index = repo.index  # the lock holder's: read afresh, or as `commit -a` just staged it
        head = repo.refs.head()
        head_tree = repo.read_commit(head.commit).tree if head.commit else None
        tree_data = None
        if head_tree is not None and index.base_tree == head_tree:  # only what `add` changed
            changed_paths = index.changed_from_base()
        elif head_tree is not None and hash_bytes(tree_data := encode_tree(*index.tree_columns())) == head_tree:
            changed_paths = set()  # the index makes HEAD's tree: known without reading that tree
        else:
            from modelvc.ops.workstate import tree_from_index

            changed_paths = _changed_paths(repo.tree_of(head.commit).entries, tree_from_index(repo).entries)
        changed = len(changed_paths)
        check_staged(repo, [entry for path in sorted(changed_paths) if (entry := index.entry(path)) is not None])
        if changed == 0 and not allow_empty:
            raise NothingToCommitError("nothing to commit: the index matches HEAD",
                                       hint="stage changes with 'mvc add', or use --allow-empty")
        recorded = values.metrics
        if trainer_state is True:  # the lowest precedence, as a Trainer directory's
            from modelvc.ops.workstate import tree_from_index

            old = repo.tree_of(head.commit).as_map()
            new_map = tree_from_index(repo).as_map()
            recorded = dict(sorted((committed_trainer_metrics(repo, old, new_map) | recorded).items()))
        parents = (head.commit,) if head.commit else ()
        parent_params = repo.read_commit(head.commit).params if head.commit else {}
        if tree_data is None:
            tree_data = _new_tree(repo, index, head_tree, changed_paths)
        with repo.objects.batch():  # tree and commit written together, before the ref
            tree_id = repo.objects.put_encoded(tree_data)
            new = Commit(tree_id, parents, author, message, recorded, values.params_over(parent_params),
                         dict(meta or {}), code)
            commit_id = repo.objects.put(new)
        repo.note_checked_tree(tree_id)  # its paths are the index's, checked when it was read
        kind = "commit" if parents else "commit (initial)"
        index.save(tree_id, commit_id=commit_id)  # so status compares tree ids, not every entry with HEAD's tree's
        repo.refs.update_head(commit_id, head.commit, f"{kind}: {new.subject}")
    return CommitResult(commit_id, head.branch, parents, new, changed)
