"""Shared machinery of the reliability suite: run the real `mvc`, kill it, and check the invariants.

After any fault the same four things must hold:
  - `fsck` finds nothing wrong (or exactly the problems the test expects);
  - every version reported committed reads back byte-identical;
  - every working file holds its old or its new content, never a torn mix;
  - nothing outside the working tree was touched (a sentinel tree beside it is unchanged).
Used by the tests in this directory and by tests/bench/bench_faults.py.
"""

from __future__ import annotations

import io
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from modelvc.fsutil import CRASH_ENV

MVC = str(Path(sys.executable).with_name("mvc"))
KILLED = -signal.SIGKILL
TEMP_MARKERS = (".mvc-tmp-",)  # checkout's temp names; item 18 of issue 11 stops status listing them


def mvc_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in (CRASH_ENV, "MVC_DEBUG")}
    env.update(MVC_AUTHOR_NAME="Test Author", MVC_AUTHOR_EMAIL="test@example.com",
               OPENBLAS_NUM_THREADS="1")
    env.update(extra)
    return env


def run(work: Path, *args: str, crash_at: str | None = None, check: bool = False,
        timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the installed `mvc` in `work`; `crash_at` ("N" or "N:kinds") arms the crash hook."""
    env = mvc_env(**({CRASH_ENV: crash_at} if crash_at else {}))
    done = subprocess.run([MVC, "-C", str(work), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"mvc {' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


def run_here(work: Path, *args: str) -> None:
    """Run an mvc command in this process (no start-up cost): for the commands after a kill."""
    from click.testing import CliRunner

    from modelvc.cli.main import cli

    result = CliRunner().invoke(cli, ["-C", str(work), *args], env=mvc_env(), catch_exceptions=False)
    if result.exit_code != 0:
        raise AssertionError(f"mvc {' '.join(args)} exited {result.exit_code}\n{result.output}")


def run_killed_after(work: Path, args: list[str], delay: float) -> int:
    """Start `mvc args`, SIGKILL it after `delay` seconds (if still running); its return code."""
    process = subprocess.Popen([MVC, "-C", str(work), *args], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=mvc_env())
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
    return process.wait()


def head_commit(work: Path) -> str | None:
    from modelvc.repo import Repo

    return Repo(work).head_commit()


def read_tree(work: Path) -> dict[str, bytes]:
    """The working files (not .mvc), by posix path."""
    files = {}
    for directory, subdirs, names in os.walk(work):
        subdirs[:] = [d for d in subdirs if not (directory == str(work) and d == ".mvc")]
        for name in names:
            path = Path(directory, name)
            files[path.relative_to(work).as_posix()] = path.read_bytes()
    return files


def read_version(work: Path, commit: str) -> dict[str, bytes]:
    """Every file of `commit` as the store gives it back, each chunk decoded and verified."""
    from modelvc.repo import Repo
    from modelvc.store.filedata import write_file

    repo = Repo(work)
    files = {}
    for path, entry in repo.tree_of(commit).as_map().items():
        buffer = io.BytesIO()
        write_file(repo.read_manifest(entry.manifest_id), buffer, repo.chunks)
        files[path] = buffer.getvalue()
    repo.chunks.reader.close()
    return files


def checkout_copy(work: Path, commit: str, scratch: Path) -> dict[str, bytes]:
    """Check `commit` out with the real `mvc` into a copy of the repository (the original is left alone)."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    shutil.copytree(work / ".mvc", scratch / ".mvc")
    (scratch / ".mvc" / "index").unlink(missing_ok=True)
    run(scratch, "checkout", "--force", commit, check=True)
    return read_tree(scratch)


def fsck_problems(work: Path, read_data: bool = False) -> list[str]:
    """fsck's problems as "kind object: detail" lines (empty when the store is sound)."""
    from modelvc.ops.fsck import fsck
    from modelvc.repo import Repo

    repo = Repo(work)
    result = fsck(repo, read_data=read_data)
    repo.chunks.reader.close()
    return [f"{p.kind} {p.object[:10]}: {p.detail}" for p in result.problems]


@dataclass
class Sentinel:
    """Files beside the working tree that mvc must never touch: names, bytes and mtimes."""

    root: Path
    before: dict[str, tuple[str, bytes, int]] = field(default_factory=dict)

    @classmethod
    def plant(cls, root: Path) -> Sentinel:
        (root / "deep" / "er").mkdir(parents=True, exist_ok=True)
        (root / "secret.txt").write_bytes(b"outside the tree\n")
        (root / "deep" / "w.bin").write_bytes(bytes(range(256)) * 4)
        (root / "deep" / "er" / "config").write_bytes(b'{"format_version": 2}\n')
        sentinel = cls(root)
        sentinel.before = sentinel.snapshot()
        return sentinel

    def snapshot(self) -> dict[str, tuple[str, bytes, int]]:
        seen = {}
        for directory, subdirs, names in os.walk(self.root, followlinks=False):
            for name in subdirs + names:
                path = Path(directory, name)
                st = path.lstat()
                kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
                data = os.readlink(path).encode() if kind == "link" else path.read_bytes() if kind == "file" else b""
                seen[path.relative_to(self.root).as_posix()] = (kind, data, 0 if kind == "dir" else st.st_mtime_ns)
        return seen

    def assert_untouched(self) -> None:
        now = self.snapshot()
        assert now == self.before, (f"outside the tree changed: added {sorted(set(now) - set(self.before))}, "
                                    f"removed {sorted(set(self.before) - set(now))}, changed "
                                    f"{sorted(k for k in now if k in self.before and now[k] != self.before[k])}")


@dataclass
class Scene:
    """A repository under test: its working tree, a sentinel beside it, and the versions made so far."""

    work: Path
    sentinel: Sentinel
    versions: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit id -> files

    @classmethod
    def create(cls, base: Path, format_version: int | None = None) -> Scene:
        """A new repository (of an older format version, when given one)."""
        work = base / "work"
        work.mkdir(parents=True)
        if format_version is None:
            run_here(work, "init")
        else:
            from modelvc.repo import Repo

            Repo.init(work, format_version=format_version).close()
        return cls(work, Sentinel.plant(base / "outside"))

    def copy_to(self, base: Path) -> Scene:
        """The same repository in `base` (a fresh sentinel there): each kill gets its own copy."""
        base.mkdir(parents=True, exist_ok=True)
        shutil.copytree(self.work, base / "work", symlinks=True)
        return Scene(base / "work", Sentinel.plant(base / "outside"), dict(self.versions))

    def write(self, files: dict[str, bytes]) -> None:
        for path, data in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)

    def commit(self, message: str, *extra: str) -> str:
        """Stage everything, commit, and remember what the commit must hold."""
        run_here(self.work, "add", ".")
        run_here(self.work, "commit", "-q", "-m", message, *extra)
        commit = head_commit(self.work)
        self.versions[commit] = self.tracked_files()
        return commit

    def tracked_files(self) -> dict[str, bytes]:
        return {p: d for p, d in read_tree(self.work).items() if not is_leftover(p)}

    def learn_head(self, files: dict[str, bytes]) -> None:
        """A command that may have committed: if HEAD is new, it must hold `files`."""
        commit = head_commit(self.work)
        if commit is not None and commit not in self.versions:
            self.versions[commit] = files

    def check(self, old: dict[str, bytes] | None = None, new: dict[str, bytes] | None = None,
              expected_problems: list[str] | None = None) -> None:
        """Every invariant: fsck, versions byte-identical, working files old or new, outside untouched."""
        assert fsck_problems(self.work) == (expected_problems or [])
        for commit, files in self.versions.items():
            assert read_version(self.work, commit) == files, f"version {commit[:10]} does not read back"
        if old is not None:
            assert_old_or_new(self.work, old, new if new is not None else old)
        self.sentinel.assert_untouched()


def is_leftover(path: str) -> bool:
    return any(marker in path.rsplit("/", 1)[-1] for marker in TEMP_MARKERS)


def assert_old_or_new(work: Path, old: dict[str, bytes], new: dict[str, bytes]) -> None:
    """Each working file holds its old bytes or its new bytes, never a mix; none appears from nowhere.

    A file being replaced may also be absent: checkout unlinks before it renames (see
    modelvc/ops/materialize.py), and the next checkout restores it.
    """
    now = {p: d for p, d in read_tree(work).items() if not is_leftover(p)}
    for path in set(old) | set(new):
        if path in now:
            assert now[path] in (old.get(path), new.get(path)), f"{path} is torn: neither old nor new"
    assert set(now) <= set(old) | set(new), f"unexpected files {sorted(set(now) - set(old) - set(new))}"


@dataclass
class Tally:
    """Kills made and the invariant failures found after them (empty when all held)."""

    tried: int = 0
    killed: int = 0
    failures: list[str] = field(default_factory=list)

    def record(self, label: str, scene: Scene, verify, killed: bool) -> None:
        self.tried += 1
        self.killed += killed
        try:
            verify(scene, killed)
        except AssertionError as exc:
            self.failures.append(f"{label}: {exc}")


def sweep_steps(template: Scene, scratch: Path, args: list[str], verify, limit: int = 400) -> Tally:
    """Kill `mvc args` before its 1st, 2nd, ... durable step, each in a fresh copy of `template`.

    `verify(scene, killed)` checks the invariants after each run. Stops at the first N the
    command survives (it has fewer durable steps than N).
    """
    tally = Tally()
    for step in range(1, limit + 1):
        scene = template.copy_to(scratch / f"n{step}")
        done = run(scene.work, *args, crash_at=str(step))
        if done.returncode not in (0, KILLED):
            tally.failures.append(f"step {step}: exit {done.returncode}: {done.stderr}")
        tally.record(f"step {step}", scene, verify, done.returncode == KILLED)
        shutil.rmtree(scratch / f"n{step}")
        if done.returncode != KILLED:
            return tally
    tally.failures.append(f"mvc {' '.join(args)} still had steps left after {limit}")
    return tally


def random_kills(template: Scene, scratch: Path, args: list[str], verify, count: int, seed: int) -> Tally:
    """Kill `mvc args` at `count` seeded random times within its usual run time."""
    probe = template.copy_to(scratch / "probe")
    started = time.monotonic()
    run(probe.work, *args, check=True)
    duration = time.monotonic() - started
    shutil.rmtree(scratch / "probe")
    rng = random.Random(seed)
    tally = Tally()
    for attempt in range(count):
        scene = template.copy_to(scratch / f"r{attempt}")
        code = run_killed_after(scene.work, args, rng.uniform(0.05, 1.0) * duration)
        if code not in (0, KILLED):
            tally.failures.append(f"attempt {attempt}: exit {code}")
        tally.record(f"attempt {attempt}", scene, verify, code == KILLED)
        shutil.rmtree(scratch / f"r{attempt}")
    return tally


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)
