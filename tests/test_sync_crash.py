"""A push killed at random points of its write order, run again until it completes: it ends with
the very packs an uninterrupted push makes (so nothing already sent is sent again), the remote
ref moves only at the end, and a clone reads back every byte."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from conftest import Mvc
from synchelp import commit_file, new_repo, write_model

from modelvc.fsutil import CRASH_ENV
from tests.reliability.harness import KILLED, mvc_env

# The mvc CLI with 1 MiB chunk packs, so a 3.8 MB model makes several and a kill lands between them.
SMALL_PACKS = ("import sys, modelvc.transfer.outgoing as outgoing; outgoing.CHUNK_PACK_BYTES = 1 << 20; "
               "from modelvc.cli.main import main; sys.argv = ['mvc', *sys.argv[1:]]; main()")


def push(work: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = mvc_env(**({CRASH_ENV: crash_at} if crash_at else {}))
    return subprocess.run([sys.executable, "-c", SMALL_PACKS, "-C", str(work), "push", "--json", "origin", "main"],
                          capture_output=True, text=True, env=env, timeout=120)


def pack_names(remote: Path) -> set[str]:
    return {path.name for path in (remote / "packs").glob("*.idx")}


def test_a_killed_push_run_again_sends_only_the_rest(tmp_path):
    alice = new_repo(tmp_path / "alice")
    model = write_model(alice.cwd / "model.safetensors")
    commit_file(alice, "model.safetensors", model, "v1")
    clean, crashed = tmp_path / "clean", tmp_path / "crashed"
    clean.mkdir()
    crashed.mkdir()
    alice("remote", "add", "origin", str(clean))
    whole = json.loads(push(alice.cwd).stdout)
    assert whole["pack_count"] >= 4
    alice("remote", "set-url", "origin", str(crashed))
    rng = random.Random(15)
    kills = 0
    while True:
        # each pack takes five renames (staged, its index, uploaded, its index uploaded, cached):
        # a kill at the sixth or later lands after at least one more pack is complete remotely
        done = push(alice.cwd, f"{rng.randint(6, 14)}:rename")
        if done.returncode != KILLED:
            break
        kills += 1
        assert not (crashed / "refs" / "heads" / "main").exists()
        assert kills < 10, "the push never completed"
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout)
    assert kills >= 1 and last["sent_bytes"] < whole["sent_bytes"]
    assert pack_names(crashed) == pack_names(clean)  # the same packs: none sent twice under new names
    Mvc(tmp_path)("clone", str(crashed), "bob", "-q")
    assert (tmp_path / "bob" / "model.safetensors").read_bytes() == model
    assert Mvc(tmp_path / "bob")("fsck").exit_code == 0


def fetch(work: Path, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = mvc_env(**({CRASH_ENV: crash_at} if crash_at else {}))
    return subprocess.run([sys.executable, "-m", "modelvc", "-C", str(work), "fetch", "--json"],
                          capture_output=True, text=True, env=env, timeout=120)


def test_a_killed_fetch_run_again_fetches_only_the_rest(tmp_path):
    alice = new_repo(tmp_path / "alice")
    model = write_model(alice.cwd / "model.safetensors")
    commit_file(alice, "model.safetensors", model, "v1")
    (tmp_path / "remote").mkdir()
    alice("remote", "add", "origin", str(tmp_path / "remote"))
    alice("push", "-q", "origin", "main")
    bob = new_repo(tmp_path / "bob")
    bob("remote", "add", "origin", str(tmp_path / "remote"))
    # renames of a fetch: the two cached indexes, the chunk pack and its index, then the objects'
    # pack: killed there, the chunks are stored and the objects and the ref are not
    killed = fetch(bob.cwd, "5:rename")
    assert killed.returncode == KILLED
    assert not (bob.cwd / ".mvc" / "refs" / "remotes").exists()
    done = fetch(bob.cwd)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["received_bytes"] < len(model) // 10
    bob("checkout", "-q", "origin/main")
    assert (bob.cwd / "model.safetensors").read_bytes() == model
