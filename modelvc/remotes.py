"""Remotes: their settings in `.mvc/config` and the one place a URL becomes a backend.

A remote is `remote.<name>` in the repository's config: its `url` and, for S3-compatible
servers, `endpoint`, `region` and `pathStyle`; `conditionalWrites`, what `remote add` found when
it probed the remote (absent when it was not checked); `allowUnconditionalPush`, the user's
opt-in to push to a remote without them. URLs:

- `s3://bucket/prefix`: S3 or an S3-compatible server (obstore's S3Store);
- `az://container/prefix`: Azure Blob (obstore's AzureStore; the account comes from the
  environment, AZURE_STORAGE_ACCOUNT_NAME);
- `file:///path` or a plain path: a directory (DirectoryBackend), kept as an absolute path.

Credentials never come from here: obstore reads the environment and the standard chains
(AWS_*, AZURE_STORAGE_*, instance and container credentials). A URL or endpoint that carries a
user, password or query (where a key or SAS token would hide) is refused, so no secret can
reach the config file by way of a URL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from modelvc.errors import RefError, UsageError
from modelvc.refname import check_ref_name

if TYPE_CHECKING:
    from modelvc.store.backend import Backend

SCHEMES = ("s3", "az")
# The settings a remote's entry may hold, with what `mvc config remote.<name>.<key>` accepts.
SETTINGS = ("url", "endpoint", "region", "pathStyle", "conditionalWrites", "allowUnconditionalPush", "partial")


@dataclass(frozen=True)
class Location:
    """A parsed remote URL: the scheme, and the bucket/container and prefix, or a directory."""

    scheme: str  # "s3", "az" or "file"
    container: str = ""
    prefix: str = ""
    directory: Path | None = None


@dataclass(frozen=True)
class Remote:
    """One remote's settings, as `.mvc/config` holds them."""

    name: str
    url: str
    endpoint: str | None = None
    region: str | None = None
    path_style: bool | None = None
    conditional_writes: bool | None = None
    allow_unconditional_push: bool = False
    partial: bool = False  # a partial clone's promisor remote

    def to_config(self) -> dict[str, Any]:
        entry: dict[str, Any] = {"url": self.url, "endpoint": self.endpoint, "region": self.region,
                                 "pathStyle": self.path_style, "conditionalWrites": self.conditional_writes,
                                 "allowUnconditionalPush": self.allow_unconditional_push or None,
                                 "partial": self.partial or None}
        return {key: value for key, value in entry.items() if value is not None}

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "endpoint": self.endpoint, "region": self.region,
                "path_style": self.path_style, "conditional_writes": self.conditional_writes,
                "allow_unconditional_push": self.allow_unconditional_push, "partial": self.partial}


def check_remote_name(name: str) -> None:
    """A remote's name becomes refs/remotes/<name>/ and a config key: a ref name without '.'."""
    check_ref_name(name, "remote")
    if "." in name or "/" in name:
        raise RefError(f"invalid remote name '{name}': it contains '{'.' if '.' in name else '/'}'")


def remotes_in(config: dict[str, Any]) -> dict[str, Remote]:
    """The remotes a config holds, by name (entries without a url are skipped)."""
    section = config.get("remote")
    found: dict[str, Remote] = {}
    if not isinstance(section, dict):
        return found
    for name in sorted(section):
        entry = section[name]
        if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
            continue
        found[name] = Remote(name, entry["url"], _text_or_none(entry.get("endpoint")),
                             _text_or_none(entry.get("region")), _bool_or_none(entry.get("pathStyle")),
                             _bool_or_none(entry.get("conditionalWrites")),
                             entry.get("allowUnconditionalPush") is True, entry.get("partial") is True)
    return found


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _bool_or_none(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _refuse_secrets(text: str, what: str) -> None:
    parts = urlsplit(text)
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"the remote {what} '{parts.scheme}://...' carries a user, password or query",
                         hint="credentials come only from the environment (AWS_*, AZURE_STORAGE_*), "
                              "never from a URL: see docs/remotes.md")


def parse_url(url: str, cwd: Path | None = None) -> Location:
    """Where a remote URL points; a UsageError names what is wrong with it."""
    if not url.strip():
        raise UsageError("a remote URL cannot be empty")
    scheme, sep, _ = url.partition("://")
    if not sep:
        directory = Path(url).expanduser()
        return Location("file", directory=directory if directory.is_absolute() else (cwd or Path.cwd()) / directory)
    _refuse_secrets(url, "URL")
    parts = urlsplit(url)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise UsageError(f"a file:// URL names a local directory, not the host '{parts.netloc}'")
        return Location("file", directory=Path(parts.path))
    if scheme not in SCHEMES:
        raise UsageError(f"unsupported remote URL scheme '{scheme}://'",
                         hint="use s3://bucket/prefix, az://container/prefix, file:///path or a directory path")
    if not parts.netloc:
        raise UsageError(f"the remote URL '{url}' names no {'bucket' if scheme == 's3' else 'container'}")
    prefix = parts.path.strip("/")
    if any(part in (".", "..") for part in prefix.split("/")) or "//" in prefix:
        raise UsageError(f"the remote URL '{url}' has an unusable prefix '{prefix}'")
    return Location(scheme, container=parts.netloc, prefix=prefix)


def normalized_url(url: str, cwd: Path) -> str:
    """The URL as stored: a directory path made absolute (commands run from anywhere in the tree)."""
    location = parse_url(url, cwd)
    if location.directory is not None and "://" not in url:
        return str(Path(os.path.normpath(location.directory)))
    return url


def check_endpoint(endpoint: str) -> str:
    if not endpoint.startswith(("http://", "https://")):
        raise UsageError(f"the endpoint '{endpoint}' is not an http:// or https:// URL")
    _refuse_secrets(endpoint, "endpoint")
    return endpoint.rstrip("/")


def open_backend(remote: Remote) -> Backend:
    """The backend of a remote: a directory, or obstore's store for the URL and settings."""
    location = parse_url(remote.url)
    if location.directory is not None:
        from modelvc.store.backend import DirectoryBackend

        return DirectoryBackend(location.directory)
    try:
        from modelvc.store.objectstore_backend import open_object_store
    except ImportError:
        raise UsageError(f"{location.scheme}:// remotes need obstore, which is not installed",
                         hint="pip install 'modelvc[remote]'") from None
    return open_object_store(location.scheme, location.container, location.prefix, remote.url,
                             endpoint=remote.endpoint, region=remote.region, path_style=remote.path_style)
