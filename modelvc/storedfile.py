"""A stored file version read from Python: a file object, or one tensor as a numpy array.

Both read through StoredFileSource, which fetches only the chunks a byte range touches and
checks each against its id (ChunkStore.read), so a damaged chunk is an IntegrityError, never
wrong bytes. Neither the working tree nor the index is read, and no lock is taken: a commit
running meanwhile only adds chunks and objects, it never changes those of a stored version.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from modelvc.errors import NotAModelFileError, UnknownTensorError
from modelvc.formats import ByteSource, Segment

if TYPE_CHECKING:
    import numpy as np

    from modelvc.repo import Repo
    from modelvc.store.filedata import StoredFileSource

# A BufferedReader asks the raw file for this much at a time: about one chunk, so sequential
# reads cost one chunk fetch each and not a Python call per 8 KiB.
READ_BUFFER_BYTES = 1 << 20


class StoredFileReader(io.RawIOBase):
    """Read-only, seekable raw file over a stored version's bytes."""

    def __init__(self, source: StoredFileSource, name: str) -> None:
        super().__init__()
        self._source = source
        self._position = 0
        self.name = name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._refuse_if_closed()
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self._source.size - self._position)
        if wanted <= 0:
            return 0
        data = self._source.read(self._position, wanted)
        view[:len(data)] = data
        self._position += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._refuse_if_closed()
        origin = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._source.size}.get(whence)
        if origin is None:
            raise ValueError(f"invalid whence ({whence})")
        if origin + offset < 0:
            raise ValueError(f"negative seek position {origin + offset}")
        self._position = origin + offset
        return self._position

    def tell(self) -> int:
        self._refuse_if_closed()
        return self._position

    def _refuse_if_closed(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed file")


def stored_source(repo: Repo, rev: str, path: str) -> tuple[StoredFileSource, str]:
    """(random access to PATH's bytes in REV, its path); PathNotFoundError when it is absent."""
    from modelvc.ops.materialize import fetch_absent_chunks
    from modelvc.ops.show import stored_entry
    from modelvc.store.filedata import StoredFileSource

    _commit_id, entry = stored_entry(repo, rev, path)
    manifest = repo.read_manifest(entry.manifest_id)
    fetch_absent_chunks(repo, [manifest])  # a partial clone's file: one bulk fetch first
    return StoredFileSource(manifest, repo.chunks), entry.path


def open_stored(repo: Repo, rev: str, path: str) -> io.BufferedReader:
    source, name = stored_source(repo, rev, path)
    return io.BufferedReader(StoredFileReader(source, name), READ_BUFFER_BYTES)


def read_stored_tensor(repo: Repo, rev: str, path: str, name: str) -> np.ndarray:
    """One tensor's elements, read from the chunks under its byte range only.

    Floats and integers come in their own numpy dtype; bfloat16 and float8, which numpy
    lacks, as float32 (exactly); GGUF's quantized blocks as their raw uint8 bytes. GGUF lists
    dimensions fastest first: the array has them reversed (row-major, as gguf-py reads them).
    The array is read-only when it is a view of the read bytes.
    """
    source, stored_path = stored_source(repo, rev, path)
    return tensor_from_source(source, stored_path, rev, name)


def tensor_from_source(source: ByteSource, stored_path: str, rev: str, name: str) -> np.ndarray:
    """Tensor NAME of the model file `source` holds (`stored_path` in `rev`, for the errors)."""
    from modelvc.formats.detect import read_layout

    layout = read_layout(source, stored_path.rsplit("/", 1)[-1])
    if layout is None:
        raise NotAModelFileError(f"'{stored_path}' in {rev} is not a model file modelvc reads tensors from",
                                 hint="read its bytes with open_file()")
    why = dict(layout.unread).get(name)
    if why is not None:
        raise UnknownTensorError(f"tensor '{name}' of '{stored_path}' in {rev} cannot be read: {why}")
    segment = next((s for s in layout.tensors() if s.name == name), None)
    if segment is None:
        raise UnknownTensorError(f"'{stored_path}' in {rev} has no tensor '{name}' "
                                 f"({len(layout.tensors())} tensors)",
                                 hint=f"list them with 'mvc show {rev}:{stored_path}'")
    reader: ByteSource = source
    if segment.deflated is not None:
        from modelvc.formats.inflate import InflatingSource

        reader = InflatingSource(source, segment.deflated)
    return tensor_array(reader.read(segment.offset, segment.length), segment, layout.format)


def tensor_array(raw: bytes, segment: Segment, file_format: str) -> np.ndarray:
    """The elements of `raw` as `segment` describes them (dtype, shape, stride)."""
    import numpy as np

    from modelvc.formats.dtypes import ITEMSIZES

    dtype = segment.dtype or "U8"
    shape = tuple(segment.shape or ())
    if dtype not in ITEMSIZES:  # a quantized ggml type: blocks, not elements
        return np.frombuffer(raw, dtype=np.uint8)
    if dtype in _WIDENED:
        from modelvc.modeldiff.stats import decode

        elements = decode(raw, dtype).astype(np.float32)
    else:
        elements = np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype])
    if file_format == "gguf":
        shape = shape[::-1]
    if segment.stride is not None:
        itemsize = elements.dtype.itemsize
        strided = np.lib.stride_tricks.as_strided(elements, shape, tuple(s * itemsize for s in segment.stride))
        return np.array(strided)
    return elements.reshape(shape)


_NUMPY_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2",
    "U8": "u1", "BOOL": "?", "C64": "<c8", "C128": "<c16",
}  # fmt: skip
_WIDENED = frozenset({"BF16", "F8_E4M3", "F8_E5M2"})
