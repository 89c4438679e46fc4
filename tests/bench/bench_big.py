"""Big-file benchmark: one large model file through the installed `mvc`, and a fast `status`.

Run by hand from the repository root:

    python tests/bench/bench_big.py [--size-gb 1] [--plain] [--files 1000] [--keep]

1. A generated bf16 safetensors file (seeded; --plain: random bytes) of --size-gb GiB: the
   time and peak RSS of `mvc add` + `mvc commit`; of adding the same content again under a
   new name (every chunk already stored: hashing only); of `mvc checkout HEAD -- FILE`
   writing it back (checked byte for byte). Inputs are synced and read once first (page cache).
2. `mvc status` in a repository of --files unchanged small tracked files: the whole process,
   interpreter start-up included, run several times; the median is reported.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchutil import print_table, run_mvc, same_bytes, verdict, warm_page_cache  # noqa: E402

from modelvc.samples import ModelShape, bf16_bits, tensor_shapes  # noqa: E402

TARGET_READD_GBPS = 2.0
TARGET_CHECKOUT_GBPS = 1.0
TARGET_RSS_MB = 300  # for a 4 GB file
TARGET_STATUS_SECONDS = 0.3
BLOCK = 64 << 20


def write_plain(path: Path, size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "wb") as handle:
        for start in range(0, size, BLOCK):
            handle.write(rng.bytes(min(BLOCK, size - start)))


def write_model(path: Path, size: int, seed: int) -> None:
    """A bf16 safetensors model of about `size` bytes, written tensor by tensor (bounded memory)."""
    rng = np.random.default_rng(seed)
    shapes = tensor_shapes(ModelShape.for_bytes(size, 2))
    header, offset = {}, 0
    for name, dims in shapes.items():
        length = int(np.prod(dims)) * 2
        header[name] = {"dtype": "BF16", "shape": list(dims), "data_offsets": [offset, offset + length]}
        offset += length
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        for name, dims in shapes.items():
            values = 0.02 * rng.standard_normal(dims, dtype=np.float32)
            if name.endswith("norm.weight"):
                values += 1.0
            handle.write(bf16_bits(values).tobytes())


def settled(path: Path) -> None:
    """Sync a file (its writeback must not land in a timed run) and read it into the page cache."""
    os.sync()
    warm_page_cache(path)


def big_file(args: argparse.Namespace, workdir: Path) -> list[list[str]]:
    repo = workdir / "big"
    repo.mkdir()
    run_mvc(["init"], repo)
    size = int(args.size_gb * (1 << 30))
    original = repo / "big.safetensors"
    print(f"generating {size / 1e9:.2f} GB ({'random bytes' if args.plain else 'bf16 safetensors'}) ...",
          flush=True)
    (write_plain if args.plain else write_model)(original, size, args.seed)
    size = original.stat().st_size
    settled(original)

    rows = []

    def timed(label: str, commands: list[list[str]], target: str, ok: bool | None = None) -> float:
        runs = [run_mvc(command, repo) for command in commands]
        seconds = sum(r.seconds for r in runs)
        rss = max(r.max_rss_mb for r in runs)
        rows.append([label, f"{seconds:.2f}", f"{size / seconds / 1e9:.2f}", f"{rss:.0f}", target])
        return seconds

    timed("add + commit (new content)", [["add", "big.safetensors"], ["commit", "-m", "big"]], "")
    copy = repo / "big-copy.safetensors"
    shutil.copyfile(original, copy)
    settled(copy)
    again = timed("add + commit (same content, new name)", [["add", "big-copy.safetensors"],
                                                           ["commit", "-m", "copy"]],
                  f">= {TARGET_READD_GBPS} GB/s")
    copy.unlink()
    os.sync()
    time.sleep(1)
    restore = timed("checkout HEAD -- FILE (write it back)",
                    [["checkout", "HEAD", "--", "big-copy.safetensors"]], f">= {TARGET_CHECKOUT_GBPS} GB/s")
    if not same_bytes(copy, original):
        sys.exit("checkout did not restore the file byte for byte")
    rows[-1][0] += ", byte-identical"
    rows.append(["verdicts", "", "", "",
                 f"re-add {verdict(size / again / 1e9 >= TARGET_READD_GBPS)}, "
                 f"checkout {verdict(size / restore / 1e9 >= TARGET_CHECKOUT_GBPS)}"])
    return rows


def status_many(args: argparse.Namespace, workdir: Path) -> tuple[float, list[float]]:
    repo = workdir / "small"
    repo.mkdir()
    run_mvc(["init"], repo)
    rng = np.random.default_rng(args.seed)
    for number in range(args.files):
        directory = repo / f"dir{number % 20:02d}"
        directory.mkdir(exist_ok=True)
        (directory / f"file{number:05d}.txt").write_bytes(rng.bytes(int(rng.integers(100, 4000))))
    run_mvc(["add", "."], repo)
    run_mvc(["commit", "-m", "many small files"], repo)
    times = [run_mvc(["status"], repo).seconds for _ in range(args.runs)]
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-gb", type=float, default=1.0, help="size of the big file, in GiB")
    parser.add_argument("--plain", action="store_true", help="random bytes instead of a bf16 model")
    parser.add_argument("--files", type=int, default=1000, help="tracked small files for the status run")
    parser.add_argument("--runs", type=int, default=7, help="status runs (median reported)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, help="default: a new directory under /tmp")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mvc-bench-big-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        rows = big_file(args, workdir)
        median, times = status_many(args, workdir)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    kind = "random bytes" if args.plain else "bf16 safetensors"
    print(f"\nmodelvc big-file benchmark: {args.size_gb:g} GiB {kind}, {os.cpu_count()} cores\n")
    print_table(["step", "seconds", "GB/s", "peak RSS MB", "target"], rows, right={1, 2, 3})
    print(f"\n(peak RSS target: under {TARGET_RSS_MB} MB for a 4 GB file, --size-gb 4)")
    print(f"\nmvc status, {args.files} unchanged tracked files: median {median:.3f} s over {args.runs} runs "
          f"({', '.join(f'{t:.3f}' for t in times)}); target < {TARGET_STATUS_SECONDS} s: "
          f"{verdict(median < TARGET_STATUS_SECONDS)}")
    if args.keep:
        print(f"\nwork directory kept: {workdir}")


if __name__ == "__main__":
    main()
