"""One re-entrant writer transaction per Repo: operations compose into one locked step."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import random_bytes, write

from modelvc.errors import LockTimeoutError
from modelvc.ops.add import add
from modelvc.ops.commit import commit
from modelvc.ops.log import log
from modelvc.ops.status import status
from modelvc.repo import Repo

ROOT = Path(__file__).resolve().parents[1]


def other_writer(work: Path, *args: str) -> subprocess.CompletedProcess:
    """The real `mvc` in another process, waiting at most 0.2 s for the lock."""
    return subprocess.run([sys.executable, "-m", "modelvc", *args], cwd=work, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), MVC_LOCK_TIMEOUT="0.2"))


def blocked_message(pid: int) -> str:
    return (f"error: timed out after 0.2s waiting for the repository lock: another mvc process (pid {pid}) "
            "is writing\nhint: wait for it to finish, or raise MVC_LOCK_TIMEOUT (seconds)\n")


def test_nested_transactions_hold_the_lock_until_the_outermost_ends(mvc, work):
    write(work / "x.bin", b"x" * 1000)
    repo = Repo.discover(work)
    with repo.transaction() as outer:
        assert outer is repo
        with repo.transaction():
            assert repo.in_transaction
        assert repo.in_transaction
        blocked = other_writer(work, "add", "x.bin")
        assert (blocked.returncode, blocked.stderr) == (6, blocked_message(os.getpid()))
    assert not repo.in_transaction
    assert other_writer(work, "add", "x.bin").returncode == 0


def test_add_and_commit_in_one_transaction_keep_other_writers_out(mvc, work):
    write(work / "model.bin", random_bytes(200_000, seed=1))
    write(work / "other.bin", b"another writer's file\n")
    repo = Repo.discover(work)
    with repo.transaction():
        add(repo, ["model.bin"], cwd=work)
        between = other_writer(work, "add", "other.bin")
        made = commit(repo, "model only")
    assert (between.returncode, between.stderr) == (6, blocked_message(os.getpid()))
    assert [entry.commit.message for entry in log(repo)] == ["model only"]
    assert sorted(repo.tree_of(made.id).as_map()) == ["model.bin"]
    assert status(repo).untracked == ["other.bin"]


HOLDER = """
import sys, time
from pathlib import Path
from modelvc.repo import Repo
with Repo(Path(sys.argv[1])).transaction():
    print("locked", flush=True)
    time.sleep(60)
"""


def test_the_timeout_is_a_parameter_with_the_repo_default(mvc, work):
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(work)], stdout=subprocess.PIPE, text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(LockTimeoutError) as waited:
            with Repo.discover(work).transaction(timeout=0.1):
                pytest.fail("entered a transaction another process holds")
        assert waited.value.message == ("timed out after 0.1s waiting for the repository lock: "
                                        f"another mvc process (pid {holder.pid}) is writing")
        with pytest.raises(LockTimeoutError) as defaulted:
            with Repo.discover(work, lock_timeout=0.05).transaction():
                pytest.fail("entered a transaction another process holds")
        assert defaulted.value.message.startswith("timed out after 0.05s waiting for the repository lock")
    finally:
        holder.kill()
        holder.wait()
    with Repo.discover(work, lock_timeout=0).transaction() as repo:
        assert repo.in_transaction


def test_another_thread_waits_for_the_transaction_to_end(mvc, work):
    repo = Repo.discover(work)
    events: list[str] = []
    entered = threading.Event()
    failures: list[BaseException] = []

    def second() -> None:
        try:
            with pytest.raises(LockTimeoutError) as busy:
                with repo.transaction(timeout=0):
                    pass
            assert busy.value.message == ("timed out after 0s waiting for the repository lock: "
                                          "another thread of this process is writing")
            entered.set()
            with repo.transaction():
                events.append("second thread in")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            entered.set()

    with repo.transaction():
        events.append("first thread in")
        thread = threading.Thread(target=second)
        thread.start()
        entered.wait()
        time.sleep(0.2)  # the second thread is waiting now; were it not, it would be in first
        events.append("first thread out")
    thread.join()
    assert failures == []
    assert events == ["first thread in", "first thread out", "second thread in"]
