"""The same checkpoint series through borg, restic and DVC, side by side with modelvc.

The issue's comparison figures were measured on this kind of machine on another day; a
machine whose speed swings by a fifth from one hour to the next makes such figures a loose
yardstick. Each tool found on PATH (borg and restic: Debian's packages `borgbackup` and
`restic`; DVC: `pip install dvc`, found beside this interpreter or on PATH) stores the same
versions in the same run, the way modelvc does: the file is placed (synced, in the page
cache), then the tool's own command is timed as a process; the bytes stored are the size of
its repository or cache; then version 1 is restored into place and compared byte for byte.

    borg 1.2     borg create --compression zstd,3 (encryption none); borg extract
    restic       restic backup (repository v2, compression auto); restic restore
    DVC          dvc add (no SCM); dvc checkout --force of the version's .dvc file
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from benchutil import MVC_ENV, find_command, place, run_command, same_bytes

TRACKED = "model.safetensors"


@dataclass
class ToolRun:
    name: str
    stored: list[int] = field(default_factory=list)  # bytes stored after each version
    seconds: list[float] = field(default_factory=list)  # per version, process start-up included
    restore_v1: float = 0.0
    identical: bool = False

    @property
    def ingest_seconds(self) -> float:
        return sum(self.seconds)

    @property
    def stored_total(self) -> int:
        return self.stored[-1] if self.stored else 0


def tree_bytes(path: Path) -> int:
    return sum((Path(top) / name).stat().st_size for top, _, names in os.walk(path) for name in names)


def run_tools(workdir: Path, versions: list[tuple[str, Path]]) -> list[ToolRun]:
    """Every tool found: its pass over the series. Tools not installed are skipped."""
    runs = []
    for name, store in TOOLS.items():
        command = find_command(name)
        if command is None:
            print(f"{name}: not installed, skipped", flush=True)
            continue
        print(f"storing the series with {name} ...", flush=True)
        base = workdir / f"other-{name}"
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        runs.append(store(command, base, versions))
    return runs


def _environment(base: Path, **extra: str) -> dict[str, str]:
    env = dict(MVC_ENV)
    env.update(HOME=str(base / "home"), XDG_CACHE_HOME=str(base / "cache"), XDG_CONFIG_HOME=str(base / "config"))
    env.update(extra)
    return env


def _series(name: str, base: Path, versions: list[tuple[str, Path]],
            store_version: Callable[[int, Path], float], stored: Callable[[], int],
            restore_v1: Callable[[Path], tuple[float, Path]]) -> ToolRun:
    """Place each version in base/work and store it; then restore version 1 and compare."""
    work = base / "work"
    work.mkdir(exist_ok=True)
    result = ToolRun(name)
    for number, (_, path) in enumerate(versions, start=1):
        place(path, work / TRACKED)
        result.seconds.append(store_version(number, work))
        result.stored.append(stored())
    seconds, restored = restore_v1(work)
    result.restore_v1 = seconds
    result.identical = same_bytes(restored, versions[0][1])
    return result


def borg(command: str, base: Path, versions: list[tuple[str, Path]]) -> ToolRun:
    repo = base / "repo"
    env = _environment(base, BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes", BORG_BASE_DIR=str(base / "borg"))
    run_command([command, "init", "--encryption=none", str(repo)], base, env)

    def store_version(number: int, work: Path) -> float:
        return run_command([command, "create", "--compression", "zstd,3", f"{repo}::v{number}", TRACKED],
                           work, env).seconds

    def restore_v1(work: Path) -> tuple[float, Path]:
        target = base / "restored"
        target.mkdir()
        return run_command([command, "extract", f"{repo}::v1"], target, env).seconds, target / TRACKED

    return _series("borg", base, versions, store_version, lambda: tree_bytes(repo), restore_v1)


def restic(command: str, base: Path, versions: list[tuple[str, Path]]) -> ToolRun:
    repo = base / "repo"
    env = _environment(base, RESTIC_PASSWORD="bench", RESTIC_REPOSITORY=str(repo),
                       RESTIC_CACHE_DIR=str(base / "restic-cache"))
    run_command([command, "init"], base, env)

    def store_version(number: int, work: Path) -> float:
        return run_command([command, "backup", "--tag", f"v{number}", TRACKED], work, env).seconds

    def restore_v1(work: Path) -> tuple[float, Path]:
        target = base / "restored"
        seconds = run_command([command, "restore", "latest", "--tag", "v1", "--target", str(target)],
                              base, env).seconds
        return seconds, next(target.rglob(TRACKED))

    return _series("restic", base, versions, store_version, lambda: tree_bytes(repo), restore_v1)


def dvc(command: str, base: Path, versions: list[tuple[str, Path]]) -> ToolRun:
    env = _environment(base, DVC_NO_ANALYTICS="1")
    saved = base / "dvc-files"
    saved.mkdir()
    work = base / "work"
    work.mkdir()
    run_command([command, "init", "--no-scm"], work, env)

    def store_version(number: int, work: Path) -> float:
        seconds = run_command([command, "add", TRACKED], work, env).seconds
        shutil.copyfile(work / f"{TRACKED}.dvc", saved / f"v{number}.dvc")
        return seconds

    def restore_v1(work: Path) -> tuple[float, Path]:
        shutil.copyfile(saved / "v1.dvc", work / f"{TRACKED}.dvc")
        seconds = run_command([command, "checkout", "--force", f"{TRACKED}.dvc"], work, env).seconds
        return seconds, work / TRACKED

    return _series("DVC", base, versions, store_version, lambda: tree_bytes(work / ".dvc" / "cache"), restore_v1)


TOOLS: dict[str, Callable[[str, Path, list[tuple[str, Path]]], ToolRun]] = {
    "borg": borg, "restic": restic, "dvc": dvc}
