"""Remote benchmark: the seven-version checkpoint series pushed to SeaweedFS (S3), one version at a time.

Run by hand from the repository root (SeaweedFS's `weed` comes with the test extra):

    python tests/bench/bench_remote.py [--size-mb 512] [--quick] [--partial] [--tools mvc,restic,dvc]
                                       [--dvc PATH] [--restic PATH] [--keep] [--workdir DIR]

The versions are bench_series.py's (modelvc.samples.checkpoint_series, seeded), written first,
untimed, plus an eighth: the seventh with one tensor (a middle layer's q_proj) trained anew, the
issue's "version changing one tensor". One SeaweedFS (tests/servers.py) on loopback serves every
tool in the same run, each under its own prefix of one bucket, one after the other:

    mvc      `mvc add`/`commit -a` per version, then `mvc push origin main`; then
             `mvc clone` elsewhere (the latest version) and `mvc checkout` of v1 there
    DVC      `dvc add` + `git commit`, then `dvc push`; `git clone` + `dvc pull`, then
             `git checkout` of v1 + `dvc pull` (remotetools.py)
    restic   `restic backup`; `restic restore latest` with an empty cache, then of the v1 snapshot

Each command is timed as a process (start-up included). Bytes sent, bytes received and requests
are SeaweedFS's own counters (its metrics endpoint) over each step, measured the same way for all
three; "kept" is the growth of the tool's prefix in the bucket. Series totals are over the seven
versions; the eighth is reported alone. Tools not found on PATH (DVC also in /work/venvs/dvc)
print "not installed". The targets (issue 15) are printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_series import write_versions  # noqa: E402
from benchutil import Run, find_command, find_mvc, mb, print_table, run_command, verdict  # noqa: E402
from obstore.store import AzureStore, S3Store  # noqa: E402
from remotetools import (  # noqa: E402
    TRACKED,
    Meter,
    RemoteRun,
    Step,
    Tool,
    dvc_tool,
    fresh,
    push_versions,
    reported,
    restic_tool,
    tool_env,
)
from servers import AZURE_ACCOUNT, AZURE_KEY, S3_KEY_ID, S3_SECRET, start_azurite, start_seaweedfs  # noqa: E402

from modelvc.samples import DTYPES, encode  # noqa: E402

SERIES = 7  # versions in the series; the one after it changes one tensor
TARGET_VS_RESTIC = 0.6  # total sent <= 0.6x restic's
TARGET_VS_DVC = 0.2  # total sent <= 0.2x DVC's
TARGET_ONE_TENSOR = 0.02  # a version changing one tensor sends under 2% of the file
TARGET_SPEEDUP = 2.0  # push of the series and clone of the latest >= 2x faster than DVC
DVC_VENV = Path("/work/venvs/dvc/bin/dvc")


def write_one_tensor_version(source: Path, target: Path, dtype: str, seed: int) -> str:
    """A copy of `source` with the q_proj of its middle layer trained anew; returns its name."""
    with open(source, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    layers = sorted({int(name.split(".")[2]) for name in header if name.startswith("model.layers.")})
    name = f"model.layers.{layers[len(layers) // 2]}.self_attn.q_proj.weight"
    start, end = header[name]["data_offsets"]
    values = 0.02 * np.random.default_rng(seed + 8).standard_normal(header[name]["shape"], dtype=np.float32)
    data = encode(values, dtype).tobytes()
    assert len(data) == end - start
    shutil.copyfile(source, target)
    with open(target, "r+b") as handle:
        handle.seek(8 + length + start)
        handle.write(data)
    return name


def mvc_tool(mvc: str, base: Path, url: str, options: list[str], credentials: dict[str, str],
             partial: bool = False) -> Tool:
    """mvc: the repository pushes to URL after each commit; the clone is `mvc clone URL` (options:
    the remote's endpoint and addressing, given to `remote add` and `clone`), with `partial`
    `mvc clone --partial` (the latest version's chunks only; checkout of v1 fetches its own)."""
    env = tool_env(base, credentials)
    work, clone_dir = base / "work", base / "clone"
    work.mkdir(parents=True)
    commit_ids: dict[int, str] = {}

    def run(args: list[str], cwd: Path) -> Run:
        return run_command([mvc, *args], cwd, env)

    run(["init"], work)
    run(["remote", "add", "origin", url, *options], work)

    def commit(number: int) -> Run:
        if number == 1:
            added = run(["add", "--json", TRACKED], work)
            committed = run(["commit", "--json", "-m", f"v{number}"], work)
            committed = Run(committed.args, added.seconds + committed.seconds,
                            max(added.max_rss_mb, committed.max_rss_mb), committed.stdout)
        else:  # the file is tracked: one `commit -a`, as a training script would
            committed = run(["commit", "-a", "--json", "-m", f"v{number}"], work)
        commit_ids[number] = committed.json()["id"]
        return Run(committed.args, committed.seconds, committed.max_rss_mb, "")

    def push(number: int) -> Run:
        return run(["push", "--json", *(["-u"] if number == 1 else []), "origin", "main"], work)

    def clone() -> tuple[Run, Path]:
        how = ["--partial"] if partial else []
        return run(["clone", "--json", *how, url, str(clone_dir), *options], base), clone_dir / TRACKED

    def checkout_v1() -> tuple[Run, Path]:
        return run(["checkout", commit_ids[1]], clone_dir), clone_dir / TRACKED

    return Tool("mvc", "mvc", work, commit, push, clone, checkout_v1)


def find_tool(name: str, given: str | None) -> str | None:
    if given:
        return given
    found = find_command(name)
    if found is None and name == "dvc" and DVC_VENV.exists():
        return str(DVC_VENV)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mb", type=int, default=512, help="approximate size of one version, in MiB")
    parser.add_argument("--quick", action="store_true",
                        help="the smallest series (about 145 MB a version: one layer beside the vocabulary)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="bf16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tools", default="mvc,restic,dvc", help="which tools to run, comma-separated")
    parser.add_argument("--mvc", help="the mvc command (default: beside this Python, else on PATH)")
    parser.add_argument("--dvc", help="the dvc command (default: on PATH, else /work/venvs/dvc/bin/dvc)")
    parser.add_argument("--restic", help="the restic command (default: on PATH)")
    parser.add_argument("--azure", action="store_true",
                        help="against Azurite instead (mvc only; bytes and requests: mvc's own --json)")
    parser.add_argument("--partial", action="store_true",
                        help="mvc clones with --partial (only the latest version's chunks, as dvc pull fetches)")
    parser.add_argument("--workdir", type=Path, help="default: a new directory under /tmp")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.quick:
        args.size_mb = 1

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="mvc-bench-remote-", dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        run(args, workdir)
    finally:
        if args.keep:
            print(f"\nwork directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def series(directory: Path, args: argparse.Namespace) -> tuple[list[Path], str]:
    """The series and its one-tensor version, written unless a kept work directory has them."""
    made = directory / "series.json"
    wanted = {"size_mb": args.size_mb, "dtype": args.dtype, "seed": args.seed}
    paths = [directory / f"v{number}.safetensors" for number in range(1, SERIES + 2)]
    if made.exists() and json.loads(made.read_text())["args"] == wanted:
        print(f"the {args.dtype} series from an earlier run, in {directory}", flush=True)
        return paths, json.loads(made.read_text())["changed"]
    directory.mkdir(parents=True, exist_ok=True)
    print(f"generating the {args.dtype} series in {directory} ...", flush=True)
    start = time.perf_counter()
    write_versions(directory, args.size_mb, args.dtype, args.seed)
    changed = write_one_tensor_version(paths[SERIES - 1], paths[SERIES], args.dtype, args.seed)
    made.write_text(json.dumps({"args": wanted, "changed": changed}))
    print(f"  done in {time.perf_counter() - start:.1f} s ({mb(paths[0].stat().st_size)} a version)", flush=True)
    return paths, changed


def run(args: argparse.Namespace, workdir: Path) -> None:
    versions, changed = series(workdir / "versions", args)

    mvc = args.mvc or find_mvc()
    if args.azure:
        server = start_azurite(workdir / "azurite")
        bucket = container = server.extra["container"]
        store = AzureStore(container, account_name=AZURE_ACCOUNT, account_key=AZURE_KEY, endpoint=server.endpoint,
                           client_options={"allow_http": True})
        meter = Meter(store, container, None)
        url, options = f"az://{container}/mvc", ["--endpoint", server.endpoint]
    else:
        server = start_seaweedfs(workdir / "seaweedfs")
        bucket = server.extra["bucket"]
        store = S3Store(bucket, endpoint=server.endpoint, region="us-east-1", access_key_id=S3_KEY_ID,
                        secret_access_key=S3_SECRET, client_options={"allow_http": True})
        meter = Meter(store, bucket, server.extra["metrics"])
        url, options = f"s3://{bucket}/mvc", ["--endpoint", server.endpoint, "--path-style"]
    try:
        runs: dict[str, RemoteRun | None] = {}
        command = {"restic": find_tool("restic", args.restic), "dvc": find_tool("dvc", args.dvc), "mvc": mvc}
        makers = {"mvc": lambda base: mvc_tool(mvc, base, url, options, server.env, args.partial),
                  "restic": lambda base: restic_tool(command["restic"], base, server.endpoint, bucket, server.env),
                  "dvc": lambda base: dvc_tool(command["dvc"], base, server.endpoint, bucket, server.env)}
        for name in ["mvc"] if args.azure else args.tools.split(","):
            if command[name] is None:
                print(f"{name}: not installed", flush=True)
                runs[name] = None
                continue
            tool = makers[name](fresh(workdir / name))
            runs[name] = push_versions(tool, meter, versions)
    finally:
        server.stop()
    report(args, versions, changed, runs)


def seconds(steps: list[Step]) -> float:
    return sum(step.seconds for step in steps)


def sent(steps: list[Step]) -> int:
    return sum(step.traffic.received for step in steps)


def requests(steps: list[Step]) -> int:
    return sum(step.traffic.requests for step in steps)


def version_rows(result: RemoteRun) -> list[list[str]]:
    rows = []
    for number, (raw, commit, push) in enumerate(zip(result.raw, result.commits, result.pushes, strict=True),
                                                 start=1):
        rows.append([f"v{number}" + (" (one tensor)" if number > SERIES else ""), mb(raw),
                     mb(push.traffic.received), f"{push.traffic.received / raw:.4f}", f"{push.traffic.requests:,}",
                     f"{commit.seconds:.2f}" if commit.seconds else "-", f"{push.seconds:.2f}", mb(push.stored),
                     own_count(push.report, "received")])
    pushes, commits = result.pushes[:SERIES], result.commits[:SERIES]
    raw_total = sum(result.raw[:SERIES])
    rows.append([f"total v1-v{SERIES}", mb(raw_total), mb(sent(pushes)), f"{sent(pushes) / raw_total:.4f}",
                 f"{requests(pushes):,}", f"{seconds(commits):.2f}" if seconds(commits) else "-",
                 f"{seconds(pushes):.2f}", mb(sum(step.stored for step in pushes)), ""])
    return rows


def own_count(report: dict, direction: str) -> str:
    """What the tool says it moved (mvc's --json), beside the server's count."""
    if not report:
        return ""
    traffic = reported(report)
    return f"{mb(getattr(traffic, direction))}, {traffic.requests:,} requests"


def report(args: argparse.Namespace, versions: list[Path], changed: str, runs: dict[str, RemoteRun | None]) -> None:
    raw = versions[0].stat().st_size
    server = "Azurite" if args.azure else "SeaweedFS"
    counted = "mvc's own --json (Azurite has no metrics)" if args.azure else "SeaweedFS's counters"
    print(f"\nmodelvc remote benchmark: {mb(raw)} {args.dtype} versions (seed {args.seed}), "
          f"{server} on loopback, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    print(f"v{SERIES + 1} is v{SERIES} with {changed} trained anew\n")
    for name, result in runs.items():
        if result is None:
            print(f"{name}: not installed\n")
            continue
        print(f"{name}: per version (sent, requests: {counted} over the push; local: the commit before it)")
        print_table(["version", "raw", "sent", "sent/raw", "requests", "local s", "push s", "kept",
                     "its own count" if name == "mvc" else ""], version_rows(result))
        if result.clone is not None and result.clone.report:
            print(f"{name} clone, its own count: {own_count(result.clone.report, 'sent')} received")
        print()
    done = {name: result for name, result in runs.items() if result is not None}
    rows = []
    for name, result in done.items():
        pushes = result.pushes[:SERIES]
        clone, v1 = result.clone, result.checkout_v1
        assert clone is not None and v1 is not None
        rows.append([name, mb(sent(pushes)), f"{sent(pushes) / sum(result.raw[:SERIES]):.3f}", f"{requests(pushes):,}",
                     f"{seconds(pushes):.1f}", f"{seconds(pushes) + seconds(result.commits[:SERIES]):.1f}",
                     f"{clone.seconds:.2f}", mb(clone.traffic.sent), f"{clone.traffic.requests:,}",
                     f"{v1.seconds:.2f}", mb(v1.traffic.sent), "yes" if result.identical else "NO"])
    print(f"side by side (series v1-v{SERIES}; clone: of the latest, v{SERIES + 1}; then v1 checked out there):")
    print_table(["", "sent", "sent/raw", "requests", "push s", "local+push s", "clone s", "clone received",
                 "clone requests", "v1 s", "v1 received", "byte-identical"], rows)
    print()
    targets(done)
    if not all(result.identical for result in done.values()):
        sys.exit("a clone or checkout did not restore its version byte for byte")


def targets(done: dict[str, RemoteRun]) -> None:
    ours = done.get("mvc")
    if ours is None:
        print("targets: mvc was not run")
        return
    total = sent(ours.pushes[:SERIES])
    for name, share in (("restic", TARGET_VS_RESTIC), ("dvc", TARGET_VS_DVC)):
        other = done.get(name)
        if other is None:
            print(f"total sent <= {share}x {name}'s: {name} not run")
            continue
        ratio = total / sent(other.pushes[:SERIES])
        print(f"total sent <= {share}x {name}'s: {mb(total)} vs {mb(sent(other.pushes[:SERIES]))} = {ratio:.3f}x: "
              f"{verdict(ratio <= share)}")
    probe = ours.pushes[SERIES]
    share = probe.traffic.received / ours.raw[SERIES]
    print(f"a version changing one tensor sends < {TARGET_ONE_TENSOR:.0%} of the file: {mb(probe.traffic.received)} "
          f"of {mb(ours.raw[SERIES])} = {share:.2%}: {verdict(share < TARGET_ONE_TENSOR)}")
    dvc = done.get("dvc")
    if dvc is None:
        print(f"push and clone >= {TARGET_SPEEDUP}x faster than DVC: dvc not run")
        return
    ours_push, dvc_push = seconds(ours.pushes[:SERIES]), seconds(dvc.pushes[:SERIES])
    print(f"push of the series >= {TARGET_SPEEDUP}x faster than DVC's: {ours_push:.1f} s vs {dvc_push:.1f} s = "
          f"{dvc_push / ours_push:.2f}x: {verdict(ours_push * TARGET_SPEEDUP <= dvc_push)}")
    ours_all = ours_push + seconds(ours.commits[:SERIES])
    dvc_all = dvc_push + seconds(dvc.commits[:SERIES])
    print(f"  (with the local step, mvc commit vs dvc add + git commit: {ours_all:.1f} s vs {dvc_all:.1f} s = "
          f"{dvc_all / ours_all:.2f}x)")
    assert ours.clone is not None and dvc.clone is not None
    print(f"clone of the latest >= {TARGET_SPEEDUP}x faster than DVC's (git clone + dvc pull): "
          f"{ours.clone.seconds:.2f} s vs {dvc.clone.seconds:.2f} s = {dvc.clone.seconds / ours.clone.seconds:.2f}x: "
          f"{verdict(ours.clone.seconds * TARGET_SPEEDUP <= dvc.clone.seconds)}")


if __name__ == "__main__":
    main()
