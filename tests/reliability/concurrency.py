"""Several `mvc` processes adding, committing and tagging while gc runs beside them.

Each writer owns one file: its commits must hold exactly the bytes it staged, whoever else
committed in between. Shared by test_concurrent_gc.py and tests/bench/bench_faults.py.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field

from tests.reliability.harness import Scene, random_bytes, read_version, run


@dataclass
class Made:
    """What the writers were told they made: commit id -> (path, bytes), tag name -> commit id."""

    commits: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def writer(scene: Scene, number: int, rounds: int, made: Made, guard: threading.Lock) -> None:
    path = f"w{number}.bin"
    for round_ in range(rounds):
        data = random_bytes(20_000 + 1_000 * round_, seed=1000 * number + round_)
        (scene.work / path).write_bytes(data)
        # --allow-empty: another writer may have committed our staged file already (one shared index)
        steps = [("add", path), ("commit", "--json", "--allow-empty", "-m", f"writer {number} round {round_}")]
        outputs = [run(scene.work, *args) for args in steps]
        if any(done.returncode != 0 for done in outputs):
            with guard:
                made.failures += [f"{args}: {done.returncode} {done.stderr}"
                                  for args, done in zip(steps, outputs, strict=True) if done.returncode != 0]
            continue
        commit = json.loads(outputs[1].stdout)["id"]
        tag = f"w{number}-r{round_}"
        tagged = run(scene.work, "tag", tag, commit)
        with guard:
            made.commits[commit] = (path, data)
            if tagged.returncode == 0:
                made.tags[tag] = commit
            else:
                made.failures.append(f"tag {tag}: {tagged.returncode} {tagged.stderr}")


def collector(scene: Scene, runs: int, made: Made, guard: threading.Lock) -> None:
    for _ in range(runs):
        done = run(scene.work, "gc", "--grace", "0")
        if done.returncode != 0:
            with guard:
                made.failures.append(f"gc: {done.returncode} {done.stderr}")


def writers_with_gc(scene: Scene, writers: int, rounds: int, gc_runs: int) -> Made:
    """Run the writers and the collector at once; return what they reported."""
    made, guard = Made(), threading.Lock()
    threads = [threading.Thread(target=writer, args=(scene, n, rounds, made, guard)) for n in range(writers)]
    threads.append(threading.Thread(target=collector, args=(scene, gc_runs, made, guard)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return made


def check_made(scene: Scene, made: Made) -> None:
    """Every commit reported made holds its writer's bytes; every tag names its commit; fsck is clean."""
    scene.check()
    for commit, (path, data) in made.commits.items():
        assert read_version(scene.work, commit)[path] == data, f"{commit[:10]} lost {path}"
    for tag, commit in made.tags.items():
        assert run(scene.work, "log", "--json", "-n", "1", tag).returncode == 0
        assert scene.work.joinpath(".mvc", "refs", "tags", tag).read_text().strip() == commit
