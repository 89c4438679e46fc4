"""push and clone against real servers (a directory, SeaweedFS for S3, Azurite for Azure Blob):
the round trip is byte-identical, and of several clones pushing one branch at once exactly one
wins while the others are told to fetch first and lose nothing."""

from __future__ import annotations

import threading
import uuid

import pytest
from conftest import Mvc
from synchelp import commit_file, new_repo, write_model

from modelvc.api import Repo
from modelvc.errors import PushRejectedError

WRITERS = 3


@pytest.fixture(params=["directory", "s3", "azure"])
def remote_args(request, tmp_path, monkeypatch) -> list[str]:
    """`remote add` arguments (URL and options) for a fresh remote of each kind."""
    unique = uuid.uuid4().hex[:12]
    if request.param == "directory":
        (tmp_path / "remote").mkdir()
        return [str(tmp_path / "remote")]
    server = request.getfixturevalue("seaweedfs" if request.param == "s3" else "azurite")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    if request.param == "s3":
        return [f"s3://{server.extra['bucket']}/sync-{unique}", "--endpoint", server.endpoint, "--path-style"]
    return [f"az://{server.extra['container']}/sync-{unique}", "--endpoint", server.endpoint]


def test_round_trip_and_a_race_of_pushes(tmp_path, remote_args):
    alice = new_repo(tmp_path / "alice")
    alice("remote", "add", "origin", *remote_args)
    model = write_model(alice.cwd / "model.safetensors")
    commit_file(alice, "model.safetensors", model, "v1")
    alice("push", "-q", "-u", "origin", "main")
    Mvc(tmp_path)("clone", *remote_args, "bob", "-q")
    assert (tmp_path / "bob" / "model.safetensors").read_bytes() == model

    writers = []
    for number in range(WRITERS):
        Mvc(tmp_path)("clone", *remote_args, f"writer{number}", "-q")
        writer = Mvc(tmp_path / f"writer{number}")
        commit_file(writer, f"w{number}.bin", bytes([number]) * 5000, f"writer {number}")
        writers.append(writer)
    tips = [(writer.cwd / ".mvc" / "refs" / "heads" / "main").read_text() for writer in writers]
    start = threading.Barrier(WRITERS)
    outcomes: list[object] = [None] * WRITERS

    def push(number: int) -> None:
        with Repo.open(writers[number].cwd) as repo:
            start.wait()
            try:
                outcomes[number] = repo.push()
            except PushRejectedError as exc:
                outcomes[number] = exc

    threads = [threading.Thread(target=push, args=(number,)) for number in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [number for number, outcome in enumerate(outcomes) if not isinstance(outcome, PushRejectedError)]
    assert len(winners) == 1, outcomes
    for number, outcome in enumerate(outcomes):
        if number in winners:
            continue
        assert isinstance(outcome, PushRejectedError) and "(fetch first)" in outcome.message
        assert (writers[number].cwd / ".mvc" / "refs" / "heads" / "main").read_text() == tips[number]
        assert (writers[number].cwd / f"w{number}.bin").read_bytes() == bytes([number]) * 5000
    bob = Mvc(tmp_path / "bob")
    bob("pull", "-q")
    assert (tmp_path / "bob" / f"w{winners[0]}.bin").read_bytes() == bytes([winners[0]]) * 5000
    assert (tmp_path / "bob" / ".mvc" / "refs" / "heads" / "main").read_text() == tips[winners[0]]
