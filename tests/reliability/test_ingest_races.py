"""A file written while `mvc add` reads it, and a store that already holds a corrupt chunk.

mvc must never store a chunk whose bytes are not those it hashed, must refuse a file that
changed while it was read (exit 13, nothing staged), must not die of SIGBUS when the file
shrinks, and must heal a store holding a bad chunk at the next add of the same content.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import random_bytes, write
from modelfiles import write_safetensors

from modelvc.ids import hash_bytes_raw
from modelvc.repo import Repo
from modelvc.store import filedata, fileread
from modelvc.store.backend import DirectoryBackend
from modelvc.store.chunkindex import SMALL_INDEX_ROWS, ChunkIndex
from modelvc.store.chunkstore import ChunkWriter
from modelvc.store.codecs import CODEC_NONE
from modelvc.store.packs import IDX_HEADER_SIZE, IDX_ROW, RECORD_HEADER, PackWriter, pack_names

CHANGED = "error: 'model.bin' changed while mvc was reading it; nothing was staged\n" \
          "hint: run the command again when whatever writes the file is done\n"


def on_first_append(monkeypatch, action):
    """Run `action` once, in the middle of an add: after the first chunk reached the pack."""
    original = ChunkWriter.append
    state = {"done": False}

    def append(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if not state["done"]:
            state["done"] = True
            action()

    monkeypatch.setattr(ChunkWriter, "append", append)
    return state


def index_bytes(work: Path) -> bytes | None:
    path = work / ".mvc" / "index"
    return path.read_bytes() if path.exists() else None


def restored(mvc, work: Path, name: str, rev: str = "HEAD") -> bytes:
    (work / name).unlink(missing_ok=True)
    mvc("checkout", rev, "--", name)
    return (work / name).read_bytes()


def model_file(path: Path, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    return write_safetensors(path, {f"layer{i}.weight": rng.standard_normal((512, 1024), dtype=np.float32)
                                    for i in range(6)})


def test_a_file_rewritten_during_add_is_refused_and_nothing_is_staged(mvc, work, monkeypatch):
    write(work / "other.bin", b"staged before")
    mvc("add", "other.bin")
    index_before = index_bytes(work)
    model_file(work / "model.bin", seed=1)
    new_content = model_file(work / "next.bin", seed=2)

    hook = on_first_append(monkeypatch, lambda: write(work / "model.bin", new_content))
    result = mvc("add", "model.bin", ok=False)
    assert hook["done"]
    assert result.exit_code == 13
    assert result.stderr == CHANGED
    assert index_bytes(work) == index_before
    monkeypatch.undo()
    assert mvc("fsck").exit_code == 0

    mvc("add", "model.bin")  # the writer is done: a good commit
    mvc("commit", "-m", "after the write", "-q")
    assert mvc("fsck", "--read-data").exit_code == 0
    assert restored(mvc, work, "model.bin") == new_content


def test_commit_all_fails_when_a_tracked_file_changes_under_it(mvc, work, monkeypatch):
    first = random_bytes(3_000_000, seed=3)
    write(work / "model.bin", first)
    mvc("add", "model.bin")
    mvc("commit", "-m", "v1", "-q")
    head = mvc("log", "--json").stdout
    write(work / "model.bin", random_bytes(3_000_000, seed=4))
    index_before = index_bytes(work)

    on_first_append(monkeypatch, lambda: write(work / "model.bin", random_bytes(3_000_000, seed=5)))
    result = mvc("commit", "-a", "-m", "v2", ok=False)
    assert result.exit_code == 13
    assert result.stderr == CHANGED
    assert index_bytes(work) == index_before
    monkeypatch.undo()
    assert mvc("log", "--json").stdout == head
    assert mvc("fsck").exit_code == 0
    assert restored(mvc, work, "model.bin") == first


def test_a_file_truncated_during_add_is_refused_without_sigbus(mvc, work, monkeypatch):
    # Small windows and one batch in flight, so that reads are still to come after the
    # truncation: with a mapping, touching them would kill the process with SIGBUS.
    monkeypatch.setattr(filedata, "BATCH_BYTES", 2 << 20)
    monkeypatch.setattr(filedata, "IN_FLIGHT_BYTES", 2 << 20)
    write(work / "model.bin", random_bytes(12_000_000, seed=6))
    index_before = index_bytes(work)

    reads = []
    real_pread = os.pread

    def counting_pread(fd, length, offset):
        data = real_pread(fd, length, offset)
        reads.append((length, len(data)))
        return data

    monkeypatch.setattr(fileread.os, "pread", counting_pread)
    on_first_append(monkeypatch, lambda: os.truncate(work / "model.bin", 1_000_000))
    result = mvc("add", "model.bin", ok=False)
    assert result.exit_code == 13
    assert result.stderr == CHANGED
    assert any(got < wanted for wanted, got in reads)  # the short read is what stopped it
    assert index_bytes(work) == index_before
    monkeypatch.undo()
    assert mvc("fsck").exit_code == 0
    mvc("add", "model.bin")
    mvc("commit", "-m", "truncated", "-q")
    assert restored(mvc, work, "model.bin") == random_bytes(12_000_000, seed=6)[:1_000_000]


def test_a_file_deleted_before_it_is_read_is_refused(mvc, work, monkeypatch):
    write(work / "a.bin", random_bytes(2_000_000, seed=7))
    write(work / "model.bin", random_bytes(2_000_000, seed=8))
    on_first_append(monkeypatch, lambda: (work / "model.bin").unlink())
    result = mvc("add", "a.bin", "model.bin", ok=False)
    assert result.exit_code == 13
    assert result.stderr == CHANGED
    assert index_bytes(work) is None


def flip_payload_byte_of(work: Path, chunk_id: bytes) -> str:
    """Flip one byte in the middle of the payload of the chunk's record; the pack's name."""
    packs = work / ".mvc" / "packs"
    for name in pack_names(packs):
        data = (packs / f"{name}.idx").read_bytes()
        (count,) = np.frombuffer(data[8:16], dtype="<u8")
        for row in range(int(count)):
            fields = IDX_ROW.unpack_from(data, IDX_HEADER_SIZE + row * IDX_ROW.size)
            if fields[0] == chunk_id:
                offset, payload_len = fields[1], fields[2]
                with open(packs / f"{name}.pack", "r+b") as handle:
                    handle.seek(offset + RECORD_HEADER.size + payload_len // 2)
                    byte = handle.read(1)
                    handle.seek(-1, os.SEEK_CUR)
                    handle.write(bytes([byte[0] ^ 0x40]))
                return name
    raise AssertionError("chunk not stored")


def test_a_store_holding_a_corrupt_chunk_heals_at_the_next_add(mvc, work):
    content = random_bytes(3_000_000, seed=9)  # incompressible: stored raw, the flip reaches the hash
    write(work / "model.bin", content)
    mvc("add", "model.bin")
    mvc("commit", "-m", "v1", "-q")
    repo = Repo.discover(work)
    chunks = repo.read_manifest(repo.fresh_index().entries["model.bin"].manifest_id).chunks
    bad_id = bytes.fromhex(chunks[1][0])
    bad_pack = flip_payload_byte_of(work, bad_id)

    report = mvc("fsck", "--json", ok=False)
    assert report.exit_code == 7
    problems = json.loads(report.stdout)["problems"]
    assert [(p["kind"], p["id"]) for p in problems] == [("corrupt", bad_id.hex())]
    assert (work / ".mvc" / "bad-chunks").read_text() == f"{bad_id.hex()} {bad_pack}\n"

    write(work / "copy.bin", content)  # the same content again: its chunk is stored anew
    assert mvc.json("add", "copy.bin")["new_chunk_count"] == 1
    mvc("commit", "-m", "same content", "-q")
    assert mvc("fsck", "--read-data").exit_code == 0
    assert restored(mvc, work, "model.bin", "HEAD~1") == content
    write(work / "again.bin", content)
    mvc("add", "again.bin")  # healed: nothing is stored a third time
    assert len(pack_names(work / ".mvc" / "packs")) == 2

    mvc("gc", "--grace", "0")  # drops the bad record and its line
    assert not (work / ".mvc" / "bad-chunks").exists()
    assert bad_pack not in pack_names(work / ".mvc" / "packs")
    assert mvc("fsck", "--read-data").exit_code == 0
    assert restored(mvc, work, "model.bin", "HEAD~1") == content
    assert restored(mvc, work, "copy.bin") == content


def test_the_issue_reproduction_with_a_concurrent_writer(tmp_path):
    """`mvc add big.bin &` while dd overwrites part of it: whatever the timing, the add is
    refused (13) or the commit restores byte for byte what the file held before or after."""
    mvc_command = Path(sys.executable).parent / "mvc"
    if not mvc_command.exists():
        mvc_command = Path(shutil.which("mvc") or "mvc")
    env = {**os.environ, "MVC_AUTHOR_NAME": "Test", "MVC_AUTHOR_EMAIL": "t@example.com"}
    env.pop("MVC_DEBUG", None)

    def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(mvc_command), *args], cwd=cwd, env=env, capture_output=True, text=True)

    # How long an add of such a file takes here, to aim the writer at the middle of the reading.
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    run("init", cwd=calibration)
    write(calibration / "big.bin", random_bytes(20 << 20, seed=99))
    clock = time.monotonic()
    assert run("add", "big.bin", cwd=calibration).returncode == 0
    duration = time.monotonic() - clock

    outcomes = []
    started = time.monotonic()
    for attempt, fraction in enumerate((0.5, 0.8, 0.35, 0.65)):
        if time.monotonic() - started > 4:
            break
        work = tmp_path / f"w{attempt}"
        work.mkdir()
        assert run("init", cwd=work).returncode == 0
        original = random_bytes(20 << 20, seed=100 + attempt)
        other = random_bytes(6 << 20, seed=200 + attempt)
        write(work / "big.bin", original)
        write(tmp_path / f"other{attempt}", other)
        adding = subprocess.Popen([str(mvc_command), "add", "big.bin"], cwd=work, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(fraction * duration)
        subprocess.run(["dd", f"if={tmp_path / f'other{attempt}'}", "of=big.bin", "conv=notrunc", "bs=1M",
                        "seek=7", "status=none"], cwd=work, check=True)
        final = original[:7 << 20] + other + original[13 << 20:]
        assert (work / "big.bin").read_bytes() == final
        _, stderr = adding.communicate(timeout=60)
        if adding.returncode == 13:
            assert stderr == CHANGED.replace("model.bin", "big.bin")
            assert not (work / ".mvc" / "index").exists()
            outcomes.append("refused")
        else:
            assert adding.returncode == 0, stderr
            assert run("commit", "-m", "v1", "-q", cwd=work).returncode == 0
            (work / "big.bin").unlink()
            assert run("checkout", "HEAD", "--", "big.bin", cwd=work).returncode == 0
            assert (work / "big.bin").read_bytes() in (original, final)
            outcomes.append("committed")
        assert run("fsck", "--read-data", cwd=work).returncode == 0
    assert outcomes, "no attempt ran"
    print(f"add of 20 MiB: {duration:.2f} s; outcomes: {outcomes}")


@pytest.mark.parametrize("small_limit", [SMALL_INDEX_ROWS, 0])  # the dict lookup, the sorted table
def test_lookups_prefer_a_record_not_listed_as_bad(tmp_path, small_limit):
    chunk_id, other_id = hash_bytes_raw(b"chunk"), hash_bytes_raw(b"other")
    names = []
    backend = DirectoryBackend(tmp_path)
    for payloads in ((b"chunk",), (b"pad", b"chunk"), (b"other",)):  # packs are named by content: differ
        writer = PackWriter(backend, 1 << 20)
        for payload in payloads:
            writer.append(hash_bytes_raw(payload), CODEC_NONE, len(payload), payload)
        names.append(writer.finish())

    for bad_pack, good_pack in ((names[0], names[1]), (names[1], names[0])):
        index = ChunkIndex(backend, small_limit, bad=frozenset({(chunk_id, bad_pack)}))
        assert index.locate(chunk_id).pack == good_pack
        assert index.contains_good(chunk_id)
        assert index.locate(other_id).pack == names[2]
    both_bad = ChunkIndex(backend, small_limit, bad=frozenset({(chunk_id, names[0]), (chunk_id, names[1])}))
    assert both_bad.contains(chunk_id) and not both_bad.contains_good(chunk_id)
