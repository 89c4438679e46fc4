"""mvc fsck: re-read and verify everything reachable, and say what any damage breaks."""

from __future__ import annotations

from dataclasses import dataclass, field

from modelvc.errors import IntegrityError, MissingChunkError
from modelvc.ids import is_full_id
from modelvc.ops.reach import Reachable, problem_kind, users_of_chunk, users_of_file, walk
from modelvc.progress import NO_PROGRESS, Progress
from modelvc.repo import Repo
from modelvc.store.packs import NO_BASE, RECORD_MAGIC, Location, header_mismatch, pack_names, read_idx, scan_pack
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
    """Verify every reachable object and chunk; with read_data, every chunk in every pack.

    Takes no lock, like every reader: gc or add may run beside it (see _verify_chunks).
    """
    result = FsckResult()
    broken_objects: list[tuple[str, str, str]] = []
    reach = walk(repo, lambda kind, oid, detail: broken_objects.append((kind, oid, detail)))
    for kind, object_id, detail in broken_objects:
        breaks = tuple(users_of_file(reach, object_id)) if object_id in reach.files else ()
        result.problems.append(Problem(kind, object_id, detail, breaks))
    result.problems += _wrong_sizes(reach)
    result.commits = len(reach.commits)
    result.objects = len(reach.object_ids)
    _verify_chunks(repo, reach, read_data, result, progress)
    if read_data:
        reported = {problem.object for problem in result.problems}
        result.problems += [p for p in _check_packs(repo) if p.object not in reported]
    result.notes += _incomplete_packs(repo)
    if any(problem.kind == "missing" for problem in result.problems):
        result.problems = _without_collected(repo, result.problems)
    return result


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
    chunk_ids = list(reach.chunks)
    if read_data:
        table = repo.chunks.index.entries()
        chunk_ids += [row.tobytes() for row in table["id"] if row.tobytes() not in reach.chunks]
    progress.start("Verifying", sum(reach.chunks.get(c, 0) for c in chunk_ids))

    def check(chunk_id: bytes) -> tuple[bytes, int, str | None, str]:
        try:
            data = repo.chunks.read(chunk_id)
            return chunk_id, len(data), None, ""
        except MissingChunkError as exc:
            if chunk_id not in reach.chunks and not repo.chunks.has(chunk_id):
                return chunk_id, -1, None, ""  # unreachable, and collected since listed
            return chunk_id, 0, problem_kind(exc), exc.message
        except IntegrityError as exc:
            return chunk_id, 0, problem_kind(exc), exc.message

    for chunk_id, size, kind, message in ordered_map(check, chunk_ids, pool=repo.chunks.pool):
        progress.advance(reach.chunks.get(chunk_id, 0))
        if size < 0:
            continue
        result.chunks += 1
        result.chunk_bytes += size
        if kind:
            result.problems.append(Problem(kind, chunk_id.hex(), message, tuple(users_of_chunk(reach, chunk_id))))
    progress.finish()


def _check_packs(repo: Repo) -> list[Problem]:
    """Cross-check every record of every pack against its own index, field by field.

    Each pack is compared with its own .idx, not the index loaded at the start, so a pack
    that add sealed since is checked too, and one that gc removed since is skipped.
    """
    problems = []
    for name in pack_names(repo.chunks.packs_dir):
        path = repo.chunks.packs_dir / f"{name}.pack"
        try:
            rows = read_idx(repo.chunks.packs_dir / f"{name}.idx")
            records = scan_pack(path)
        except FileNotFoundError:
            continue  # removed by gc since listed
        except IntegrityError as exc:
            problems.append(Problem("corrupt", name, exc.message))
            continue
        problems += _pack_against_index(name, records, rows)
    return problems


def _pack_against_index(name: str, records: list, rows) -> list[Problem]:
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
    packs_dir = repo.chunks.packs_dir
    if not packs_dir.is_dir():
        return []
    listed = sorted(packs_dir.iterdir())
    complete = set(pack_names(packs_dir))  # after listing: a pack sealed meanwhile is complete
    return [f"incomplete pack {p.name} (an interrupted write; 'mvc gc' removes it)"
            for p in listed
            if p.suffix == ".pack" and p.stem not in complete and p.exists()]
