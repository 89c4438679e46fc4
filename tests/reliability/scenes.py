"""The repositories the crash tests start from, and what each command under test must leave.

One `Case` per command: a template repository ready for it, the command, the working files
before and after, and the commands that must complete once it has been killed. Shared by
test_crash_points.py and tests/bench/bench_faults.py.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tests.modelfiles import write_safetensors
from tests.reliability.harness import Scene, random_bytes, run_here


def safetensors_bytes(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    tensors = {"w": rng.standard_normal((48, 64)).astype(np.float32),
               "b": rng.standard_normal(64).astype(np.float32)}
    return write_safetensors("/dev/null", tensors)


V1 = {"model.safetensors": safetensors_bytes(1), "a.bin": random_bytes(40_000, 1),
      "sub/c.bin": random_bytes(6_000, 2)}
V2 = {"model.safetensors": safetensors_bytes(2), "a.bin": random_bytes(40_000, 3),
      "sub/c.bin": V1["sub/c.bin"], "d.bin": random_bytes(9_000, 4)}
STAGED = {**V2, "a.bin": random_bytes(40_000, 5), "e.bin": random_bytes(3_000, 6)}
# tracked files edited and none added: what `commit -a` stages is the whole working tree
EDITED = {**V2, "a.bin": random_bytes(40_000, 5), "model.safetensors": safetensors_bytes(3)}
# enough new files that their manifests go into a metadata pack, not loose files
MANY = {**STAGED, **{f"many/{n}.bin": random_bytes(500, 10 + n) for n in range(4)}}


def two_versions(base: Path, format_version: int | None = None) -> Scene:
    """main at v2 (tagged v2), v1 before it (tagged v1): the start of every case."""
    scene = Scene.create(base, format_version)
    scene.write(V1)
    scene.commit("v1", "--metric", "loss=2.5")
    run_here(scene.work, "tag", "v1")
    (scene.work / "sub" / "c.bin").unlink()
    scene.write(V2)
    scene.commit("v2")
    run_here(scene.work, "tag", "-m", "second", "v2")
    return scene


def with_garbage(base: Path, format_version: int | None = None) -> Scene:
    """v2, plus a pack that is mostly unreachable chunks and objects nothing refers to."""
    scene = two_versions(base, format_version)
    scene.write({"g.bin": random_bytes(120_000, 7), "s.bin": random_bytes(5_000, 8)})
    run_here(scene.work, "add", ".")
    scene.write({"g.bin": random_bytes(1_000, 9)})
    scene.commit("v3: g replaced before commit")
    return scene


def nudged_chain(base: Path) -> Scene:
    """Three versions of one tensor file, each a small step from the last: stored as a chain of
    deltas, which gc turns around (newest whole; store/rechain.py)."""
    scene = Scene.create(base)
    rng = np.random.default_rng(11)
    weights = rng.standard_normal((256, 256)).astype(np.float32)
    for step in range(3):
        weights = weights + rng.standard_normal(weights.shape).astype(np.float32) * 1e-6
        write_safetensors(scene.work / "chain.safetensors", {"w": weights})
        os.utime(scene.work / "chain.safetensors", ns=(0, (1_700_000_000 + step) * 10**9))  # same size: unlike stat
        scene.commit(f"chain step {step}")
    return scene


def edited_past_auto_packs(base: Path) -> Scene:
    """One new file to add, with gc.auto_packs at 1: the add then merges every pack (few steps
    of its own, so the sweep spends its kills on the consolidation)."""
    scene = two_versions(base)
    scene.write({"e.bin": STAGED["e.bin"]})
    run_here(scene.work, "config", "gc.auto_packs", "1")
    return scene


def staged(base: Path) -> Scene:
    scene = two_versions(base)
    scene.write(STAGED)
    run_here(scene.work, "add", ".")
    return scene


def staged_past_auto_loose(base: Path) -> Scene:
    """Staged, with gc.auto_loose at 1: the commit then packs every loose object (the trees,
    commits and tag of v1 and v2, and its own tree and commit) after its own work."""
    scene = staged(base)
    run_here(scene.work, "config", "gc.auto_loose", "1")
    return scene


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Path], Scene]
    args: list[str]
    commits: bool  # a new HEAD after the kill must hold `new`
    moves_files: bool  # working files go from `old` to `new`
    recover: list[list[str]]

    def old(self, template: Scene) -> dict[str, bytes]:
        return template.tracked_files()

    def new(self, template: Scene) -> dict[str, bytes]:
        """The working files once the command is done (checkout and rollback go to v1)."""
        return V1 if self.moves_files else template.tracked_files()


CASES = [
    Case("add", lambda b: _edited(two_versions(b)), ["add", "."], False, False,
         [["add", "."], ["commit", "-m", "after add"]]),
    Case("add-consolidating", edited_past_auto_packs, ["add", "."], False, False,
         [["add", "."], ["commit", "-m", "after add"]]),
    Case("commit", staged, ["commit", "-m", "v3", "--metric", "loss=1.5"], True, False,
         [["commit", "--allow-empty", "-m", "after commit"]]),
    Case("commit-packing-loose", staged_past_auto_loose, ["commit", "-m", "v3"], True, False,
         [["commit", "--allow-empty", "-m", "after commit"]]),
    Case("commit-all", lambda b: _edited(two_versions(b), EDITED), ["commit", "-a", "-m", "v3"], True, False,
         [["commit", "-a", "--allow-empty", "-m", "after commit"]]),
    Case("checkout", two_versions, ["checkout", "v1"], False, True, [["checkout", "v1"]]),
    Case("rollback", two_versions, ["rollback"], True, True, [["rollback"]]),
    Case("gc", with_garbage, ["gc", "--grace", "0"], False, False, [["gc", "--grace", "0"]]),
    Case("tag", two_versions, ["tag", "-m", "release", "rel"], False, False,
         [["tag", "-f", "-m", "release", "rel"]]),
    Case("add-packed", lambda b: _edited(two_versions(b), MANY), ["add", "."], False, False,
         [["add", "."], ["commit", "-m", "after add"]]),
    Case("gc-rechaining", nudged_chain, ["gc", "--grace", "0"], False, False, [["gc", "--grace", "0"]]),
    Case("gc-upgrade", lambda b: with_garbage(b, format_version=2), ["gc", "--grace", "0"], False, False,
         [["gc", "--grace", "0"]]),
]


def _edited(scene: Scene, files: dict[str, bytes] = STAGED) -> Scene:
    scene.write(files)
    return scene


def verifier(case: Case, template: Scene, recover: bool = True):
    """The check run after each kill of `case`: invariants, then the recovery commands, then again."""
    old, new = case.old(template), case.new(template)

    def verify(scene: Scene, killed: bool) -> None:
        if case.commits:
            scene.learn_head(new)
        scene.check(old, new)
        if not recover:
            return
        for args in case.recover:
            run_here(scene.work, *args)
        if case.name.startswith("add") or case.commits:
            scene.learn_head(scene.tracked_files())
        scene.check()

    return verify
