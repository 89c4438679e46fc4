"""Zip-based model files: PyTorch checkpoints (torch.save), .npz, .keras, any zip.

The reader trusts the central directory (found from the end-of-central-directory record,
zip64 included) and checks each member's local header against it. Member data is a
segment of its own; uncompressed PyTorch storages and .npy arrays become tensor segments.
A PyTorch data.pkl is scanned by torch_pickle (never unpickled) for the tensor table.
Deflated members (numpy.savez_compressed, a re-zipped checkpoint) stay plain bytes for
chunking; their tensors enter the tensor table with their place in the inflated member.
Tensors in members of other compression methods are named in Layout.unread.
"""

from __future__ import annotations

import bisect
import struct
from dataclasses import dataclass, replace
from typing import Any

from modelvc.formats import ByteSource, Deflated, Layout, Segment, span_elements
from modelvc.formats.base import MAX_HEADER_BYTES, MalformedLayout, assemble, read_exact
from modelvc.formats.dtypes import itemsize
from modelvc.formats.inflate import BadDeflateStream, InflatingSource
from modelvc.formats.npy import npy_segments, npy_tensor
from modelvc.formats.torch_pickle import TorchPickleScan, TorchTensorRef, scan_torch_pickle

EOCD = struct.Struct("<4sHHHHIIH")  # 22 bytes
ZIP64_LOCATOR = struct.Struct("<4sIQI")  # 20 bytes
ZIP64_EOCD = struct.Struct("<4sQHHIIQQQQ")  # 56 bytes
CENTRAL = struct.Struct("<4sHHHHHHIIIHHHHHII")  # 46 bytes
LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
MAX_COMMENT = 0xFFFF
STORED, DEFLATED = 0, 8
FLAG_ENCRYPTED, FLAG_DESCRIPTOR, FLAG_UTF8 = 0x1, 0x8, 0x800


@dataclass
class ZipMember:
    name: str
    flags: int
    method: int
    compressed_size: int
    uncompressed_size: int
    header_offset: int
    data_offset: int = -1

    @property
    def data_end(self) -> int:
        return self.data_offset + self.compressed_size

    @property
    def is_plain(self) -> bool:
        """Stored uncompressed and unencrypted: its bytes are the member's bytes."""
        return self.method == STORED and not self.flags & FLAG_ENCRYPTED

    @property
    def size(self) -> int:
        """Bytes of the member's content (inflated, when compressed)."""
        return self.compressed_size if self.method == STORED else self.uncompressed_size

    @property
    def deflated(self) -> Deflated | None:
        """Where to inflate it from, when it is deflate-compressed and unencrypted."""
        if self.method != DEFLATED or self.flags & FLAG_ENCRYPTED:
            return None
        return Deflated(self.data_offset, self.compressed_size, self.uncompressed_size)

    def unreadable(self) -> str | None:
        """Why its bytes cannot be read, or None when they can (stored or deflated)."""
        if self.flags & FLAG_ENCRYPTED:
            return f"{self.name} is encrypted"
        if self.method not in (STORED, DEFLATED):
            return f"{self.name} is compressed with zip method {self.method}, which mvc does not read"
        return None

    def bytes_in(self, source: ByteSource) -> tuple[ByteSource, int]:
        """A source holding the member's bytes, and where they start in it."""
        deflated = self.deflated
        if deflated is not None:
            return InflatingSource(source, deflated), 0
        return source, self.data_offset


def read_zip_layout(source: ByteSource, name: str = "") -> Layout:
    members, cd_offset = read_central_directory(source)
    for member in members:
        _read_local_header(source, member, cd_offset)
    parts = [Segment("<central directory>", cd_offset, source.size - cd_offset, "other")]
    parts += _framing_segments(members, cd_offset)
    by_name = {m.name: m for m in members}
    if len(by_name) != len(members):
        raise MalformedLayout("zip has two members with the same name")
    pickle_member = _find_torch_pickle(members)
    if pickle_member is not None:
        return _pytorch_layout(source, members, pickle_member, by_name, parts)
    if members and all(m.name.endswith(".npy") for m in members):
        return _npz_layout(source, members, parts)
    parts += [Segment(m.name, m.data_offset, m.compressed_size, "other") for m in members]
    return assemble("zip", source.size, parts)


def read_central_directory(source: ByteSource) -> tuple[list[ZipMember], int]:
    """The members listed in the central directory, and where that directory starts."""
    size = source.size
    tail_len = min(size, EOCD.size + MAX_COMMENT)
    tail = read_exact(source, size - tail_len, tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    while pos >= 0:
        if pos + EOCD.size <= len(tail):
            comment_len = struct.unpack_from("<H", tail, pos + 20)[0]
            if pos + EOCD.size + comment_len == len(tail):
                break
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    if pos < 0:
        raise MalformedLayout("no end-of-central-directory record")
    eocd_at = size - tail_len + pos
    _, disk, cd_disk, _, count, cd_size, cd_offset, _ = EOCD.unpack_from(tail, pos)
    cd_limit = eocd_at
    if eocd_at >= ZIP64_LOCATOR.size:
        locator = read_exact(source, eocd_at - ZIP64_LOCATOR.size, ZIP64_LOCATOR.size)
        signature, _, record_at, _ = ZIP64_LOCATOR.unpack(locator)
        if signature == b"PK\x06\x07":
            if record_at + ZIP64_EOCD.size > eocd_at - ZIP64_LOCATOR.size:
                raise MalformedLayout("zip64 end record out of range")
            fields = ZIP64_EOCD.unpack(read_exact(source, record_at, ZIP64_EOCD.size))
            if fields[0] != b"PK\x06\x06":
                raise MalformedLayout("zip64 end record signature missing")
            disk, cd_disk, _, count, cd_size, cd_offset = fields[4:10]
            cd_limit = record_at
    if disk != 0 or cd_disk != 0:
        raise MalformedLayout("multi-disk zip")
    if cd_offset + cd_size > cd_limit or count * CENTRAL.size > cd_size:
        raise MalformedLayout("central directory out of range")
    directory = read_exact(source, cd_offset, cd_size)
    members = []
    pos = 0
    for _ in range(count):
        member, pos = _parse_central_entry(directory, pos)
        members.append(member)
    return members, cd_offset


def _parse_central_entry(directory: bytes, pos: int) -> tuple[ZipMember, int]:
    if pos + CENTRAL.size > len(directory):
        raise MalformedLayout("central directory truncated")
    fields = CENTRAL.unpack_from(directory, pos)
    if fields[0] != b"PK\x01\x02":
        raise MalformedLayout("central directory entry signature missing")
    flags, method = fields[3], fields[4]
    csize, usize, name_len, extra_len, comment_len = fields[8:13]
    header_offset = fields[16]
    name_at = pos + CENTRAL.size
    end = name_at + name_len + extra_len + comment_len
    if end > len(directory):
        raise MalformedLayout("central directory entry truncated")
    raw_name = directory[name_at : name_at + name_len]
    try:
        name = raw_name.decode("utf-8" if flags & FLAG_UTF8 else "cp437")
    except UnicodeDecodeError:
        raise MalformedLayout("zip member name is not UTF-8") from None
    extra = directory[name_at + name_len : name_at + name_len + extra_len]
    usize, csize, header_offset = _apply_zip64(extra, usize, csize, header_offset)
    return ZipMember(name, flags, method, csize, usize, header_offset), end


def _apply_zip64(extra: bytes, usize: int, csize: int, offset: int) -> tuple[int, int, int]:
    """Replace the 0xFFFFFFFF placeholders by the zip64 extra field's values, in order."""
    if 0xFFFFFFFF not in (usize, csize, offset):
        return usize, csize, offset
    pos = 0
    while pos + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        pos += 4 + length
        if tag != 0x0001:
            continue
        values = [struct.unpack_from("<Q", body, i)[0] for i in range(0, len(body) - 7, 8)]
        result = []
        for value in (usize, csize, offset):
            if value == 0xFFFFFFFF:
                if not values:
                    raise MalformedLayout("zip64 extra field too short")
                value = values.pop(0)
            result.append(value)
        return result[0], result[1], result[2]
    raise MalformedLayout("zip64 sizes without a zip64 extra field")


def _read_local_header(source: ByteSource, member: ZipMember, cd_offset: int) -> None:
    if member.header_offset + LOCAL.size > cd_offset:
        raise MalformedLayout(f"local header of {member.name!r} out of range")
    fields = LOCAL.unpack(read_exact(source, member.header_offset, LOCAL.size))
    if fields[0] != b"PK\x03\x04":
        raise MalformedLayout(f"local header of {member.name!r} missing")
    member.data_offset = member.header_offset + LOCAL.size + fields[9] + fields[10]
    if member.data_end > cd_offset:
        raise MalformedLayout(f"data of {member.name!r} runs into the central directory")


def _framing_segments(members: list[ZipMember], cd_offset: int) -> list[Segment]:
    """Local headers, and data descriptors where the flag and the gap say there is one."""
    parts = []
    starts = sorted(m.header_offset for m in members) + [cd_offset]
    for member in members:
        parts.append(
            Segment(f"{member.name}:<local header>", member.header_offset,
                    member.data_offset - member.header_offset, "other")
        )  # fmt: skip
        if member.flags & FLAG_DESCRIPTOR:
            following = starts[bisect.bisect_left(starts, member.data_end)]
            if following - member.data_end in (12, 16, 20, 24):
                parts.append(
                    Segment(f"{member.name}:<data descriptor>", member.data_end,
                            following - member.data_end, "other")
                )  # fmt: skip
    return parts


def _npz_layout(source: ByteSource, members: list[ZipMember], parts: list[Segment]) -> Layout:
    """Stored arrays are tensor segments; deflated ones (savez_compressed) stay "other" bytes
    for chunking, and enter the tensor table with their place in the inflated member."""
    warnings: list[str] = []
    table: list[Segment] = []
    unread: list[tuple[str, str]] = []
    for member in members:
        tensor_name = member.name[: -len(".npy")]
        if member.is_plain:
            array_parts, tensor, array_warnings = npy_segments(
                source, member.data_offset, member.compressed_size, tensor_name, f"{member.name}:<header>"
            )
            parts += array_parts
        else:
            parts.append(Segment(member.name, member.data_offset, member.compressed_size, "other"))
            why = member.unreadable()
            if why is not None:
                unread.append((tensor_name, why))
                warnings.append(f"tensor {tensor_name} cannot be read: {why}")
                continue
            inflated, _ = member.bytes_in(source)
            try:
                _, tensor, array_warnings = npy_tensor(inflated, 0, member.uncompressed_size, tensor_name)
            except BadDeflateStream as exc:
                raise MalformedLayout(f"{member.name}: {exc}") from None
            tensor = replace(tensor, deflated=member.deflated)
        table.append(tensor)
        warnings += array_warnings
    return assemble("npz", source.size, parts, tensor_table=tuple(table), warnings=warnings, unread=unread)


def _find_torch_pickle(members: list[ZipMember]) -> ZipMember | None:
    for member in members:
        if member.name == "data.pkl" or (
            member.name.endswith("/data.pkl") and member.name.count("/") == 1
        ):
            return member
    return None


def _read_member(source: ByteSource, member: ZipMember) -> bytes:
    why = member.unreadable()
    if member.uncompressed_size > MAX_HEADER_BYTES or why is not None:
        raise MalformedLayout(why or f"{member.name} too large")
    holder, start = member.bytes_in(source)
    try:
        data = holder.read(start, member.uncompressed_size)
    except BadDeflateStream as exc:
        raise MalformedLayout(f"{member.name}: {exc}") from None
    if len(data) != member.uncompressed_size:
        raise MalformedLayout(f"{member.name}: shorter than the directory says")
    return data


def _pytorch_layout(
    source: ByteSource,
    members: list[ZipMember],
    pickle_member: ZipMember,
    by_name: dict[str, ZipMember],
    parts: list[Segment],
) -> Layout:
    prefix = pickle_member.name[: -len("data.pkl")]
    scan = scan_torch_pickle(_read_member(source, pickle_member))
    warnings = list(scan.warnings)
    metadata: dict[str, Any] = {"pickle": pickle_member.name, "unsafe_globals": scan.unsafe_globals}
    if scan.unsafe_globals:
        names = ", ".join(scan.unsafe_globals)
        warnings.append(f"{pickle_member.name} imports {names}: torch.load may run code")
    if scan.error is not None:
        warnings.append(f"{pickle_member.name} could not be scanned: {scan.error}")
    claimed = {pickle_member.name}
    parts.append(Segment(pickle_member.name, pickle_member.data_offset,
                         pickle_member.compressed_size, "header"))  # fmt: skip
    table: list[Segment] = []
    storages = _storage_members(scan, prefix, by_name)
    refs_by_storage: dict[str, list[TorchTensorRef]] = {}
    for ref in scan.tensors:
        refs_by_storage.setdefault(ref.storage_key, []).append(ref)
    for key, member in storages.items():
        claimed.add(member.name)
        parts.append(_storage_segment(scan, key, member, refs_by_storage.get(key, [])))
    unread: list[tuple[str, str]] = []
    for ref in scan.tensors:
        entry, why = _table_entry(ref, storages[ref.storage_key])
        if entry is not None:
            table.append(entry)
        else:
            unread.append((ref.name, why))
            warnings.append(f"tensor {ref.name} cannot be read: {why}")
    for member in members:
        if member.name not in claimed:
            parts.append(Segment(member.name, member.data_offset, member.compressed_size, "other"))
    tensor_table = tuple(table) if scan.error is None else None
    return assemble("pytorch", source.size, parts, metadata=metadata,
                    tensor_table=tensor_table, warnings=warnings, unread=unread)  # fmt: skip


def _storage_members(scan: TorchPickleScan, prefix: str, by_name: dict[str, ZipMember]) -> dict[str, ZipMember]:
    result = {}
    for key, storage in scan.storages.items():
        member = by_name.get(f"{prefix}data/{key}")
        if member is None:
            raise MalformedLayout(f"storage {key} named in the pickle is missing")
        size_of = itemsize(storage.dtype) if storage.dtype else None
        if member.unreadable() is None and size_of is not None and storage.numel * size_of != member.size:
            raise MalformedLayout(f"storage {key} size differs from the pickle")
        result[key] = member
    return result


def _storage_segment(scan: TorchPickleScan, key: str, member: ZipMember, refs: list[TorchTensorRef]) -> Segment:
    """The storage's bytes as a segment for chunking: a tensor segment when stored plainly
    with a known type (named after its tensor when it is exactly one contiguous tensor)."""
    storage = scan.storages[key]
    if not member.is_plain or storage.dtype is None:
        return Segment(member.name, member.data_offset, member.compressed_size, "other")
    if len(refs) == 1:
        ref = refs[0]
        size_of = itemsize(ref.dtype or "")
        if (ref.is_contiguous and ref.storage_offset == 0 and size_of is not None
                and ref.numel * size_of == member.compressed_size):  # fmt: skip
            return Segment(ref.name, member.data_offset, member.compressed_size, "tensor",
                           ref.dtype, ref.shape)  # fmt: skip
    return Segment(f"storage:{key}", member.data_offset, member.compressed_size, "tensor",
                   storage.dtype, (storage.numel,))  # fmt: skip


def _table_entry(ref: TorchTensorRef, member: ZipMember) -> tuple[Segment | None, str]:
    """The tensor's entry, or why it has none. A view that is not contiguous (a transpose
    torch.save wrote as is) covers the span of storage it reaches, with its stride."""
    why = member.unreadable()
    if why is not None:
        return None, f"storage {why}"
    size_of = itemsize(ref.dtype or "")
    if size_of is None:
        return None, f"storage {member.name} holds elements of a type mvc does not know"
    span = span_elements(ref.shape, ref.stride) * size_of
    start = ref.storage_offset * size_of
    if ref.numel and start + span > member.size:
        raise MalformedLayout(f"tensor {ref.name!r} reaches past the end of its storage")
    base = member.data_offset if member.is_plain else 0
    stride = None if ref.is_contiguous else ref.stride
    return Segment(ref.name, base + start, span if ref.numel else 0, "tensor", ref.dtype, ref.shape,
                   stride, member.deflated), ""  # fmt: skip
