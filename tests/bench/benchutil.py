"""Helpers shared by the hand-run benchmarks: run the installed `mvc` like a user would.

Each run is timed from just before the process starts to just after it is reaped (interpreter
start-up included), and its own peak RSS is read from os.wait4, so one figure per process.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAGE_CACHE_BLOCK = 16 << 20
# Some sandboxes set PYTHONDONTWRITEBYTECODE, which makes every mvc process recompile modelvc
# from source (an editable install has no bytecode yet); a normal install has it compiled.
MVC_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


@dataclass
class Run:
    args: list[str]
    seconds: float
    max_rss_mb: float
    stdout: str
    cpu_seconds: float = 0.0  # user + system time of the process (and what it waited for)

    def json(self) -> Any:
        return json.loads(self.stdout)


def find_command(name: str) -> str | None:
    """The command installed next to this interpreter, else the one on PATH, else None."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else shutil.which(name)


def find_mvc() -> str:
    found = find_command("mvc")
    if found is None:
        sys.exit("the mvc command is not installed (pip install -e . in the virtualenv)")
    return found


def run_mvc(args: list[str], cwd: Path) -> Run:
    """Run `mvc ARGS` in cwd; exit with its stderr if it fails."""
    return run_command([find_mvc(), *args], cwd, MVC_ENV)


def run_command(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> Run:
    """Run a command in cwd, timed as a whole process; exit with its stderr if it fails.

    Peak RSS comes from GNU time when it is installed: a process's ru_maxrss starts from the
    RSS of the process that forked it (Linux counts the pre-exec image), so measured directly
    from a benchmark holding gigabytes of arrays it would report the benchmark's size.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss_file:
        wrapper = [GNU_TIME, "-f", "%M", "-o", rss_file.name] if GNU_TIME else []
        start = time.perf_counter()
        process = subprocess.Popen(wrapper + command, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                   env=env)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode()
        if process.returncode != 0:
            sys.exit(f"{' '.join(command)} failed (exit {process.returncode}):\n{err.read().decode()}")
        max_rss_kb = int(rss_file.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return Run(command[1:], seconds, max_rss_kb / 1024, stdout, usage.ru_utime + usage.ru_stime)


def warm_page_cache(path: Path) -> None:
    """Read a file once so that a timed run measures mvc, not the disk."""
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(PAGE_CACHE_BLOCK)
        while handle.readinto(buffer):
            pass


def settle() -> bool:
    """Sync, then drop the page cache (root only), so a timed step and its floor start alike.

    Returns whether the cache was dropped.
    """
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w") as control:
            control.write("3\n")
        return True
    except OSError:
        return False


def place(source: Path, target: Path) -> None:
    """Put a version in the working tree as a new file (new inode, like a training script).

    The file is synced (its writeback must not land inside the timed run) and read once into
    the page cache, as a checkpoint a training run has just written normally is.
    """
    tmp = target.with_name(target.name + ".incoming")
    shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    os.sync()
    warm_page_cache(target)


def init_repo(repo: Path, **config: Any) -> None:
    """`mvc init` in repo, then set config keys (e.g. delta_max_depth=0) in .mvc/config."""
    from modelvc.fsutil import atomic_write

    repo.mkdir(parents=True, exist_ok=True)
    run_mvc(["init"], repo)
    if config:
        path = repo / ".mvc" / "config"
        settings = json.loads(path.read_text())
        settings.update(config)
        atomic_write(path, (json.dumps(settings, indent=2, sort_keys=True) + "\n").encode())


def stored_bytes(repo: Path) -> int:
    return run_mvc(["stats", "--json"], repo).json()["stored_bytes"]


@dataclass
class CheckoutTiming:
    runs: list[Run]
    identical: bool  # every run restored the version byte for byte

    @property
    def median_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def max_rss_mb(self) -> float:
        return max(r.max_rss_mb for r in self.runs)


def time_checkouts(repo: Path, tracked: Path, targets: dict[str, tuple[str, Path]],
                   repeats: int) -> dict[str, CheckoutTiming]:
    """`mvc checkout` of each target in turn (name -> (revision, expected file)), `repeats` rounds.

    Taking the targets in turn makes every checkout rewrite the file. Before each timed run an
    untimed `mvc status` refreshes the stat cache should the last write have shared a timestamp
    tick with the index (a "racy" entry, re-hashed by the next command): the run measures
    restoring, not re-hashing. After each, `tracked` is compared with the expected file, byte
    for byte.
    """
    timings = {name: CheckoutTiming([], True) for name in targets}
    for _ in range(repeats):
        for name, (revision, expected) in targets.items():
            if tracked.exists():
                run_mvc(["status"], repo)
            timings[name].runs.append(run_mvc(["checkout", revision], repo))
            timings[name].identical &= same_bytes(tracked, expected)
    return timings


def same_bytes(a: Path, b: Path) -> bool:
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb", buffering=0) as fa, open(b, "rb", buffering=0) as fb:
        while True:
            block_a, block_b = fa.read(PAGE_CACHE_BLOCK), fb.read(PAGE_CACHE_BLOCK)
            if block_a != block_b:
                return False
            if not block_a:
                return True


def mb(n: float) -> str:
    return f"{n / 1e6:,.1f} MB"


def gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def print_table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> None:
    right = right if right is not None else set(range(1, len(headers)))
    widths = [max(len(str(row[i])) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
