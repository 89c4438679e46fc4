"""detect.READERS: every entry names a reader that exists, and magic bytes pick the right one."""

from __future__ import annotations

import importlib

from modelvc.formats.detect import READERS, reader_for


def test_every_table_entry_names_a_reader_function():
    for entry in READERS:
        assert callable(getattr(importlib.import_module(entry.module), entry.function))


def test_magic_bytes_pick_the_reader():
    picks = {
        b"\x93NUMPY\x01\x00v\x00{'descr'": "read_npy_layout",
        b"GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00": "read_gguf_layout",
        b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00": "read_zip_layout",
        b"PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00": "read_zip_layout",
        b'\x10\x00\x00\x00\x00\x00\x00\x00{"a":{"dtype"': "read_safetensors_layout",
    }
    for magic, name in picks.items():
        reader = reader_for(magic)
        assert reader is not None and reader.__name__ == name, magic
    assert reader_for(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") is None
    assert reader_for(b"12345678") is None
