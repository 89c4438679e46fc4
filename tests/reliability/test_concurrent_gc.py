"""Three writers add, commit and tag while gc --grace 0 runs beside them, all real processes."""

from __future__ import annotations

from tests.reliability.concurrency import check_made, writers_with_gc
from tests.reliability.scenes import two_versions


def test_writers_and_gc_at_once_lose_nothing(tmp_path):
    scene = two_versions(tmp_path)
    made = writers_with_gc(scene, writers=3, rounds=2, gc_runs=3)
    assert made.failures == []
    assert len(made.commits) == 6 and len(made.tags) == 6
    check_made(scene, made)
