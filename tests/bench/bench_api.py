"""Commits through the Python API against commits through the `mvc` CLI, and the work floor.

Run by hand from the repository root:

    python tests/bench/bench_api.py [--sizes-mb 20 500] [--versions 4] [--workers N] [--keep] [--workdir DIR]

For each size, a series of bf16 safetensors checkpoints is written first (untimed): a base
(modelvc.samples.init_weights) and versions each nudged by N(0, 1e-4) from the one before, as
a training run saves them. Then, version by version and side by side (each
run going first in turn, so none always follows the others' writeback), the checkpoint is
placed (copied, synced, read into the page cache; untimed) and stored four ways:

- API: `repo.add("model.safetensors")` + `repo.commit(..., metrics=...)` in this process,
  one Repo kept open across the series, as a training script would;
- API in one call: `repo.commit(..., add=["model.safetensors"])`, the same in one locked
  step (the index written once), in a Repo of its own;
- CLI: `mvc add model.safetensors` + `mvc commit -m ... --metric ...`, timed as processes;
- floor: the work itself alone: modelvc.store.filedata.ingest_file (read, cut, hash with
  blake3, code with zstd/planes/deltas against the previous version, write the pack and
  seal it: fsync, rename, directory fsync, then its index likewise) on a bare ChunkStore,
  without index, manifests, tree, commit or refs.

Printed per size: seconds per commit (median over the versions after the first, which has
no previous version to delta against, and the first apart), fsyncs per commit (os.fsync
calls, directories included, counted in this process), stored bytes, and the issue's targets
with verdicts: the API within 10% of the floor, and at least 3x faster than the CLI for the
20 MB checkpoint. What a commit must make durable beyond the chunks (its manifest, tree and
commit objects, the index, the reflogs and the ref: an fsync each, and one of each directory
an entry was renamed into) is not in the floor; the line "fsyncs alone" times that many
fsyncs of small files in the same run, on the same disk (atomic writes in a scratch
directory), so that the part of the difference the disk imposes can be read apart from the
rest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchutil import init_repo, mb, place, print_table, run_mvc, stored_bytes, verdict  # noqa: E402

from modelvc.samples import ModelShape, init_weights, nudge, write_safetensors  # noqa: E402

TARGET_API_OVER_FLOOR = 1.10  # the API adds at most 10% over the work itself
TARGET_CLI_OVER_API = 3.0  # ... and is at least 3x faster than the CLI for 20 MB
CLI_TARGET_MB = 20
SMALL_WIDTHS = {"vocab": 4096, "d_model": 512, "d_ff": 1408}  # ModelShape's defaults alone are 131 MB


@dataclass
class Series:
    seconds: list[float] = field(default_factory=list)
    stored: int = 0
    fsyncs: list[int] = field(default_factory=list)

    @property
    def later(self) -> float:
        """Median seconds of the commits that have a previous version (deltas possible)."""
        rest = self.seconds[1:] or self.seconds
        return statistics.median(rest)


def model_shape(target_bytes: int) -> ModelShape:
    """A bf16 model of about target_bytes; small ones get narrower widths than the default."""
    if target_bytes >= 200 << 20:
        return ModelShape.for_bytes(target_bytes, 2)
    w = SMALL_WIDTHS
    per_layer = (4 * w["d_model"] ** 2 + 3 * w["d_model"] * w["d_ff"] + 2 * w["d_model"]) * 2
    fixed = (2 * w["vocab"] * w["d_model"] + w["d_model"]) * 2
    return ModelShape(layers=max(1, round((target_bytes - fixed) / per_layer)), **w)


def write_versions(directory: Path, target_bytes: int, count: int) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    weights = init_weights(model_shape(target_bytes), seed=0)
    paths = []
    for number in range(1, count + 1):
        if number > 1:
            weights = nudge(weights, list(weights), 1e-4, seed=number)
        path = directory / f"v{number}.safetensors"
        write_safetensors(path, weights, "bf16", {"step": str(number * 1000)})
        paths.append(path)
    return paths


def directory_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


class FsyncCounter:
    """Counts os.fsync calls made in this process (the sealing threads' too) while installed."""

    def __init__(self) -> None:
        self.calls: list[int] = []  # list.append is atomic: no lock needed across threads
        self._fsync = os.fsync

    def __enter__(self) -> FsyncCounter:
        def counted(fd: int) -> None:
            self.calls.append(fd)
            self._fsync(fd)

        os.fsync = counted
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.fsync = self._fsync


@contextmanager
def timed(series: Series) -> Iterator[None]:
    """Time the block into `series`, with the fsyncs it made."""
    with FsyncCounter() as counter:
        started = time.perf_counter()
        yield
        series.seconds.append(time.perf_counter() - started)
    series.fsyncs.append(len(counter.calls))


def fsyncs_alone(directory: Path, count: int) -> float:
    """Seconds for `count` fsyncs as atomic writes make them (a small file's, then its
    directory's), through modelvc's own atomic_write, in `directory`."""
    from modelvc.fsutil import atomic_write

    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for number in range((count + 1) // 2):
        atomic_write(directory / f"f{number}", os.urandom(200))
    return time.perf_counter() - started


def run_size(workdir: Path, size_mb: int, versions: int, workers: int | None) -> dict[str, Series]:
    from modelvc import Repo
    from modelvc.repo import DEFAULT_DELTA_MAX_DEPTH, FORMAT_VERSION
    from modelvc.store.chunker import ChunkParams
    from modelvc.store.chunkstore import ChunkStore
    from modelvc.store.filedata import PreviousVersion, ingest_file
    from modelvc.store.parallel import WorkerPool, worker_count

    workers = workers or worker_count()
    base = workdir / f"{size_mb}mb"
    sources = write_versions(base / "sources", size_mb << 20, versions)
    roots = {"api": base / "api", "one": base / "api-one-call", "cli": base / "cli", "floor": base / "floor"}
    api_root, one_root, cli_root, floor_root = (roots[kind] for kind in ("api", "one", "cli", "floor"))
    init_repo(cli_root)
    (floor_root / "packs").mkdir(parents=True)
    results = {"api": Series(), "one": Series(), "cli": Series(), "floor": Series(), "alone": Series()}
    params = ChunkParams.for_format(FORMAT_VERSION)
    floor_store = ChunkStore(floor_root / "packs", pool=WorkerPool(workers))
    previous: PreviousVersion | None = None
    with Repo.init(api_root, workers=workers) as repo, Repo.init(one_root, workers=workers) as one:
        for number, source in enumerate(sources, 1):
            metrics = {"loss": round(1.0 / number, 4)}
            kinds = ["api", "one", "cli", "floor"]
            for kind in kinds[number % 4:] + kinds[:number % 4]:  # each goes first in turn
                place(source, roots[kind] / "model.safetensors")
                if kind == "api":
                    with timed(results["api"]):
                        repo.add("model.safetensors")
                        repo.commit(f"v{number}", metrics=metrics)
                elif kind == "one":
                    with timed(results["one"]):
                        one.commit(f"v{number}", metrics=metrics, add=["model.safetensors"])
                elif kind == "cli":
                    add = run_mvc(["add", "model.safetensors"], cli_root)
                    commit = run_mvc(["commit", "-m", f"v{number}", "--metric", f"loss={metrics['loss']}"], cli_root)
                    results["cli"].seconds.append(add.seconds + commit.seconds)
                else:
                    with timed(results["floor"]), floor_store.writer() as writer:
                        ingested = ingest_file(floor_root / "model.safetensors", params, floor_store, writer,
                                               previous=previous, max_delta_depth=DEFAULT_DELTA_MAX_DEPTH)
                    if ingested.layout is not None:
                        previous = PreviousVersion(ingested.layout, ingested.manifest.chunks)
            extra = results["one"].fsyncs[-1] - results["floor"].fsyncs[-1]
            results["alone"].seconds.append(fsyncs_alone(base / "scratch" / str(number), extra))
            results["alone"].fsyncs.append(extra)
        results["api"].stored = repo.stats().stored_bytes
        results["one"].stored = one.stats().stored_bytes
    floor_store.close()
    results["cli"].stored = stored_bytes(cli_root)
    results["floor"].stored = directory_bytes(floor_root / "packs")
    return results


def report(size_mb: int, versions: int, results: dict[str, Series]) -> list[str]:
    api, one, cli, floor, alone = (results[key] for key in ("api", "one", "cli", "floor", "alone"))
    print(f"\n{size_mb} MB bf16 checkpoint, {versions} versions (each nudged by N(0, 1e-4)):")
    rows = []
    for name, series in (("API add() + commit()", api), ("API commit(add=...)", one),
                         ("CLI (mvc add + commit)", cli), ("floor (ingest alone)", floor),
                         ("fsyncs alone (API one call - floor)", alone)):
        fsyncs = str(statistics.median(series.fsyncs[1:] or series.fsyncs)) if series.fsyncs else "-"
        stored = mb(series.stored) if series is not alone else "-"
        rows.append([name, f"{series.seconds[0]:.3f}", f"{series.later:.3f}",
                     " ".join(f"{s:.3f}" for s in series.seconds), fsyncs, stored])
    print_table(["run", "first s", "later s (median)", "every commit s", "fsyncs", "stored"], rows,
                right={1, 2, 4, 5})
    lines = []
    for name, series in (("API add() + commit()", api), ("API commit(add=...)", one)):
        over_floor = series.later / floor.later
        lines.append(f"{size_mb} MB: {name} / floor = {over_floor:.3f} (target <= {TARGET_API_OVER_FLOOR:.2f}) "
                     f"{verdict(over_floor <= TARGET_API_OVER_FLOOR)}")
    with_fsyncs = statistics.median(f + a for f, a in zip(floor.seconds[1:], alone.seconds[1:], strict=True)) \
        if len(floor.seconds) > 1 else floor.seconds[0] + alone.seconds[0]
    lines.append(f"{size_mb} MB: (floor + its {statistics.median(alone.fsyncs)} missing fsyncs alone) / floor = "
                 f"{with_fsyncs / floor.later:.3f}; API commit(add=...) / that = {one.later / with_fsyncs:.3f}")
    cli_ratio = cli.later / api.later
    target = f" (target >= {TARGET_CLI_OVER_API:.0f}x) {verdict(cli_ratio >= TARGET_CLI_OVER_API)}" \
        if size_mb == CLI_TARGET_MB else ""
    lines.append(f"{size_mb} MB: CLI / API = {cli_ratio:.2f}x{target}")
    for line in lines:
        print(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[20, 500])
    parser.add_argument("--versions", type=int, default=4)
    parser.add_argument("--workers", type=int, default=None, help="threads for chunk work (default: one per core)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    os.environ.setdefault("MVC_AUTHOR_NAME", "bench")
    os.environ.setdefault("MVC_AUTHOR_EMAIL", "bench@example.com")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mvc-bench-api-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"work directory: {workdir}; load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    summary = []
    try:
        for size_mb in args.sizes_mb:
            summary += report(size_mb, args.versions, run_size(workdir, size_mb, args.versions, args.workers))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\nsummary:")
    for line in summary:
        print(f"  {line}")


if __name__ == "__main__":
    main()
