"""The index file keeps its encoding across versions of mvc."""

from __future__ import annotations

import pytest

from modelvc.errors import CorruptIndexError
from modelvc.index import Index, IndexEntry

# Written by mvc before IndexEntry.file was renamed manifest_id (written_ns aside, byte for byte).
EARLIER_INDEX = (b'{"version":1,"written_ns":1796042211101394987,"entries":['
                 b'{"path":"a.bin","file":"' + b"4" * 64 + b'","size":7,"mode":33188,'
                 b'"mtime_ns":1700000000000000000,"ino":42},'
                 b'{"path":"b/c.bin","file":"' + b"5" * 64 + b'","size":9,"mode":33261,'
                 b'"mtime_ns":1700000000000000001,"ino":43,"unsynced_boot":"boot-1","dereference":true}]}')


def test_an_index_written_before_loads_and_is_written_back_the_same(tmp_path):
    path = tmp_path / "index"
    path.write_bytes(EARLIER_INDEX)
    index = Index(path)
    assert index.entries == {
        "a.bin": IndexEntry("a.bin", "4" * 64, 7, 0o100644, 1700000000000000000, 42),
        "b/c.bin": IndexEntry("b/c.bin", "5" * 64, 9, 0o100755, 1700000000000000001, 43, "boot-1", True)}
    index.save()
    assert path.read_bytes().split(b',"entries":')[1] == EARLIER_INDEX.split(b',"entries":')[1]


@pytest.mark.parametrize("entry", ['["a.bin"]',
                                   '{"path":"a.bin","manifest_id":"' + "4" * 64 + '","size":7,"mode":33188}'])
def test_an_entry_not_in_the_index_encoding_is_refused(tmp_path, entry):
    path = tmp_path / "index"
    path.write_text('{"version":1,"written_ns":1,"entries":[' + entry + "]}")
    with pytest.raises(CorruptIndexError, match=r"the index file .*index is corrupt \(an entry is not an object"):
        Index(path)
