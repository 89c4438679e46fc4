"""Chunk index benchmark: loading and lookups with many chunks, for both lookups.

Run by hand from the repository root:

    python tests/bench/bench_index.py [--chunks 1000000] [--packs 40] [--lookups 20000]

Writes --packs index files holding --chunks random chunk ids in all (no pack data: only the
index is measured), then loads them as modelvc.store.chunkindex.ChunkIndex with the dict lookup
and with the sorted numpy table, in fresh interpreters so that the numpy import is counted
where the table needs it, and times --lookups lookups of stored ids and as many of absent ones.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from modelvc.store.backend import DirectoryBackend  # noqa: E402
from modelvc.store.packs import write_idx  # noqa: E402

MEASURE = """
import sys, time
start = time.perf_counter()
from pathlib import Path
from modelvc.store.backend import DirectoryBackend
from modelvc.store.chunkindex import ChunkIndex
index = ChunkIndex(DirectoryBackend(Path(sys.argv[1]).parent), small_limit=int(sys.argv[2]))
loaded = time.perf_counter() - start
ids = Path(sys.argv[3]).read_bytes()
present = [ids[i:i + 32] for i in range(0, len(ids), 32)]
absent = [bytes(31) + bytes([i % 256]) for i in range(len(present))]
start = time.perf_counter()
assert all(index.locate(chunk_id) is not None for chunk_id in present)
found = time.perf_counter() - start
start = time.perf_counter()
assert not any(index.contains(chunk_id) for chunk_id in absent)
missed = time.perf_counter() - start
print(len(index), loaded, found, missed, "numpy" in sys.modules)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chunks", type=int, default=1_000_000)
    parser.add_argument("--packs", type=int, default=40)
    parser.add_argument("--lookups", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        packs = Path(work) / "packs"
        packs.mkdir()
        sample = bytearray()
        per_pack = args.chunks // args.packs
        print(f"writing {args.packs} indexes of {per_pack:,} chunks ...", flush=True)
        for number in range(args.packs):
            records = [(os.urandom(32), row * 100, 90, 1 << 20, 2, b"\0\0\0", bytes(32)) for row in range(per_pack)]
            write_idx(DirectoryBackend(Path(work)), f"pack-{number:04d}", records)
            (packs / f"pack-{number:04d}.pack").write_bytes(b"")
            for record in records[:args.lookups // args.packs]:
                sample += record[0]
        (Path(work) / "sample").write_bytes(bytes(sample))
        print(f"\n{'lookup':8} {'chunks':>10} {'load s':>7} {'lookup us':>10} {'miss us':>8}  numpy loaded")
        for name, limit in (("dict", args.chunks + 1), ("sorted", 0)):
            out = subprocess.run([sys.executable, "-c", MEASURE, str(packs), str(limit), str(Path(work) / "sample")],
                                 capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[2])
            count, loaded, found, missed, numpy = out.stdout.split()
            lookups = len(sample) // 32
            print(f"{name:8} {int(count):>10,} {float(loaded):>7.3f} {float(found) / lookups * 1e6:>10.1f} "
                  f"{float(missed) / lookups * 1e6:>8.1f}  {numpy}")


if __name__ == "__main__":
    main()
