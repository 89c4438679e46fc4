"""The commit-metadata cache, .mvc/commit-graph.sqlite: log and runs over thousands of commits
without reading and decoding every commit object (git's commit-graph is the model).

A row holds what a walk and a query need of a commit, already parsed (parents, author time, its
metrics/params/meta as compact JSON), beside the commit's canonical encoding for when the whole
commit is shown. The file is derived data: missing, unreadable, of another schema or failing its
checksum it is ignored and the objects answer, only slower. The checksum (blake3 over every
row, in id order) is checked each time the rows are loaded, which costs one hash of a few
megabytes; fsck checks each row against its object (through the row's own body, which must hash
to the commit's id). A walk over the whole history adds the
commits the cache lacks (an older mvc's, or ones just made); gc rewrites the file, when there
is one, from the reachable commits. SQLite writes added rows in place (its journal keeps the file whole); gc's
rewrite goes through the atomic-write helper like every other file.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from modelvc import objects as objmod
from modelvc.errors import CorruptObjectError, IntegrityError
from modelvc.fsutil import atomic_write
from modelvc.ids import hash_bytes
from modelvc.objects import Commit
from modelvc.repo import Repo

if TYPE_CHECKING:
    from modelvc.ops.query import CommitValues

CACHE_FILE = "commit-graph.sqlite"
_SCHEMA_VERSION = 1
_SCHEMA = ("CREATE TABLE IF NOT EXISTS commits (id TEXT PRIMARY KEY, parents TEXT NOT NULL, time INTEGER NOT NULL,"
           " own_values TEXT NOT NULL, body BLOB NOT NULL) WITHOUT ROWID",
           "CREATE TABLE IF NOT EXISTS info (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
_ROWS = "SELECT id, parents, time, own_values, body FROM commits ORDER BY id"
Row = tuple[str, str, int, str, bytes]


def cache_path(repo: Repo) -> Path:
    return repo.mvc_dir / CACHE_FILE


def row_of(commit_id: str, commit: Commit, body: bytes) -> Row:
    own = {"metrics": commit.metrics, "params": commit.params, "meta": commit.meta}
    return (commit_id, " ".join(commit.parents), commit.author.time,
            json.dumps(own, sort_keys=True, separators=(",", ":"), ensure_ascii=False), body)


def checksum(rows: list[Row]) -> str:
    """One hash over every row in id order: a changed, added or lost row changes it."""
    text = "".join(f"{i}\0{p}\0{t}\0{v}\0{len(b)}\n" for i, p, t, v, b in rows).encode("utf-8", "surrogatepass")
    return hash_bytes(text + b"".join(body for *_, body in rows))


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    """A connection to the cache; sqlite3.Error when it is missing (read-only) or not ours."""
    uri = path.as_uri() + ("?mode=ro" if read_only else "")
    connection = sqlite3.connect(uri, uri=True, timeout=0.5, isolation_level=None)
    try:
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and not read_only:
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        elif version != _SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"schema version {version}, not {_SCHEMA_VERSION}")
    except BaseException:
        connection.close()
        raise
    return connection


def _load(connection: sqlite3.Connection) -> tuple[list[Row], str | None]:
    rows = [(str(i), str(p), int(t), str(v), bytes(b)) for i, p, t, v, b in connection.execute(_ROWS)]
    stored = connection.execute("SELECT value FROM info WHERE key = 'checksum'").fetchone()
    return rows, stored[0] if stored else None


def _write_rows(connection: sqlite3.Connection, rows: list[Row]) -> None:
    """Add rows and store the checksum of the whole table, in one transaction."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.executemany("INSERT OR IGNORE INTO commits VALUES (?, ?, ?, ?, ?)", rows)
        everything, _ = _load(connection)
        connection.execute("INSERT OR REPLACE INTO info VALUES ('checksum', ?)", (checksum(everything),))
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


class CommitReader:
    """What a history walk needs of each commit: from the cache, when `bulk` (a walk over most of
    the history) and the cache is whole; else from the objects. save() adds what the objects gave."""

    def __init__(self, repo: Repo, bulk: bool) -> None:
        self.repo = repo
        self.path = cache_path(repo)
        self._rows: dict[str, Row] = {}
        self._cache_ok = False  # the file exists and its checksum holds
        self._added: dict[str, Row] = {}
        self._commits: dict[str, Commit] = {}
        self._values: dict[str, CommitValues] = {}
        # imported here: fsck imports this module to check the cache, and needs neither
        from modelvc.ops.annotate import all_annotations
        from modelvc.ops.query import CommitValues, commit_values

        annotations = all_annotations(self.repo)  # values added later join the commits' own (not cached)
        self._values_of = lambda commit_id, own: commit_values(
            commit_id, CommitValues(own["metrics"], own["params"], own["meta"]), annotations)
        if bulk:
            self._rows = self._read_cache()

    def _read_cache(self) -> dict[str, Row]:
        try:
            connection = _connect(self.path, read_only=True)
            try:
                rows, stored = _load(connection)
            finally:
                connection.close()
        except sqlite3.Error:  # missing, unreadable or not ours: the objects answer
            return {}
        if stored != checksum(rows):
            return {}
        self._cache_ok = True
        return {row[0]: row for row in rows}

    def _row(self, commit_id: str) -> Row:
        row = self._rows.get(commit_id)
        if row is None:
            commit = self.commit(commit_id)
            encoded = objmod.encode(commit)
            row = self._rows[commit_id] = row_of(commit_id, commit, encoded)
            if hash_bytes(encoded) == commit_id:  # else not canonical: left to the objects
                self._added[commit_id] = row
        return row

    def parents(self, commit_id: str) -> list[str]:
        text = self._row(commit_id)[1]
        return text.split(" ") if text else []

    def time(self, commit_id: str) -> int:
        return self._row(commit_id)[2]

    def values(self, commit_id: str) -> CommitValues:
        """commit_values of the commit, from its cached own values when the cache has them."""
        found = self._values.get(commit_id)
        if found is None:
            own = json.loads(self._row(commit_id)[3])
            found = self._values[commit_id] = self._values_of(commit_id, own)
        return found

    def commit(self, commit_id: str) -> Commit:
        found = self._commits.get(commit_id)
        if found is None:
            row = self._rows.get(commit_id)
            try:
                decoded = objmod.decode(row[4], commit_id) if row is not None else None
            except CorruptObjectError:
                decoded = None
            found = decoded if isinstance(decoded, Commit) else self.repo.read_commit(commit_id)
            self._commits[commit_id] = found
        return found

    def save(self) -> None:
        """Add the commits read from the objects to a whole cache (or start one); failing to (a
        read-only store, a busy file) only leaves the next walk as slow as this one."""
        if not self._added or (self.path.exists() and not self._cache_ok):
            return
        try:
            connection = _connect(self.path, read_only=False)
            try:
                _write_rows(connection, sorted(self._added.values()))
            finally:
                connection.close()
        except (sqlite3.Error, OSError):
            return
        self._added.clear()


def rebuild(repo: Repo, commit_ids: Iterable[str]) -> int:
    """Rewrite the cache whole with these commits (gc's reachable ones), if there is one (walks
    make it: a repository whose history is never searched has none); returns the row count."""
    if not cache_path(repo).exists():
        return 0
    rows = []
    for commit_id in sorted(commit_ids):
        body = bytes(repo.objects.read_verified(commit_id))
        commit = objmod.decode(body, commit_id)
        if isinstance(commit, Commit):
            rows.append(row_of(commit_id, commit, body))
    try:
        data = _database_bytes(repo, rows)
        atomic_write(cache_path(repo), data)
    except (OSError, sqlite3.Error):  # a full disk must not stop gc: without the file, log reads the objects
        cache_path(repo).unlink(missing_ok=True)
        return 0
    return len(rows)


def _database_bytes(repo: Repo, rows: list[Row]) -> bytes:
    """A whole cache file holding `rows`, built in memory (Python 3.10: in a scratch file in .mvc)."""
    with contextlib.ExitStack() as stack:
        if hasattr(sqlite3.Connection, "serialize"):
            target = ":memory:"
        else:
            import tempfile  # here: fsck imports this module, only gc on Python 3.10 needs it

            target = str(Path(stack.enter_context(tempfile.TemporaryDirectory(dir=repo.mvc_dir, prefix=".cg-")))
                         / CACHE_FILE)
        connection = sqlite3.connect(target, isolation_level=None)
        try:
            for statement in _SCHEMA:
                connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
            _write_rows(connection, rows)
            if target == ":memory:":
                return bytes(connection.serialize())  # type: ignore[attr-defined]
        finally:
            connection.close()
        return Path(target).read_bytes()


@dataclass(frozen=True)
class CacheCheck:
    """What fsck found in the cache: its row count and problems (none when it agrees with the objects)."""

    rows: int
    problems: list[str]


def check(repo: Repo, present: Collection[str] = ()) -> CacheCheck | None:
    """Whether the cache is whole and each row is what its commit object says; None without one.
    `present`: commits known to be in the store (fsck's walk read them), not looked up again."""
    path = cache_path(repo)
    if not path.exists():
        return None
    hint = "it is ignored; 'mvc gc' rebuilds it"
    try:
        connection = _connect(path, read_only=True)
        try:
            rows, stored = _load(connection)
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return CacheCheck(0, [f"{CACHE_FILE} is unreadable ({exc}): {hint}"])
    problems = [] if stored == checksum(rows) else [f"{CACHE_FILE} fails its checksum: {hint}"]
    wrong = [row[0] for row in rows if not _agrees(repo, row, present)]
    if wrong:
        problems.append(f"{CACHE_FILE} has {len(wrong)} row(s) that disagree with the commit objects "
                        f"(first {wrong[0][:10]}): {hint}")
    return CacheCheck(len(rows), problems)


def _agrees(repo: Repo, row: Row, present: Collection[str]) -> bool:
    """The row's body is its commit's canonical encoding when it hashes to the commit's id (ids
    are content hashes), so the stored object need not be read again: fsck's walk verifies it.
    A row for an object the store lacks disagrees."""
    commit_id, body = row[0], row[4]
    if hash_bytes(body) != commit_id or (commit_id not in present and not repo.objects.has(commit_id)):
        return False
    try:
        commit = objmod.decode(body, commit_id)
    except IntegrityError:
        return False
    return isinstance(commit, Commit) and row_of(commit_id, commit, body) == row
