"""Delta benchmark: a series of small training steps, stored with delta chains of several depths.

Run by hand from the repository root:

    python tests/bench/bench_nudges.py [--size-mb 128] [--dtype bf16] [--sigma 1e-4]
                                       [--versions 20] [--depths 0,1,2,4,8] [--repeats 3]

The versions are written first, untimed and seeded: v1 is modelvc.samples.init_weights, and
each next version is the previous one (kept in float32) plus N(0, sigma) on every tensor,
written in --dtype. Then, for each delta_max_depth (0: no deltas), a new repository stores all
of them like a user would: the file is copied in, synced and read into the page cache, and
`mvc add` + `mvc commit` run as processes. New bytes stored are the growth of
`mvc stats --json` stored_bytes. Then `mvc gc --grace 0` runs (timed): it stores each delta
chain newest-whole (modelvc/store/rechain.py); the store's size after it is shown too.

Then `mvc checkout` of the first version, of the version with the longest delta chain, and
of the last version are timed in turn, process start-up included, --repeats times each (the
median is shown), and every restored file is compared byte for byte with its version.

The requirement this informs: checking out the newest version of a 20-version series must
take at most 1.5x the time of checking out a version stored without deltas, while storing as
little as possible. With a depth limit d, a version's chain restarts from a full block every
d+1 versions, so which version is the newest one in the chain decides its depth: the deepest
version is measured too, as the worst case a user can meet.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchutil import CheckoutTiming, init_repo, mb, place, print_table, run_mvc, stored_bytes, time_checkouts, verdict  # noqa: E402

from modelvc.samples import DTYPES, ModelShape, init_weights, nudge, write_safetensors  # noqa: E402

CHECKOUT_LIMIT = 1.5  # the requirement: at most 1.5x the checkout time without deltas
TRACKED = "model.safetensors"


@dataclass
class DepthRun:
    """One repository: the series stored with one delta_max_depth."""

    depth: int
    stored: list[int] = field(default_factory=list)  # new bytes stored per version
    ingest_seconds: float = 0.0
    chains: list[tuple[int, float]] = field(default_factory=list)  # per version: (longest chain, read amplification)
    checkouts: dict[int, CheckoutTiming] = field(default_factory=dict)  # by version number
    stats: dict = field(default_factory=dict)
    gc_seconds: float = 0.0  # `mvc gc --grace 0` after storing: it rechains (newest version whole)
    stored_after_gc: int = 0  # the store's growth over the series, after that gc

    @property
    def stored_total(self) -> int:
        return sum(self.stored)

    @property
    def deepest(self) -> int:
        """The (first) version whose blocks have the longest chain of deltas."""
        longest = max(chain for chain, _ in self.chains)
        return next(number for number, (chain, _) in enumerate(self.chains, start=1) if chain == longest)


def write_versions(directory: Path, size_mb: int, dtype: str, count: int, sigma: float, seed: int) -> list[Path]:
    shape = ModelShape.for_bytes(size_mb << 20, DTYPES[dtype][1])
    weights = init_weights(shape, seed)
    names = list(weights)
    paths = []
    for number in range(1, count + 1):
        if number > 1:
            weights = nudge(weights, names, sigma, seed + number)
        path = directory / f"v{number}.safetensors"
        write_safetensors(path, weights, dtype, {"step": str(number)})
        paths.append(path)
    return paths


def chain_lengths(repo_root: Path, commit_ids: list[str]) -> list[tuple[int, float]]:
    """Per version: its longest chain of deltas, and how many blocks reading it decodes per block.

    Read from the store with the library, read-only, after the mvc processes are done.
    """
    from modelvc.repo import Repo

    repo = Repo(repo_root)
    try:
        result = []
        for commit_id in commit_ids:
            (entry,) = repo.tree_of(commit_id).entries
            manifest = repo.read_manifest(entry.manifest_id)
            depths = [(repo.chunks.chain_depth(bytes.fromhex(chunk_id)), length)
                      for chunk_id, length in manifest.chunks]
            decoded = sum((depth + 1) * length for depth, length in depths)
            result.append((max(depth for depth, _ in depths), decoded / manifest.size))
        return result
    finally:
        repo.chunks.close()


def store_series(repo: Path, versions: list[Path], depth: int, repeats: int) -> DepthRun:
    print(f"delta_max_depth {depth}: storing {len(versions)} versions in {repo} ...", flush=True)
    init_repo(repo, delta_max_depth=depth)
    target = repo / TRACKED
    result = DepthRun(depth)
    commit_ids = []
    before = initial = stored_bytes(repo)
    for number, path in enumerate(versions, start=1):
        place(path, target)
        added = run_mvc(["add", TRACKED], repo)
        committed = run_mvc(["commit", "--json", "-m", f"v{number}"], repo)
        result.ingest_seconds += added.seconds + committed.seconds
        commit_ids.append(committed.json()["id"])
        after = stored_bytes(repo)
        result.stored.append(after - before)
        before = after
    if depth > 0:
        result.gc_seconds = run_mvc(["gc", "--grace", "0"], repo).seconds
    result.stored_after_gc = stored_bytes(repo) - initial
    result.chains = chain_lengths(repo, commit_ids)
    measured = sorted({1, result.deepest, len(versions)})
    result.checkouts = time_checkouts(
        repo, target, {number: (commit_ids[number - 1], versions[number - 1]) for number in measured}, repeats)
    result.stats = run_mvc(["stats", "--json"], repo).json()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=128, help="approximate size of one version, in MiB")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--sigma", type=float, default=1e-4, help="standard deviation of each step's change")
    parser.add_argument("--versions", type=int, default=20)
    parser.add_argument("--depths", default="0,1,2,4,8", help="delta_max_depth values, comma-separated (0: no deltas)")
    parser.add_argument("--repeats", type=int, default=3, help="timed checkouts per version (median)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="default: a new directory under /tmp")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and the repositories")
    args = parser.parse_args()
    depths = sorted({int(d) for d in args.depths.split(",")})
    if depths[0] != 0:
        depths.insert(0, 0)  # the ratios are against the no-deltas repository
    if args.versions < 2:
        parser.error("--versions must be at least 2")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mvc-bench-nudges-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        versions_dir = workdir / "versions"
        versions_dir.mkdir(exist_ok=True)
        print(f"generating {args.versions} versions of {args.size_mb} MB {args.dtype}, sigma {args.sigma:g} ...",
              flush=True)
        start = time.perf_counter()
        versions = write_versions(versions_dir, args.size_mb, args.dtype, args.versions, args.sigma, args.seed)
        print(f"  done in {time.perf_counter() - start:.1f} s", flush=True)
        runs = []
        for depth in depths:
            repo = workdir / f"repo-depth-{depth}"
            runs.append(store_series(repo, versions, depth, args.repeats))
            if not args.keep:
                shutil.rmtree(repo, ignore_errors=True)
        report(args, versions, runs)
    finally:
        if args.keep:
            print(f"\nwork directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    if not all(timing.identical for run in runs for timing in run.checkouts.values()):
        sys.exit("a checkout did not restore its version byte for byte")


def report(args: argparse.Namespace, versions: list[Path], runs: list[DepthRun]) -> None:
    raw = [path.stat().st_size for path in versions]
    raw_total = sum(raw)
    last = len(versions)
    print(f"\nmodelvc delta benchmark: {len(versions)} versions of {mb(raw[0])} {args.dtype}, every tensor "
          f"+ N(0, {args.sigma:g}) per version, seed {args.seed}, {os.cpu_count()} cores\n")
    print("new bytes stored per version, MB, by delta_max_depth (chain length of the version's blocks after gc):")
    rows = []
    for i in range(len(versions)):
        rows.append([f"v{i + 1}", f"{raw[i] / 1e6:.1f}",
                     *[f"{run.stored[i] / 1e6:.1f} ({run.chains[i][0]})" for run in runs]])
    rows.append(["total", f"{raw_total / 1e6:,.1f}", *[f"{run.stored_total / 1e6:,.1f}" for run in runs]])
    rows.append(["stored/raw", "", *[f"{run.stored_total / raw_total:.3f}" for run in runs]])
    rows.append(["after gc", "", *[f"{run.stored_after_gc / raw_total:.3f} ({run.gc_seconds:.1f} s)"
                                   for run in runs]])
    print_table(["version", "raw", *[f"depth {run.depth}" for run in runs]], rows)

    plain = runs[0]
    base_last = plain.checkouts[last].median_seconds
    print(f"\ncheckout times: median of {args.repeats}, process start-up included; "
          f"ratios against depth 0 (no deltas)\n")
    rows = []
    for run in runs:
        deepest = run.deepest
        deep_seconds = run.checkouts[deepest].median_seconds
        last_seconds = run.checkouts[last].median_seconds
        rows.append([str(run.depth), mb(run.stored_total), f"{run.stored_total / raw_total:.3f}",
                     f"{run.stored_total / plain.stored_total:.3f}", f"{run.ingest_seconds:.1f}",
                     f"{run.checkouts[1].median_seconds:.2f}",
                     f"{last_seconds:.2f} ({run.chains[last - 1][0]})", f"{last_seconds / base_last:.2f}x",
                     f"v{deepest} ({run.chains[deepest - 1][0]}): {deep_seconds:.2f}",
                     f"{deep_seconds / base_last:.2f}x",
                     verdict(max(last_seconds, deep_seconds) / base_last <= CHECKOUT_LIMIT)])
    print_table(["depth", "stored", "stored/raw", "vs no deltas", "ingest s", "v1 s",
                 f"v{last} s (chain)", f"v{last} ratio", "deepest version (chain): s", "deepest ratio",
                 f"<= {CHECKOUT_LIMIT}x"], rows)
    print(f"\n(both ratios are against the no-deltas checkout of v{last}: without deltas every version "
          "costs the same to restore; the verdict takes the worse of the two)")
    for run in runs[1:]:
        stats = run.stats
        amplification = max(factor for _, factor in run.chains)
        print(f"depth {run.depth}: {stats['delta_chunk_count']} delta blocks, "
              f"{mb(stats['delta_raw_bytes'])} raw stored as "
              f"{mb(stats['delta_stored_bytes'])}; restoring a version decodes up to {amplification:.1f}x its size")


if __name__ == "__main__":
    main()
