"""The long run of the reliability suite: many more kills, flips and concurrent writers.

Run by hand from the repository root:

    python tests/bench/bench_faults.py [--sweeps 2] [--kills 40] [--flips 60] [--writers 4]
                                       [--rounds 4] [--gc-runs 6] [--seed 1] [--scratch DIR]

The machinery is tests/reliability/ (harness.py, scenes.py, flips.py, concurrency.py), run
longer: every durable step of add, commit, checkout, rollback, gc and tag killed --sweeps
times (each sweep a fresh template with new timestamps, so new ids), --kills random SIGKILLs
per command, --flips seeded single-byte flips with random bit masks in every kind of file
under .mvc, and a round of writers with gc. Prints tried/passed per category and every
failure; exits 1 if any.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.update(MVC_AUTHOR_NAME="Bench", MVC_AUTHOR_EMAIL="bench@example.com")

from tests.reliability.concurrency import check_made, writers_with_gc  # noqa: E402
from tests.reliability.flips import files_by_kind, judge  # noqa: E402
from tests.reliability.harness import random_kills, sweep_steps  # noqa: E402
from tests.reliability.scenes import CASES, two_versions, verifier  # noqa: E402


# Failures that issue 11's open items explain, by a phrase of the failure message.
class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, int, int, str]] = []
        self.failures: list[str] = []

    def add(self, category: str, tried: int, failures: list[str], note: str = "") -> None:
        self.rows.append((category, tried, tried - len(failures), note))
        self.failures += [f"{category}: {failure}" for failure in failures]
        print(f"{category:<28} tried {tried:>5}  passed {tried - len(failures):>5}  {note}", flush=True)


def crash_sweeps(report: Report, scratch: Path, sweeps: int) -> None:
    for case in CASES:
        tried, failures, steps = 0, [], set()
        for sweep in range(sweeps):
            template = case.build(scratch / f"{case.name}-t{sweep}")
            tally = sweep_steps(template, scratch / f"{case.name}-s{sweep}", case.args, verifier(case, template))
            tried, failures = tried + tally.tried, failures + tally.failures
            steps.add(tally.killed)
        report.add(f"kill at each step: {case.name}", tried, failures, f"durable steps per run: {sorted(steps)}")


def timed_kills(report: Report, scratch: Path, kills: int, seed: int) -> None:
    for number, case in enumerate(CASES):
        template = case.build(scratch / f"{case.name}-rt")
        tally = random_kills(template, scratch / f"{case.name}-r", case.args, verifier(case, template),
                             count=kills, seed=seed * 100 + number)
        report.add(f"kill at random: {case.name}", tally.tried, tally.failures,
                   f"{tally.killed} killed, {tally.tried - tally.killed} finished first")


def byte_flips(report: Report, scratch: Path, flips: int, seed: int) -> None:
    template = two_versions(scratch / "flips")
    kinds = files_by_kind(template.work)
    rng = random.Random(seed)
    for kind, paths in kinds.items():
        outcomes: Counter[str] = Counter()
        failures = []
        for _ in range(flips):
            path = rng.choice(paths)
            position = rng.randrange((template.work / path).stat().st_size)
            mask = 1 << rng.randrange(8)
            try:
                outcomes[judge(template, kind, path, position, mask).outcome] += 1
            except AssertionError as exc:
                failures.append(f"mask {mask:#04x}: {exc}")
        report.add(f"byte flips: {kind}", flips, failures,
                   ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items())))
    try:
        template.check()
    except AssertionError as exc:
        report.failures.append(f"byte flips: the shared repository was left changed: {exc}")


def concurrent(report: Report, scratch: Path, writers: int, rounds: int, gc_runs: int) -> None:
    scene = two_versions(scratch / "concurrent")
    made = writers_with_gc(scene, writers, rounds, gc_runs)
    failures = list(made.failures)
    try:
        check_made(scene, made)
    except AssertionError as exc:
        failures.append(str(exc))
    report.add("writers with gc", writers * rounds, failures,
               f"{len(made.commits)} commits and {len(made.tags)} tags reported made, {gc_runs} gc runs")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=int, default=2, help="kill-at-every-step sweeps per command")
    parser.add_argument("--kills", type=int, default=40, help="random-time kills per command")
    parser.add_argument("--flips", type=int, default=60, help="byte flips per kind of file")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4, help="add+commit+tag rounds per writer")
    parser.add_argument("--gc-runs", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scratch", type=Path, default=None, help="where to build repositories (default: a temp dir)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="bench-faults-", dir=args.scratch))
    started = time.monotonic()
    report = Report()
    try:
        crash_sweeps(report, scratch, args.sweeps)
        timed_kills(report, scratch, args.kills, args.seed)
        byte_flips(report, scratch, args.flips, args.seed)
        concurrent(report, scratch, args.writers, args.rounds, args.gc_runs)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tried = sum(row[1] for row in report.rows)
    passed = sum(row[2] for row in report.rows)
    print(f"{'total':<28} tried {tried:>5}  passed {passed:>5}  in {time.monotonic() - started:.0f} s")
    for failure in report.failures:
        print(f"FAILED {failure}")
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
