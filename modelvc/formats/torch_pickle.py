"""Read the tensor table of a PyTorch data.pkl without unpickling it.

A pickle is a program: loading one can call any importable function (os.system included).
This module never loads, imports or calls anything named in the pickle. It walks the opcodes
with pickletools.genops (a parser) and a small symbolic stack machine: containers are
rebuilt as inert Python values, the known tensor-rebuild calls become TensorRef records,
and every other call (REDUCE, NEWOBJ, BUILD of an unknown class) becomes an opaque value.
Every global outside the known tensor-rebuild set is reported in `unsafe_globals`.
"""

from __future__ import annotations

import pickletools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelvc.formats import row_major
from modelvc.formats.base import MALFORMED_ERRORS
from modelvc.formats.dtypes import (
    from_torch_dtype,
    from_torch_storage,
    torch_dtype_names,
    torch_storage_names,
)

MAX_WALK_DEPTH = 64
MAX_WALK_NODES = 1_000_000
MAX_EXPANSIONS = 8  # a container reachable by more paths than this is shared suspiciously

_REBUILD_TENSOR = {"torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2"}
_REBUILD_TENSOR_V3 = "torch._utils._rebuild_tensor_v3"
_REBUILD_PARAMETER = {"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
_REBUILD_FROM_TYPE = "torch._tensor._rebuild_from_type_v2"
_CONTAINERS = {"collections.OrderedDict", "builtins.dict", "__builtin__.dict"}
SAFE_GLOBALS: frozenset[str] = frozenset(
    _REBUILD_TENSOR
    | _REBUILD_PARAMETER
    | _CONTAINERS
    | {_REBUILD_TENSOR_V3, _REBUILD_FROM_TYPE, "torch.Size", "torch.device", "torch.Tensor"}
    | {"torch.nn.parameter.Parameter", "_codecs.encode"}
    | {f"{m}.{n}" for m in ("builtins", "__builtin__") for n in ("set", "frozenset", "tuple", "list")}
    | {f"torch.{name}" for name in torch_storage_names()}
    | {f"torch.{name}" for name in torch_dtype_names()}
)


@dataclass(frozen=True)
class TorchStorageRef:
    key: str
    dtype: str | None  # canonical; None for storage types without one (quantized)
    numel: int  # elements of `dtype` (bytes for an untyped storage)
    location: str


@dataclass(frozen=True)
class TorchTensorRef:
    name: str  # dotted path in the pickled object ("state_dict.layer.weight")
    dtype: str | None
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    storage_key: str
    storage_offset: int  # in elements of `dtype`
    storage_dtype: str | None

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count

    @property
    def is_contiguous(self) -> bool:
        return row_major(self.shape, self.stride)


@dataclass(frozen=True)
class TorchPickleScan:
    tensors: list[TorchTensorRef] = field(default_factory=list)
    unsafe_globals: list[str] = field(default_factory=list)
    error: str | None = None
    storages: dict[str, TorchStorageRef] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


class _ScanError(Exception):
    pass


@dataclass(eq=False)
class _Global:
    module: str
    name: str

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass(eq=False)
class _Tensor:
    storage: TorchStorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: str | None


@dataclass(eq=False)
class _Opaque:
    """The never-computed result of a call; keeps its inputs so tensors inside are found."""

    what: str
    parts: list[Any] = field(default_factory=list)


@dataclass(eq=False)
class _Dict:
    entries: dict[Any, Any] = field(default_factory=dict)

    def set(self, key: Any, value: Any) -> None:
        try:
            self.entries[key] = value
        except TypeError:  # unhashable key: keep the value reachable, unnamed
            self.entries[f"<key {len(self.entries)}>"] = value


@dataclass(eq=False)
class _List:
    items: list[Any] = field(default_factory=list)


_STRING_OPS = {"STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8"}
_CONSTANT_OPS = _STRING_OPS | {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
}  # fmt: skip
_IGNORED_OPS = {"PROTO", "FRAME", "READONLY_BUFFER"}
_PUSH_NEW: dict[str, Callable[[], Any]] = {
    "NONE": lambda: None, "NEWTRUE": lambda: True, "NEWFALSE": lambda: False,
    "EMPTY_TUPLE": tuple, "EMPTY_LIST": _List, "EMPTY_DICT": _Dict,
    "EMPTY_SET": lambda: _Opaque("set"), "PERSID": lambda: _Opaque("persistent id"),
    "NEXT_BUFFER": lambda: _Opaque("out-of-band buffer"),
}  # fmt: skip


class _Machine:
    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.memo: dict[int, Any] = {}
        self.unsafe: dict[str, None] = {}
        self.storages: dict[str, TorchStorageRef] = {}
        self.warnings: list[str] = []
        self.recent_strings: deque[Any] = deque(maxlen=2)
        self.result: Any = None

    def note_global(self, full: str) -> None:
        if full not in SAFE_GLOBALS:
            self.unsafe.setdefault(full, None)

    def pop(self) -> Any:
        if not self.stack or (self.marks and self.marks[-1] >= len(self.stack)):
            raise _ScanError("stack underflow")
        return self.stack.pop()

    def pop_mark(self) -> list[Any]:
        if not self.marks:
            raise _ScanError("no MARK on the stack")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def top(self) -> Any:
        if not self.stack:
            raise _ScanError("stack underflow")
        return self.stack[-1]

    def step(self, name: str, arg: Any) -> bool:
        """Apply one opcode; True at STOP."""
        push = self.stack.append
        if name in _CONSTANT_OPS:
            if name in _STRING_OPS:
                self.recent_strings.append(arg)
            push(bytes(arg) if name == "BYTEARRAY8" else arg)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            self.memo[arg] = self.top()
        elif name == "MEMOIZE":
            self.memo[len(self.memo)] = self.top()
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise _ScanError(f"memo key {arg} missing")
            value = self.memo[arg]
            if isinstance(value, str):
                self.recent_strings.append(value)
            push(value)
        elif name in _PUSH_NEW:
            push(_PUSH_NEW[name]())
        elif name in _IGNORED_OPS:
            pass
        elif name == "STOP":
            self.result = self.pop()
            return True
        elif name == "MARK":
            self.marks.append(len(self.stack))
        elif name == "POP":
            if self.marks and self.marks[-1] == len(self.stack):
                self.marks.pop()
            else:
                self.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            push(self.top())
        elif name == "TUPLE":
            push(tuple(self.pop_mark()))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            count = int(name[-1])
            items = [self.pop() for _ in range(count)]
            push(tuple(reversed(items)))
        elif name == "LIST":
            push(_List(self.pop_mark()))
        elif name == "APPEND":
            value = self.pop()
            self._extend(self.top(), [value])
        elif name == "APPENDS":
            items = self.pop_mark()
            self._extend(self.top(), items)
        elif name == "DICT":
            push(self._fill_dict(_Dict(), self.pop_mark()))
        elif name == "SETITEM":
            value = self.pop()
            key = self.pop()
            self._fill_dict(self.top(), [key, value])
        elif name == "SETITEMS":
            items = self.pop_mark()
            self._fill_dict(self.top(), items)
        elif name == "ADDITEMS":
            items = self.pop_mark()
            self._extend(self.top(), items)
        elif name == "FROZENSET":
            push(_Opaque("frozenset", self.pop_mark()))
        elif name == "GLOBAL":
            push(self._global(*_split_global(arg)))
        elif name == "STACK_GLOBAL":
            global_name = self.pop()
            module = self.pop()
            if not isinstance(module, str) or not isinstance(global_name, str):
                raise _ScanError("STACK_GLOBAL of non-strings")
            push(self._global(module, global_name))
        elif name == "INST":
            cls = self._global(*_split_global(arg))
            push(self._call(cls, tuple(self.pop_mark())))
        elif name == "OBJ":
            items = self.pop_mark()
            if not items:
                raise _ScanError("OBJ without a class")
            push(self._call(items[0], tuple(items[1:])))
        elif name == "REDUCE":
            args = self.pop()
            func = self.pop()
            push(self._call(func, args))
        elif name == "NEWOBJ":
            args = self.pop()
            cls = self.pop()
            push(_Opaque(f"new {_describe(cls)}", [args]))
        elif name == "NEWOBJ_EX":
            kwargs = self.pop()
            args = self.pop()
            cls = self.pop()
            push(_Opaque(f"new {_describe(cls)}", [args, kwargs]))
        elif name == "BUILD":
            state = self.pop()
            target = self.top()
            if isinstance(target, _Opaque):
                target.parts.append(state)
        elif name == "BINPERSID":
            push(self._persistent(self.pop()))
        elif name in ("EXT1", "EXT2", "EXT4"):
            self.unsafe.setdefault(f"<copyreg extension {arg}>", None)
            push(_Opaque("extension"))
        else:
            raise _ScanError(f"opcode {name} not supported")
        return False

    def _extend(self, target: Any, items: list[Any]) -> None:
        if isinstance(target, _List):
            target.items.extend(items)
        elif isinstance(target, _Opaque):
            target.parts.extend(items)
        else:
            raise _ScanError("append to a non-list")

    def _fill_dict(self, target: Any, items: list[Any]) -> Any:
        if len(items) % 2:
            raise _ScanError("odd number of dict items")
        if isinstance(target, _Dict):
            for index in range(0, len(items), 2):
                target.set(items[index], items[index + 1])
        elif isinstance(target, _Opaque):
            target.parts.append(_Dict(dict(zip(map(_key_text, items[::2]), items[1::2], strict=True))))
        else:
            raise _ScanError("setitem on a non-dict")
        return target

    def _global(self, module: str, name: str) -> _Global:
        value = _Global(module, name)
        self.note_global(value.full)
        return value

    def _persistent(self, pid: Any) -> Any:
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] not in ("storage", b"storage"):
            return _Opaque("persistent id", [pid])
        storage_type, key, location, numel = pid[1:5]
        if isinstance(key, int) and not isinstance(key, bool):
            key = str(key)
        if not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise _ScanError("malformed storage persistent id")
        dtype = None
        if isinstance(storage_type, _Global) and storage_type.module == "torch":
            dtype = from_torch_storage(storage_type.name) or from_torch_dtype(storage_type.name)
        ref = TorchStorageRef(key, dtype, numel, location if isinstance(location, str) else "")
        known = self.storages.setdefault(key, ref)
        if known != ref:
            self.warnings.append(f"storage {key} described twice, differently")
        return known

    def _call(self, func: Any, args: Any) -> Any:
        full = func.full if isinstance(func, _Global) else None
        if full is None or full not in SAFE_GLOBALS or not isinstance(args, tuple):
            return _Opaque(f"call {_describe(func)}", [args])
        if full in _REBUILD_TENSOR:
            return _rebuild_tensor(args, None)
        if full == _REBUILD_TENSOR_V3:
            dtype_arg = args[6] if len(args) > 6 else None
            if not isinstance(dtype_arg, _Global) or dtype_arg.module != "torch":
                raise _ScanError("_rebuild_tensor_v3 without a torch dtype")
            return _rebuild_tensor(args, from_torch_dtype(dtype_arg.name))
        if full in _REBUILD_PARAMETER:
            if not args or not isinstance(args[0], _Tensor):
                raise _ScanError("_rebuild_parameter of a non-tensor")
            return args[0]
        if full == _REBUILD_FROM_TYPE:
            if len(args) < 3 or not isinstance(args[2], tuple):
                raise _ScanError("malformed _rebuild_from_type_v2")
            return self._call(args[0], args[2])
        if full in _CONTAINERS:
            result = _Dict()
            if args and isinstance(args[0], _List):
                for pair in args[0].items:
                    if isinstance(pair, tuple) and len(pair) == 2:
                        result.set(*pair)
            return result
        if full == "torch.Size" and args and isinstance(args[0], tuple):
            return args[0]
        return _Opaque(f"call {full}", [args])


def _rebuild_tensor(args: tuple, dtype_override: str | None) -> _Tensor:
    if len(args) < 4:
        raise _ScanError("tensor rebuild with too few arguments")
    storage, offset, shape, stride = args[:4]
    if not isinstance(storage, TorchStorageRef):
        raise _ScanError("tensor rebuild without a storage")
    if not _int_tuple(shape) or not _int_tuple(stride) or len(shape) != len(stride):
        raise _ScanError("tensor rebuild with a bad size or stride")
    if type(offset) is not int or offset < 0:
        raise _ScanError("tensor rebuild with a bad storage offset")
    dtype = dtype_override or storage.dtype
    return _Tensor(storage, offset, shape, stride, dtype)


def _int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(type(v) is int and v >= 0 for v in value)


def _split_global(arg: Any) -> tuple[str, str]:
    if not isinstance(arg, str) or " " not in arg:
        raise _ScanError("malformed GLOBAL")
    module, name = arg.split(" ", 1)
    return module, name


def _describe(value: Any) -> str:
    return value.full if isinstance(value, _Global) else type(value).__name__


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode("latin-1")
    if key is None or isinstance(key, (bool, int, float)):
        return str(key)
    return f"<{type(key).__name__}>"


_WALKED = (_Tensor, _Dict, _List, tuple, _Opaque)


class _Walker:
    """Name every tensor reachable from the root by its path of dict keys / list indices."""

    def __init__(self) -> None:
        self.found: list[TorchTensorRef] = []
        self.names: set[str] = set()
        self.visited = 0
        self.on_path: set[int] = set()
        self.expansions: dict[int, int] = {}
        self.truncated = False

    def walk(self, value: Any, path: str, depth: int) -> None:
        self.visited += 1
        if self.visited > MAX_WALK_NODES or depth > MAX_WALK_DEPTH:
            self.truncated = True
            return
        if isinstance(value, _Tensor):
            self._add(value, path)
            return
        if isinstance(value, _Dict):
            children = [(_key_text(k), v) for k, v in value.entries.items()]
        elif isinstance(value, _List):
            children = [(str(i), v) for i, v in enumerate(value.items)]
        elif isinstance(value, tuple):
            children = [(str(i), v) for i, v in enumerate(value)]
        elif isinstance(value, _Opaque):
            children = [("", v) for v in value.parts]
        else:
            return
        identity = id(value)
        if identity in self.on_path:
            return
        expansions = self.expansions.get(identity, 0)
        if expansions >= MAX_EXPANSIONS:  # memo-shared structure, expanded exponentially
            self.truncated = True
            return
        self.expansions[identity] = expansions + 1
        self.on_path.add(identity)
        for key, child in children:
            if isinstance(child, _WALKED):
                self.walk(child, f"{path}.{key}" if path and key else path or key, depth + 1)
        self.on_path.discard(identity)

    def _add(self, tensor: _Tensor, path: str) -> None:
        name = path or "<root>"
        unique, count = name, 1
        while unique in self.names:
            count += 1
            unique = f"{name}#{count}"
        self.names.add(unique)
        self.found.append(
            TorchTensorRef(
                name=unique,
                dtype=tensor.dtype,
                shape=tensor.shape,
                stride=tensor.stride,
                storage_key=tensor.storage.key,
                storage_offset=tensor.offset,
                storage_dtype=tensor.storage.dtype,
            )
        )


def scan_torch_pickle(data: bytes) -> TorchPickleScan:
    """The tensors and unsafe globals of a pickle, found without executing any of it."""
    machine = _Machine()
    error: str | None = None
    stopped = False
    ops = pickletools.genops(data)
    try:
        for opcode, arg, _pos in ops:
            if machine.step(opcode.name, arg):
                stopped = True
                break
    except _ScanError as exc:
        error = str(exc)
        _collect_remaining_globals(machine, ops)
    except MALFORMED_ERRORS as exc:  # genops on a truncated or garbled pickle
        error = f"unreadable pickle: {exc}"
    if error is None and not stopped:
        error = "pickle has no STOP"
    unsafe = list(machine.unsafe)
    if error is not None:
        return TorchPickleScan(unsafe_globals=unsafe, error=error)
    walker = _Walker()
    try:
        walker.walk(machine.result, "", 0)
    except RecursionError:
        return TorchPickleScan(unsafe_globals=unsafe, error="object nested too deeply")
    warnings = list(machine.warnings)
    if walker.truncated:
        warnings.append("object too large or too deep: some tensors may be missing")
    return TorchPickleScan(walker.found, unsafe, None, dict(machine.storages), warnings)


def _collect_remaining_globals(machine: _Machine, ops: Any) -> None:
    """After the stack machine gave up, still report the globals the rest would import."""
    try:
        for opcode, arg, _pos in ops:
            name = opcode.name
            if name in _STRING_OPS:
                machine.recent_strings.append(arg)
            elif name in ("GLOBAL", "INST") and isinstance(arg, str):
                machine.note_global(arg.replace(" ", ".", 1))
            elif name == "STACK_GLOBAL":
                strings = [s for s in machine.recent_strings if isinstance(s, str)]
                machine.note_global(".".join(strings) if len(strings) == 2 else "<unknown STACK_GLOBAL>")
            elif name in ("EXT1", "EXT2", "EXT4"):
                machine.unsafe.setdefault(f"<copyreg extension {arg}>", None)
    except MALFORMED_ERRORS:
        machine.unsafe.setdefault("<unreadable rest of pickle>", None)
