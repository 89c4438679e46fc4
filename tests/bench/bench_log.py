"""Query speed on a long history: `log --all --where --sort`, `runs` and `log -n 20`.

Builds 10,000 commits over 50 branches, each with metrics, params and meta, through the library
(objects written in one batch, then one ref per branch), so the build takes seconds, not 10,000
processes. The repository is kept in --repo DIR and reused by later runs. Each command is timed
as a whole process (interpreter start-up included), median of --repeat runs, beside the 1 s
target; the first run of each command fills the commit-metadata cache and is reported apart.

    python tests/bench/bench_log.py --repo /tmp/$USER/bench_log
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from benchutil import init_repo, run_mvc  # noqa: E402

TARGET_SECONDS = 1.0
QUERIES = [
    ["log", "--all", "--oneline", "--where", "val_loss<1.5 and lr=3e-4", "--sort", "val_loss"],
    ["runs", "--all", "--csv"],
    ["log", "-n", "20"],
]


def build(repo_dir: Path, commits: int, branches: int) -> None:
    """A root on main, then `branches` branches of commits/branches commits each off the root."""
    from modelvc.objects import Commit, Signature, Tree
    from modelvc.repo import Repo

    init_repo(repo_dir)
    per_branch = commits // branches
    start = 1_700_000_000
    with Repo(repo_dir) as repo, repo.transaction():
        with repo.objects.batch():
            tree = repo.objects.put(Tree(()))
            root = repo.objects.put(Commit(tree, (), Signature("bench", "b@x", start, 0), "root\n"))
            tips = {}
            for branch in range(branches):
                parent = root
                for step in range(per_branch):
                    number = branch * per_branch + step
                    parent = repo.objects.put(Commit(
                        tree, (parent,), Signature("bench", "b@x", start + 60 * (step * branches + branch + 1), 0),
                        f"run {branch} step {step}\n",
                        {"val_loss": round(3.0 - 2.0 * step / per_branch + (number % 7) / 100, 4),
                         "acc": round(0.5 + 0.4 * step / per_branch, 4), "step": float(step)},
                        {"lr": ("0.0003", "1e-4", "0.001")[branch % 3], "batch": str(16 << (branch % 3))},
                        {"task": ("summarization", "translation")[branch % 2]}))
                tips[f"run{branch:02d}"] = parent
        repo.refs.update_head(tips["run00"], None, "bench: main is run00's history")
        for name, tip in tips.items():
            repo.refs.update(f"refs/heads/{name}", tip, None, "bench: built")


def median_seconds(query: list[str], repo: Path, repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system: less at the mercy of a loaded machine)."""
    runs = [run_mvc(query, repo) for _ in range(repeat)]
    return statistics.median(r.seconds for r in runs), statistics.median(r.cpu_seconds for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", type=Path, required=True, help="where the built repository is kept")
    parser.add_argument("--commits", type=int, default=10_000)
    parser.add_argument("--branches", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not (args.repo / ".mvc").is_dir():
        build(args.repo, args.commits, args.branches)
    print(f"{args.commits} commits over {args.branches} branches in {args.repo}; target {TARGET_SECONDS:.1f} s")
    floor, floor_cpu = median_seconds(["--version"], args.repo, args.repeat)
    print(f"  floor: mvc --version  median {floor:6.3f} s (cpu {floor_cpu:6.3f} s)")
    cache = args.repo / ".mvc" / "commit-graph.sqlite"
    for query in QUERIES:
        first = run_mvc(query, args.repo)
        median, cpu = median_seconds(query, args.repo, args.repeat)
        kept = cache.read_bytes()
        cache.write_bytes(b"not a cache")  # ignored and never written into: every commit from its object
        without, without_cpu = median_seconds(query, args.repo, args.repeat)
        cache.write_bytes(kept)
        verdict = "ok" if median < TARGET_SECONDS else "OVER"
        print(f"  mvc {' '.join(query)}  ({len(first.stdout.splitlines())} lines)\n"
              f"      median {median:6.3f} s (cpu {cpu:6.3f} s) {verdict}; without the cache {without:6.3f} s "
              f"(cpu {without_cpu:6.3f} s); first run {first.seconds:6.3f} s")

if __name__ == "__main__":
    main()
