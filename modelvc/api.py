"""The Python API: `modelvc.Repo`, a Repo with one method per command.

Each method calls the same op function as its command, with the command's defaults, and
returns the op's result: `to_dict()` is what the command's `--json` prints, because both
render the same object. Nothing here prints, changes the process (signals, working
directory, environment, logging) or reads the caller's working directory: relative paths
are taken from the repository root. Readers (log, show, diff between commits, open_file,
read_tensor) take no lock, so a commit in another thread never blocks them.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from modelvc import repo as base

if TYPE_CHECKING:
    import numpy as np

    from modelvc.ops.add import AddResult, RmResult
    from modelvc.ops.annotate import NoteRecord
    from modelvc.ops.checkout import CheckoutResult
    from modelvc.ops.commit import CommitResult
    from modelvc.ops.diff import DiffResult
    from modelvc.ops.fsck import FsckResult
    from modelvc.ops.gc import GcResult
    from modelvc.ops.log import LogEntry
    from modelvc.ops.mv import MoveResult
    from modelvc.ops.names import NameInfo
    from modelvc.ops.restore import RestoreResult
    from modelvc.ops.rollback import RollbackResult
    from modelvc.ops.runs import RunsTable
    from modelvc.ops.show import ShowFileResult, ShowResult
    from modelvc.ops.stages import StageMoveRecord
    from modelvc.ops.stats import StatsResult
    from modelvc.ops.status import StatusResult
    from modelvc.transfer.result import TransferResult

PathArg = str | PathLike[str]


class Repo(base.Repo):
    """A repository, opened for use from Python (see docs/api.md).

    Options (all keyword): `workers` threads for chunk work (None: one per core),
    `lock_timeout` seconds a writer waits for another, `on_warning` a callable given each
    warning (else they collect in `warnings`). Use it as a context manager, or call close().
    """

    cloned: TransferResult | None = None  # set by clone()

    def __init__(self, root: Path, **options: Any) -> None:
        super().__init__(root, **options)
        from modelvc.promisor import partial_remote

        if partial_remote(self.config) is not None:  # a partial clone: checkout fetches what it lacks
            from modelvc.transfer.lazy import install_promisor

            install_promisor(self)

    # -- opening ---------------------------------------------------------------------------
    @classmethod
    def init(cls, path: PathArg, **options: Any) -> Repo:  # type: ignore[override]
        """Create a repository at `path` (as `mvc init`: in a git work tree, .gitignore gets /.mvc/)."""
        from modelvc.ops.gitside import ignore_store

        repo = cast(Repo, super().init(Path(path), **options))  # an instance of cls, as every classmethod here
        ignore_store(repo.root)
        return repo

    @classmethod
    def open(cls, path: PathArg, **options: Any) -> Repo:
        """The repository whose root is exactly `path` (NotARepositoryError otherwise)."""
        return cls(Path(path).resolve(), **options)

    @classmethod
    def discover(cls, start: PathArg | None = None, **options: Any) -> Repo:
        """The repository holding `start` (default: the working directory) or a parent of it."""
        return cast(Repo, super().discover(Path(start) if start is not None else None, **options))

    # -- files -----------------------------------------------------------------------------
    def add(self, *paths: PathArg, force: bool = False, gitignore: bool | None = None,
            dereference: bool = False) -> AddResult:
        """Stage files, directories or glob patterns (`mvc add`)."""
        from modelvc.ops.add import add

        return add(self, self._specs(paths), self.root, force=force, gitignore=gitignore, dereference=dereference)

    def rm(self, *paths: PathArg, cached: bool = False, force: bool = False) -> RmResult:
        """Stop tracking files, deleting them unless `cached` (`mvc rm`)."""
        from modelvc.ops.add import rm

        return rm(self, self._specs(paths), cached, force, self.root)

    def mv(self, *sources: PathArg, destination: PathArg, force: bool = False) -> MoveResult:
        """Move or rename tracked files (`mvc mv`)."""
        from modelvc.ops.mv import mv

        return mv(self, self._specs(sources), str(destination), force, self.root)

    def restore(self, *paths: PathArg, staged: bool = False, worktree: bool | None = None) -> RestoreResult:
        """Undo staging (`staged`) or local edits (`worktree`, the default without staged)."""
        from modelvc.ops.restore import restore

        return restore(self, self._specs(paths), staged, worktree if worktree is not None else not staged, self.root)

    def status(self, untracked_files: bool = True) -> StatusResult:
        """Staged and unstaged changes and untracked files (`mvc status`)."""
        from modelvc.ops.status import status

        return status(self, untracked=untracked_files)

    # -- history ---------------------------------------------------------------------------
    def commit(self, message: str, metrics: Mapping[str, float] | None = None,
               params: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None, *,
               add: Sequence[PathArg] = (), all: bool = False, allow_empty: bool = False,
               metrics_files: Sequence[PathArg] = (), params_files: Sequence[PathArg] = (),
               params_reset: bool = False, metrics_from_trainer: PathArg | bool | None = None) -> CommitResult:
        """Record the index as a commit (`mvc commit`). First, in the same locked step, `add`
        stages those paths (as `add()` with its defaults) and `all` every change to tracked
        files; the index is then written once, by the commit. Metrics must be finite numbers;
        nested dicts are flattened with dots, as metrics files are."""
        from modelvc.ops.add import add as add_paths
        from modelvc.ops.add import add_tracked, staged_for_commit
        from modelvc.ops.commit import commit, message_from

        text = message_from([message])
        if isinstance(add, (str, PathLike)):
            add = [add]
        with staged_for_commit(self):
            if add:
                add_paths(self, self._specs(add), self.root, save_index=False)
            if all:
                add_tracked(self, save_index=False)
            return commit(self, text, dict(metrics or {}), dict(params or {}), dict(meta or {}), allow_empty,
                          metrics_files=list(metrics_files), params_files=list(params_files),
                          trainer_state=metrics_from_trainer, params_reset=params_reset, cwd=self.root)

    def log(self, *revs: str, max_count: int | None = None, all: bool = False,
            paths: Sequence[PathArg] | None = None, where: Sequence[str] = (), sort: Sequence[str] = (),
            since: str | None = None, until: str | None = None) -> list[LogEntry]:
        """Commits newest first from REVs (default HEAD; 'A..B' ranges too), as `mvc log`;
        `where` ('val_loss<2 and lr=3e-4'), `sort` ('-acc'), `since`/`until` as its options."""
        from modelvc.ops.log import log
        from modelvc.ops.query import Query

        query = Query.parse(where, sort, since, until)
        if self.head_commit() is None and not revs and not all:
            return []
        return log(self, list(revs), max_count, self._specs(paths) if paths else None, self.root, all, query)

    def runs(self, *revs: str, max_count: int | None = None, all: bool = False, where: Sequence[str] = (),
             sort: Sequence[str] = (), since: str | None = None, until: str | None = None,
             metrics: Sequence[str] = (), params: Sequence[str] = ()) -> RunsTable:
        """The commits log would list as a table, a column per metric and param (`mvc runs`)."""
        from modelvc.ops.query import Query
        from modelvc.ops.runs import RunsTable, runs

        query = Query.parse(where, sort, since, until)
        if self.head_commit() is None and not revs and not all:
            return RunsTable([], [])
        return runs(self, revs, all, query, max_count, metrics, params)

    def show(self, rev: str = "HEAD") -> ShowResult | ShowFileResult:
        """A commit, or with 'REV:PATH' a stored file's tensors and metadata (`mvc show`)."""
        from modelvc.ops.show import show_commit, show_file
        from modelvc.revparse import split_rev_path

        commit_rev, path = split_rev_path(rev)
        return show_commit(self, rev) if path is None else show_file(self, commit_rev, path)

    def diff(self, a: str | None = None, b: str | None = None, *, paths: Sequence[PathArg] | None = None,
             stats: bool = False, stat: bool = False, tensors: bool = True) -> DiffResult:
        """HEAD (or `a`) against the working tree, or `a` against `b` (`mvc diff`). Note:
        `mvc diff --json` prints `to_dict(all_tensors=False)`, `--json --all` `to_dict()`."""
        from modelvc.ops.diff import diff

        return diff(self, a, b, self._specs(paths) if paths else None, self.root,
                    models=tensors and not stat, stats=stats)

    # -- moving ----------------------------------------------------------------------------
    def checkout(self, rev: str | None = None, paths: Sequence[PathArg] | None = None, *,
                 new_branch: str | None = None, force: bool = False) -> CheckoutResult | RestoreResult:
        """Switch to a branch or revision, create one (`new_branch`, at `rev` or HEAD), or
        restore `paths` from `rev` (or from the index without `rev`), as `mvc checkout`."""
        from modelvc.errors import UsageError
        from modelvc.ops.checkout import checkout, checkout_new_branch, restore_paths
        from modelvc.ops.restore import restore

        if new_branch is not None:
            if paths:
                raise UsageError("checkout new_branch= takes no paths")
            return checkout_new_branch(self, new_branch, rev, force)
        if paths is not None:
            if not paths:
                raise UsageError("checkout paths= needs at least one path")
            if rev is None:
                return restore(self, self._specs(paths), cwd=self.root)
            return restore_paths(self, rev, self._specs(paths), force, self.root)
        if rev is None:
            raise UsageError("checkout needs a branch or revision")
        return checkout(self, rev, force)

    def rollback(self, rev: str | None = None, *, hard: bool = False, force: bool = False) -> RollbackResult:
        """Go back to `rev`'s content (default HEAD^) as a new commit, or move the branch (`hard`)."""
        from modelvc.ops.rollback import rollback

        return rollback(self, rev, hard, force)

    def branch(self, name: str | None = None, start: str | None = None, *, delete: bool = False,
               force_delete: bool = False, move: bool = False, set_upstream_to: str | None = None,
               unset_upstream: bool = False) -> NameInfo | list[NameInfo]:
        """List branches (no name), create NAME at START, delete (`delete`, `force_delete`) or
        rename (`move`: NAME to START, or the current branch to NAME), as `mvc branch`; make NAME
        (default: the current branch) track a remote-tracking branch (`set_upstream_to`, `-u`) or
        nothing (`unset_upstream`)."""
        from modelvc.errors import UsageError
        from modelvc.ops.names import create_branch, delete_branch, list_branches, rename_branch, set_branch_upstream

        if set_upstream_to is not None or unset_upstream:
            return set_branch_upstream(self, name, None if unset_upstream else set_upstream_to)
        if delete or force_delete:
            if name is None or start:
                raise UsageError("branch delete takes exactly one branch name")
            return delete_branch(self, name, force=force_delete)
        if move:
            if not name:
                raise UsageError("branch move takes OLD, NEW, or NEW to rename the current branch")
            return rename_branch(self, name, start) if start else rename_branch(self, None, name)
        if name is not None:
            return create_branch(self, name, start)
        return list_branches(self)

    def tag(self, name: str | None = None, rev: str | None = None, *, message: str | None = None,
            delete: bool = False, force: bool = False) -> NameInfo | list[NameInfo]:
        """List tags (no name), tag `rev` (default HEAD) as NAME, or delete one (`mvc tag`)."""
        from modelvc.errors import UsageError
        from modelvc.ops.names import create_tag, delete_tag, list_tags

        if delete:
            if name is None or rev:
                raise UsageError("tag delete takes exactly one tag name")
            return delete_tag(self, name)
        if name is not None:
            return create_tag(self, name, rev, message, force)
        return list_tags(self)

    # -- registry --------------------------------------------------------------------------
    def annotate(self, rev: str = "HEAD", *, metrics: Mapping[str, float] | None = None,
                 params: Mapping[str, Any] | None = None, meta: Mapping[str, Any] | None = None,
                 message: str = "") -> NoteRecord:
        """Add metrics, params or metadata to an existing commit; its id does not change (`mvc annotate`)."""
        from modelvc.ops.annotate import annotate

        return annotate(self, rev, metrics, params, meta, message)

    def annotations(self, rev: str = "HEAD") -> list[NoteRecord]:
        """The notes of REV's commit, newest first (`mvc annotate --list`)."""
        from modelvc.ops.annotate import notes_of

        return notes_of(self, rev)

    def promote(self, rev: str | None = None, stage: str | None = None, *, message: str = "",
                delete: bool = False) -> StageMoveRecord:
        """Move STAGE to REV (`mvc promote REV STAGE`), or with `delete` to no commit
        (`mvc promote --delete STAGE`: give only `stage`)."""
        from modelvc.errors import UsageError
        from modelvc.ops.stages import delete_stage, promote

        if stage is None or (rev is None) != delete:
            raise UsageError("promote takes rev and stage (or stage and delete=True)")
        return delete_stage(self, stage, message) if delete else promote(self, cast(str, rev), stage, message)

    def history(self, *stages: str) -> list[StageMoveRecord]:
        """Every move of STAGEs (default: of every stage), newest first (`mvc history`)."""
        from modelvc.ops.stages import history

        return history(self, list(stages))

    def stages(self) -> list[StageMoveRecord]:
        """Each stage's last move, for the stages that name a commit (`mvc stages`)."""
        from modelvc.ops.stages import list_stages

        return list_stages(self)

    # -- upkeep ----------------------------------------------------------------------------
    def fsck(self, read_data: bool = False) -> FsckResult:
        """Verify everything reachable; problems are in the result (`ok`), not raised, where
        `mvc fsck` exits 7 (IntegrityError.exit_code)."""
        from modelvc.ops.fsck import fsck

        return fsck(self, read_data)

    def gc(self, prune: str | None = None, grace: float | None = None) -> GcResult:
        """Expire old reflog entries and delete unreachable data older than `prune` ('now',
        '2 weeks', a date) or `grace` seconds (default an hour), as `mvc gc`."""
        import time

        from modelvc.errors import UsageError
        from modelvc.expiry import parse_expiry
        from modelvc.ops.gc import GRACE_SECONDS, gc

        if prune is not None and grace is not None:
            raise UsageError("give prune or grace, not both")
        if prune is not None:
            now = time.time()
            grace = max(0.0, now - parse_expiry(prune, now))
        return gc(self, GRACE_SECONDS if grace is None else grace)

    def stats(self) -> StatsResult:
        """Bytes tracked across all versions against bytes stored (`mvc stats`)."""
        from modelvc.ops.stats import stats

        return stats(self)

    # -- remotes ---------------------------------------------------------------------------
    def push(self, remote: str | None = None, *refs: str, set_upstream: bool = False, all: bool = False,
             tags: bool = False, force: bool = False, dry_run: bool = False) -> TransferResult:
        """Send REFS (default: the current branch, to its upstream) to the remote (`mvc push`);
        a refused ref raises PushRejectedError, whose `result` says what did move."""
        from modelvc.transfer.push import push

        return push(self, remote, list(refs), set_upstream_ref=set_upstream, all_branches=all, tags=tags,
                    force=force, dry_run=dry_run)

    def fetch(self, remote: str | None = None, *names: str, all_data: bool = False) -> TransferResult:
        """Download the remote's branches (as refs/remotes/REMOTE/...) and tags, or only the
        branches or tags `names` (`mvc fetch [REMOTE [BRANCH...]]`); from a partial clone's remote
        the metadata only, unless `all_data` (`--all-data`)."""
        from modelvc.transfer.fetch import fetch

        return fetch(self, remote, all_data=all_data, names=names)

    def pull(self, remote: str | None = None, branch: str | None = None, *, force: bool = False) -> TransferResult:
        """Fetch, then fast-forward the current branch and its files to its upstream, or to
        `branch` of `remote` (`mvc pull [REMOTE [BRANCH]]`)."""
        from modelvc.transfer.pull import pull

        return pull(self, remote, force=force, branch=branch)

    @classmethod
    def clone(cls, url: str, path: PathArg, *, branch: str | None = None, endpoint: str | None = None,
              region: str | None = None, path_style: bool | None = None, partial: bool = False,
              **options: Any) -> Repo:
        """A new repository at `path` from the remote at `url`, checked out (`mvc clone`); the
        summary is `repo.cloned` (a TransferResult). `partial`: only the checked-out files'
        chunks are fetched now, the others when a checkout needs them (`--partial`)."""
        from modelvc.transfer.clone import clone

        repo, result = clone(url, Path(path), cwd=Path.cwd(), branch=branch, endpoint=endpoint, region=region,
                             path_style=path_style, repo_class=cls, partial=partial, **options)
        cast(Repo, repo).cloned = result
        return cast(Repo, repo)

    # -- stored files ----------------------------------------------------------------------
    def open_file(self, rev: str, path: PathArg) -> io.BufferedReader:
        """A read-only binary file of PATH as stored in REV, each chunk verified as it is read;
        the working tree and the index are not touched (as `mvc cat`)."""
        from modelvc.storedfile import open_stored

        return open_stored(self, rev, self._stored_path(path))

    def read_tensor(self, rev: str, path: PathArg, name: str) -> np.ndarray:
        """Tensor NAME of model file PATH in REV, reading only the chunks that hold it."""
        from modelvc.storedfile import read_stored_tensor

        return read_stored_tensor(self, rev, self._stored_path(path), name)

    # -- helpers ---------------------------------------------------------------------------
    def _stored_path(self, path: PathArg) -> str:
        """A path from the repository root, given so or absolute inside the working tree."""
        from modelvc.worktree import to_repo_path

        return to_repo_path(self.root, str(path), self.root)

    @staticmethod
    def _specs(paths: Sequence[PathArg] | None) -> list[str]:
        """Paths for an op run from the root (cwd=root), so relative ones are from the root."""
        return [str(p) for p in paths or ()]

