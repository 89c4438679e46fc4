"""What bench_remote.py measures on the server, and DVC's and restic's passes over the series.

Every tool talks to the same SeaweedFS, each under its own prefix of one bucket, one step at a
time, so the server's own counters (its Prometheus metrics: bytes received and sent for the
bucket, requests of every type and status) taken before and after a step are that step's
traffic, measured the same way for every tool. Between steps the tool's prefix is listed
(obstore) for the bytes it keeps there; that listing falls outside every measured window.

    DVC      git repository + `dvc add` + `git commit` per version, then `dvc push` to an s3
             remote (endpointurl); clone: `git clone` + `dvc pull`; v1: `git checkout` + `dvc pull`
    restic   `restic backup` per version to s3:ENDPOINT/BUCKET/PREFIX; clone: `restic restore
             latest` with an empty cache; v1: `restic restore latest --tag v1`
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchutil import MVC_ENV, Run, place, run_command, same_bytes

TRACKED = "model.safetensors"
_SAMPLE = re.compile(r'^(SeaweedFS_s3_\w+)\{([^}]*)\}\s+(\S+)$')


@dataclass(frozen=True)
class Traffic:
    """The server's counters at one moment (or their growth over a step)."""

    received: int = 0  # request bodies: what clients sent
    sent: int = 0  # response bodies: what clients downloaded
    requests: int = 0

    def __sub__(self, other: Traffic) -> Traffic:
        return Traffic(self.received - other.received, self.sent - other.sent, self.requests - other.requests)


def reported(report: dict) -> Traffic:
    """The traffic a tool counted itself (mvc's --json: sent_bytes, received_bytes, request_count)."""
    return Traffic(report.get("sent_bytes", 0), report.get("received_bytes", 0), report.get("request_count", 0))


@dataclass
class Step:
    seconds: float
    traffic: Traffic
    stored: int = 0  # growth of the tool's prefix in the bucket
    report: dict = field(default_factory=dict)  # the tool's own summary, when it gives one (mvc --json)


class Meter:
    """Reads SeaweedFS's metrics (with no metrics URL: takes the tool's own --json counts) and
    lists the bucket or container (an obstore store)."""

    def __init__(self, store: Any, bucket: str, metrics_url: str | None) -> None:
        self.store = store
        self.bucket = bucket
        self.metrics_url = metrics_url

    def traffic(self) -> Traffic:
        """The counters once two readings a moment apart agree (a request's counter may be
        updated just after its response reached the client)."""
        if self.metrics_url is None:
            return Traffic()
        last, now = None, self._read()
        while now != last:
            time.sleep(0.05)
            last, now = now, self._read()
        return now

    def _read(self) -> Traffic:
        assert self.metrics_url is not None
        with urllib.request.urlopen(self.metrics_url, timeout=30) as response:
            text = response.read().decode()
        received = sent = requests = 0
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if not match:
                continue
            name, labels, value = match.groups()
            if name == "SeaweedFS_s3_request_total":  # every bucket, type and status code
                requests += int(float(value))
            elif f'bucket="{self.bucket}"' in labels:
                if name == "SeaweedFS_s3_bucket_traffic_received_bytes_total":
                    received += int(float(value))
                elif name == "SeaweedFS_s3_bucket_traffic_sent_bytes_total":
                    sent += int(float(value))
        return Traffic(received, sent, requests)

    def prefix_bytes(self, prefix: str) -> int:
        import obstore

        return sum(meta["size"] for batch in obstore.list(self.store, prefix + "/") for meta in batch)

    def measure(self, prefix: str, action: Callable[[], Run]) -> Step:
        """Run one step; its seconds, the server's traffic during it, and the prefix's growth."""
        before_bytes = self.prefix_bytes(prefix)
        before = self.traffic()
        run = action()
        traffic = self.traffic() - before
        report = run.json() if run.stdout.lstrip().startswith("{") else {}
        if self.metrics_url is None:
            traffic = reported(report)
        return Step(run.seconds, traffic, self.prefix_bytes(prefix) - before_bytes, report)


@dataclass
class Tool:
    """One tool's commands, as closures over its working directories."""

    name: str
    prefix: str  # its keys in the bucket
    work: Path  # where each version is placed
    commit: Callable[[int], Run | None]  # the local step of version N (None: the tool has none)
    push: Callable[[int], Run]
    clone: Callable[[], tuple[Run, Path]]  # the latest version elsewhere: (run, restored file)
    checkout_v1: Callable[[], tuple[Run, Path]]  # then version 1 there


@dataclass
class RemoteRun:
    name: str
    raw: list[int] = field(default_factory=list)
    commits: list[Step] = field(default_factory=list)
    pushes: list[Step] = field(default_factory=list)
    clone: Step | None = None
    checkout_v1: Step | None = None
    identical: bool = False  # the clone's latest and v1 both byte for byte


def push_versions(tool: Tool, meter: Meter, versions: list[Path]) -> RemoteRun:
    """Each version placed, committed locally and pushed, one at a time; then cloned elsewhere
    (the latest) and version 1 checked out there, both compared byte for byte."""
    print(f"{tool.name}: pushing {len(versions)} versions ...", flush=True)
    result = RemoteRun(tool.name)
    for number, path in enumerate(versions, start=1):
        place(path, tool.work / TRACKED)
        result.raw.append(path.stat().st_size)
        result.commits.append(meter.measure(tool.prefix, lambda n=number: tool.commit(n) or _NOTHING))
        result.pushes.append(meter.measure(tool.prefix, lambda n=number: tool.push(n)))
        print(f"  v{number}: {result.pushes[-1].seconds:.2f} s, {result.pushes[-1].traffic.received:,} bytes sent",
              flush=True)
    print(f"{tool.name}: clone of the latest, then v1 ...", flush=True)
    restored: list[Path] = []

    def clone() -> Run:
        run, path = tool.clone()
        restored.append(path)
        return run

    result.clone = meter.measure(tool.prefix, clone)
    latest_identical = same_bytes(restored[-1], versions[-1])

    def checkout_v1() -> Run:
        run, path = tool.checkout_v1()
        restored.append(path)
        return run

    result.checkout_v1 = meter.measure(tool.prefix, checkout_v1)
    result.identical = latest_identical and same_bytes(restored[-1], versions[0])
    return result


_NOTHING = Run([], 0.0, 0.0, "")


def tool_env(base: Path, credentials: dict[str, str], **extra: str) -> dict[str, str]:
    """A tool's environment: its own home, cache and config under base, the server's credentials."""
    env = dict(MVC_ENV)
    env.update(HOME=str(base / "home"), XDG_CACHE_HOME=str(base / "cache"), XDG_CONFIG_HOME=str(base / "config"),
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid",
               MVC_AUTHOR_NAME="bench", MVC_AUTHOR_EMAIL="bench@example.invalid")
    env.update(credentials)
    env.update(extra)
    return env


def dvc_tool(command: str, base: Path, endpoint: str, bucket: str, credentials: dict[str, str]) -> Tool:
    """DVC with dvc-s3: a git repository whose versions are `dvc add`ed and committed, pushed
    with `dvc push`; the clone is `git clone` + `dvc pull` with an empty cache."""
    env = tool_env(base, credentials, DVC_NO_ANALYTICS="1")
    work, clone_dir = base / "work", base / "clone"
    work.mkdir(parents=True)
    commits: dict[int, str] = {}

    def run(args: list[str], cwd: Path) -> Run:
        return run_command(args, cwd, env)

    run(["git", "init", "-q", "-b", "main"], work)
    run([command, "init", "-q"], work)
    run([command, "config", "core.analytics", "false"], work)
    run([command, "remote", "add", "-d", "origin", f"s3://{bucket}/dvc"], work)
    run([command, "remote", "modify", "origin", "endpointurl", endpoint], work)
    run([command, "remote", "modify", "origin", "region", "us-east-1"], work)
    run(["git", "add", ".dvc", ".dvcignore"], work)
    run(["git", "commit", "-q", "-m", "dvc init"], work)

    def commit(number: int) -> Run:
        added = run([command, "add", "-q", TRACKED], work)
        run(["git", "add", f"{TRACKED}.dvc", ".gitignore"], work)
        committed = run(["git", "commit", "-q", "-m", f"v{number}"], work)
        commits[number] = run(["git", "rev-parse", "HEAD"], work).stdout.strip()
        return Run(added.args, added.seconds + committed.seconds, max(added.max_rss_mb, committed.max_rss_mb), "")

    def clone() -> tuple[Run, Path]:
        cloned = run(["git", "clone", "-q", str(work), str(clone_dir)], base)
        pulled = run([command, "pull", "-q"], clone_dir)
        return Run(pulled.args, cloned.seconds + pulled.seconds, pulled.max_rss_mb, ""), clone_dir / TRACKED

    def checkout_v1() -> tuple[Run, Path]:
        switched = run(["git", "checkout", "-q", commits[1]], clone_dir)
        pulled = run([command, "pull", "-q", "--force"], clone_dir)
        return Run(pulled.args, switched.seconds + pulled.seconds, pulled.max_rss_mb, ""), clone_dir / TRACKED

    return Tool("DVC", "dvc", work, commit, lambda number: run([command, "push", "-q"], work), clone, checkout_v1)


def restic_tool(command: str, base: Path, endpoint: str, bucket: str, credentials: dict[str, str]) -> Tool:
    """restic to the S3 server: one `restic backup` per version (no local step); the clone is
    `restic restore latest` with a new, empty cache."""
    env = tool_env(base, credentials, RESTIC_PASSWORD="bench",
                   RESTIC_REPOSITORY=f"s3:{endpoint}/{bucket}/restic",
                   RESTIC_CACHE_DIR=str(base / "restic-cache"))
    restore_env = {**env, "RESTIC_CACHE_DIR": str(base / "restore-cache")}
    work = base / "work"
    work.mkdir(parents=True)
    run_command([command, "init"], base, env)

    def push(number: int) -> Run:
        return run_command([command, "backup", "--tag", f"v{number}", TRACKED], work, env)

    def restore(selection: list[str], target: Path) -> tuple[Run, Path]:
        done = run_command([command, "restore", "latest", *selection, "--target", str(target)], base, restore_env)
        return done, next(target.rglob(TRACKED))  # restic restores the absolute path under target

    return Tool("restic", "restic", work, lambda number: None, push,
                lambda: restore([], base / "restored-latest"),
                lambda: restore(["--tag", "v1"], base / "restored-v1"))


def fresh(base: Path) -> Path:
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    return base
