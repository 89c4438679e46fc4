"""mvc fsck: re-read and verify everything reachable, and say what any damage breaks."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelvc.errors import IntegrityError
from modelvc.ops.reach import Reachable, roots, users_of_chunk, users_of_file, walk
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.store.packs import pack_names, read_idx_rows, scan_pack
from modelvc.store.parallel import ordered_map


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | corrupt | dangling
    object: str
    detail: str
    breaks: tuple[tuple[str, str], ...] = ()  # (commit id or "index", path)


@dataclass
class FsckResult:
    commits: int = 0
    objects: int = 0
    chunks: int = 0
    chunk_bytes: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def fsck(repo: Repo, read_data: bool = False, progress: Progress = NO_PROGRESS) -> FsckResult:
    """Verify every reachable object and chunk; with read_data, every chunk in every pack."""
    result = FsckResult()
    broken_objects: list[tuple[str, str, str]] = []
    reach = walk(repo, lambda kind, oid, detail: broken_objects.append((kind, oid, detail)))
    lineage = _Lineage(repo, reach) if broken_objects else None
    for kind, object_id, detail in broken_objects:
        result.problems.append(Problem(kind, object_id, detail, lineage.breaks(object_id)))
    result.commits = len(reach.commits)
    result.objects = len(reach.object_ids)
    result.problems += _head_problems(repo) + _reflog_problems(repo)
    unreadable = _unreadable_pack_indexes(repo, reach)
    if unreadable:
        result.problems += unreadable
        result.notes.append("chunks were not verified: a pack index is unreadable")
        return result

    chunk_ids = list(reach.chunks)
    if read_data:
        table = repo.chunks.index.entries()
        chunk_ids += [row.tobytes() for row in table["id"] if row.tobytes() not in reach.chunks]
    progress.start("Verifying", sum(reach.chunks.get(c, 0) for c in chunk_ids))

    def check(chunk_id: bytes) -> tuple[bytes, int, str | None, str]:
        try:
            data = repo.chunks.read(chunk_id)
            return chunk_id, len(data), None, ""
        except IntegrityError as exc:
            return chunk_id, 0, "missing" if "missing" in exc.message else "corrupt", exc.message

    for chunk_id, size, kind, message in ordered_map(check, chunk_ids):
        result.chunks += 1
        result.chunk_bytes += size
        progress.advance(reach.chunks.get(chunk_id, 0))
        if kind:
            result.problems.append(Problem(kind, chunk_id.hex(), message, tuple(users_of_chunk(reach, chunk_id))))
    progress.finish()
    if read_data:
        result.problems += _check_packs(repo)
    result.notes += _incomplete_packs(repo)
    return result


def _check_packs(repo: Repo) -> list[Problem]:
    """Cross-check each pack's records against its index."""
    problems = []
    index = repo.chunks.index
    for name in pack_names(repo.chunks.packs_dir):
        path = repo.chunks.packs_dir / f"{name}.pack"
        try:
            records = scan_pack(path)
        except IntegrityError as exc:
            problems.append(Problem("corrupt", name, exc.message))
            continue
        for chunk_id, offset, *_ in records:
            location = index.locate(chunk_id)
            if location is None:
                problems.append(Problem("corrupt", chunk_id.hex(), f"chunk in {name} at offset {offset} is not in any index"))
    return problems


def _incomplete_packs(repo: Repo) -> list[str]:
    packs_dir = repo.chunks.packs_dir
    if not packs_dir.is_dir():
        return []
    complete = set(pack_names(packs_dir))
    return [f"incomplete pack {p.name} (an interrupted write; 'mvc gc' removes it)"
            for p in sorted(packs_dir.iterdir())
            if p.suffix == ".pack" and p.stem not in complete]


ALL_FILES = "(every file)"  # the path named when a commit or tree is lost as a whole
HISTORY = "(history)"  # named for a commit whose ancestry runs through a lost commit


class _Lineage:
    """Who depends on what: the (commit, path) pairs a missing or corrupt object takes down."""

    def __init__(self, repo: Repo, reach: Reachable) -> None:
        self.reach = reach
        self.children: dict[str, list[str]] = {}
        for commit in reach.commits:
            for parent in repo.commit(commit).parents:
                self.children.setdefault(parent, []).append(commit)
        self.branch_tips = {oid for oid, origin in roots(repo) if origin == "HEAD" or origin.startswith("refs/heads/")}

    def breaks(self, object_id: str) -> tuple[tuple[str, str], ...]:
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


def _head_problems(repo: Repo) -> list[Problem]:
    """HEAD on a branch that does not exist while others do: no command leaves it so (a damaged HEAD)."""
    head = repo.refs.head()
    branches = repo.refs.branches()
    if head.branch is None or head.commit is not None or not branches:
        return []
    return [Problem("dangling", "HEAD", f"HEAD names branch '{head.branch}', which does not exist "
                    f"(branches: {', '.join(branches)})")]


def _reflog_problems(repo: Repo) -> list[Problem]:
    """A garbled reflog line is skipped by readers, so gc no longer keeps what it named."""
    return [Problem("corrupt", log, f"line {number} of {log} is garbled; the commit it named is "
                    "no longer kept by gc") for log, number in repo.refs.garbled_reflog_lines()]


def _unreadable_pack_indexes(repo: Repo, reach: Reachable) -> list[Problem]:
    """A damaged pack index hides every chunk of its pack: name the versions that lose them."""
    problems = []
    packs_dir = repo.chunks.packs_dir
    for name in pack_names(packs_dir):
        try:
            read_idx_rows(packs_dir / f"{name}.idx")
        except IntegrityError as exc:
            try:
                records = scan_pack(packs_dir / f"{name}.pack")
            except IntegrityError:
                records = []
            users = {user for chunk_id, *_ in records for user in users_of_chunk(reach, chunk_id)}
            problems.append(Problem("corrupt", f"{name}.idx", exc.message, tuple(sorted(users))))
    return problems
