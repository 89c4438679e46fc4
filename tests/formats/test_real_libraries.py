"""Model files written by the real libraries, with their own readers as the oracle.

safetensors (save_file / load_file, safe_open for metadata), gguf (GGUFWriter / GGUFReader),
numpy (savez / savez_compressed / np.load) and torch (torch.save / torch.load, where torch is
installed). For each, two versions differ in one tensor changed, one added, one removed and
one reshaped; `mvc show` and `mvc diff` (text and --json) must say what the oracle says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.modelfiles import canonical_dtype


@dataclass(frozen=True)
class Seen:
    """One tensor as a library's own reader returns it."""

    dtype: str
    shape: tuple[int, ...]
    raw: bytes  # the values' bytes in row-major order

    @property
    def nbytes(self) -> int:
        return len(self.raw)


def seen_numpy(array: np.ndarray) -> Seen:
    return Seen(canonical_dtype(array), tuple(array.shape), np.ascontiguousarray(array).tobytes())


def _rng_values(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return (np.random.default_rng(seed).integers(-64, 64, shape) / 8).astype(np.float32)  # exact in f16


def version_tensors(second: bool) -> dict[str, np.ndarray]:
    """v1 and v2: "tweak" changes, "reshape" is reshaped, "gone" removed, "fresh" added."""
    tweak = _rng_values((4, 8), 1)
    if second:
        tweak[1, 3] += 0.25
    tensors = {
        "keep": _rng_values((3, 5), 2),
        "tweak": tweak,
        "half": _rng_values((2, 4), 3).astype(np.float16),
        "small": np.arange(-4, 4, dtype=np.int8),
        "empty": np.zeros((0, 3), np.float32),
        "reshape": _rng_values((6, 4), 4).reshape((4, 6) if second else (6, 4)),
    }
    if second:
        tensors["fresh"] = np.full(5, 2.0, np.float32)
    else:
        tensors["gone"] = np.ones(3, np.float32)
    return tensors


def oracle_statuses(old: dict[str, Seen], new: dict[str, Seen]) -> dict[str, str]:
    statuses = {}
    for name, after in new.items():
        before = old.get(name)
        statuses[name] = (
            "added" if before is None
            else "dtype" if before.dtype != after.dtype
            else "shape" if before.shape != after.shape
            else "unchanged" if before.raw == after.raw
            else "modified"
        )  # fmt: skip
    statuses.update({name: "deleted" for name in old if name not in new})
    return statuses


def commit_two(mvc, work: Path, name: str, write: Callable[[Path, bool], None]) -> tuple[Path, Path]:
    """Commit v1 and v2 of `name`; returns copies of both files for the oracle."""
    copies = []
    for second in (False, True):
        write(work / name, second)
        copy = work.parent / f"{'v2' if second else 'v1'}-{name}"
        copy.write_bytes((work / name).read_bytes())
        copies.append(copy)
        mvc("add", name)
        mvc("commit", "-m", "v2" if second else "v1")
    return copies[0], copies[1]


def check_show(mvc, name: str, oracle: dict[str, Seen], metadata: dict | None = None) -> dict:
    shown = mvc.json("show", f"HEAD:{name}")["model"]
    assert {t["name"]: (t["dtype"], tuple(t["shape"]), t["size"]) for t in shown["tensors"]} == {
        tensor: (seen.dtype, seen.shape, seen.nbytes) for tensor, seen in oracle.items()
    }
    assert shown["tensor_count"] == len(oracle)
    assert shown["total_numel"] == sum(int(np.prod(seen.shape)) for seen in oracle.values())
    assert shown["warnings"] == []
    if metadata is not None:
        assert shown["metadata"] == metadata
    text = mvc("show", f"HEAD:{name}").stdout.splitlines()
    assert text[1].startswith(f"format: {shown['format']}, {len(oracle)} tensors, ")
    rows = {line.split()[0]: line for line in text[2 : 2 + len(oracle)]}
    for tensor, seen in oracle.items():
        assert rows[tensor].split()[1] == seen.dtype
        assert f" [{', '.join(map(str, seen.shape))}] " in rows[tensor]
    return shown


def check_diff(mvc, old: dict[str, Seen], new: dict[str, Seen]) -> dict:
    """diff --json and the text agree with the oracle's statuses; statistics of changed
    float32 tensors agree with numpy's; quantized ones say why they have none."""
    expected = oracle_statuses(old, new)
    assert set(expected.values()) == {"added", "deleted", "shape", "modified", "unchanged"}
    (change,) = mvc.json("diff", "HEAD~1", "HEAD", "--all", "--stats")["files"]
    model = change["model"]
    assert {t["name"]: t["status"] for t in model["tensors"]} == expected
    for tensor in model["tensors"]:
        name = tensor["name"]
        if name in new:
            assert (tensor["new_dtype"], tuple(tensor["new_shape"])) == (new[name].dtype, new[name].shape)
        if tensor["status"] == "modified" and new[name].dtype == "F32":
            before = np.frombuffer(old[name].raw, np.float32).astype(np.float64)
            after = np.frombuffer(new[name].raw, np.float32).astype(np.float64)
            assert tensor["stats"]["modified_count"] == int(np.count_nonzero(before != after))
            assert tensor["stats"]["max_abs_diff"] == float(np.abs(after - before).max())
        elif tensor["status"] == "modified" and new[name].dtype.startswith("Q"):
            assert tensor["stats_note"] == (f"quantized type {new[name].dtype}: values are packed in blocks,"
                                            " no per-element statistics")  # fmt: skip
    lines = mvc("diff", "HEAD~1", "HEAD").stdout.splitlines()
    counts = ", ".join(f"{sum(1 for s in expected.values() if s == status)} {status}"
                       for status in ("added", "deleted", "dtype", "shape", "modified", "unchanged")
                       if status in expected.values())  # fmt: skip
    assert lines[1] == f"    tensors: {counts}"
    listed = {line.split()[1]: line.split()[0] for line in lines[2:] if not line.startswith("    metadata ")}
    assert listed == {name: status for name, status in expected.items() if status != "unchanged"}
    return model


# ---------------------------------------------------------------- safetensors


def test_safetensors_written_by_save_file(mvc, work):
    st_numpy = pytest.importorskip("safetensors.numpy")
    from safetensors import safe_open

    def write(path: Path, second: bool) -> None:
        metadata = {"epoch": "2" if second else "1", "arch": "mlp"}
        st_numpy.save_file(version_tensors(second), str(path), metadata=metadata)

    def oracle(path: Path) -> dict[str, Seen]:
        return {name: seen_numpy(array) for name, array in st_numpy.load_file(str(path)).items()}

    v1, v2 = commit_two(mvc, work, "m.safetensors", write)
    with safe_open(str(v2), "np") as handle:
        metadata = handle.metadata()
    check_show(mvc, "m.safetensors", oracle(v2), metadata)
    model = check_diff(mvc, oracle(v1), oracle(v2))
    assert model["metadata"] == [{"key": "epoch", "old": "1", "new": "2"}]
    assert "    metadata epoch: \"1\" -> \"2\"" in mvc("diff", "HEAD~1", "HEAD").stdout.splitlines()


def test_safetensors_bf16_written_from_torch(mvc, work):
    torch = pytest.importorskip("torch")
    st_torch = pytest.importorskip("safetensors.torch")

    def write(path: Path, second: bool) -> None:
        tensors = {name: torch.from_numpy(array) for name, array in version_tensors(second).items()}
        tensors["tweak"] = tensors["tweak"].to(torch.bfloat16)
        st_torch.save_file(tensors, str(path))

    def oracle(path: Path) -> dict[str, Seen]:
        return {name: seen_torch(tensor) for name, tensor in st_torch.load_file(str(path)).items()}

    v1, v2 = commit_two(mvc, work, "m.safetensors", write)
    new = oracle(v2)
    assert new["tweak"].dtype == "BF16"
    check_show(mvc, "m.safetensors", new, {})
    model = check_diff(mvc, oracle(v1), new)
    tweak = next(t for t in model["tensors"] if t["name"] == "tweak")
    assert (tweak["status"], tweak["new_dtype"], tweak["stats"]["modified_count"]) == ("modified", "BF16", 1)


# ---------------------------------------------------------------- gguf


def test_gguf_written_by_gguf_writer(mvc, work):
    gguf = pytest.importorskip("gguf")
    quant = gguf.GGMLQuantizationType

    def write(path: Path, second: bool) -> None:
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_string("general.name", "tiny")
        writer.add_uint32("llama.context_length", 256 if second else 128)
        writer.add_array("tokenizer.ggml.tokens", ["<s>", "a", "b"])
        for name, array in version_tensors(second).items():
            writer.add_tensor(name, array)
        base = _rng_values((2, 64), 5)
        writer.add_tensor("q8", gguf.quants.quantize(base, quant.Q8_0), raw_dtype=quant.Q8_0)
        q4 = base.copy()
        if second:
            q4[0, :32] += 1.0
        writer.add_tensor("q4", gguf.quants.quantize(q4, quant.Q4_0), raw_dtype=quant.Q4_0)
        writer.add_tensor("bf", gguf.quants.quantize(base[:, :8], quant.BF16), raw_dtype=quant.BF16)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()

    def oracle(path: Path) -> dict[str, Seen]:
        reader = gguf.GGUFReader(str(path))
        return {t.name: Seen(t.tensor_type.name, tuple(int(d) for d in t.shape), t.data.tobytes())
                for t in reader.tensors}  # fmt: skip

    def oracle_metadata(path: Path) -> dict:
        reader = gguf.GGUFReader(str(path))
        return {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}

    v1, v2 = commit_two(mvc, work, "m.gguf", write)
    old, new = oracle(v1), oracle(v2)
    assert {new[name].dtype for name in ("q8", "q4", "bf", "small", "half")} == {"Q8_0", "Q4_0", "BF16", "I8", "F16"}
    shown = check_show(mvc, "m.gguf", new, oracle_metadata(v2))
    reader = gguf.GGUFReader(str(v2))
    assert {t["name"]: t["offset"] for t in shown["tensors"]} == {t.name: int(t.data_offset) for t in reader.tensors}
    model = check_diff(mvc, old, new)
    assert {t["name"]: t["status"] for t in model["tensors"] if t["name"] in ("q8", "q4", "bf")} == {
        "q8": "unchanged", "q4": "modified", "bf": "unchanged"}
    assert model["metadata"] == [{"key": "llama.context_length", "old": 128, "new": 256}]


# ---------------------------------------------------------------- numpy


@pytest.mark.parametrize("save", ["savez", "savez_compressed"])
def test_npz_written_by_numpy(mvc, work, save):
    def write(path: Path, second: bool) -> None:
        with open(path, "wb") as handle:
            getattr(np, save)(handle, **version_tensors(second))

    def oracle(path: Path) -> dict[str, Seen]:
        with np.load(path) as archive:
            return {name: seen_numpy(archive[name]) for name in archive.files}

    v1, v2 = commit_two(mvc, work, "m.npz", write)
    shown = check_show(mvc, "m.npz", oracle(v2))
    assert {t["deflated"] for t in shown["tensors"]} == {save == "savez_compressed"}
    model = check_diff(mvc, oracle(v1), oracle(v2))
    decided = {t["decided_by"] for t in model["tensors"] if t["status"] in ("modified", "unchanged")}
    if save == "savez_compressed":
        assert decided == {"inflated", "empty"}
    else:
        assert "empty" in decided and decided <= {"chunks", "bytes", "empty"}


# ---------------------------------------------------------------- torch

_TORCH_DTYPES = {"float32": "F32", "float16": "F16", "bfloat16": "BF16", "int8": "I8", "int64": "I64"}


def seen_torch(tensor) -> Seen:
    import torch

    dtype = _TORCH_DTYPES[str(tensor.dtype).removeprefix("torch.")]
    flat = tensor.contiguous().reshape(-1)
    raw = flat.view(torch.int16).numpy().tobytes() if dtype == "BF16" else flat.numpy().tobytes()
    return Seen(dtype, tuple(tensor.shape), raw)


def test_checkpoint_written_by_torch_save(mvc, work):
    torch = pytest.importorskip("torch")

    def write(path: Path, second: bool) -> None:
        state = {name: torch.from_numpy(array.copy()) for name, array in version_tensors(second).items()}
        state["bf"] = torch.arange(6, dtype=torch.float32).to(torch.bfloat16)
        base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
        state["transposed"] = (base * (2 if second else 1)).t()  # a view with stride (1, 4)
        torch.save(state, path)

    def oracle(path: Path) -> dict[str, Seen]:
        return {name: seen_torch(tensor) for name, tensor in torch.load(path, weights_only=True).items()}

    v1, v2 = commit_two(mvc, work, "m.pt", write)
    shown = check_show(mvc, "m.pt", oracle(v2), {"pickle": "m/data.pkl", "unsafe_globals": []})
    strides = {t["name"]: t["stride"] for t in shown["tensors"] if t["stride"] is not None}
    assert strides == {"transposed": list(torch.load(v2, weights_only=True)["transposed"].stride())}
    model = check_diff(mvc, oracle(v1), oracle(v2))
    transposed = next(t for t in model["tensors"] if t["name"] == "transposed")
    assert (transposed["status"], transposed["stats"]["modified_count"]) == ("modified", 11)
