"""mvc fsck: re-read and verify everything reachable, and say what any damage breaks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelvc.errors import CorruptRefError, IntegrityError, MissingChunkError, UnsafePathError
from modelvc.ids import ChunkId, ObjectId, is_full_id
from modelvc.ops.links import stored_link_target
from modelvc.ops.reach import Reachable, problem_kind, roots, users_of_chunk, users_of_file, walk
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.safepath import tree_problems
from modelvc.store import layout
from modelvc.store.backend import NotFoundInBackend
from modelvc.store.packs import NO_BASE, RECORD_MAGIC, Location, header_mismatch, read_idx, read_idx_rows, scan_pack
from modelvc.store.parallel import ordered_map

if TYPE_CHECKING:
    import numpy as np

    from modelvc.objects import Tree

VERIFY_BATCH_BYTES = 4 << 20  # chunks are verified in batches of about this many bytes, or
VERIFY_BATCH_CHUNKS = 256  # of this many chunks: a thread hand-off per small chunk cost more than its hash
# Below this many bytes the chunks are verified in this thread: 1,010 chunks of 1 KB took
# 78 ms through the pool, 22 ms here (shared 2-core machine, load about 2)
PARALLEL_MIN_BYTES = 16 << 20


@dataclass(frozen=True)
class Problem:
    """One thing fsck found wrong, with what it breaks, so a user knows which versions to restore."""

    kind: str  # missing | corrupt | dangling | unsafe
    object: str  # an object or chunk id, a ref name ("HEAD", "refs/heads/x") or "config"
    detail: str
    breaks: tuple[tuple[str, str], ...] = ()  # (commit id or "index", path)

    def to_dict(self) -> dict[str, Any]:
        """`id` for an object or chunk, else `name` for the file or ref ("index", "HEAD", a reflog,
        a pack index); in "breaks", a null commit is the index."""
        found = is_full_id(self.object)
        return {"kind": self.kind, "id": self.object if found else None, "name": None if found else self.object,
                "detail": self.detail,
                "breaks": [{"commit": None if commit == "index" else commit, "path": path}
                           for commit, path in self.breaks]}


@dataclass
class FsckResult:
    """What fsck verified and what it found; any problem makes `mvc fsck` exit 7."""

    commits: int = 0
    objects: int = 0
    chunks: int = 0
    chunk_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # A partial clone: reachable chunks absent here that its remote holds (no problem)
    on_remote: int = 0
    on_remote_bytes: int = 0
    promisor: str | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "commit_count": self.commits, "object_count": self.objects,
                "chunk_count": self.chunks, "chunk_bytes": self.chunk_bytes, "notes": self.notes,
                "problems": [p.to_dict() for p in self.problems],
                "on_remote": None if self.promisor is None else {
                    "remote": self.promisor, "chunk_count": self.on_remote, "chunk_bytes": self.on_remote_bytes}}


def fsck(repo: Repo, read_data: bool = False, progress: Progress = NO_PROGRESS) -> FsckResult:
    """Verify every reachable object and chunk; with read_data, every chunk in every pack.

    Takes no lock, like every reader: gc or add may run beside it (see _verify_chunks).
    """
    result = FsckResult()
    result.problems += [Problem("corrupt", "config", problem) for problem in repo.config_problems()]
    broken_objects: list[tuple[str, str, str]] = []
    unreadable = _unreadable_pack_indexes(repo)  # then no chunk can be looked up
    unsafe = _UnsafePaths(repo)
    with repo.objects.bulk_verified():  # each object still verified, but pack by pack
        reach = walk(repo, lambda kind, oid, detail: broken_objects.append((kind, oid, detail)),
                     chunk_lengths=not unreadable, on_tree=unsafe.check)
    if broken_objects:
        lineage = _Lineage(repo, reach)
        for kind, object_id, detail in broken_objects:
            result.problems.append(Problem(kind, object_id, detail, lineage.breaks(object_id)))
    result.problems += _wrong_sizes(reach)
    result.problems += unsafe.problems(reach)
    result.commits = len(reach.commits)
    result.objects = len(reach.object_ids)
    result.problems += _head_problems(repo) + _reflog_problems(repo) + _commit_cache_problems(repo, reach)
    if unreadable:
        result.problems += _pack_index_problems(repo, reach, unreadable)
        result.notes.append("chunks were not verified: a pack index is unreadable")
        return result
    _verify_chunks(repo, reach, read_data, result, progress)
    if result.on_remote:
        result.notes.append(f"{result.on_remote} chunks are on the remote {result.promisor} (a partial clone): "
                            "checkout fetches them when it needs them, 'mvc fetch --all-data' fetches them all"
                            + (" (its cached pack indexes list them; it could not be reached)"
                               if repo.promisor is not None and repo.promisor.offline else ""))
    if read_data:
        reported = {problem.object for problem in result.problems}
        result.problems += [p for p in _check_packs(repo) if p.object not in reported]
        result.problems += _combined_against_packs(repo)
    result.notes += _incomplete_packs(repo) + _combined_index_notes(repo)
    if any(problem.kind == "missing" for problem in result.problems):
        result.problems = _without_collected(repo, result.problems)
    return result


def _commit_cache_problems(repo: Repo, reach: Reachable) -> list[Problem]:
    """The commit-metadata cache must agree with the objects (it is derived from them)."""
    from modelvc.commitcache import CACHE_FILE
    from modelvc.commitcache import check as check_commit_cache

    found = check_commit_cache(repo, reach.commits)
    return [Problem("corrupt", CACHE_FILE, problem) for problem in found.problems] if found else []


def _without_collected(repo: Repo, problems: list[Problem]) -> list[Problem]:
    """Drop what went missing only because gc collected it while fsck ran.

    Content staged when fsck read the index may be unstaged and collected before fsck reads
    it. Such an object or chunk is no longer reachable now (or is present again): not damage.
    What is still reachable and still missing stays reported.
    """
    missing_now: set[str] = set()
    repo.fresh_index()
    repo.chunks.reload()
    now = walk(repo, lambda kind, oid, detail: missing_now.add(oid) if kind == "missing" else None,
               verify=False)

    def still_missing(problem: Problem) -> bool:
        if problem.object in missing_now or not is_full_id(problem.object):
            return True
        if problem.object in now.object_ids:
            return not repo.objects.has(problem.object)
        chunk_id = bytes.fromhex(problem.object)
        if chunk_id not in now.chunks and not repo.chunks.has(chunk_id):
            return False
        try:
            repo.chunks.read(chunk_id)  # a delta's base may be what is missing
        except IntegrityError:
            return True
        return False

    return [p for p in problems if p.kind != "missing" or still_missing(p)]


def _wrong_sizes(reach: Reachable) -> list[Problem]:
    """Trees or index entries whose size disagrees with the manifest they name."""
    problems = []
    for tree_id, path, file_id, listed, actual in reach.wrong_sizes:
        if tree_id == "index":
            problems.append(Problem("corrupt", "index", f"the index lists {path} as {listed} bytes, but its "
                                    f"content {file_id[:10]} has {actual} (stage it again with 'mvc add')",
                                    (("index", path),)))
        else:
            problems.append(Problem("corrupt", tree_id, f"tree {tree_id[:10]} lists {path} as {listed} bytes, "
                                    f"but its content {file_id[:10]} has {actual}",
                                    tuple((commit_id, path) for commit_id in reach.tree_commits.get(tree_id, ()))))
    return problems


def _verify_chunks(repo: Repo, reach: Reachable, read_data: bool, result: FsckResult, progress: Progress) -> None:
    """Read and hash every reachable chunk (with read_data, every indexed chunk).

    A chunk that gc moved to a new pack meanwhile is found by ChunkStore.read, which reloads
    the index once when a pack has gone; an unreachable one that gc dropped is not a problem.
    """
    chunks = repo.chunks  # once: each access of the property stats the packs
    chunk_ids = list(reach.chunks)
    if read_data:
        table = chunks.index.entries()
        chunk_ids += [row.tobytes() for row in table["id"] if row.tobytes() not in reach.chunks]
    total = sum(reach.chunks.get(c, 0) for c in chunk_ids)
    progress.start("Verifying", total)

    verified: dict[ChunkId, int] = {}

    def check(chunk_id: ChunkId) -> tuple[bytes, int, str | None, str]:
        if chunk_id in verified:
            return chunk_id, verified[chunk_id], None, ""
        try:
            data = chunks.read(chunk_id)
            return chunk_id, len(data), None, ""
        except MissingChunkError as exc:
            if chunk_id not in reach.chunks and not chunks.has(chunk_id):
                return chunk_id, -1, None, ""  # unreachable, and collected since listed
            return chunk_id, 0, problem_kind(exc), exc.message
        except IntegrityError as exc:
            return chunk_id, 0, problem_kind(exc), exc.message

    def check_batch(batch: list[ChunkId]) -> list[tuple[bytes, int, str | None, str]]:
        return [check(chunk_id) for chunk_id in batch]

    batches = _batches(chunk_ids, reach.chunks)
    if total >= PARALLEL_MIN_BYTES:
        checked_batches = ordered_map(check_batch, batches, pool=chunks.pool)
    else:  # small chunks: handing them to threads cost more than hashing them here, and
        # reading them pack by pack less than one by one (what fails is read again, one by one)
        verified = chunks.verified_in_sequence(chunk_ids)
        checked_batches = (check_batch(batch) for batch in batches)
    promisor = repo.promisor
    result.promisor = promisor.name if promisor is not None else None
    for checked in checked_batches:
        for chunk_id, size, kind, message in checked:
            progress.advance(reach.chunks.get(chunk_id, 0))
            if size < 0:
                continue
            if kind == "missing" and promisor is not None and promisor.has_chunk(chunk_id):
                result.on_remote += 1  # a partial clone's: fetched when a checkout needs it
                result.on_remote_bytes += reach.chunks.get(chunk_id, 0)
                continue
            result.chunks += 1
            result.chunk_bytes += size
            if kind:
                result.problems.append(Problem(kind, chunk_id.hex(), message, tuple(users_of_chunk(reach, chunk_id))))
    progress.finish()


def _batches(chunk_ids: list[ChunkId], lengths: dict[bytes, int]) -> Iterator[list[ChunkId]]:
    batch: list[ChunkId] = []
    weight = 0
    for chunk_id in chunk_ids:
        batch.append(chunk_id)
        weight += lengths.get(chunk_id, 0)
        if weight >= VERIFY_BATCH_BYTES or len(batch) >= VERIFY_BATCH_CHUNKS:
            yield batch
            batch, weight = [], 0
    if batch:
        yield batch


class _UnsafePaths:
    """Tree entries that checkout would refuse: paths that could leave the working tree, and
    links whose target no system could create. Checked as the walk reads each tree (once)."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo
        self.found: list[tuple[str, str, str, str]] = []  # (tree id, object id, path, detail)
        # The last tree's paths and their problems: most commits keep the paths of the one before
        self._last: tuple[tuple[str, ...], list[tuple[str, str]]] = ((), [])

    def check(self, tree_id: ObjectId, tree: Tree) -> None:
        paths = tuple([e.path for e in tree.entries])
        if paths != self._last[0]:
            self._last = (paths, tree_problems(paths, git_ok=True))
        for path, reason in self._last[1]:
            self.found.append((tree_id, tree_id, path, f"tree {tree_id[:10]} has an unsafe path {path!r}: it {reason}"))
        for entry in tree.entries:
            if entry.is_link:
                try:
                    stored_link_target(self.repo, entry.manifest_id, entry.path)
                except UnsafePathError as exc:
                    self.found.append((tree_id, entry.manifest_id, entry.path, exc.message))
                except IntegrityError:  # a missing or corrupt manifest or chunk: reported as such
                    continue

    def problems(self, reach: Reachable) -> list[Problem]:
        return [Problem("unsafe", object_id, detail,
                        tuple((c, path) for c in sorted(reach.tree_commits.get(tree_id, []))))
                for tree_id, object_id, path, detail in sorted(self.found)]


def _check_packs(repo: Repo) -> list[Problem]:
    """Cross-check every record of every pack against its own index, field by field.

    Each pack is compared with its own .idx, not the index loaded at the start, so a pack
    that add sealed since is checked too, and one that gc removed since is skipped.
    """
    problems = []
    backend = repo.chunks.backend
    for name in _every_complete_pack(repo):
        try:
            rows = read_idx(backend, name)
            records = scan_pack(backend, name)
        except NotFoundInBackend:
            continue  # removed by gc since listed
        except IntegrityError as exc:
            problems.append(Problem("corrupt", name, exc.message))
            continue
        problems += _pack_against_index(name, records, rows)
    return problems


def _every_complete_pack(repo: Repo) -> list[str]:
    """Chunk packs and metadata packs alike: their records and indexes have one layout."""
    return [name for family in layout.FAMILIES for name in layout.complete_packs(repo.chunks.backend, family)]


def _pack_against_index(name: str, records: list[tuple[bytes, int, int, int, int, bytes]],
                        rows: np.ndarray) -> list[Problem]:
    by_offset = {int(row["offset"]): row for row in rows}
    problems = []
    for chunk_id, offset, payload_len, raw_len, codec, base in records:
        row = by_offset.pop(offset, None)
        if row is None:
            problems.append(Problem("corrupt", chunk_id.hex(),
                                    f"chunk in {name} at offset {offset} is not in its index"))
            continue
        indexed = Location(name, offset, int(row["payload_len"]), int(row["raw_len"]), int(row["codec"]),
                           None if row["base"].tobytes() == NO_BASE else row["base"].tobytes())
        wrong = header_mismatch((RECORD_MAGIC, codec, 0, raw_len, payload_len, chunk_id, base), indexed,
                                row["id"].tobytes())
        if wrong:
            problems.append(Problem("corrupt", row["id"].tobytes().hex(),
                                    f"the record of this chunk in {name} at offset {offset}: its {wrong} "
                                    "differs from the pack's index"))
    for offset, row in sorted(by_offset.items()):
        problems.append(Problem("corrupt", row["id"].tobytes().hex(),
                                f"{name}'s index lists this chunk at offset {offset}, where the pack has no "
                                "readable record"))
    return problems


def _incomplete_packs(repo: Repo) -> list[str]:
    return [f"incomplete pack {layout.file_name(key)} (an interrupted write; 'mvc gc' removes it)"
            for key in layout.incomplete_packs(repo.chunks.backend)]


ALL_FILES = "(every file)"  # the path named when a commit or tree is lost as a whole
HISTORY = "(history)"  # named for a commit whose ancestry runs through a lost commit


class _Lineage:
    """Who depends on what: the (commit, path) pairs a missing or corrupt object takes down."""

    def __init__(self, repo: Repo, reach: Reachable) -> None:
        self.reach = reach
        self.children: dict[str, list[str]] = {}
        for commit in reach.commits:
            for parent in repo.read_commit(commit).parents:
                self.children.setdefault(parent, []).append(commit)
        self.branch_tips = {oid for oid, origin in roots(repo, _reported_by_the_walk, reflogs=False)
                            if origin == "HEAD" or origin.startswith("refs/heads/")}

    def breaks(self, object_id: ObjectId) -> tuple[tuple[str, str], ...]:
        if object_id in self.reach.files:
            return tuple(users_of_file(self.reach, object_id))
        if object_id in self.reach.tree_commits:
            return tuple((commit, ALL_FILES) for commit in sorted(self.reach.tree_commits[object_id]))
        if object_id not in self.children and object_id not in self.branch_tips:
            return ()  # a tag object: the ref that names it is in the detail
        later, pending = set(), list(self.children.get(object_id, ()))
        while pending:
            commit = pending.pop()
            if commit not in later:
                later.add(commit)
                pending += self.children.get(commit, ())
        return ((object_id, ALL_FILES), *((commit, HISTORY) for commit in sorted(later)))


def _reported_by_the_walk(kind: str, refname: str, detail: str) -> None:
    """A corrupt ref or HEAD met again after the walk: it is reported once, by the walk."""


def _head_problems(repo: Repo) -> list[Problem]:
    """HEAD on a branch that does not exist while others do: no command leaves it so (a damaged HEAD)."""
    try:
        head = repo.refs.head()
    except CorruptRefError:  # HEAD or the branch it names is corrupt: reported by the walk
        return []
    branches = repo.refs.branches(lambda refname, message: None)  # corrupt ones: reported by the walk
    if head.branch is None or head.commit is not None or not branches:
        return []
    return [Problem("dangling", "HEAD", f"HEAD names branch '{head.branch}', which does not exist "
                    f"(branches: {', '.join(branches)})")]


def _reflog_problems(repo: Repo) -> list[Problem]:
    """A garbled reflog line is skipped by readers, so gc no longer keeps what it named."""
    return [Problem("corrupt", log, f"line {number} of {log} is garbled; the commit it named is "
                    "no longer kept by gc") for log, number in repo.refs.garbled_reflog_lines()]


def _unreadable_pack_indexes(repo: Repo) -> list[tuple[str, str]]:
    """(pack name, error) of every pack index that cannot be read."""
    unreadable = []
    backend = repo.chunks.backend
    for name in layout.complete_packs(backend):
        try:
            read_idx_rows(backend, name)
        except NotFoundInBackend:
            continue  # removed by gc since listed
        except IntegrityError as exc:
            unreadable.append((name, exc.message))
    return unreadable


def _pack_index_problems(repo: Repo, reach: Reachable, unreadable: list[tuple[str, str]]) -> list[Problem]:
    """A damaged pack index hides every chunk of its pack: name the versions that lose them."""
    problems = []
    for name, message in unreadable:
        try:
            records = scan_pack(repo.chunks.backend, name)
        except (IntegrityError, NotFoundInBackend):
            records = []
        users = {user for chunk_id, *_ in records for user in users_of_chunk(reach, chunk_id)}
        problems.append(Problem("corrupt", f"{name}.idx", message, tuple(sorted(users))))
    return problems


def _combined_index_notes(repo: Repo) -> list[str]:
    """A damaged or stale combined index is ignored by readers (the pack indexes answer): say so."""
    from modelvc.store.combined import combined_problem

    backend = repo.chunks.backend
    problem = combined_problem(backend, layout.PACK_PREFIX, layout.complete_packs(backend))
    return [f"{problem}; it is not used ('mvc gc' rewrites it)"] if problem else []


def _combined_against_packs(repo: Repo) -> list[Problem]:
    """With --read-data: the combined index, which readers trust over the pack indexes, must
    hold exactly the rows of each pack it covers."""
    import numpy as np

    from modelvc.store.combined import combined_dtype, load_combined
    from modelvc.store.packs import idx_dtype

    backend = repo.chunks.backend
    family = layout.PACK_PREFIX
    combined = load_combined(backend, family, layout.complete_packs(backend))
    if combined is None:
        return []
    rows = np.frombuffer(combined.data, dtype=combined_dtype(), count=combined.count, offset=combined.rows_start)
    for number, name in enumerate(combined.packs):
        try:
            own = read_idx(backend, name)
        except (NotFoundInBackend, IntegrityError):  # gone since, or reported by _check_packs
            continue
        listed = rows[rows["pack"] == number]
        plain = np.zeros(len(listed), dtype=idx_dtype())
        for field_name in plain.dtype.names or ():
            plain[field_name] = listed[field_name]
        if plain.tobytes() != own.tobytes():
            return [Problem("corrupt", layout.combined_key(family),
                            f"{layout.combined_key(family)} disagrees with {name}.idx: remove it or run 'mvc gc' "
                            "(it is derived from the pack indexes; nothing is lost)")]
    return []
