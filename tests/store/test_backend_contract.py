"""The backend contract: one test class, run against every backend (modelvc.store.backend).

Memory, directory, S3 (a real SeaweedFS) and Azure Blob (a real Azurite): a new backend joins
by adding a fixture parameter that builds it; every test below must then pass unchanged. Each
object-store test works under a prefix of its own in the session's one server.
"""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from modelvc.store.backend import (
    ContentConflictInBackend,
    DirectoryBackend,
    KeyStat,
    MemoryBackend,
    NotFoundInBackend,
)


@pytest.fixture(params=["directory", "memory", "s3", "azure"])
def backend(request, tmp_path, monkeypatch):
    if request.param == "directory":
        return DirectoryBackend(tmp_path / "store")
    if request.param == "memory":
        return MemoryBackend()
    from modelvc.store.objectstore_backend import open_object_store

    server = request.getfixturevalue("seaweedfs" if request.param == "s3" else "azurite")
    for name, value in server.env.items():
        monkeypatch.setenv(name, value)
    container = server.extra.get("bucket") or server.extra["container"]
    prefix = f"contract/{uuid.uuid4().hex}"
    scheme = "s3" if request.param == "s3" else "az"
    return open_object_store(scheme, container, prefix, f"{scheme}://{container}/{prefix}",
                             endpoint=server.endpoint, region="us-east-1", path_style=True)


class TestBackendContract:
    def test_write_then_read_whole_and_stat(self, backend):
        data = os.urandom(5000)
        backend.write("packs/pack-1.pack", data)
        assert backend.read("packs/pack-1.pack") == data
        found = backend.stat("packs/pack-1.pack")
        assert isinstance(found, KeyStat) and found.size == 5000 and found.mtime > 0

    def test_empty_value_is_a_value(self, backend):
        backend.write("refs/heads/empty", b"")
        assert backend.read("refs/heads/empty") == b"" and backend.stat("refs/heads/empty").size == 0

    def test_list_by_prefix_sorted_and_nothing_else(self, backend):
        keys = ["objects/ab/cd", "objects/ab/ce", "objects/ac/00", "packs/pack-1.idx", "refs/heads/main"]
        for key in reversed(keys):
            backend.write(key, key.encode())
        assert backend.list("objects/") == keys[:3]
        assert backend.list("objects/ab/c") == keys[:2]
        assert backend.list("objects/ab/ce") == ["objects/ab/ce"]
        assert backend.list("obj") == keys[:3]
        assert backend.list("") == keys
        assert backend.list("objects/zz/") == [] and backend.list("nothing/") == []

    @pytest.mark.parametrize("offset, length, expected", [
        (0, 0, b""), (0, 1, b"0"), (0, 10, b"0123456789"), (9, 1, b"9"), (9, 5, b"9"),
        (10, 1, b""), (10, None, b""), (25, 3, b""), (3, None, b"3456789"), (4, 2, b"45"),
    ])
    def test_range_reads_at_the_edges(self, backend, offset, length, expected):
        backend.write("packs/p", b"0123456789")
        assert backend.read("packs/p", offset, length) == expected

    def test_negative_ranges_are_refused(self, backend):
        backend.write("packs/p", b"0123456789")
        with pytest.raises(ValueError):
            backend.read("packs/p", -1, 2)
        with pytest.raises(ValueError):
            backend.read("packs/p", 0, -2)

    @pytest.mark.parametrize("operation", ["read", "range", "stat", "delete"])
    def test_not_found_is_typed(self, backend, operation):
        backend.write("objects/ab/present", b"x")
        calls = {"read": lambda: backend.read("objects/ab/absent"),
                 "range": lambda: backend.read("objects/ab/absent", 1, 1),
                 "stat": lambda: backend.stat("objects/ab/absent"),
                 "delete": lambda: backend.delete("objects/ab/absent")}
        with pytest.raises(NotFoundInBackend):
            calls[operation]()
        assert backend.read("objects/ab/present") == b"x"

    def test_a_prefix_of_keys_is_not_a_key(self, backend):
        backend.write("objects/ab/cd", b"x")
        with pytest.raises(NotFoundInBackend):
            backend.read("objects/ab")
        with pytest.raises(NotFoundInBackend):
            backend.stat("objects/ab")

    def test_write_is_idempotent_and_never_overwrites_other_content(self, backend):
        backend.write("packs/pack-1.idx", b"index")
        backend.write("packs/pack-1.idx", b"index")
        with pytest.raises(ContentConflictInBackend):
            backend.write("packs/pack-1.idx", b"other")
        assert backend.read("packs/pack-1.idx") == b"index"

    def test_write_if_absent(self, backend):
        assert backend.write_if_absent("objects/ab/cd", b"first") is True
        assert backend.write_if_absent("objects/ab/cd", b"second") is False
        assert backend.read("objects/ab/cd") == b"first"

    def test_write_if_absent_racing_threads_one_wins(self, backend):
        for round_number in range(20):
            key = f"objects/ab/race{round_number}"
            start = threading.Barrier(2)
            won: dict[bytes, bool] = {}

            def write(data: bytes, key: str = key, start: threading.Barrier = start,
                      won: dict[bytes, bool] = won) -> None:
                start.wait()
                won[data] = backend.write_if_absent(key, data)

            threads = [threading.Thread(target=write, args=(data,)) for data in (b"one" * 1000, b"two" * 1000)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert sorted(won.values()) == [False, True]
            assert backend.read(key) == next(data for data, created in won.items() if created)

    def test_compare_and_swap(self, backend):
        assert backend.compare_and_swap("refs/heads/main", None, b"a" * 64) is True
        assert backend.compare_and_swap("refs/heads/main", b"a" * 64, b"b" * 64) is True
        assert backend.read("refs/heads/main") == b"b" * 64

    def test_compare_and_swap_lost(self, backend):
        backend.write("refs/heads/main", b"b")
        assert backend.compare_and_swap("refs/heads/main", b"a", b"c") is False  # it moved
        assert backend.compare_and_swap("refs/heads/main", None, b"c") is False  # it exists
        assert backend.compare_and_swap("refs/heads/new", b"b", b"c") is False  # it is absent
        assert backend.read("refs/heads/main") == b"b"
        with pytest.raises(NotFoundInBackend):
            backend.read("refs/heads/new")

    def test_compare_and_swap_racing_threads_one_wins_each_step(self, backend):
        def step() -> bool:
            current = backend.read("refs/heads/main")
            return backend.compare_and_swap("refs/heads/main", current, b"%d" % (int(current) + 1))

        assert_each_step_has_one_winner(backend, step, steps=50)

    def test_delete(self, backend):
        backend.write("packs/tmp-pack-1.pack", b"x")
        backend.delete("packs/tmp-pack-1.pack")
        assert backend.list("packs/") == []
        with pytest.raises(NotFoundInBackend):
            backend.read("packs/tmp-pack-1.pack")
        assert backend.write_if_absent("packs/tmp-pack-1.pack", b"y") is True

    @pytest.mark.parametrize("operation", ["write", "write_if_absent", "compare_and_swap", "swap_tagged"])
    def test_a_write_that_raises_leaves_nothing(self, backend, operation, tmp_path):
        unwritable = "not bytes"  # fails inside the write, after the backend has started it
        calls = {"write": lambda: backend.write("objects/ab/cd", unwritable),
                 "write_if_absent": lambda: backend.write_if_absent("objects/ab/cd", unwritable),
                 "compare_and_swap": lambda: backend.compare_and_swap("objects/ab/cd", None, unwritable),
                 "swap_tagged": lambda: backend.swap_tagged("objects/ab/cd", None, unwritable)}
        with pytest.raises(TypeError):
            calls[operation]()
        assert backend.list("") == []
        with pytest.raises(NotFoundInBackend):
            backend.stat("objects/ab/cd")
        if isinstance(backend, DirectoryBackend):  # nor a temporary file beside it
            assert [name for _, _, names in os.walk(tmp_path) for name in names] == []

    def test_write_if_absent_of_the_same_bytes_is_still_not_a_creation(self, backend):
        assert backend.write_if_absent("packs/p", b"same") is True
        assert backend.write_if_absent("packs/p", b"same") is False

    def test_read_ranges_in_one_call(self, backend):
        data = os.urandom(3 << 20)
        backend.write("packs/big", data)
        ranges = [(0, 10), (5, 3), (2 << 20, 1 << 20), (len(data) - 4, 100), (len(data), 5), (7, 0),
                  (100, 1)]
        assert backend.read_ranges("packs/big", ranges) == [data[offset:offset + length]
                                                            for offset, length in ranges]
        assert backend.read_ranges("packs/big", []) == []
        with pytest.raises(NotFoundInBackend):
            backend.read_ranges("packs/absent", [(0, 1), (4, 2)])
        with pytest.raises(ValueError):
            backend.read_ranges("packs/big", [(0, 1), (-1, 1)])

    def test_list_after_pages_a_listing(self, backend):
        keys = [f"packs/pack-{number:02d}.idx" for number in range(12)] + ["packsx/other", "refs/heads/main"]
        for key in keys:
            backend.write(key, b"x")
        pages, after = [], ""
        while True:
            page = backend.list_after("packs/", after, limit=5)
            if not page:
                break
            pages.append(page)
            after = page[-1]
        assert pages == [keys[0:5], keys[5:10], keys[10:12]]
        assert backend.list_after("packs/pack-0", "packs/pack-07.idx") == keys[8:10]
        assert backend.list_after("", "packs/pack-11.idx") == keys[12:]
        assert backend.list_after("nothing/", "") == []

    def test_read_tagged_and_swap_tagged(self, backend):
        assert backend.swap_tagged("refs/heads/main", None, b"a" * 64) is True
        assert backend.swap_tagged("refs/heads/main", None, b"z" * 64) is False  # it exists now
        first = backend.read_tagged("refs/heads/main")
        assert first.data == b"a" * 64 and isinstance(first.tag, str) and first.tag
        assert backend.swap_tagged("refs/heads/main", first.tag, b"b" * 64) is True
        assert backend.swap_tagged("refs/heads/main", first.tag, b"c" * 64) is False  # it moved since
        second = backend.read_tagged("refs/heads/main")
        assert second.data == b"b" * 64 and second.tag != first.tag
        assert backend.swap_tagged("refs/heads/absent", second.tag, b"d") is False  # 404 or 412: moved
        with pytest.raises(NotFoundInBackend):
            backend.read_tagged("refs/heads/absent")
        backend.delete("refs/heads/main")
        assert backend.swap_tagged("refs/heads/main", second.tag, b"e") is False  # deleted: moved too

    def test_swap_tagged_racing_threads_one_wins_each_step(self, backend):
        def step() -> bool:
            current = backend.read_tagged("refs/heads/main")
            return backend.swap_tagged("refs/heads/main", current.tag, b"%d" % (int(current.data) + 1))

        assert_each_step_has_one_winner(backend, step, steps=15)

    @pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a/."])
    def test_keys_that_could_leave_the_store_are_refused(self, backend, key):
        with pytest.raises(ValueError):
            backend.write(key, b"x")


def test_total_size_counts_a_key_removed_since_listed_as_nothing():
    from modelvc.store.backend import total_size

    backend = MemoryBackend()
    backend.write("packs/a", b"12345")
    backend.write("packs/b", b"123")
    listed = backend.list("packs/")
    backend.delete("packs/b")
    assert total_size(backend, listed) == 5


def assert_each_step_has_one_winner(backend, step, steps: int) -> None:
    """Three threads each try `steps` increments of refs/heads/main by `step` (a swap that says
    whether it won): the counter must equal the number of wins, none lost or applied twice."""
    backend.write("refs/heads/main", b"0")
    wins = []

    def advance() -> None:
        for _ in range(steps):
            if step():
                wins.append(1)

    threads = [threading.Thread(target=advance) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert int(backend.read("refs/heads/main")) == len(wins) > 0
