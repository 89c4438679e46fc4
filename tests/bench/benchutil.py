"""Helpers shared by the hand-run benchmarks: run the installed `mvc` like a user would.

Each run is timed from just before the process starts to just after it is reaped (interpreter
start-up included), and its own peak RSS is read from os.wait4, so one figure per process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAGE_CACHE_BLOCK = 16 << 20
GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None


@dataclass
class Run:
    args: list[str]
    seconds: float
    max_rss_mb: float
    stdout: str

    def json(self) -> Any:
        return json.loads(self.stdout)


def find_mvc() -> str:
    """The installed `mvc` next to this interpreter, else the one on PATH."""
    beside = Path(sys.executable).parent / "mvc"
    if beside.exists():
        return str(beside)
    found = shutil.which("mvc")
    if found is None:
        sys.exit("the mvc command is not installed (pip install -e . in the virtualenv)")
    return found


def run_mvc(args: list[str], cwd: Path) -> Run:
    """Run `mvc ARGS` in cwd; exit with its stderr if it fails.

    Peak RSS comes from GNU time when it is installed: a process's ru_maxrss starts from the
    RSS of the process that forked it (Linux counts the pre-exec image), so measured directly
    from a benchmark holding gigabytes of arrays it would report the benchmark's size.
    """
    command = [find_mvc(), *args]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r") as rss_file:
        wrapper = [GNU_TIME, "-f", "%M", "-o", rss_file.name] if GNU_TIME else []
        start = time.perf_counter()
        process = subprocess.Popen(wrapper + command, cwd=cwd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode()
        if process.returncode != 0:
            sys.exit(f"mvc {' '.join(args)} failed (exit {process.returncode}):\n{err.read().decode()}")
        max_rss_kb = int(rss_file.read().split()[-1]) if GNU_TIME else usage.ru_maxrss
    return Run(command[1:], seconds, max_rss_kb / 1024, stdout)


def warm_page_cache(path: Path) -> None:
    """Read a file once so that a timed run measures mvc, not the disk."""
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(PAGE_CACHE_BLOCK)
        while handle.readinto(buffer):
            pass


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
                         for i, (c, w) in enumerate(zip(cells, widths)))

    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
