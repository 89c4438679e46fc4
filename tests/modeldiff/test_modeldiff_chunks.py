"""Deciding from chunk ids: a 50 MB comparison that reads (almost) nothing, and the byte path."""

from __future__ import annotations

import numpy as np
import pytest

from modelvc.formats.detect import read_layout
from modelvc.modeldiff import FileVersion, compare_models
from modelvc.modeldiff.version import ChunkMap, chunks_verdict
from tests.modeldiff.pairs import fixed_chunks, segment_chunks, version
from tests.modelfiles import BytesSource, write_safetensors

MiB = 1024 * 1024
TENSOR_ELEMENTS = 2_100_000  # 8.4 MB of F32: more than one 8 MiB compare block
NAMES = [f"layer{i}.weight" for i in range(6)]
CHANGED = "layer3.weight"
SPOT = 2_099_000  # element index of the change: byte 8_396_000, in the second 8 MiB block


@pytest.fixture(scope="module")
def big_pair(tmp_path_factory):
    rng = np.random.default_rng(5)
    old = {name: rng.standard_normal(TENSOR_ELEMENTS).astype(np.float32) for name in NAMES}
    new = {name: array.copy() for name, array in old.items()}
    new[CHANGED][SPOT] += 1.0
    directory = tmp_path_factory.mktemp("big")
    old_data = write_safetensors(directory / "old", old)
    new_data = write_safetensors(directory / "new", new)
    shifted = write_safetensors(directory / "shifted", new, metadata={"note": "a longer header moves every tensor"})
    return old, new, old_data, new_data, shifted


class RecordedProgress:
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def start(self, label: str, total: int) -> None:
        self.events.append((label, total))

    def advance(self, amount: int) -> None:
        self.events.append(("advance", amount))

    def finish(self) -> None:
        self.events.append(("finish", 0))

    def advanced(self) -> int:
        return sum(amount for kind, amount in self.events if kind == "advance")


def _header_bytes(data: bytes) -> int:
    return 8 + int.from_bytes(data[:8], "little")


def test_chunk_ids_decide_without_reading_data(big_pair):
    old_arrays, _, old_data, new_data, _ = big_pair
    assert len(old_data) > 50_000_000
    old_source, new_source = BytesSource(old_data), BytesSource(new_data)
    old = FileVersion(old_source, read_layout(old_source), segment_chunks(old_data, MiB))
    new = FileVersion(new_source, read_layout(new_source), segment_chunks(new_data, MiB))

    diff = compare_models(old, new)

    assert {t.name: t.status for t in diff.tensors} == {n: "modified" if n == CHANGED else "unchanged" for n in NAMES}
    assert {t.decided_by for t in diff.tensors} == {"chunks"}
    assert diff.bytes_read == 0
    # Everything either source ever served was the layout reader's look at the header.
    assert old_source.bytes_read <= _header_bytes(old_data) + 16
    assert new_source.bytes_read <= _header_bytes(new_data) + 16


def test_stats_read_only_the_changed_tensor(big_pair):
    old_arrays, new_arrays, old_data, new_data, _ = big_pair
    old, old_source = version(old_data, chunks=segment_chunks(old_data, MiB))
    new, new_source = version(new_data, chunks=segment_chunks(new_data, MiB))

    progress = RecordedProgress()
    diff = compare_models(old, new, stats=True, progress=progress)

    tensor_bytes = TENSOR_ELEMENTS * 4
    assert progress.events[0] == ("comparing tensors", 2 * tensor_bytes)
    assert progress.events[-1] == ("finish", 0)
    assert progress.advanced() == 2 * tensor_bytes
    assert old_source.bytes_read == new_source.bytes_read == tensor_bytes
    assert diff.bytes_read == 2 * tensor_bytes
    (changed,) = [t for t in diff.tensors if t.status == "modified"]
    before = float(old_arrays[CHANGED][SPOT])
    after = float(new_arrays[CHANGED][SPOT])
    assert changed.stats.changed == 1
    assert changed.stats.max_abs_diff == abs(after - before)
    assert changed.stats.mean_abs_diff == abs(after - before) / TENSOR_ELEMENTS


def test_a_longer_header_shifting_every_tensor_still_reads_nothing(big_pair):
    _, _, old_data, _, shifted = big_pair
    assert _header_bytes(shifted) != _header_bytes(old_data)
    old, old_source = version(old_data, chunks=segment_chunks(old_data, MiB))
    new, new_source = version(shifted, chunks=segment_chunks(shifted, MiB))

    diff = compare_models(old, new)

    assert diff.counts["modified"] == 1 and diff.counts["unchanged"] == 5
    assert old_source.bytes_read == new_source.bytes_read == diff.bytes_read == 0
    assert [(m.key, m.old, m.new) for m in diff.metadata] == [("note", None, "a longer header moves every tensor")]


def test_without_chunks_the_bytes_are_compared_in_blocks(big_pair):
    _, _, old_data, new_data, _ = big_pair
    old, old_source = version(old_data)
    new, new_source = version(new_data)

    progress = RecordedProgress()
    diff = compare_models(old, new, progress=progress)

    assert {t.name: t.status for t in diff.tensors} == {n: "modified" if n == CHANGED else "unchanged" for n in NAMES}
    assert {t.decided_by for t in diff.tensors} == {"bytes"}
    tensor_bytes = TENSOR_ELEMENTS * 4
    assert progress.events[0] == ("comparing tensors", 2 * 6 * tensor_bytes)
    assert progress.advanced() == diff.bytes_read
    # Unchanged tensors are read whole; the changed one up to the end of the 8 MiB block
    # holding its first difference (SPOT * 4 bytes lies in the second block, the last).
    expected_per_side = 5 * tensor_bytes + tensor_bytes
    assert old_source.bytes_read == new_source.bytes_read == expected_per_side
    assert max(old_source.reads, new_source.reads) == 6 * 2


def test_the_comparison_stops_at_the_first_differing_block(tmp_path):
    before = np.arange(1000, dtype=np.float32)
    after = before.copy()
    after[40] = -1.0  # bytes 160..163: in the third 64-byte block
    old, old_source = version(write_safetensors(tmp_path / "a", {"w": before}))
    new, new_source = version(write_safetensors(tmp_path / "b", {"w": after}))
    diff = compare_models(old, new, block_bytes=64)
    assert diff.tensors[0].status == "modified"
    assert old_source.bytes_read == new_source.bytes_read == 3 * 64
    assert old_source.reads == 3
    assert diff.bytes_read == 2 * 3 * 64


def test_chunks_that_do_not_frame_tensors_fall_back_to_bytes(big_pair):
    _, _, old_data, new_data, _ = big_pair
    # Cut every MiB from the start of the file: tensor boundaries fall inside chunks.
    old, _ = version(old_data, chunks=fixed_chunks(old_data, MiB))
    new, _ = version(new_data, chunks=fixed_chunks(new_data, MiB))
    diff = compare_models(old, new)
    assert {t.decided_by for t in diff.tensors} == {"bytes"}
    assert diff.counts["modified"] == 1 and diff.counts["unchanged"] == 5


def test_chunks_on_one_side_only_fall_back_to_bytes(tmp_path):
    tensors = {"a": np.arange(64, dtype=np.float32), "b": np.ones(32, np.float32)}
    data = write_safetensors(tmp_path / "a", tensors)
    old, _ = version(data, chunks=segment_chunks(data, 64))
    new, _ = version(data)
    diff = compare_models(old, new)
    assert [(t.status, t.decided_by) for t in diff.tensors] == [("unchanged", "bytes")] * 2


def test_equal_bytes_cut_differently_are_unchanged(tmp_path):
    tensors = {"a": np.arange(256, dtype=np.float32)}
    data = write_safetensors(tmp_path / "a", tensors)
    old, _ = version(data, chunks=segment_chunks(data, 256))
    new, new_source = version(data, chunks=segment_chunks(data, 100))
    (change,) = compare_models(old, new).tensors
    assert (change.status, change.decided_by) == ("unchanged", "bytes")
    assert new_source.bytes_read == 1024


def test_a_differing_chunk_at_the_same_place_decides_changed_even_if_other_cuts_differ():
    old = (("x", 100, 50), ("y", 150, 50), ("z", 200, 100))
    new = (("x", 500, 50), ("q", 550, 50), ("r", 600, 60), ("s", 660, 40))
    assert chunks_verdict(old, 100, new, 500) is False
    assert chunks_verdict(old, 100, (("x", 0, 50), ("y", 50, 50), ("z", 100, 100)), 0) is True
    assert chunks_verdict(old, 100, (("x", 0, 50), ("w", 50, 150)), 0) is None


def test_chunk_map_covering_and_validation():
    chunk_map = ChunkMap((("a", 0, 10), ("b", 10, 5), ("c", 15, 20)), 35)
    assert chunk_map.covering(10, 35) == (("b", 10, 5), ("c", 15, 20))
    assert chunk_map.covering(0, 10) == (("a", 0, 10),)
    assert chunk_map.covering(11, 35) is None
    assert chunk_map.covering(10, 30) is None
    assert chunk_map.covering(10, 36) is None
    with pytest.raises(ValueError, match="chunk b at 11 does not follow the chunk before it at 10"):
        ChunkMap((("a", 0, 10), ("b", 11, 5)), 16)
    with pytest.raises(ValueError, match="chunks cover 15 bytes of a 16-byte file"):
        ChunkMap((("a", 0, 10), ("b", 10, 5)), 16)
