import io
import struct
import zipfile

import numpy as np
import pytest

from modelvc.formats import Deflated, Segment
from modelvc.formats.detect import read_layout
from tests.modelfiles import (
    BytesSource,
    TorchView,
    assert_valid_layout,
    bf16_bytes,
    bf16_tensor,
    write_malicious_torch_zip,
    write_npy,
    write_npz,
    write_torch_zip,
    write_zip_records,
)


def data_offsets(data: bytes) -> dict[str, tuple[int, int]]:
    """Member -> (data offset, size), found with the standard library's zipfile."""
    result = {}
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for info in archive.infolist():
            name_len, extra_len = struct.unpack_from("<HH", data, info.header_offset + 26)
            result[info.filename] = (info.header_offset + 30 + name_len + extra_len, info.compress_size)
    return result


def sample_checkpoint(tmp_path, **options) -> bytes:
    weight = np.arange(6, dtype=np.float32).reshape(2, 3)
    tensors = {
        "state_dict": {
            "layer.weight": weight,
            "layer.bias": bf16_tensor(np.array([0.5, -1.0, 2.0], dtype=np.float32)),
            "steps": np.array(7, dtype=np.int64),
        },
        "epoch": 3,
    }
    return write_torch_zip(tmp_path / "model.pt", tensors, **options)


@pytest.mark.parametrize("zip64", [True, False])
def test_pytorch_checkpoint_segments_and_table(tmp_path, zip64):
    data = sample_checkpoint(tmp_path, zip64=zip64)
    offsets = data_offsets(data)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None
    layout = read_layout(BytesSource(data), "model.pt")
    assert layout.format == "pytorch"
    assert_valid_layout(layout)
    w_at, b_at, s_at = (offsets[f"archive/data/{k}"][0] for k in "012")
    assert w_at % 64 == 0 and b_at % 64 == 0
    expected = [
        Segment("state_dict.layer.weight", w_at, 24, "tensor", "F32", (2, 3)),
        Segment("state_dict.layer.bias", b_at, 6, "tensor", "BF16", (3,)),
        Segment("state_dict.steps", s_at, 8, "tensor", "I64", ()),
    ]
    assert [s for s in layout.segments if s.kind == "tensor"] == expected
    assert layout.tensor_table == tuple(expected)
    assert data[b_at : b_at + 6] == bf16_bytes(np.array([0.5, -1.0, 2.0], dtype=np.float32))
    pkl_at, pkl_size = offsets["archive/data.pkl"]
    assert Segment("archive/data.pkl", pkl_at, pkl_size, "header") in layout.segments
    assert Segment("archive/data.pkl:<local header>", 0, pkl_at, "other") in layout.segments
    cd_start = zipfile.ZipFile(io.BytesIO(data)).start_dir
    assert layout.segments[-1] == Segment("<central directory>", cd_start, len(data) - cd_start, "other")
    assert layout.metadata == {"pickle": "archive/data.pkl", "unsafe_globals": []}
    assert layout.warnings == ()


def test_shared_storage_views(tmp_path):
    base = np.arange(12, dtype=np.float32)
    tensors = {
        "full": TorchView(base),
        "rows": TorchView(base, 4, (2, 4), (4, 1)),
        "transposed": TorchView(base, 0, (4, 3), (1, 4)),
    }
    data = write_torch_zip(tmp_path / "v.pt", tensors, prefix="v")
    at = data_offsets(data)["v/data/0"][0]
    layout = read_layout(BytesSource(data), "v.pt")
    assert_valid_layout(layout)
    assert [s for s in layout.segments if s.kind == "tensor"] == [
        Segment("storage:0", at, 48, "tensor", "F32", (12,))
    ]
    # The transposed view covers the span of storage it reaches, with its stride.
    assert layout.tensor_table == (
        Segment("full", at, 48, "tensor", "F32", (12,)),
        Segment("rows", at + 16, 32, "tensor", "F32", (2, 4)),
        Segment("transposed", at, 48, "tensor", "F32", (4, 3), (1, 4)),
    )
    assert layout.warnings == ()


def test_strided_view_spans_what_it_reaches(tmp_path):
    base = np.arange(24, dtype=np.float16)
    data = write_torch_zip(tmp_path / "s.pt", {"every_other": TorchView(base, 3, (2, 3), (12, 2))})
    at = data_offsets(data)["archive/data/0"][0]
    layout = read_layout(BytesSource(data))
    # elements 3 .. 3 + 12 + 4 = 19: 17 elements of 2 bytes
    assert layout.tensor_table == (Segment("every_other", at + 6, 34, "tensor", "F16", (2, 3), (12, 2)),)


def test_tied_weights_are_listed_twice(tmp_path):
    shared = TorchView(np.ones(4, dtype=np.float16))
    data = write_torch_zip(tmp_path / "t.pt", {"embed": shared, "head": shared})
    at = data_offsets(data)["archive/data/0"][0]
    layout = read_layout(BytesSource(data))
    assert [s.name for s in layout.segments if s.kind == "tensor"] == ["storage:0"]
    assert layout.tensor_table == (
        Segment("embed", at, 8, "tensor", "F16", (4,)),
        Segment("head", at, 8, "tensor", "F16", (4,)),
    )


def test_reads_only_headers(tmp_path):
    data = write_torch_zip(tmp_path / "big.pt", {"w": np.zeros(1 << 20, np.float32)})
    source = BytesSource(data)
    layout = read_layout(source)
    assert layout.tensors()[0].length == 4 << 20
    assert source.bytes_read < 70_000


def test_malicious_pickle_is_reported_not_run(tmp_path):
    marker = tmp_path / "pwned"
    data = write_malicious_torch_zip(tmp_path / "evil.pt", marker)
    layout = read_layout(BytesSource(data), "evil.pt")
    assert layout.format == "pytorch"
    assert layout.metadata["unsafe_globals"] == ["posix.system"]
    assert "archive/data.pkl imports posix.system: torch.load may run code" in layout.warnings
    assert [t.name for t in layout.tensors()] == ["weight"]
    assert not marker.exists()


def test_npz_stored_and_compressed(tmp_path):
    arrays = {"a": np.arange(5, dtype=np.int32), "b": np.ones((2, 2), np.float64)}
    data = write_npz(tmp_path / "x.npz", arrays)
    offsets = data_offsets(data)
    layout = read_layout(BytesSource(data), "x.npz")
    assert layout.format == "npz"
    assert_valid_layout(layout)
    a_at, a_size = offsets["a.npy"]
    b_at, b_size = offsets["b.npy"]
    assert [s for s in layout.segments if s.kind != "other"] == [
        Segment("a.npy:<header>", a_at, a_size - 20, "header"),
        Segment("a", a_at + a_size - 20, 20, "tensor", "I32", (5,)),
        Segment("b.npy:<header>", b_at, b_size - 32, "header"),
        Segment("b", b_at + b_size - 32, 32, "tensor", "F64", (2, 2)),
    ]
    packed = write_npz(tmp_path / "c.npz", arrays, compressed=True)
    layout = read_layout(BytesSource(packed), "c.npz")
    assert layout.format == "npz"
    assert_valid_layout(layout)
    # Deflated members stay plain bytes for chunking; their tensors sit in the inflated member.
    offsets = data_offsets(packed)
    assert [s for s in layout.segments if s.name in ("a.npy", "b.npy")] == [
        Segment("a.npy", *offsets["a.npy"], "other"), Segment("b.npy", *offsets["b.npy"], "other"),
    ]
    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        sizes = {info.filename: info.file_size for info in archive.infolist()}
    assert layout.tensors() == [
        Segment("a", sizes["a.npy"] - 20, 20, "tensor", "I32", (5,),
                deflated=Deflated(offsets["a.npy"][0], offsets["a.npy"][1], sizes["a.npy"])),
        Segment("b", sizes["b.npy"] - 32, 32, "tensor", "F64", (2, 2),
                deflated=Deflated(offsets["b.npy"][0], offsets["b.npy"][1], sizes["b.npy"])),
    ]
    assert layout.warnings == () and layout.unread == ()


def test_npz_member_of_another_compression_method_is_unread(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.npy", write_npy(tmp_path / "a.npy", np.ones(3, np.float32)))
        archive.writestr("b.npy", write_npy(tmp_path / "b.npy", np.ones(3, np.float32)),
                         compress_type=zipfile.ZIP_LZMA)
    layout = read_layout(BytesSource(buffer.getvalue()), "m.npz")
    assert [t.name for t in layout.tensors()] == ["a"]
    assert layout.unread == (("b", "b.npy is compressed with zip method 14, which mvc does not read"),)
    assert layout.warnings == ("tensor b cannot be read: b.npy is compressed with zip method 14, "
                               "which mvc does not read",)


def test_deflated_layout_inflates_only_the_headers(tmp_path):
    rng = np.random.default_rng(0)
    data = write_npz(tmp_path / "big.npz", {"w": rng.standard_normal(1 << 18).astype(np.float32)}, compressed=True)
    source = BytesSource(data)
    layout = read_layout(source, "big.npz")
    assert layout.tensors()[0].length == 4 << 18 and len(data) > 900_000
    assert source.bytes_read < 70_000


def test_any_zip(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("config.json", "{}" * 100, compress_type=zipfile.ZIP_DEFLATED)
        archive.writestr("model.weights.h5", b"\x89HDF" + bytes(100))
        archive.comment = b"a comment"
    data = buffer.getvalue()
    offsets = data_offsets(data)
    layout = read_layout(BytesSource(data), "m.keras")
    assert layout.format == "zip"
    assert_valid_layout(layout)
    assert Segment("config.json", *offsets["config.json"], "other") in layout.segments
    assert Segment("model.weights.h5", *offsets["model.weights.h5"], "other") in layout.segments


def test_malformed_zips_give_none(tmp_path):
    data = sample_checkpoint(tmp_path)
    start_dir = zipfile.ZipFile(io.BytesIO(data)).start_dir
    for cut in (100, len(data) // 2, start_dir + 10, len(data) - 30, len(data) - 1):
        assert read_layout(BytesSource(data[:cut])) is None, cut
    eocd = data.rindex(b"PK\x05\x06")
    zip64_record = data.rindex(b"PK\x06\x06")
    for position, fmt, value in [
        (zip64_record + 48, "<Q", len(data)),  # directory offset past the end
        (zip64_record + 32, "<Q", 2**60),  # absurd entry count
        (zip64_record + 40, "<Q", 2**60),  # absurd directory size
        (start_dir + 42, "<I", 3),  # first local header offset points into garbage
    ]:
        size = struct.calcsize(fmt)
        variant = data[:position] + struct.pack(fmt, value) + data[position + size :]
        assert read_layout(BytesSource(variant)) is None, (position, value)
    no_zip64 = sample_checkpoint(tmp_path, zip64=False)
    eocd = no_zip64.rindex(b"PK\x05\x06")
    variant = no_zip64[: eocd + 10] + struct.pack("<H", 60000) + no_zip64[eocd + 12 :]
    assert read_layout(BytesSource(variant)) is None


def records_of(data: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def test_storage_inconsistent_with_pickle_gives_none(tmp_path):
    data = write_torch_zip(tmp_path / "m.pt", {"w": np.ones(4, np.float32)})
    records = records_of(data)
    assert read_layout(BytesSource(write_zip_records(records))) is not None
    short = [(n, d[:12] if n == "archive/data/0" else d) for n, d in records]
    assert read_layout(BytesSource(write_zip_records(short))) is None
    missing = [(n, d) for n, d in records if n != "archive/data/0"]
    assert read_layout(BytesSource(write_zip_records(missing))) is None
    past_end = write_torch_zip(tmp_path / "p.pt", {"w": TorchView(np.ones(4, np.float32), 2, (3,), (1,))})
    assert read_layout(BytesSource(past_end)) is None


def test_unscannable_pickle_keeps_the_zip_layout(tmp_path):
    data = write_torch_zip(tmp_path / "m.pt", {"w": np.ones(4, np.float32)})
    records = [(n, d[:-3] if n.endswith("data.pkl") else d) for n, d in records_of(data)]
    layout = read_layout(BytesSource(write_zip_records(records)))
    assert layout.format == "pytorch"
    assert layout.tensor_table is None and layout.tensors() == []
    assert any(w.startswith("archive/data.pkl could not be scanned") for w in layout.warnings)


def _rezipped(data: bytes, method_of) -> bytes:
    """The same members, written again by zipfile with the compression method_of(name)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info), compress_type=method_of(info.filename))
    return out.getvalue()


def test_rezipped_checkpoint_reads_deflated_storages_and_names_the_unreadable(tmp_path):
    base = np.arange(12, dtype=np.float32)
    data = write_torch_zip(tmp_path / "v.pt", {"t": TorchView(base, 0, (4, 3), (1, 4)), "b": np.ones(3, np.int8)})
    deflated = _rezipped(data, lambda name: zipfile.ZIP_DEFLATED)
    layout = read_layout(BytesSource(deflated), "v.pt")
    assert_valid_layout(layout)
    with zipfile.ZipFile(io.BytesIO(deflated)) as archive:
        infos = {info.filename: info for info in archive.infolist()}
    offsets = data_offsets(deflated)

    def where(name):
        return Deflated(offsets[name][0], infos[name].compress_size, infos[name].file_size)

    assert layout.tensor_table == (
        Segment("t", 0, 48, "tensor", "F32", (4, 3), (1, 4), where("archive/data/0")),
        Segment("b", 0, 3, "tensor", "I8", (3,), None, where("archive/data/1")),
    )
    assert layout.warnings == () and layout.unread == ()
    lzma = _rezipped(data, lambda name: zipfile.ZIP_LZMA if name.endswith("/1") else zipfile.ZIP_STORED)
    layout = read_layout(BytesSource(lzma), "v.pt")
    why = "storage archive/data/1 is compressed with zip method 14, which mvc does not read"
    assert [t.name for t in layout.tensors()] == ["t"]
    assert layout.unread == (("b", why),)
    assert layout.warnings == (f"tensor b cannot be read: {why}",)
