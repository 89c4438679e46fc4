import os
import signal
import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path

import pytest

from modelvc import lock as lock_module
from modelvc.errors import LockTimeoutError
from modelvc.lock import RepoLock

ROOT = Path(__file__).resolve().parents[1]

HOLDER = """
import sys, time
from pathlib import Path
from modelvc.lock import RepoLock
with RepoLock(Path(sys.argv[1]), timeout=5):
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
"""

WORKER = """
import os, sys, time
from pathlib import Path
from modelvc.lock import RepoLock
for _ in range(int(sys.argv[3])):
    with RepoLock(Path(sys.argv[1]), timeout=30):
        with open(sys.argv[2], "a") as log:
            log.write(f"start {os.getpid()}\\n"); log.flush()
            time.sleep(0.01)
            log.write(f"end {os.getpid()}\\n")
"""


def spawn(script, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE, text=True, env=env
    )


@pytest.fixture
def holder(tmp_path):
    process = spawn(HOLDER, tmp_path / "lock", 30)
    assert process.stdout.readline() == "locked\n"
    yield process
    process.kill()
    process.wait()


def test_timeout_names_the_holding_process(tmp_path, holder):
    started = time.monotonic()
    with pytest.raises(LockTimeoutError) as caught:
        with RepoLock(tmp_path / "lock", timeout=0.3):
            pytest.fail("acquired a lock another process holds")
    waited = time.monotonic() - started
    assert str(caught.value) == (
        "timed out after 0.3s waiting for the repository lock: "
        f"another mvc process (pid {holder.pid}) is writing"
    )
    assert caught.value.hint == "wait for it to finish, or raise MVC_LOCK_TIMEOUT (seconds)"
    assert caught.value.exit_code == 6
    assert 0.3 <= waited < 1.5


def test_a_killed_holder_leaves_no_stale_lock(tmp_path, holder):
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert (tmp_path / "lock").read_text() == f"{holder.pid}\n"  # its pid is still there
    started = time.monotonic()
    with RepoLock(tmp_path / "lock", timeout=2) as held:
        assert held.held
        assert (tmp_path / "lock").read_text() == f"{os.getpid()}\n"
    assert time.monotonic() - started < 1.0


def test_waiter_gets_the_lock_when_the_holder_finishes(tmp_path):
    process = spawn(HOLDER, tmp_path / "lock", 0.3)
    assert process.stdout.readline() == "locked\n"
    started = time.monotonic()
    with RepoLock(tmp_path / "lock", timeout=5):
        waited = time.monotonic() - started
    assert 0.2 <= waited < 2
    assert process.wait(timeout=5) == 0


def test_pid_is_written_while_held_and_cleared_after(tmp_path):
    path = tmp_path / "lock"
    repo_lock = RepoLock(path, timeout=0)
    with repo_lock:
        assert path.read_text() == f"{os.getpid()}\n"
    assert path.read_text() == ""
    assert not repo_lock.held
    with repo_lock:  # reusable after release
        with pytest.raises(RuntimeError):
            repo_lock.acquire()


def test_unknown_holder_pid_is_left_out_of_the_message(tmp_path):
    import fcntl

    path = tmp_path / "lock"
    with open(path, "w") as raw:
        fcntl.flock(raw, fcntl.LOCK_EX)
        with pytest.raises(LockTimeoutError) as caught:
            RepoLock(path, timeout=0).acquire()
    assert str(caught.value) == (
        "timed out after 0s waiting for the repository lock: another mvc process is writing"
    )


def test_waiting_backs_off_instead_of_spinning(tmp_path, monkeypatch):
    attempts = []
    real_flock = lock_module.fcntl.flock

    def counting_flock(fd, operation):
        attempts.append(time.monotonic())
        return real_flock(fd, operation)

    with RepoLock(tmp_path / "lock", timeout=0):
        monkeypatch.setattr(lock_module.fcntl, "flock", counting_flock)
        with pytest.raises(LockTimeoutError):
            RepoLock(tmp_path / "lock", timeout=0.6).acquire()
    # 5, 10, 20, 40, 80 ms then every 100 ms: about a dozen tries in 0.6 s.
    assert 4 <= len(attempts) <= 15
    gaps = [b - a for a, b in pairwise(attempts)]
    assert max(gaps) < 0.2


def test_threads_never_hold_it_at_once(tmp_path):
    path = tmp_path / "lock"
    holders = []
    overlaps = []
    counter = [0]

    def work():
        for _ in range(20):
            with RepoLock(path, timeout=30):
                holders.append(1)
                if len(holders) > 1:
                    overlaps.append(len(holders))
                value = counter[0]
                time.sleep(0.001)
                counter[0] = value + 1
                holders.pop()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlaps == []
    assert counter[0] == 80


def test_processes_never_hold_it_at_once(tmp_path):
    log = tmp_path / "log"
    workers = [spawn(WORKER, tmp_path / "lock", log, 10) for _ in range(3)]
    for worker in workers:
        assert worker.wait(timeout=60) == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 60
    for start, end in zip(lines[::2], lines[1::2], strict=True):
        assert start.startswith("start ")
        assert end == "end " + start.removeprefix("start ")
