"""The decompressed bytes of a deflate-compressed zip member, as a ByteSource.

Inflating reads the compressed stream from its start, so this source is made for readers
that go forward: it inflates only as far as a read reaches (a layout that wants an .npy
header inflates a few hundred bytes, not the array), keeps only what lies at or after the
last read, and starts over from the stream's start for a read behind that. Compressed
input is read in pieces that start small and double, up to MAX_STEP.
"""

from __future__ import annotations

import zlib

from modelvc.formats import ByteSource, Deflated

FIRST_STEP = 1024
MAX_STEP = 4 * 1024 * 1024


class BadDeflateStream(ValueError):
    """The member's compressed bytes do not inflate to its declared size."""


class InflatingSource:
    def __init__(self, source: ByteSource, member: Deflated) -> None:
        self.source = source
        self.member = member
        self.size = member.uncompressed_size
        self._restart()

    def _restart(self) -> None:
        self._inflater = zlib.decompressobj(-15)
        self._consumed = 0  # compressed bytes read from the source
        self._step = FIRST_STEP
        self._start = 0  # decompressed offset of self._buffer[0]
        self._buffer = bytearray()

    def read(self, offset: int, length: int) -> bytes:
        end = min(offset + max(length, 0), self.size)
        if offset < 0 or offset >= end:
            return b""
        if offset < self._start:
            self._restart()
        while True:
            drop = min(offset - self._start, len(self._buffer))
            if drop:
                del self._buffer[:drop]
                self._start += drop
            missing = end - self._start - len(self._buffer)
            if missing <= 0:
                break
            self._buffer += self._inflate(missing)
        begin = offset - self._start
        return bytes(self._buffer[begin : begin + end - offset])

    def _inflate(self, wanted: int) -> bytes:
        """Some more decompressed bytes (at most `wanted`), or BadDeflateStream."""
        member = self.member
        while True:
            if self._inflater.eof:
                raise BadDeflateStream(f"compressed data ends before its {self.size} bytes")
            tail = self._inflater.unconsumed_tail
            take = min(self._step, member.compressed_size - self._consumed)
            if not tail and take > 0:
                tail = self.source.read(member.data_offset + self._consumed, take)
                if len(tail) != take:
                    raise BadDeflateStream("compressed data runs past the end of the file")
                self._consumed += take
                self._step = min(2 * self._step, MAX_STEP)
            try:
                data = self._inflater.decompress(tail, min(max(wanted, 1), MAX_STEP))
            except zlib.error as exc:
                raise BadDeflateStream(f"compressed data is corrupt ({exc})") from None
            if data:
                return data
            if not tail:
                raise BadDeflateStream(f"compressed data is truncated before its {self.size} bytes")
