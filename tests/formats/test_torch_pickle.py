import io
import os
import pickle
import time
import zipfile

import numpy as np
import pytest

from modelvc.formats.detect import read_layout
from modelvc.formats.torch_pickle import TorchStorageRef, TorchTensorRef, scan_torch_pickle
from tests.modelfiles import BytesSource, TorchView, bf16_tensor, write_malicious_torch_zip, write_torch_zip


def data_pkl(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))


@pytest.fixture(autouse=True)
def no_unpickling(monkeypatch):
    """Any attempt to unpickle during a scan fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the scanner must never unpickle")

    for name in ("load", "loads", "Unpickler", "_Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_nested_state_dict(tmp_path, protocol):
    tensors = {
        "state_dict": {
            "layer": {"weight": np.zeros((2, 3), np.float32)},
            "bias": bf16_tensor(np.ones(3, np.float32)),
        },
        "optimizer": {"state": {0: {"exp_avg": np.zeros(3, np.float64)}}, "lr": 0.1},
        "epoch": 4,
    }
    scan = scan_torch_pickle(data_pkl(write_torch_zip(tmp_path / "m.pt", tensors, protocol=protocol)))
    assert scan.error is None
    assert scan.unsafe_globals == []
    assert scan.tensors == [
        TorchTensorRef("state_dict.layer.weight", "F32", (2, 3), (3, 1), "0", 0, "F32"),
        TorchTensorRef("state_dict.bias", "BF16", (3,), (1,), "1", 0, "BF16"),
        TorchTensorRef("optimizer.state.0.exp_avg", "F64", (3,), (1,), "2", 0, "F64"),
    ]
    assert scan.storages == {
        "0": TorchStorageRef("0", "F32", 6, "cpu"),
        "1": TorchStorageRef("1", "BF16", 3, "cpu"),
        "2": TorchStorageRef("2", "F64", 3, "cpu"),
    }


def test_shared_storage_views_are_all_listed(tmp_path):
    base = np.arange(10, dtype=np.int32)
    tensors = {"a": TorchView(base, 0, (2, 5), (5, 1)), "b": TorchView(base, 5, (5,), (1,)),
               "c": TorchView(base, 1, (5,), (2,))}
    scan = scan_torch_pickle(data_pkl(write_torch_zip(tmp_path / "s.pt", tensors)))
    assert [(t.name, t.storage_key, t.storage_offset, t.shape, t.stride) for t in scan.tensors] == [
        ("a", "0", 0, (2, 5), (5, 1)),
        ("b", "0", 5, (5,), (1,)),
        ("c", "0", 1, (5,), (2,)),
    ]
    assert [t.is_contiguous for t in scan.tensors] == [True, True, False]
    assert list(scan.storages) == ["0"]


def test_os_system_is_reported_and_never_run(tmp_path):
    marker = tmp_path / "marker"
    scan = scan_torch_pickle(data_pkl(write_malicious_torch_zip(tmp_path / "evil.pt", marker)))
    assert scan.unsafe_globals == ["posix.system"]
    assert [t.name for t in scan.tensors] == ["weight"]
    assert read_layout(BytesSource(write_malicious_torch_zip(tmp_path / "e2.pt", marker))) is not None
    assert not marker.exists()


class Net:
    pass


def test_pickled_objects_are_opaque_but_searched(tmp_path):
    net = Net()
    net.__dict__ = {"_parameters": {"weight": np.ones(2, np.float32)}, "hook": os.system}
    scan = scan_torch_pickle(data_pkl(write_torch_zip(tmp_path / "n.pt", {"model": net})))
    assert scan.error is None
    assert scan.unsafe_globals == [f"{__name__}.Net", "posix.system"]
    assert [(t.name, t.dtype, t.shape) for t in scan.tensors] == [("model._parameters.weight", "F32", (2,))]


def test_protocol0_inst_and_legacy_globals():
    # INST builtins.eval, then a plain GLOBAL of torch.storage._load_from_bytes
    data = b"(S'1+1'\nibuiltins\neval\np0\n0ctorch.storage\n_load_from_bytes\np1\n0(dp2\n."
    scan = scan_torch_pickle(data)
    assert scan.error is None
    assert scan.unsafe_globals == ["builtins.eval", "torch.storage._load_from_bytes"]


def test_globals_after_an_unwalkable_point_are_still_reported():
    # APPEND onto a dict is not a pickle the machine understands; os.system comes later
    data = b"\x80\x02}K\x01a" + b"cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R."
    scan = scan_torch_pickle(data)
    assert scan.error == "append to a non-list"
    assert scan.tensors == []
    assert scan.unsafe_globals == ["os.system"]


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80\x02", b"\x80\x02}q\x00(X\x01", b"garbage" * 10, bytes(range(256)), b"\x80\x02h\x05."],
)
def test_unreadable_pickles_give_an_error(data):
    scan = scan_torch_pickle(data)
    assert scan.error is not None
    assert scan.tensors == []


def test_hostile_structures_stay_bounded():
    deep = b"\x80\x02" + b"]" * 50_000 + b"a" * 49_999 + b"."
    assert scan_torch_pickle(deep).error is None
    doubling = (b"h" + bytes([i]) + b"h" + bytes([i]) + b"\x86q" + bytes([i + 1]) for i in range(60))
    laughs = b"\x80\x02]q\x00" + b"".join(doubling) + b"."
    started = time.monotonic()
    scan = scan_torch_pickle(laughs)
    assert time.monotonic() - started < 5
    assert scan.tensors == [] and scan.error is None
    assert scan.warnings == ["object too large or too deep: some tensors may be missing"]


def test_root_tensor_and_cyclic_containers(tmp_path):
    scan = scan_torch_pickle(data_pkl(write_torch_zip(tmp_path / "r.pt", TorchView(np.ones(2, np.uint8)))))
    assert [t.name for t in scan.tensors] == ["<root>"]
    cyclic = b"\x80\x02]q\x00h\x00a."  # a list that contains itself
    assert scan_torch_pickle(cyclic).error is None


def test_storage_without_marker_file_creation(tmp_path):
    assert not os.path.exists(tmp_path / "marker")
