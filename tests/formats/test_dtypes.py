import pytest

from modelvc.formats.dtypes import (
    float_itemsize,
    from_numpy_descr,
    from_torch_dtype,
    from_torch_storage,
    ggml_nbytes,
    itemsize,
)


def test_itemsizes():
    assert [itemsize(d) for d in ("F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2")] == [8, 4, 2, 2, 1, 1]
    integers = ("I64", "I32", "I16", "I8", "U8", "BOOL", "U16", "U32", "U64")
    assert [itemsize(d) for d in integers] == [8, 4, 2, 1, 1, 1, 2, 4, 8]
    assert itemsize("Q4_K") is None and itemsize("nope") is None


def test_float_itemsize_picks_byte_plane_candidates():
    assert [float_itemsize(d) for d in ("F16", "BF16", "F32", "F64")] == [2, 2, 4, 8]
    assert [float_itemsize(d) for d in ("I32", "U8", "Q8_0", "F8_E4M3", None)] == [None] * 5


@pytest.mark.parametrize(
    "descr, dtype",
    [("<f4", "F32"), ("<f2", "F16"), ("<u2", "U16"), ("<f8", "F64"), ("|u1", "U8"), ("|i1", "I8"),
     ("|b1", "BOOL"), ("<i8", "I64"), (">u1", "U8"), (">f4", None), ("<U3", None), ("|O", None),
     ("<V2", None), ("", None)],
)  # fmt: skip
def test_numpy_descr(descr, dtype):
    assert from_numpy_descr(descr) == dtype


def test_torch_names():
    assert from_torch_storage("BFloat16Storage") == "BF16"
    assert from_torch_storage("torch.HalfStorage") == "F16"
    assert from_torch_storage("UntypedStorage") == "U8"
    assert from_torch_storage("QInt8Storage") is None
    assert from_torch_dtype("torch.float32") == "F32"
    assert from_torch_dtype("bfloat16") == "BF16"
    assert from_torch_dtype("torch.float8_e4m3fn") == "F8_E4M3"
    assert from_torch_dtype("torch.qint8") is None


def test_ggml_sizes():
    assert ggml_nbytes("Q4_0", (64, 3)) == 2 * 18 * 3
    assert ggml_nbytes("Q4_K", (512,)) == 2 * 144
    assert ggml_nbytes("Q6_K", (256, 2)) == 2 * 210
    assert ggml_nbytes("F32", (3, 5)) == 60
    assert ggml_nbytes("Q4_0", (48, 2)) is None
    assert ggml_nbytes("NOPE", (32,)) is None
