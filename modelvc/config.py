"""Settings: the repository's `.mvc/config` and the user's global file, by dotted key.

A dotted key names a path into the JSON of either file: `gc.reflogExpire` is
config["gc"]["reflogExpire"], and `branch.release/v1.2.remote` is
config["branch"]["release/v1.2"]["remote"] (git's rule: the first and the last dot split it).
The repository's value wins over the global one. The global file is $XDG_CONFIG_HOME/mvc/config
when XDG_CONFIG_HOME is set, else ~/.mvcconfig (one file, as JSON).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelvc.errors import ConfigError


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("it is empty")
    return value


def _boolean(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")


def _count(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError("it is negative")
    return number


def _expiry(value: str) -> str:
    from modelvc.errors import UsageError
    from modelvc.expiry import parse_expiry

    try:
        parse_expiry(value)
    except UsageError as exc:
        raise ValueError(exc.hint) from None
    return value


@dataclass(frozen=True)
class Key:
    parse: Callable[[str], Any]
    default: Any
    help: str


# Every key a user may set. format_version and chunking are written by `mvc init` and are part
# of the format: readable, never settable.
KEYS: dict[str, Key] = {
    "user.name": Key(_text, None, "author name of commits and tags (else git's user.name)"),
    "user.email": Key(_text, None, "author email of commits and tags (else git's user.email)"),
    "core.gitignore": Key(_boolean, True,
                          "in a git work tree, add what 'mvc add' stores to .gitignore (true/false)"),
    "gc.reflogExpire": Key(_expiry, "90.days", "age after which reachable reflog entries expire"),
    "gc.reflogExpireUnreachable": Key(_expiry, "30.days",
                                      "age after which reflog entries of unreachable commits expire"),
    "pack_max_bytes": Key(_count, 256 << 20, "size at which a pack file is closed and a new one started"),
    "delta_max_depth": Key(_count, 4, "how many deltas reading a block may have to apply (0: none)"),
    "gc.auto_packs": Key(_count, 50, "merge small packs once a writer leaves more than this many (0: never)"),
    "gc.auto_loose": Key(_count, 256, "pack the loose metadata objects once a writer leaves more than "
                                      "this many (0: never)"),
}


def global_config_path() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return Path(xdg) / "mvc" / "config" if xdg else Path.home() / ".mvcconfig"


def read_config_file(path: Path, missing_ok: bool = True) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise
    except ValueError as exc:
        raise ConfigError(f"cannot read the config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"cannot read the config file {path}: not a JSON object")
    return data


def write_config_file(path: Path, data: dict[str, Any]) -> None:
    from modelvc.fsutil import atomic_write

    atomic_write(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())


def key_path(key: str) -> list[str]:
    """The names a dotted key nests by, by git's rule: the first and the last dot separate the
    section, the subsection and the key, so `branch.release/v1.2.remote` is
    ["branch", "release/v1.2", "remote"] (a subsection may hold dots; a section and a key never)."""
    section, _, rest = key.partition(".")
    subsection, dot, name = rest.rpartition(".")
    if not dot:
        return key.split(".")
    return [section, subsection, name]


def lookup(data: dict[str, Any], key: str) -> Any:
    """The value at a dotted key, or None."""
    node: Any = data
    for part in key_path(key):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _remote_url(value: str) -> str:
    from modelvc.errors import UsageError
    from modelvc.remotes import parse_url

    try:
        parse_url(_text(value))
    except UsageError as exc:
        raise ValueError(exc.message) from None
    return value


def _remote_endpoint(value: str) -> str:
    from modelvc.errors import UsageError
    from modelvc.remotes import check_endpoint

    try:
        return check_endpoint(value)
    except UsageError as exc:
        raise ValueError(exc.message) from None


# The settings of each remote, remote.<name>.<setting> (see modelvc/remotes.py; docs/remotes.md).
REMOTE_KEYS: dict[str, Key] = {
    "url": Key(_remote_url, None, "where the remote is: s3://bucket/prefix, az://container/prefix, a directory"),
    "endpoint": Key(_remote_endpoint, None, "the http(s) endpoint of an S3-compatible server or of Azure"),
    "region": Key(_text, None, "the S3 region"),
    "pathStyle": Key(_boolean, None, "S3 path-style addressing (true) or virtual-hosted (false)"),
    "allowUnconditionalPush": Key(_boolean, False,
                                  "push to this remote although it has no conditional writes (unsafe)"),
    "partial": Key(_boolean, False, "a partial clone's remote: checkout fetches the chunks it lacks from here"),
}


def _remote_name(value: str) -> str:
    from modelvc.errors import RefError
    from modelvc.remotes import check_remote_name

    try:
        check_remote_name(value)
    except RefError as exc:
        raise ValueError(exc.message) from None
    return value


def _merge_ref(value: str) -> str:
    """The upstream branch's name on the remote, kept in full (refs/heads/main) as git keeps it."""
    from modelvc.refname import is_valid_ref_name

    full = value if value.startswith("refs/heads/") else f"refs/heads/{value}"
    if not is_valid_ref_name(full[len("refs/heads/"):]):
        raise ValueError("not a branch name")
    return full


# The upstream of each branch, branch.<name>.<setting> (modelvc/transfer/upstream.py).
BRANCH_KEYS: dict[str, Key] = {
    "remote": Key(_remote_name, None, "the remote the branch pulls from and pushes to"),
    "merge": Key(_merge_ref, None, "the branch's name on that remote (main or refs/heads/main)"),
}


def settable(key: str) -> Key:
    parts = key_path(key)
    if len(parts) == 3 and parts[0] == "remote" and parts[1] and parts[2] in REMOTE_KEYS:
        return REMOTE_KEYS[parts[2]]
    if len(parts) == 3 and parts[0] == "branch" and parts[1] and parts[2] in BRANCH_KEYS:
        from modelvc.refname import is_valid_ref_name

        if not is_valid_ref_name(parts[1]):
            raise ConfigError(f"invalid branch name '{parts[1]}' in config key '{key}'")
        return BRANCH_KEYS[parts[2]]
    if key not in KEYS:
        raise ConfigError(f"unknown config key '{key}'",
                          hint="the keys are: " + ", ".join(sorted(KEYS)) + ", remote.<name>.{"
                               + ",".join(REMOTE_KEYS) + "}, branch.<name>.{" + ",".join(BRANCH_KEYS)
                               + "} (see docs/cli.md)")
    return KEYS[key]


def set_value(data: dict[str, Any], key: str, text: str) -> Any:
    """Parse `text` for `key` and store it in `data` (nested by the dots); returns the value."""
    spec = settable(key)
    try:
        value = spec.parse(text)
    except ValueError as exc:
        raise ConfigError(f"bad value '{text}' for config key '{key}': {exc}") from None
    *parents, last = key_path(key)
    node = data
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value
    return value


def unset_value(data: dict[str, Any], key: str) -> bool:
    """Remove a key (and parents it leaves empty); False when it was not set."""
    settable(key)
    *parents, last = key_path(key)
    chain = [data]
    for part in parents:
        child = chain[-1].get(part)
        if not isinstance(child, dict):
            return False
        chain.append(child)
    if last not in chain[-1]:
        return False
    del chain[-1][last]
    for node, part in zip(reversed(chain[:-1]), reversed(parents), strict=True):
        if node[part]:
            break
        del node[part]
    return True


def move_subsection(path: Path, section: str, old: str, new: str | None) -> None:
    """Move `SECTION.OLD.*` to `SECTION.NEW.*` in the config file at `path`, or drop it (None),
    as git's `branch -m` and `branch -d` do with a branch's settings (the caller holds the lock)."""
    data = read_config_file(path, missing_ok=False)
    found = data.get(section)
    if not isinstance(found, dict) or old not in found:
        return
    entry = found.pop(old)
    if new is not None:
        found[new] = entry
    if not found:
        del data[section]
    write_config_file(path, data)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted key, value) for every leaf, sorted by key."""
    rows: list[tuple[str, Any]] = []
    for name in sorted(data):
        value = data[name]
        if isinstance(value, dict) and value:
            rows.extend(flatten(value, f"{prefix}{name}."))
        else:
            rows.append((f"{prefix}{name}", value))
    return rows


def effective(repo_config: dict[str, Any], key: str) -> Any:
    """A key's value: the repository's, else the global file's, else its default."""
    for source in (repo_config, read_config_file(global_config_path())):
        value = lookup(source, key)
        if value is not None:
            return value
    return KEYS[key].default if key in KEYS else None


def show_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)
