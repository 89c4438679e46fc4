"""Metadata objects (file manifests, trees, commits, tags, notes, stage moves) and their canonical
encodings.

An object's id is the blake3 of its canonical encoding: compact JSON with sorted keys, so the
same content always gives the same bytes and therefore the same id.
"""

from __future__ import annotations

import json
import json.encoder
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelvc.errors import CorruptObjectError
from modelvc.ids import ObjectId, is_full_id, short

MODE_FILE = 0o100644
MODE_EXEC = 0o100755
MODE_LINK = 0o120000  # a symbolic link: its manifest holds the target string, never followed
MODES = (MODE_FILE, MODE_EXEC, MODE_LINK)
_KNOWN_MODES = frozenset(MODES)


def canonical_json(value: dict[str, Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


@dataclass(frozen=True)
class Manifest:
    """A file's content: its chunks in order, each (chunk id, raw length)."""

    size: int
    chunks: tuple[tuple[str, int], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "file", "size": self.size, "chunks": [list(c) for c in self.chunks]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        chunks = tuple([(str(c[0]), int(c[1])) for c in data["chunks"]])
        manifest = cls(int(data["size"]), chunks)
        total = 0
        for chunk_id, length in chunks:  # a loop: fsck and stats decode every manifest ever stored
            if length <= 0 or not is_full_id(chunk_id):
                raise ValueError("a chunk entry is not a chunk id with a positive length")
            total += length
        if total != manifest.size:
            raise ValueError(f"chunk lengths add up to {total} bytes, not the file size {manifest.size}")
        return manifest

    def chunk_offsets(self) -> list[int]:
        offsets, position = [], 0
        for _, length in self.chunks:
            offsets.append(position)
            position += length
        return offsets


@dataclass(frozen=True)
class TreeEntry:
    path: str
    manifest_id: ObjectId  # encoded as "file": tree ids must not change
    size: int
    mode: int = MODE_FILE

    @property
    def executable(self) -> bool:
        return self.mode == MODE_EXEC

    @property
    def is_link(self) -> bool:
        return self.mode == MODE_LINK


@dataclass(frozen=True)
class Tree:
    """A flat map of slash-separated paths to file manifests (model repos are shallow)."""

    entries: tuple[TreeEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"type": "tree", "entries": [
            {"path": e.path, "file": e.manifest_id, "size": e.size, "mode": f"{e.mode:o}"}
            for e in sorted(self.entries, key=lambda e: e.path)]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tree:
        tree = cls(tuple([TreeEntry(e["path"], e["file"], int(e["size"]), int(e["mode"], 8))
                          for e in data["entries"]]))
        if not {e.mode for e in tree.entries} <= _KNOWN_MODES:
            unknown = sorted({f"{e.mode:o}" for e in tree.entries if e.mode not in MODES})
            raise ValueError(f"unknown file mode {', '.join(unknown)}")
        return tree

    def as_map(self) -> dict[str, TreeEntry]:
        return {e.path: e for e in self.entries}


@dataclass(frozen=True)
class Signature:
    name: str
    email: str
    time: int  # unix seconds
    tz_minutes: int  # offset east of UTC

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "email": self.email, "time": self.time, "tz": self.tz_minutes}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(data["name"], data["email"], int(data["time"]), int(data["tz"]))


def local_tz_minutes(timestamp: float) -> int:
    """This machine's offset east of UTC at that moment, in minutes (daylight saving included)."""
    return int(time.localtime(timestamp).tm_gmtoff // 60)


def tz_text(tz_minutes: int) -> str:
    """An offset as git writes it: "+hhmm" or "-hhmm"."""
    sign = "+" if tz_minutes >= 0 else "-"
    hours, minutes = divmod(abs(tz_minutes), 60)
    return f"{sign}{hours:02d}{minutes:02d}"


@dataclass(frozen=True)
class CodeVersion:
    """The git commit the working tree was at when an mvc commit was made, and whether git's
    tracked files had uncommitted changes. `commit` is None before git's first commit."""

    commit: str | None
    dirty: bool

    def to_dict(self) -> dict[str, Any]:
        return {"commit": self.commit, "dirty": self.dirty}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeVersion:
        commit = data["commit"]
        if (commit is not None and not isinstance(commit, str)) or not isinstance(data["dirty"], bool):
            raise ValueError("the git field holds a bad commit id or dirty flag")
        return cls(commit, data["dirty"])


@dataclass(frozen=True)
class Commit:
    tree: str
    parents: tuple[str, ...]
    author: Signature
    message: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    git: CodeVersion | None = None  # only for commits made inside a git work tree

    @property
    def subject(self) -> str:
        return self.message.strip().splitlines()[0] if self.message.strip() else ""

    def to_dict(self) -> dict[str, Any]:
        for key, value in self.metrics.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"metric {key} is not a finite number")
        encoded = {"type": "commit", "tree": self.tree, "parents": list(self.parents),
                   "author": self.author.to_dict(), "message": self.message,
                   "metrics": dict(self.metrics), "params": dict(self.params), "meta": dict(self.meta)}
        if self.git is not None:  # absent otherwise: commits made outside git keep their old bytes
            encoded["git"] = self.git.to_dict()
        return encoded

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Commit:
        return cls(data["tree"], tuple(data["parents"]), Signature.from_dict(data["author"]),
                   data["message"], dict(data.get("metrics", {})), dict(data.get("params", {})),
                   dict(data.get("meta", {})),
                   CodeVersion.from_dict(data["git"]) if data.get("git") is not None else None)


@dataclass(frozen=True)
class Tag:
    """An annotated tag: a named, signed pointer to a commit with a message."""

    object: str
    name: str
    tagger: Signature
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"type": "tag", "object": self.object, "name": self.name,
                "tagger": self.tagger.to_dict(), "message": self.message}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tag:
        return cls(data["object"], data["name"], Signature.from_dict(data["tagger"]), data["message"])


def _text_values(values: Any, what: str) -> dict[str, str]:
    if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
        raise ValueError(f"the {what} of a record are not text")
    return dict(values)


def _optional_id(value: Any, what: str) -> str | None:
    if value is not None and not (isinstance(value, str) and is_full_id(value)):
        raise ValueError(f"the {what} is not an object id")
    return value


@dataclass(frozen=True)
class Note:
    """Metadata added to a commit after the fact (git notes are the model): the commit's id
    never changes. Notes form one chain, newest first through `parent`, from refs/notes/commits;
    a later note's value of a key wins. `commit` is a weak reference: a note does not keep its
    commit alive (gc may collect an annotated commit that nothing else reaches)."""

    commit: str
    author: Signature
    message: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)
    parent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        for key, value in self.metrics.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"metric {key} is not a finite number")
        return {"type": "note", "commit": self.commit, "author": self.author.to_dict(), "message": self.message,
                "metrics": dict(self.metrics), "params": dict(self.params), "meta": dict(self.meta),
                "parent": self.parent}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Note:
        metrics = data["metrics"]
        if not isinstance(metrics, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in metrics.values()):
            raise ValueError("the metrics of a note are not numbers")
        if not is_full_id(data["commit"]) or not isinstance(data["message"], str):
            raise ValueError("a note names no commit or has no message")
        return cls(data["commit"], Signature.from_dict(data["author"]), data["message"], dict(metrics),
                   _text_values(data["params"], "params"), _text_values(data["meta"], "meta"),
                   _optional_id(data["parent"], "note's parent"))


@dataclass(frozen=True)
class StageMove:
    """One move of a stage (`production`, `staging`, any ref-name-safe name) to a commit, or to
    none (`commit` None: the stage was deleted, its history kept). Moves chain through `parent`
    from refs/stages/STAGE; each keeps its commit alive, so every version a stage ever named
    can be checked out again."""

    stage: str
    commit: str | None
    author: Signature
    message: str
    parent: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"type": "stage", "stage": self.stage, "commit": self.commit, "author": self.author.to_dict(),
                "message": self.message, "parent": self.parent}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageMove:
        if not isinstance(data["stage"], str) or not isinstance(data["message"], str):
            raise ValueError("a stage move has no stage name or message")
        return cls(data["stage"], _optional_id(data["commit"], "stage's commit"), Signature.from_dict(data["author"]),
                   data["message"], _optional_id(data["parent"], "stage move's parent"))


StoredObject = Manifest | Tree | Commit | Tag | Note | StageMove
_TYPES: dict[str, Any] = {"file": Manifest, "tree": Tree, "commit": Commit, "tag": Tag, "note": Note,
                          "stage": StageMove}


def object_references(obj: StoredObject) -> list[ObjectId]:
    """The metadata objects `obj` keeps alive (gc), needs to be whole (fsck) and sends along
    (push): a commit's tree and parents, a tree's files, a tag's object, a note's and a stage
    move's parent, a stage move's commit. Chunks (a manifest's) are not objects; a note's
    commit is a weak reference and is left out (see Note)."""
    if isinstance(obj, Commit):
        return [obj.tree, *obj.parents]
    if isinstance(obj, Tree):
        return [entry.manifest_id for entry in obj.entries]
    if isinstance(obj, Tag):
        return [obj.object]
    if isinstance(obj, Note):
        return [obj.parent] if obj.parent else []
    if isinstance(obj, StageMove):
        return [ref for ref in (obj.commit, obj.parent) if ref]
    return []


def encode(obj: StoredObject) -> bytes:
    return canonical_json(obj.to_dict())


def encode_tree(paths: Sequence[str], manifest_ids: Iterable[str], sizes: Iterable[int],
                modes: Sequence[int]) -> bytes:
    """encode(Tree(...)) byte for byte, for entries given as columns already in path order.

    json.dumps of a dict per entry took 0.7 s for 50,000 entries; here each column is quoted
    or formatted by one C-level map and the whole is one join (0.09 s). Text json would write
    as it is (no quote, backslash or control character: every id, nearly every path) is not
    quoted one string at a time: its quotes are part of the separators (0.045 s)."""
    count = len(paths)
    if not count:
        return b'{"entries":[],"type":"tree"}'
    ids = manifest_ids.hex_list() if hasattr(manifest_ids, "hex_list") else list(manifest_ids)
    if _as_json_writes_it("".join(paths)) and (hasattr(manifest_ids, "hex_list") or _as_json_writes_it("".join(ids))):
        # Per entry: '},{"file":"' id '","mode":"644","path":"' path '","size":' size
        middle = {mode: f'","mode":"{mode:o}","path":"' for mode in set(modes)}
        parts: list[str] = [""] * (6 * count)
        parts[0::6] = ['},{"file":"'] * count
        parts[1::6] = ids
        parts[2::6] = map(middle.__getitem__, modes)
        parts[3::6] = paths
        parts[4::6] = ['","size":'] * count
        parts[5::6] = map(int.__repr__, sizes)
        parts[0] = '{"file":"'
    else:
        quote = json.encoder.encode_basestring  # how json.dumps(ensure_ascii=False) writes text
        mode_text = {mode: f"{mode:o}" for mode in set(modes)}
        parts = [""] * (8 * count)
        parts[0::8] = ['},{"file":'] * count
        parts[1::8] = map(quote, ids)
        parts[2::8] = [',"mode":"'] * count
        parts[3::8] = map(mode_text.__getitem__, modes)
        parts[4::8] = ['","path":'] * count
        parts[5::8] = map(quote, paths)
        parts[6::8] = [',"size":'] * count
        parts[7::8] = map(int.__repr__, sizes)
        parts[0] = '{"file":'
    return ('{"entries":[' + "".join(parts) + '}],"type":"tree"}').encode("utf-8")


_TREE_START, _TREE_END = len(b'{"entries":['), len(b'],"type":"tree"}')


def patch_tree(old: bytes, changes: Sequence[tuple[TreeEntry, TreeEntry | None]]) -> bytes | None:
    """What encode_tree gives for the tree `old` encodes with some entries replaced or removed
    ((entry in `old`, its replacement or None) each), by editing `old`: one search of it per
    change instead of encoding every entry again. None when it cannot (an entry is not there,
    or removals meet around one comma): then encode the tree.

    An entry's text begins '{"file":"', which no string inside a tree can hold (its quotes
    would be escaped), so a match is a whole entry."""
    edits: list[tuple[int, int, bytes]] = []
    for before, after in changes:
        text = _entry_text(before)
        start = old.find(text)
        if start < 0:
            return None
        end = start + len(text)
        if after is not None:
            edits.append((start, end, _entry_text(after)))
        elif old[end:end + 1] == b",":
            edits.append((start, end + 1, b""))
        elif old[start - 1:start] == b",":
            edits.append((start - 1, end, b""))
        else:  # the only entry
            return None
    view = memoryview(old)  # the unchanged runs are copied once, by the join
    parts: list[bytes | memoryview] = []
    done = 0
    for start, end, text in sorted(edits):
        if start < done:
            return None
        parts += [view[done:start], text]
        done = end
    parts.append(view[done:])
    return b"".join(parts)


def _entry_text(entry: TreeEntry) -> bytes:
    """One entry as encode_tree writes it inside a tree."""
    return encode_tree([entry.path], [entry.manifest_id], [entry.size], [entry.mode])[_TREE_START:-_TREE_END]


def _as_json_writes_it(text: str) -> bool:
    """Whether json.dumps(ensure_ascii=False) writes each string of `text` as it is between
    quotes: it escapes only quotes, backslashes and control characters below 0x20 (a text
    that isprintable() has none of those)."""
    return text.isprintable() and '"' not in text and "\\" not in text


_DECODER = json.JSONDecoder()


def _parse(data: bytes) -> Any:
    """json.loads(data), about twice as fast for canonical UTF-8 (walks over all history decode
    every object): json.loads's encoding detection and whitespace handling are skipped when the
    whole text is one value; anything else takes json.loads's own path (and its errors)."""
    try:
        text = data.decode("utf-8")
        parsed, end = _DECODER.raw_decode(text)
    except ValueError:  # UnicodeDecodeError included
        return json.loads(data)
    return parsed if end == len(text) else json.loads(data)


def decode(data: bytes, object_id: ObjectId) -> StoredObject:
    try:
        parsed = _parse(data)
        return _TYPES[parsed["type"]].from_dict(parsed)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise CorruptObjectError(f"object {short(object_id)} is not a valid modelvc object ({exc})") from exc
