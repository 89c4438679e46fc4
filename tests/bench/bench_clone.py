"""Clone of the latest version against its floors, on the SeaweedFS data a kept bench_remote run left.

Run by hand from the repository root, after `bench_remote.py --partial --keep --workdir DIR`:

    python tests/bench/bench_clone.py DIR [--mvc CMD ...] [--repeat 3] [--full] [--dvc]

SeaweedFS is started again on DIR/seaweedfs/data (mvc's repository is under the prefix `mvc`).
Each mvc command given (default: the one beside this Python) clones the latest version
(`--partial` unless `--full`) `--repeat` times, interleaved, each timed as a process; with
`--dvc`, bench_remote's DVC repository (DIR/dvc/work) is cloned the same way between them
(`git clone` + `dvc pull`, timed as bench_remote times them; the endpoint, whose port changed,
set with `dvc remote modify --local` untimed). Beside them, the floors of the same work on this
machine, each timed in this process:

    GET ranges    the records the clone reads, by mvc's own coalesced ranged reads (ranges.py)
    GET whole     the same packs read whole, in parallel
    decode        every record decoded (zstd, byte planes, deltas), one thread and the pool
    blake3        the raw bytes of every record hashed, one thread
    write         the working file written from memory (pwrite, no fsync)

A clone cannot beat the largest of GET, (decode + blake3) / cores and write, nor the start-up
of the process (`mvc --version`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchutil import find_mvc, mb  # noqa: E402
from servers import start_seaweedfs  # noqa: E402

from modelvc.ids import hash_bytes_raw  # noqa: E402
from modelvc.store import layout  # noqa: E402
from modelvc.store.codecs import CODEC_DELTA, decode_chunk  # noqa: E402
from modelvc.store.delta import decode_delta  # noqa: E402

TRACKED = "model.safetensors"
DVC = "/work/venvs/dvc/bin/dvc"


def timed(func) -> tuple[float, object]:
    start = time.perf_counter()
    value = func()
    return time.perf_counter() - start, value


def clone(mvc: str, url: str, options: list[str], target: Path, env: dict[str, str],
          partial: bool) -> tuple[float, dict]:
    """Seconds taken, and the clone's --json."""
    shutil.rmtree(target, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([*mvc.split(), "clone", "--json", *(["--partial"] if partial else []), url, str(target),
                           *options], check=True, env=env, cwd=target.parent, capture_output=True, text=True)
    return time.perf_counter() - start, json.loads(done.stdout)


def dvc_clone(dvc: str, work: Path, target: Path, endpoint: str, env: dict[str, str]) -> float:
    """`git clone` + `dvc pull` of the kept DVC repository, cold (a fresh home and cache)."""
    shutil.rmtree(target, ignore_errors=True)
    home = target.parent / "dvc-home"
    shutil.rmtree(home, ignore_errors=True)
    env = {**env, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "XDG_CONFIG_HOME": str(home / "config"),
           "DVC_NO_ANALYTICS": "1"}
    start = time.perf_counter()
    subprocess.run(["git", "clone", "-q", str(work), str(target)], check=True, env=env)
    took = time.perf_counter() - start
    subprocess.run([dvc, "remote", "modify", "--local", "origin", "endpointurl", endpoint], check=True, env=env,
                   cwd=target)
    start = time.perf_counter()
    subprocess.run([dvc, "pull", "-q"], check=True, env=env, cwd=target)
    return took + time.perf_counter() - start


def floors(clone_dir: Path, env: dict[str, str]) -> list[tuple[str, float, str]]:
    """The floors of the work a clone of clone_dir's HEAD does (see the module's docstring)."""
    from modelvc.ops.remote import get_remote
    from modelvc.repo import Repo
    from modelvc.transfer.connect import connected
    from modelvc.transfer.ranges import Wanted, read_records

    os.environ.update(env)
    rows: list[tuple[str, float, str]] = []
    with Repo.discover(clone_dir) as repo:
        entry = repo.tree_of(repo.refs.head().commit).as_map()[TRACKED]
        manifest = repo.read_manifest(entry.manifest_id)
        with connected(repo, get_remote(repo, "origin")) as conn:
            conn.view.load()
            wanted: dict[bytes, Wanted] = {}
            pending = [bytes.fromhex(chunk_hex) for chunk_hex, _ in manifest.chunks]
            while pending:
                chunk_id = pending.pop()
                if chunk_id in wanted:
                    continue
                location = conn.view.chunks.locate(chunk_id)
                wanted[chunk_id] = Wanted(chunk_id, location)
                if location.base is not None:
                    pending.append(location.base)
            records = list(wanted.values())
            payload = sum(record.location.payload_len for record in records)
            took, found = timed(lambda: list(read_records(conn.backend, records, conn.remote.url)))
            rows.append(("GET ranges (mvc's reads)", took, f"{mb(payload)} of payload, {len(records)} records"))
            packs = sorted({record.location.pack for record in records})
            with ThreadPoolExecutor(8) as pool:
                took, whole = timed(lambda: list(pool.map(lambda p: conn.backend.read(layout.pack_key(p)), packs)))
            rows.append(("GET whole packs", took, f"{mb(sum(len(w) for w in whole))} in {len(packs)} packs"))
    fulls = [(record, data) for record, data in found if record.location.codec != CODEC_DELTA]
    deltas = [(record, data) for record, data in found if record.location.codec == CODEC_DELTA]
    raw: dict[bytes, bytes] = {}

    def decode_full(item) -> tuple[bytes, bytes]:
        record, data = item
        return record.record_id, decode_chunk(record.location.codec, data, record.location.raw_len)

    took, decoded = timed(lambda: dict(map(decode_full, fulls)))
    raw.update(decoded)
    start = time.perf_counter()
    while deltas:
        ready = [(r, d) for r, d in deltas if r.location.base in raw]
        deltas = [(r, d) for r, d in deltas if r.location.base not in raw]
        for record, data in ready:
            raw[record.record_id] = decode_delta(data, record.location.raw_len, raw[record.location.base])
    took += time.perf_counter() - start
    rows.append(("decode, one thread", took, f"{mb(sum(len(r) for r in raw.values()))} raw"))
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        took, _ = timed(lambda: list(pool.map(decode_full, fulls)))
    rows.append((f"decode of the full records, {os.cpu_count()} threads", took, f"{len(fulls)} records"))
    took, _ = timed(lambda: [hash_bytes_raw(data) for data in raw.values()])
    rows.append(("blake3, one thread", took, ""))
    target = clone_dir.parent / "floor-write.bin"
    offsets = manifest.chunk_offsets()

    def write() -> None:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            for (chunk_hex, _), offset in zip(manifest.chunks, offsets, strict=True):
                os.pwrite(fd, raw[bytes.fromhex(chunk_hex)], offset)
        finally:
            os.close(fd)

    took, _ = timed(write)
    rows.append(("write of the file (pwrite, no fsync)", took, mb(manifest.size)))
    target.unlink()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workdir", type=Path, help="a kept bench_remote.py work directory")
    parser.add_argument("--mvc", action="append", help="an mvc command to time (repeatable)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--full", action="store_true", help="a full clone rather than --partial")
    parser.add_argument("--no-floors", action="store_true")
    parser.add_argument("--dvc", nargs="?", const=DVC, help=f"also clone the DVC repository (default: {DVC})")
    args = parser.parse_args()
    commands = args.mvc or [find_mvc()]
    scratch = args.workdir / "clonebench"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    server = start_seaweedfs(args.workdir / "seaweedfs")
    try:
        env = {**os.environ, **server.env}
        url, options = f"s3://{server.extra['bucket']}/mvc", ["--endpoint", server.endpoint, "--path-style"]
        times: dict[str, list[float]] = {command: [] for command in commands}
        reports: dict[str, dict] = {}
        for _ in range(args.repeat):
            for number, command in enumerate(commands):
                seconds, reports[command] = clone(command, url, options, scratch / f"clone{number}", env,
                                                  not args.full)
                times[command].append(seconds)
            if args.dvc:
                times.setdefault("dvc", []).append(dvc_clone(args.dvc, args.workdir / "dvc" / "work",
                                                             scratch / "dvc-clone", server.endpoint, env))
        startup = min(timed(lambda: subprocess.run([*commands[0].split(), "--version"], check=True,
                                                   capture_output=True))[0] for _ in range(3))
        print(f"\nclone{' --partial' if not args.full else ''} of the latest, {args.repeat} runs each, "
              f"load {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
        for command, values in times.items():
            report = reports.get(command)
            print(f"  {command}: " + ", ".join(f"{value:.2f}" for value in values) + f" s (best {min(values):.2f})"
                  + (f"; received {mb(report['received_bytes'])} in {report['request_count']} requests"
                     if report else ""))
        if "dvc" in times:
            for command in commands:
                ratios = [ours / theirs for ours, theirs in zip(times[command], times["dvc"], strict=True)]
                print(f"  {command} / dvc, run by run: " + ", ".join(f"{ratio:.2f}" for ratio in ratios))
        print(f"  start-up (mvc --version): {startup:.2f} s")
        if not args.no_floors:
            print("floors:")
            for name, took, note in floors(scratch / "clone0", server.env):
                print(f"  {name:<40} {took:6.2f} s  {note}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
