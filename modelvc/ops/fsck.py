"""mvc fsck: re-read and verify everything reachable, and say what any damage breaks."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelvc.errors import IntegrityError
from modelvc.ops.reach import users_of_chunk, users_of_file, walk
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.store.packs import pack_names, scan_pack
from modelvc.store.parallel import ordered_map


@dataclass(frozen=True)
class Problem:
    kind: str  # missing | corrupt | dangling
    object: str  # an object or chunk id, a ref name ("HEAD", "refs/heads/x") or "config"
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
    result.problems += [Problem("corrupt", "config", problem) for problem in repo.config_problems()]
    broken_objects: list[tuple[str, str, str]] = []
    reach = walk(repo, lambda kind, oid, detail: broken_objects.append((kind, oid, detail)))
    for kind, object_id, detail in broken_objects:
        breaks = tuple(users_of_file(reach, object_id)) if object_id in reach.files else ()
        result.problems.append(Problem(kind, object_id, detail, breaks))
    result.commits = len(reach.commits)
    result.objects = len(reach.object_ids)

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
