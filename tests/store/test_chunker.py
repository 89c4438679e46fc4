"""The chunker: frozen cut points, exact spans for known layouts, and the dedup properties
(tensor blocks survive shifted offsets and appended rows; CDC confines an insertion)."""

from __future__ import annotations

import mmap
import random
import sys
import tracemalloc
from pathlib import Path

import pytest
from blake3 import blake3

from modelvc.errors import ConfigError, FormatVersionError, MvcError
from modelvc.formats import Layout, Segment
from modelvc.store.chunker import ChunkParams, ChunkSpan, plan_chunks

SMALL = ChunkParams(cdc_min=1024, cdc_avg=4096, cdc_max=16384, block_size=8192, small_tensor_merge=2048)


def xof(length: int, label: bytes = b"modelvc-chunker-test") -> bytes:
    return blake3(label).digest(length=length)


def layout_of(parts: list[tuple[str, int, str, str | None]]) -> Layout:
    """Segments laid end to end from (name, length, kind, dtype)."""
    segments = []
    offset = 0
    for name, length, kind, dtype in parts:
        segments.append(Segment(name, offset, length, kind, dtype))
        offset += length
    return Layout("safetensors", offset, tuple(segments))


def span_hashes(data: bytes, spans: list[ChunkSpan]) -> list[str]:
    return [blake3(data[s.offset : s.end]).hexdigest() for s in spans]


def assert_tiles(spans: list[ChunkSpan], size: int) -> None:
    cursor = 0
    for span in spans:
        assert span.offset == cursor and span.length > 0
        cursor = span.end
    assert cursor == size


# -- determinism forever -------------------------------------------------------------------


def test_cut_points_of_unknown_data_are_frozen() -> None:
    # Computed once with pyfastcdc 0.3.1 and frozen: if this fails, a dependency moved
    # the boundaries and every existing repository would stop deduplicating.
    data = xof(4 << 20)
    spans = plan_chunks(data, None, ChunkParams())
    assert [s.end for s in spans] == [
        337437, 662046, 1097361, 1329684, 1625324, 2042364, 2311759,
        2779705, 2894856, 3237721, 3608721, 3703221, 4020391, 4194304,
    ]  # fmt: skip
    assert all(s.itemsize is None for s in spans)


def test_data_up_to_cdc_min_is_one_span_as_fastcdc_itself_cuts_it() -> None:
    from pyfastcdc.cy import FastCDC

    chunker = FastCDC(SMALL.cdc_avg, min_size=SMALL.cdc_min, max_size=SMALL.cdc_max, normalized_chunking=1, seed=0)
    for length in (1, 2, 100, SMALL.cdc_min - 1, SMALL.cdc_min, SMALL.cdc_min + 1, 3 * SMALL.cdc_min):
        for data in (xof(length), bytes(length)):
            expected = [(c.offset, c.length) for c in chunker.cut_buf(memoryview(data))]
            assert [(s.offset, s.length) for s in plan_chunks(data, None, SMALL)] == expected
    assert len(plan_chunks(xof(3 * SMALL.cdc_min), None, SMALL)) > 1  # past cdc_min, FastCDC cuts


def test_cut_points_inside_a_header_segment_are_frozen() -> None:
    data = xof(40000)
    layout = layout_of([("<header>", 30000, "header", None), ("t", 10000, "tensor", "BF16")])
    spans = plan_chunks(data, layout, SMALL)
    assert [(s.offset, s.length, s.itemsize) for s in spans] == [
        (0, 1789, None), (1789, 7439, None), (9228, 6434, None), (15662, 1476, None),
        (17138, 2421, None), (19559, 9321, None), (28880, 1120, None),
        (30000, 8192, 2), (38192, 1808, 2),
    ]  # fmt: skip


def test_default_params_and_their_dict_form() -> None:
    params = ChunkParams()
    assert params.to_dict() == {
        "scheme": "mvc-model-1",
        "block_size": 1048576,
        "cdc_min": 65536,
        "cdc_avg": 262144,
        "cdc_max": 1048576,
        "small_tensor_merge": 262144,
    }
    assert ChunkParams.from_dict(params.to_dict()) == params
    assert ChunkParams.from_dict(SMALL.to_dict()) == SMALL


# -- exact spans for a layout ------------------------------------------------------------


def test_exact_spans_for_a_small_layout() -> None:
    layout = layout_of(
        [
            ("<header>", 100, "header", None),
            ("a", 20000, "tensor", "BF16"),  # blocks 8192, 8192, 3616
            ("norm1", 512, "tensor", "F32"),  # small: merged with norm2
            ("norm2", 512, "tensor", "F32"),
            ("norm3", 1200, "tensor", "F32"),  # would overflow 2048: starts a new span
            ("bias", 400, "tensor", "I32"),  # merged with norm3: mixed, so no itemsize
            ("b", 9000, "tensor", "I8"),  # not float: blocks without itemsize
            ("<pad>", 20, "other", None),  # small, alone between big tensors
            ("empty", 0, "tensor", "F32"),  # no span
            ("c", 16384, "tensor", "F64"),
            ("<tail>", 3000, "other", None),  # not small: CDC inside (one chunk here)
        ]
    )
    data = xof(layout.size, b"layout")
    spans = plan_chunks(data, layout, SMALL)
    assert [(s.offset, s.length, s.itemsize) for s in spans] == [
        (0, 100, None),
        (100, 8192, 2),
        (8292, 8192, 2),
        (16484, 3616, 2),
        (20100, 1024, 4),
        (21124, 1600, None),
        (22724, 8192, None),
        (30916, 808, None),
        (31724, 20, None),
        (31744, 8192, 8),
        (39936, 8192, 8),
        (48128, 3000, None),
    ]
    assert_tiles(spans, layout.size)


def test_merged_span_may_fill_the_limit_exactly_and_merging_can_be_turned_off() -> None:
    layout = layout_of([("n1", 1024, "tensor", "F16"), ("n2", 1024, "tensor", "BF16"), ("o", 8, "other", None)])
    merged = plan_chunks(xof(layout.size), layout, SMALL)
    assert [(s.offset, s.length, s.itemsize) for s in merged] == [(0, 2048, 2), (2048, 8, None)]
    params = ChunkParams(**{**SMALL.to_dict(), "small_tensor_merge": 0})
    spans = plan_chunks(xof(layout.size), layout, params)
    assert [(s.offset, s.length, s.itemsize) for s in spans] == [(0, 1024, 2), (1024, 1024, 2), (2048, 8, None)]


def test_empty_file() -> None:
    assert plan_chunks(b"", None, SMALL) == []
    assert plan_chunks(b"", layout_of([]), SMALL) == []


def random_layout(rng: random.Random) -> Layout:
    parts = []
    for index in range(rng.randint(1, 40)):
        kind = rng.choice(["tensor", "tensor", "tensor", "header", "other"])
        dtype = rng.choice(["BF16", "F16", "F32", "F64", "I8", "Q4_K", None]) if kind == "tensor" else None
        length = rng.choice([0, 1, 7, 300, 1500, 2047, 2048, 5000, 8192, 8193, 30000])
        parts.append((f"s{index}", length, kind, dtype))
    return layout_of(parts)


def test_spans_tile_the_file_and_respect_segments_over_random_layouts() -> None:
    rng = random.Random(1)
    for _ in range(200):
        layout = random_layout(rng)
        data = xof(layout.size, b"random-layout")
        spans = plan_chunks(data, layout, SMALL)
        assert_tiles(spans, layout.size)
        starts = {s.offset for s in spans} | {layout.size}
        for segment in layout.segments:
            if segment.length == 0:
                continue
            mergeable = segment.kind != "header" and segment.length < SMALL.small_tensor_merge
            inside = [s for s in spans if segment.offset <= s.offset < segment.end]
            if not mergeable:
                # Big segments start and end on a cut, and never share a span.
                assert segment.offset in starts and segment.end in starts
                assert all(s.end <= segment.end for s in inside)
            if segment.kind == "tensor" and not mergeable:
                assert [s.offset - segment.offset for s in inside] == list(range(0, segment.length, 8192))
                floats = {"BF16": 2, "F16": 2, "F32": 4, "F64": 8}
                assert {s.itemsize for s in inside} == {floats.get(segment.dtype or "")}
        for span in spans:
            assert span.length <= max(SMALL.block_size, SMALL.cdc_max, SMALL.small_tensor_merge)


# -- dedup properties ------------------------------------------------------------------


def model_file(header_length: int, rows: int, row_bytes: int = 3000) -> tuple[bytes, Layout]:
    """A header, a growing embedding, a norm and a big fixed tensor; tensor bytes stable."""
    embedding = xof(rows * row_bytes, b"embedding")
    norm = xof(1024, b"norm")
    dense = xof(50_000, b"dense")
    header = xof(header_length, b"header")
    layout = layout_of(
        [
            ("<header>", header_length, "header", None),
            ("embed", len(embedding), "tensor", "BF16"),
            ("norm", len(norm), "tensor", "F32"),
            ("dense", len(dense), "tensor", "F32"),
        ]
    )
    return header + embedding + norm + dense, layout


def tensor_block_hashes(data: bytes, layout: Layout, name: str) -> list[str]:
    segment = next(s for s in layout.segments if s.name == name)
    spans = [s for s in plan_chunks(data, layout, SMALL) if segment.offset <= s.offset < segment.end]
    return span_hashes(data, spans)


def test_header_change_shifting_every_offset_keeps_tensor_blocks_identical() -> None:
    old, old_layout = model_file(header_length=2000, rows=20)
    new, new_layout = model_file(header_length=2037, rows=20)
    for name in ("embed", "norm", "dense"):
        assert tensor_block_hashes(old, old_layout, name) == tensor_block_hashes(new, new_layout, name)
    old_all = set(span_hashes(old, plan_chunks(old, old_layout, SMALL)))
    new_spans = plan_chunks(new, new_layout, SMALL)
    changed = [s for s, h in zip(new_spans, span_hashes(new, new_spans), strict=True) if h not in old_all]
    assert changed and all(s.end <= 2037 for s in changed)  # only the header's chunks


def test_appended_rows_keep_earlier_blocks_identical() -> None:
    old, old_layout = model_file(header_length=2000, rows=20)  # 60000 bytes: 7 full blocks
    new, new_layout = model_file(header_length=2000, rows=25)
    old_blocks = tensor_block_hashes(old, old_layout, "embed")
    new_blocks = tensor_block_hashes(new, new_layout, "embed")
    assert len(old_blocks) == 8 and len(new_blocks) == 10
    assert new_blocks[:7] == old_blocks[:7]
    assert new_blocks[7] != old_blocks[7]  # the old partial block grew
    for name in ("norm", "dense"):
        assert tensor_block_hashes(old, old_layout, name) == tensor_block_hashes(new, new_layout, name)


def test_insertion_in_unknown_data_changes_only_nearby_chunks() -> None:
    old = xof(4 << 20)
    new = old[:5000] + b"inserted bytes " * 7 + old[5000:]
    old_spans = plan_chunks(old, None, ChunkParams())
    new_spans = plan_chunks(new, None, ChunkParams())
    old_hashes = set(span_hashes(old, old_spans))
    changed = [s for s, h in zip(new_spans, span_hashes(new, new_spans), strict=True) if h not in old_hashes]
    assert [(s.offset, s.length) for s in changed] == [(0, old_spans[0].length + 105)]
    assert len(new_spans) == len(old_spans)


# -- inputs and errors -------------------------------------------------------------------


def test_mmap_input_is_cut_without_copying(tmp_path: Path) -> None:
    path = tmp_path / "blob.bin"
    path.write_bytes(xof(16 << 20, b"mmap"))
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        view = memoryview(mapped)
        tracemalloc.start()
        try:
            spans = plan_chunks(view, None, ChunkParams())
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert_tiles(spans, 16 << 20)
        assert peak < 1 << 20
        assert [s.end for s in spans] == [s.end for s in plan_chunks(path.read_bytes(), None, ChunkParams())]
        del view


def test_layout_that_does_not_tile_the_data_is_a_bug() -> None:
    layout = layout_of([("a", 100, "tensor", "F32")])
    with pytest.raises(ValueError, match="layout describes 100 bytes but the data has 99"):
        plan_chunks(bytes(99), layout, SMALL)
    gap = Layout("safetensors", 100, (Segment("a", 0, 40, "tensor", "F32"), Segment("b", 50, 50, "other")))
    with pytest.raises(ValueError, match="layout segment 'b' at 50 \\(\\+50\\) does not continue at byte 40"):
        plan_chunks(bytes(100), gap, SMALL)
    short = Layout("safetensors", 100, (Segment("a", 0, 40, "tensor", "F32"),))
    with pytest.raises(ValueError, match="layout segments end at byte 40, the data at 100"):
        plan_chunks(bytes(100), short, SMALL)


def test_from_dict_refuses_what_it_cannot_honour() -> None:
    good = ChunkParams().to_dict()
    with pytest.raises(FormatVersionError) as info:
        ChunkParams.from_dict({**good, "scheme": "mvc-model-2"})
    assert info.value.message == (
        "chunking parameters in the repository config are not supported: "
        "unknown chunking scheme 'mvc-model-2' (this modelvc knows mvc-model-1, fastcdc-1)"
    )
    with pytest.raises(FormatVersionError, match=r"have unknown keys \['xor_base'\]"):
        ChunkParams.from_dict({**good, "xor_base": 1})
    missing = dict(good)
    del missing["cdc_avg"]
    with pytest.raises(ConfigError, match=r"^chunking: missing keys \['cdc_avg'\]$"):
        ChunkParams.from_dict(missing)
    with pytest.raises(ConfigError, match="^chunking: cdc_max must be within"):
        ChunkParams.from_dict({**good, "cdc_max": 64 << 20})
    with pytest.raises(ConfigError, match="^chunking: block_size must be int, not '1048576'$"):
        ChunkParams.from_dict({**good, "block_size": "1048576"})
    with pytest.raises(ConfigError, match="^chunking: block_size must be a positive multiple of 8, not 1000001$"):
        ChunkParams.from_dict({**good, "block_size": 1000001})
    with pytest.raises(ConfigError, match="cdc_min <= cdc_avg <= cdc_max"):
        ChunkParams.from_dict({**good, "cdc_min": 512 << 10})


def test_missing_compiled_fastcdc_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyfastcdc.cy", None)
    with pytest.raises(MvcError, match=r"the compiled FastCDC chunker \(pyfastcdc.cy\) cannot be imported"):
        plan_chunks(xof(5000), None, SMALL)  # above cdc_min: shorter data needs no chunker
