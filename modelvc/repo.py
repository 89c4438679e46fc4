"""Repo: finds, creates and opens a repository and holds its parts together.

A Repo is safe to keep open in a long-running process. What other processes write is
noticed by stat before it is used again (freshness.py): the config and the index are read
again when their files change, the chunk index when the packs change; refs and HEAD are
read from their files every time. Writers run inside `transaction()`, which holds the
writer lock and is re-entrant, so operations compose (add then commit, gc then its reflog
expiry) into one locked step. Nothing here touches process-wide state (environment, the
allocator, a shared thread pool): the chunk work's threads belong to the Repo and stop on
close().
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelvc.errors import (
    ConfigError,
    CorruptIndexError,
    CorruptObjectError,
    CorruptRefError,
    FormatVersionError,
    MissingObjectError,
    MvcError,
    NotARepositoryError,
    RepositoryExistsError,
    UnknownRevisionError,
)
from modelvc.freshness import Stamp, stamp, unchanged_since
from modelvc.fsutil import atomic_write
from modelvc.ids import ObjectId, short
from modelvc.objects import Commit, Manifest, Signature, StageMove, Tag, Tree, local_tz_minutes
from modelvc.worktree import MVC_DIR

if TYPE_CHECKING:
    from modelvc.formats import Layout
    from modelvc.index import Index
    from modelvc.lock import RepoLock
    from modelvc.promisor import ChunkPromisor
    from modelvc.refs import Refs
    from modelvc.store.chunker import ChunkParams
    from modelvc.store.chunkstore import ChunkStore
    from modelvc.store.objects import ObjectStore

# 1: FastCDC over every file, zstd chunks. 2: model-aware chunking (tensor-aligned blocks)
# and byte-plane compression of float chunks. 3: as 2, with metadata objects written in
# batches into metadata packs (store/objects.py). All are read and written; init makes 3,
# and gc upgrades 2 to 3.
FORMAT_VERSION = 3
SUPPORTED_FORMATS = (1, 2, 3)
PACKED_METADATA_FORMAT = 3  # from this version on, metadata objects may be packed
DEFAULT_LOCK_TIMEOUT = 30.0
DEFAULT_PACK_MAX_BYTES = 256 << 20
# How many deltas reading a block may have to apply (a write-time policy, not part of the
# format: readers follow chains of any length). On 30 versions of bf16 weights each nudged by
# N(0, 1e-4) (tests/bench/bench_scale.py --scenarios chain) depth 2 stores 0.381 of raw, depth 4
# 0.324, depth 8 0.295. gc stores each chain newest-whole (store/rechain.py), so the newest
# version reads at full speed whatever the depth; the depth bounds what an older version (and,
# until gc runs, the newest) costs. 4 is the least depth under issue 14's 0.33 of raw.
DEFAULT_DELTA_MAX_DEPTH = 4
STAGED_LAYOUTS_KEPT = 64  # versions whose layout a Repo keeps for the next add (Repo.staged_layouts)
IDENTITY_UNKNOWN = """Author identity unknown

*** Please tell me who you are.

Run

  mvc config --global user.email "you@example.com"
  mvc config --global user.name "Your Name"

to set your account's default identity.
Omit --global to set the identity only in this repository."""


def default_chunk_params(version: int) -> dict[str, Any]:
    """The chunking section `init` writes: the format's own parameters, which never change."""
    from modelvc.store.chunker import ChunkParams

    return ChunkParams.for_format(version).to_dict()


class Repo:
    """An open repository: its config, object and chunk stores, refs, index and writer lock.

    `lock_timeout` is how long transaction() waits for another writer by default, `workers`
    the number of threads chunk work uses (None: one per core), `tune_allocator` whether
    starting them may change the process's allocator settings (store/parallel.py; the CLI
    does), and `on_warning` receives what deserves a warning but is no error (an ambiguous
    name); without it, warnings are kept in `warnings`. Use it as a context manager, or call
    close(), to stop its threads.
    """

    def __init__(self, root: Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, workers: int | None = None,
                 tune_allocator: bool = False, on_warning: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.mvc_dir = root / MVC_DIR
        self.lock_timeout = lock_timeout
        self.workers = workers
        self.tune_allocator = tune_allocator
        self.on_warning = on_warning
        self.warnings: list[str] = []
        self._config_stamp = stamp(self.mvc_dir / "config")
        self._config = self._read_config()
        self._objects: ObjectStore | None = None
        self._chunks: ChunkStore | None = None
        self._packs_stamp: Stamp | None = None
        self._refs: Refs | None = None
        self._index: Index | None = None
        self._index_stamp: Stamp | None = None
        self._checked_trees: set[str] = set()
        self._git_user: tuple[str | None, str | None] | None = None  # git's user.name and user.email, once asked
        # Layout and chunks of the model files this Repo staged last, by manifest id: the next
        # add of the same path takes its delta base from here instead of reading it back.
        self.staged_layouts: dict[str, tuple[Layout, tuple[tuple[str, int], ...]]] = {}
        self._writer = threading.RLock()  # one writing thread at a time within this process
        self._depth = 0  # transactions the writing thread has entered and not left
        self._held: RepoLock | None = None
        # A partial clone's remote, set from above (the CLI, modelvc.api): see modelvc/promisor.py
        self.promisor: ChunkPromisor | None = None

    def __enter__(self) -> Repo:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker threads and close open pack files; using the Repo again reopens them."""
        if self._chunks is not None:
            self._chunks.close()
            self._chunks = None
        if self._objects is not None:
            self._objects.close()

    # -- creating and finding -------------------------------------------------------------
    @classmethod
    def init(cls, path: Path, format_version: int = FORMAT_VERSION, **options: Any) -> Repo:
        """Create a repository at `path` (refused where one exists: git would reinitialize)."""
        root = path.resolve()
        mvc_dir = root / MVC_DIR
        if mvc_dir.exists():
            raise RepositoryExistsError(f"a modelvc repository already exists at {mvc_dir}",
                                        hint="nothing was changed")
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("objects", "packs", "refs/heads", "refs/tags", "logs"):
            (mvc_dir / sub).mkdir(parents=True, exist_ok=True)
        config = {"format_version": format_version, "chunking": default_chunk_params(format_version),
                  "pack_max_bytes": DEFAULT_PACK_MAX_BYTES}
        atomic_write(mvc_dir / "config", (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
        atomic_write(mvc_dir / "HEAD", b"ref: refs/heads/main\n")
        return cls(root, **options)

    @classmethod
    def discover(cls, start: Path | None = None, **options: Any) -> Repo:
        """The repository holding `start` (default: the working directory) or a parent of it."""
        start = (start or Path.cwd()).resolve()
        for candidate in (start, *start.parents):
            if (candidate / MVC_DIR / "config").is_file():
                return cls(candidate, **options)
        raise NotARepositoryError(f"not a modelvc repository (or any parent up to /): {start}",
                                  hint="create one with 'mvc init'")

    def _read_config(self) -> dict[str, Any]:
        """The config as far as every command needs it (valid JSON, a known format version);
        the other keys are checked where they are used, and all of them by fsck."""
        path = self.mvc_dir / "config"
        try:
            config = json.loads(path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            raise NotARepositoryError(f"not a modelvc repository: {self.root}",
                                      hint="create one with 'mvc init'") from None
        except UnicodeDecodeError:
            raise self._config_error("it is not UTF-8 text") from None
        except ValueError as exc:
            raise self._config_error(f"it is not valid JSON ({exc})") from None
        if not isinstance(config, dict) or "format_version" not in config:
            raise self._config_error("it has no format_version")
        version = config["format_version"]
        if type(version) is not int:
            raise self._config_error(f"format_version must be an integer, not {version!r}")
        if version not in SUPPORTED_FORMATS:
            raise FormatVersionError(
                f"repository format version {version!r} is not supported by this modelvc "
                f"(it reads versions {', '.join(map(str, SUPPORTED_FORMATS))})",
                hint="upgrade modelvc to work with this repository")
        return config

    # -- parts ----------------------------------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        """The repository's config, read again when its file has changed."""
        path = self.mvc_dir / "config"
        if not unchanged_since(self._config_stamp, path):
            self._config_stamp = stamp(path)
            self._config = self._read_config()
            if self._chunks is not None:
                self._chunks.pack_max_bytes = _pack_max_bytes_or_default(self._config)
            if self._objects is not None:
                self._objects.packed = self._config["format_version"] >= PACKED_METADATA_FORMAT
        return self._config

    @property
    def objects(self) -> ObjectStore:
        """Commits, trees, manifests and tags, opened on first use (a status needs none)."""
        if self._objects is None:
            from modelvc.store.objects import ObjectStore

            self._objects = ObjectStore(self.mvc_dir / "objects",
                                        packed=self.config["format_version"] >= PACKED_METADATA_FORMAT)
        return self._objects

    @property
    def chunks(self) -> ChunkStore:
        """The chunk store; its index is read again when another process added or removed packs."""
        packs = self.mvc_dir / "packs"
        if self._chunks is None:
            from modelvc.store.chunkstore import ChunkStore
            from modelvc.store.parallel import WorkerPool

            self._packs_stamp = stamp(packs)
            self._chunks = ChunkStore(packs, _pack_max_bytes_or_default(self.config),
                                      pool=WorkerPool(self.workers, self.tune_allocator))
        elif not unchanged_since(self._packs_stamp, packs):
            self._packs_stamp = stamp(packs)
            self._chunks.reload_if_packs_changed()
        return self._chunks

    @property
    def refs(self) -> Refs:
        """Branches, tags and HEAD, read from their files each time, so never stale."""
        if self._refs is None:
            from modelvc.refs import Refs

            self._refs = Refs(self.mvc_dir, lambda: self.identity(required=False))
        return self._refs

    @property
    def index(self) -> Index:
        """The index; outside a transaction, read again when its file has changed. Inside one,
        it is the writer's own (nobody else may write it), changed in memory until saved."""
        if self._index is None or (self._depth == 0
                                   and not unchanged_since(self._index_stamp, self.mvc_dir / "index")):
            self._index = self._read_index()
        return self._index

    def fresh_index(self, rebuild_if_corrupt: bool = False) -> Index:
        """Re-read the index from disk (writers call this once they hold the lock), unless this
        transaction staged changes whose save it left to its commit (Index.unsaved).

        With rebuild_if_corrupt (a forced checkout, which rewrites every entry), an unreadable
        index is started afresh instead of refused: that is how a corrupt index is repaired.
        """
        from modelvc.index import Index

        if self._index is not None and self._index.unsaved and self._depth > 0:
            return self._index
        try:
            self._index = self._read_index()
        except CorruptIndexError:
            if not rebuild_if_corrupt:
                raise
            self._index_stamp = None
            self._index = Index(self.mvc_dir / "index", load=False)
        return self._index

    def save_unsaved_index(self) -> None:
        """Write the index if this transaction staged changes whose save it left to a commit
        that did not come (ops/add.py staged_for_commit): a `commit -a` that found nothing to
        commit but touched files keeps the tree id the index records, as `add` would."""
        if self._index is not None and self._index.unsaved:
            self._index.save_staged()

    def _read_index(self) -> Index:
        """The index. Before the first commit there is nothing to rebuild a corrupt one from
        (checkout HEAD cannot work): then the repair the error suggests is removing it."""
        from modelvc.index import Index

        path = self.mvc_dir / "index"
        self._index_stamp = stamp(path)
        try:
            return Index(path)
        except CorruptIndexError as exc:
            if self._head_is_unborn():
                exc.hint = (f"nothing is committed yet: remove it with 'rm {shlex.quote(str(path))}' "
                            "and stage the files again (staged changes are lost)")
            raise

    def _head_is_unborn(self) -> bool:
        try:
            return self.refs.head().commit is None
        except CorruptRefError:
            return False

    @property
    def chunk_params(self) -> ChunkParams:
        """How files are cut: fixed by the format version forever, so dedup finds the same chunks."""
        from modelvc.store.chunker import ChunkParams

        if "chunking" not in self.config:
            raise self._config_error("it has no chunking section")
        try:
            params = ChunkParams.from_dict(self.config["chunking"])
        except ConfigError as exc:
            raise self._config_error(exc.message) from None
        # Dedup needs the same cuts forever, and no command sets other parameters: a value that
        # differs from the format's own is damage, even when it would be a valid one.
        version = self.config["format_version"]
        expected = ChunkParams.for_format(version)
        if params != expected:
            wrong = sorted(k for k, v in params.to_dict().items() if expected.to_dict()[k] != v)
            raise self._config_error(
                "chunking: " + ", ".join(f"{k} is {getattr(params, k)!r}, format version {version} fixes "
                                         f"{getattr(expected, k)!r}" for k in wrong))
        return params

    @property
    def delta_max_depth(self) -> int:
        """How many deltas reading a block may have to apply: bounds the cost of a checkout."""
        return self._config_count("delta_max_depth", DEFAULT_DELTA_MAX_DEPTH)

    @property
    def pack_max_bytes(self) -> int:
        """Size at which a pack is sealed and a new one started (checked: fsck reports a bad one)."""
        return self._config_count("pack_max_bytes", DEFAULT_PACK_MAX_BYTES)

    def config_problems(self) -> list[str]:
        """What is wrong with the config's keys (fsck reports them), each as its ConfigError says."""
        problems = []
        for check in (lambda: self.chunk_params, lambda: self.delta_max_depth,
                      lambda: self.pack_max_bytes, self._check_user):
            try:
                check()
            except ConfigError as exc:
                problems.append(exc.message)
        return problems

    def _config_count(self, key: str, default: int, minimum: int = 0) -> int:
        value = self.config.get(key, default)
        if type(value) is not int or value < minimum:
            raise self._config_error(f"{key} must be an integer >= {minimum}, not {value!r}")
        return value

    def _check_user(self) -> None:
        user = self.config.get("user", {})
        if not isinstance(user, dict) or any(not isinstance(user.get(k, ""), str) for k in ("name", "email")):
            raise self._config_error(f"user must hold a name and an email as text, not {user!r}")

    def _config_error(self, problem: str) -> ConfigError:
        return ConfigError(f"the repository config {self.mvc_dir / 'config'} is damaged: {problem}",
                           hint="repair it by hand (docs/format.md describes every key), or restore it from a backup")

    @contextlib.contextmanager
    def transaction(self, timeout: float | None = None) -> Iterator[Repo]:
        """Hold the writer lock for a block, waiting at most `timeout` seconds for another
        writer (default: the Repo's lock_timeout); LockTimeoutError when it does not finish.

        Re-entrant: an operation inside another's transaction joins it, so a caller can make
        several operations one locked step. Another thread of this process waits as another
        process does. On entry, the leftovers of killed writers are cleared (leftovers.py)
        and the index is read afresh.
        """
        wait = max(self.lock_timeout if timeout is None else timeout, 0.0)
        started = time.monotonic()
        if not self._writer.acquire(blocking=False):
            if not self._writer.acquire(timeout=wait):
                from modelvc.lock import lock_timeout_error

                raise lock_timeout_error(wait, "another thread of this process")
            wait = max(wait - (time.monotonic() - started), 0.0)  # what is left for other processes
        try:
            if self._depth == 0:
                self._held = self._take_lock(wait)
            self._depth += 1
            try:
                yield self
                if self._depth == 1:
                    self._consolidate_packs_if_due()
            finally:
                self._depth -= 1
                if self._depth == 0:
                    held, self._held = self._held, None
                    if held is not None:
                        held.release()
        finally:
            self._writer.release()

    def _take_lock(self, timeout: float) -> RepoLock:
        from modelvc.leftovers import remove_leftovers
        from modelvc.lock import RepoLock

        held = RepoLock(self.mvc_dir / "lock", timeout)
        held.acquire()
        try:
            remove_leftovers(self.mvc_dir)
        except BaseException:
            held.release()
            raise
        self._index = None  # what was read before the lock may be stale: read it again
        if self._objects is not None:  # gc may have dropped packed objects: `has` must not say yes
            self._objects.reload_if_packs_changed()
        return held

    def _consolidate_packs_if_due(self) -> None:
        """git's `gc --auto`: once a writer's work is durable, merge small packs if more than
        gc.auto_packs of them, and pack the loose metadata objects if more than gc.auto_loose
        of them; a failure is a warning, the work done stays done."""
        chunks, objects = self._chunks, self._objects
        if chunks is not None and chunks.packs_sealed:
            self._consolidate_chunk_packs(chunks)
        if objects is not None and objects.packed and (objects.loose_written or objects.packs_sealed):
            self._tidy_metadata(objects)

    def _consolidate_chunk_packs(self, chunks: ChunkStore) -> None:
        from modelvc.store.consolidate import auto_consolidate

        chunks.packs_sealed = 0
        threshold = self._auto_threshold("gc.auto_packs", "packs were not consolidated")
        merged = True  # until known otherwise: a failure part-way may have replaced packs
        try:
            merged = threshold is not None and auto_consolidate(chunks.pack_set(), threshold) is not None
        except (MvcError, OSError) as exc:
            self.warn(f"consolidating packs failed (the command's work is saved; 'mvc gc' retries): {exc}")
        finally:
            if merged:  # else the loaded index already holds this writer's packs (add_sealed)
                chunks.reload()

    def _tidy_metadata(self, objects: ObjectStore) -> None:
        """Pack the loose metadata objects past gc.auto_loose of them, then merge the metadata
        packs past gc.auto_packs: batches of objects (an add of several files) seal packs of
        their own, which would otherwise pile up, each index read by every command."""
        from modelvc.store.consolidate import auto_consolidate

        wrote_loose, sealed = objects.loose_written, objects.packs_sealed
        objects.loose_written = objects.packs_sealed = 0
        changed = True  # until known otherwise: a failure part-way may have written packs
        try:
            loose = self._auto_threshold("gc.auto_loose", "loose objects were not packed") if wrote_loose else None
            packed = loose is not None and 0 < loose < objects.count_loose(loose)
            if packed:
                objects.pack_loose()
            merged = False
            if packed or sealed:
                packs = self._auto_threshold("gc.auto_packs", "packs were not consolidated")
                merged = packs is not None and auto_consolidate(objects.pack_set(), packs) is not None
            changed = packed or merged  # loose objects need no index: nothing to read again otherwise
        except (MvcError, OSError) as exc:
            self.warn(f"packing metadata objects failed (the command's work is saved; 'mvc gc' retries): {exc}")
        finally:
            if changed:
                objects.reload()

    def _auto_threshold(self, key: str, otherwise: str) -> int | None:
        from modelvc.config import effective

        threshold = effective(self.config, key)
        if type(threshold) is not int or threshold < 0:
            self.warn(f"{key} must be an integer >= 0, not {threshold!r}: {otherwise}")
            return None
        return threshold

    @property
    def in_transaction(self) -> bool:
        """Whether this Repo holds the writer lock (in any of its threads)."""
        return self._depth > 0

    def warn(self, message: str) -> None:
        """Report something that deserves a warning but is no error."""
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            self.warnings.append(message)

    # -- identity -------------------------------------------------------------------------
    def identity(self, required: bool = True) -> tuple[str, str]:
        """(name, email): MVC_AUTHOR_NAME/EMAIL, else `mvc config`, else git's user.name and
        user.email. When none is set, `required` fails as git does; reflog lines (not
        required) fall back to the login name and login@host, as git's reflog does."""
        from modelvc.config import effective

        self._check_user()
        name = os.environ.get("MVC_AUTHOR_NAME") or effective(self.config, "user.name")
        email = os.environ.get("MVC_AUTHOR_EMAIL") or effective(self.config, "user.email")
        if not (name and email):
            if self._git_user is None:  # one git process for both keys, once: a commit asks twice (its reflog line)
                from modelvc.gitinfo import git_identity

                self._git_user = git_identity(self.root)
            name, email = name or self._git_user[0], email or self._git_user[1]
        if name and email:
            return name, email
        if required:
            from modelvc.errors import IdentityError

            raise IdentityError(IDENTITY_UNKNOWN, hint="or set MVC_AUTHOR_NAME and MVC_AUTHOR_EMAIL")
        login = _login_name()
        return name or login, email or f"{login}@{os.uname().nodename}"

    def signature_now(self) -> Signature:
        """Who commits now and when, in the local time zone: an identity is required, as in git."""
        name, email = self.identity()
        now = time.time()
        return Signature(name, email, int(now), local_tz_minutes(now))

    # -- revisions ------------------------------------------------------------------------
    def parents(self, commit_id: ObjectId) -> list[str]:
        """The commit's parents, so revision walks need not know how commits are stored."""
        return list(self.read_commit(commit_id).parents)

    def peel(self, object_id: ObjectId) -> str:
        """The commit `object_id` names; a damaged object is an integrity error, not unknown."""
        try:
            obj = self.objects.get(object_id)
        except MissingObjectError:
            raise UnknownRevisionError(f"object {short(object_id)} does not exist") from None
        if isinstance(obj, Tag):
            return self.peel(obj.object)
        if isinstance(obj, StageMove):  # a stage (refs/stages/NAME) names its last move
            if obj.commit is None:
                raise UnknownRevisionError(f"stage '{obj.stage}' names no commit: it was deleted",
                                           hint=f"see its moves with 'mvc history {obj.stage}'")
            return self.peel(obj.commit)
        if not isinstance(obj, Commit):
            raise UnknownRevisionError(f"object {short(object_id)} is not a commit")
        return object_id

    def commits_with_prefix(self, prefix: str) -> list[str]:
        """Commits whose id starts with `prefix`. When none does but a damaged object would,
        that damage is the answer (it may well be the commit the user means)."""
        found, damaged = [], []
        for object_id in self.objects.ids_with_prefix(prefix):
            try:
                if isinstance(self.objects.get(object_id), Commit):
                    found.append(object_id)
            except MissingObjectError:  # removed by gc since listed
                continue
            except CorruptObjectError as exc:
                damaged.append(exc)
        if damaged and not found:
            raise damaged[0]
        return found

    def resolve(self, rev: str) -> str:
        """The commit a revision names (git's syntax, revparse.py); an ambiguous name is warned of."""
        from modelvc.revparse import resolve

        return resolve(rev, self.refs, self, self.warn)

    def read_commit(self, commit_id: ObjectId) -> Commit:
        """A commit object; anything else under that id is an integrity error, not a commit."""
        return self.objects.get_typed(commit_id, Commit)

    def read_tree(self, tree_id: ObjectId) -> Tree:
        """A tree whose paths are all safe to join to the working tree (else UnsafePathError)."""
        tree = self.objects.get_typed(tree_id, Tree)
        if tree_id not in self._checked_trees:
            from modelvc.safepath import check_paths, paths_look_safe

            paths = [e.path for e in tree.entries]
            if not paths_look_safe(paths):  # the bulk check; the exact one when it is in doubt
                check_paths(paths, f"tree {short(tree_id)}", git_ok=True)
            self._checked_trees.add(tree_id)
        return tree

    def note_staged_layout(self, file_id: ObjectId, layout: Layout, chunks: tuple[tuple[str, int], ...]) -> None:
        """Remember a model file version just staged (its manifest written), the last
        STAGED_LAYOUTS_KEPT of them: the base of its path's next version."""
        self.staged_layouts.pop(file_id, None)
        self.staged_layouts[file_id] = (layout, chunks)
        while len(self.staged_layouts) > STAGED_LAYOUTS_KEPT:
            del self.staged_layouts[next(iter(self.staged_layouts))]

    def note_checked_tree(self, tree_id: ObjectId) -> None:
        """A tree made here from paths checked already (the index's): read_tree need not check
        them again in this process."""
        self._checked_trees.add(tree_id)

    def read_manifest(self, file_id: ObjectId) -> Manifest:
        """A file version's manifest, checked against the stored chunks' lengths."""
        manifest = self.objects.get_typed(file_id, Manifest)
        self.chunks.check_lengths(file_id, manifest)
        return manifest

    def tree_of(self, commit_id: ObjectId | None) -> Tree:
        """A commit's tree; the empty tree for None (no commit yet), so callers need no special case."""
        if commit_id is None:
            return Tree(())
        return self.read_tree(self.read_commit(commit_id).tree)

    def head_commit(self) -> str | None:
        """The commit HEAD is on; None before the first commit."""
        return self.refs.head().commit




def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _pack_max_bytes_or_default(config: dict[str, Any]) -> int:
    """Only a size policy for new packs: a damaged value (fsck reports it) stops no reader."""
    value = config.get("pack_max_bytes", DEFAULT_PACK_MAX_BYTES)
    return value if type(value) is int and value >= 0 else DEFAULT_PACK_MAX_BYTES
