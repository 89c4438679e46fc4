"""SIGKILL before every durable step of add, commit, checkout, rollback, gc and tag, and at random times.

The crash hook (MVC_TEST_CRASH_AT in modelvc/fsutil.py) kills the real `mvc` before its Nth
fsync, rename, directory fsync, reflog append, pack seal or unlink; N walks up until the
command completes, so every step of its write order is hit. After each kill the invariants
hold (tests/reliability/harness.py) and the next commands complete.
"""

from __future__ import annotations

import pytest

from modelvc.fsutil import STEP_KINDS, _CrashAtStep
from tests.reliability.harness import KILLED, Scene, random_kills, run, sweep_steps
from tests.reliability.scenes import CASES, V1, V2, two_versions, verifier, with_garbage

CASE_IDS = [case.name for case in CASES]


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Scene]:
    base = tmp_path_factory.mktemp("templates")
    return {case.name: case.build(base / case.name) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_kill_before_every_durable_step(case, templates, tmp_path):
    template = templates[case.name]
    tally = sweep_steps(template, tmp_path, case.args, verifier(case, template))
    assert tally.failures == []
    assert tally.killed >= 5, f"{case.name} has only {tally.killed} durable steps: the hook is not reached"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_kill_at_random_times(case, templates, tmp_path):
    template = templates[case.name]
    tally = random_kills(template, tmp_path, case.args, verifier(case, template, recover=False), count=3,
                         seed=CASE_IDS.index(case.name))
    assert tally.failures == [] and tally.tried == 3


def test_the_hook_counts_only_the_kinds_asked_for(tmp_path):
    """N:kinds counts only those kinds: killed at add's first pack seal, before the pack is renamed."""
    scene = two_versions(tmp_path)
    packs = scene.work / ".mvc" / "packs"
    before = sorted(p.name for p in packs.iterdir())
    scene.write({"new.bin": b"x" * 5000})
    done = run(scene.work, "add", "new.bin", crash_at="1:seal")
    assert done.returncode == KILLED
    added = sorted(set(p.name for p in packs.iterdir()) - set(before))
    assert len(added) == 1 and added[0].startswith("tmp-pack-"), added
    scene.check()
    assert run(scene.work, "add", "new.bin").returncode == 0


def test_the_hook_counts_steps_of_its_kinds_only():
    assert STEP_KINDS == ("fsync", "rename", "dirsync", "append", "seal", "unlink")
    hook = _CrashAtStep("2:seal")
    hook("fsync")
    hook("rename")
    hook("seal")  # the 1st seal: counted, not fatal; the 2nd would kill this process
    assert hook.kinds == {"seal"} and hook.target == 2


def test_checkout_killed_between_unlink_and_rename_is_finished_by_the_next_checkout(tmp_path):
    """The file is gone (nothing to lose): the next checkout restores it without --force."""
    scene = two_versions(tmp_path)
    assert run(scene.work, "checkout", "v1", crash_at="1:rename").returncode == KILLED
    missing = set(V2) - set(scene.tracked_files())
    assert len(missing & set(V1)) == 1  # removals of what v1 lacks come first, then the writes
    assert run(scene.work, "checkout", "v1").returncode == 0
    assert scene.tracked_files() == V1
    scene.check()




def test_a_killed_checkout_leaves_nothing_status_lists(tmp_path):
    scene = two_versions(tmp_path)
    assert run(scene.work, "checkout", "v1", crash_at="1:rename").returncode == KILLED
    status = run(scene.work, "status", "--json", check=True).stdout
    assert ".mvc-tmp-" not in status


def test_a_killed_ref_update_never_leaves_the_ref_without_its_reflog_line(tmp_path):
    scene = two_versions(tmp_path)
    assert run(scene.work, "tag", "rel", crash_at="1:append").returncode == KILLED
    moved = scene.work.joinpath(".mvc/refs/tags/rel").exists()
    logged = scene.work.joinpath(".mvc/logs/refs/tags/rel").exists()
    assert moved == logged


def test_gc_removes_the_temp_files_of_killed_atomic_writes(tmp_path):
    scene = two_versions(tmp_path)
    scene.write({"new.bin": b"n" * 3000})
    assert run(scene.work, "add", "new.bin", crash_at="1:fsync").returncode == KILLED
    assert list(scene.work.joinpath(".mvc").rglob(".*.tmp"))
    run(scene.work, "gc", "--grace", "0", check=True)
    assert list(scene.work.joinpath(".mvc").rglob(".*.tmp")) == []


def test_an_add_past_gc_auto_packs_leaves_one_pack_and_a_kill_before_an_old_pack_goes_loses_nothing(tmp_path):
    """The consolidation case really consolidates; killed at its first unlink, the merged pack
    is complete beside the old ones, every version reads back, and gc finishes the job."""
    from modelvc.store.packs import pack_names
    from tests.reliability.scenes import edited_past_auto_packs

    scene = edited_past_auto_packs(tmp_path / "whole")
    run(scene.work, "add", ".", check=True)
    assert len(pack_names(scene.work / ".mvc" / "packs")) == 1
    scene = edited_past_auto_packs(tmp_path / "killed")
    before = set(pack_names(scene.work / ".mvc" / "packs"))
    assert run(scene.work, "add", ".", crash_at="1:unlink").returncode == KILLED
    after = set(pack_names(scene.work / ".mvc" / "packs"))
    assert len(after - before) == 2  # the add's own pack and the merged one, both complete
    scene.check()
    run(scene.work, "gc", "--grace", "0", check=True)
    assert len(pack_names(scene.work / ".mvc" / "packs")) == 1
    scene.check()


def test_a_commit_past_gc_auto_loose_packs_them_and_a_kill_before_a_loose_file_goes_loses_nothing(tmp_path):
    """The packing case really packs; killed at its first unlink, the metadata pack is complete
    beside every loose file, every version reads back, and the next writer finishes the job."""
    from modelvc.store.packs import pack_names
    from tests.reliability.scenes import staged_past_auto_loose

    def loose(scene: Scene) -> list[str]:
        return sorted(p.parent.name + p.name for p in (scene.work / ".mvc" / "objects").glob("*/*"))

    scene = staged_past_auto_loose(tmp_path / "whole")
    assert len(loose(scene)) > 1
    run(scene.work, "commit", "-m", "v3", check=True)
    assert loose(scene) == []
    scene = staged_past_auto_loose(tmp_path / "killed")
    before, packs_before = loose(scene), set(pack_names(scene.work / ".mvc" / "packs", "meta-"))
    assert run(scene.work, "commit", "-m", "v3", crash_at="1:unlink").returncode == KILLED
    assert len(loose(scene)) == len(before) + 2  # none removed yet: the commit's tree and commit added
    assert len(set(pack_names(scene.work / ".mvc" / "packs", "meta-")) - packs_before) == 1  # sealed
    scene.check()
    run(scene.work, "commit", "--allow-empty", "-m", "after", check=True)
    assert loose(scene) == []
    scene.check()


def test_an_upgrade_killed_before_its_last_step_leaves_format_2_readable_and_gc_finishes_it(tmp_path):
    """The config says format 3 only once the loose objects are packed and removed: killed at the
    last rename (the config's), the repository is still format 2, wholly packed, and sound."""
    import json

    template = with_garbage(tmp_path / "template", format_version=2)
    config = lambda scene: json.loads((scene.work / ".mvc" / "config").read_text())["format_version"]  # noqa: E731
    loose = lambda scene: [p for p in (scene.work / ".mvc" / "objects").rglob("*") if p.is_file()]  # noqa: E731
    assert loose(template)
    last_killed = None
    for step in range(1, 20):
        scene = template.copy_to(tmp_path / f"kill{step}")
        if run(scene.work, "gc", "--grace", "0", crash_at=f"{step}:rename").returncode != KILLED:
            assert config(scene) == 3 and loose(scene) == []
            break
        last_killed = scene
    assert last_killed is not None and config(last_killed) == 2 and loose(last_killed) == []
    last_killed.check()
    assert run(last_killed.work, "gc", "--grace", "0").returncode == 0 and config(last_killed) == 3
    last_killed.check()
