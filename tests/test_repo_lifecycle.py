"""A Repo kept open: it notices what other processes wrote, and leaves the process as it found it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from conftest import random_bytes, write

from modelvc.freshness import COARSE_RACY_NS, RACY_NS, stamp, unchanged_since
from modelvc.fsutil import atomic_write
from modelvc.ops.add import add
from modelvc.ops.checkout import checkout
from modelvc.ops.status import status
from modelvc.repo import Repo

ROOT = Path(__file__).resolve().parents[1]


def mvc_process(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The real `mvc`, in another process."""
    result = subprocess.run([sys.executable, "-m", "modelvc", *args], cwd=cwd, capture_output=True, text=True,
                            env=dict(os.environ, PYTHONPATH=str(ROOT), **env))
    assert result.returncode == 0, result.stderr
    return result


def test_an_open_repo_sees_the_packs_refs_index_and_config_another_process_wrote(mvc, work, monkeypatch):
    write(work / "a.bin", random_bytes(300_000, seed=1))
    mvc("add", "a.bin")
    mvc("commit", "-m", "one")
    repo = Repo.discover(work)
    first = repo.head_commit()
    assert status(repo).clean
    repo.read_manifest(repo.index.entries["a.bin"].manifest_id)  # the chunk index is loaded now

    second_bytes = random_bytes(400_000, seed=2)
    write(work / "b.bin", second_bytes)
    mvc_process(work, "add", "b.bin")
    mvc_process(work, "config", "user.name", "Other Name")
    mvc_process(work, "config", "user.email", "other@example.com")
    mvc_process(work, "commit", "-m", "two")
    write(work / "c.bin", b"staged, not committed\n")
    mvc_process(work, "add", "c.bin")

    assert repo.head_commit() not in (None, first)
    assert repo.read_commit(repo.head_commit()).message == "two"
    monkeypatch.delenv("MVC_AUTHOR_NAME")
    monkeypatch.delenv("MVC_AUTHOR_EMAIL")
    assert repo.identity() == ("Other Name", "other@example.com")
    seen = status(repo)
    assert (seen.staged, seen.unstaged, seen.untracked) == ([("added", "c.bin")], [], [])
    write(work / "copy.bin", second_bytes)
    added = add(repo, ["copy.bin"], cwd=work)
    assert (added.staged, added.new_chunks) == (["copy.bin"], 0)  # every chunk is in the other's pack
    (work / "b.bin").unlink()
    checkout(repo, "HEAD", force=True)
    assert (work / "b.bin").read_bytes() == second_bytes


def test_a_stamp_is_trusted_only_when_taken_well_after_the_last_change(tmp_path):
    path = tmp_path / "config"
    atomic_write(path, b"{}")
    assert stamp(path).racy  # just written: a change within the same tick would not show
    assert not unchanged_since(stamp(path), path)
    old = time.time_ns() - 2 * COARSE_RACY_NS
    os.utime(path, ns=(old, old))
    settled = stamp(path)
    assert unchanged_since(settled, path)
    atomic_write(path, b"{}")  # the same size, replaced by rename
    os.utime(path, ns=(old, old))
    assert not unchanged_since(settled, path)
    path.unlink()
    assert not unchanged_since(settled, path)


def test_whole_second_timestamps_stay_racy_longer(tmp_path):
    path = tmp_path / "packs"
    path.mkdir()
    second = 1_000_000_000
    fine = time.time_ns() - 3 * RACY_NS
    fine += fine % second == 0  # a fraction of a second, as ext4's
    os.utime(path, ns=(fine, fine))
    assert not stamp(path).racy
    coarse = (time.time_ns() // second - 1) * second  # at most 2 s ago, in whole seconds as on FAT
    os.utime(path, ns=(coarse, coarse))
    assert stamp(path).racy


def test_an_unchanged_config_is_not_read_again(mvc, work):
    config = work / ".mvc" / "config"
    old = time.time_ns() - 2 * COARSE_RACY_NS
    os.utime(config, ns=(old, old))
    repo = Repo.discover(work)
    assert repo.config is repo.config
    before = repo.config
    mvc("config", "user.name", "Someone")
    assert repo.config is not before
    assert repo.config["user"] == {"name": "Someone"}


SIDE_EFFECTS = """
import json, os, sys, threading
from pathlib import Path

ctypes_calls = []
sys.addaudithook(lambda event, args: ctypes_calls.append(event) if event.startswith("ctypes.") else None)
environment = dict(os.environ)

def tasks():
    return len(os.listdir("/proc/self/task"))

import modelvc.repo
from modelvc.ops.add import add
from modelvc.ops.checkout import checkout
from modelvc.ops.log import log
from modelvc.ops.status import status

work = Path(sys.argv[1])
report = {}
with modelvc.repo.Repo.discover(work) as repo:
    status(repo)
    log(repo)
    report["threads_before_work"] = (threading.active_count(), tasks())
    (work / "model.bin").write_bytes(os.urandom(3 << 20))
    add(repo, ["model.bin"], cwd=work)
    (work / "model.bin").unlink()
    checkout(repo, "HEAD", force=True)
    report["threads_while_open"] = threading.active_count()
report["threads_after_close"] = threading.active_count()
report["environment_changed"] = sorted(set(os.environ.items()) ^ set(environment.items()))
report["ctypes_calls"] = ctypes_calls
print(json.dumps(report))
"""


def test_a_repo_changes_nothing_in_the_process_and_close_stops_its_threads(mvc, work):
    write(work / "model.bin", random_bytes(100_000, seed=3))
    mvc("add", "model.bin")
    mvc("commit", "-m", "one")
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}
    result = subprocess.run([sys.executable, "-c", SIDE_EFFECTS, str(work)], capture_output=True, text=True,
                            env=dict(env, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["threads_before_work"] == [1, 1]
    assert report["threads_while_open"] > 1  # the Repo's worker threads
    assert report["threads_after_close"] == 1
    assert report["environment_changed"] == []
    assert report["ctypes_calls"] == []  # no mallopt


def test_the_cli_tunes_the_allocator_when_its_threads_start(mvc, work):
    write(work / "model.bin", random_bytes(100_000, seed=4))
    script = ("import os, sys\n"
              "calls = []\n"
              "sys.addaudithook(lambda event, args: calls.append(args[1]) if event == 'ctypes.dlsym' else None)\n"
              "from modelvc.cli.main import main\n"
              "try:\n    main()\n"
              "except SystemExit:\n    print(calls, os.environ.get('OPENBLAS_NUM_THREADS'))\n")
    env = {key: value for key, value in os.environ.items() if key != "OPENBLAS_NUM_THREADS"}

    def run(*args: str) -> str:
        result = subprocess.run([sys.executable, "-c", script, *args], cwd=work, capture_output=True, text=True,
                                env=dict(env, PYTHONPATH=str(ROOT)))
        return result.stdout.splitlines()[-1]

    assert run("status") == "[] 1"
    assert run("add", "model.bin") == "['mallopt'] 1"
