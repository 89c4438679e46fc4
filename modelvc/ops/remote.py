"""mvc remote: add, list, remove, rename and re-point the remotes of `.mvc/config`.

Names, messages and exit codes follow git's (`remote origin already exists`, exit 3; `No such
remote`, exit 2). `add` and `set-url` check the remote unless told not to: two create-only writes
of one probe key, where the second must be refused, then its deletion. A remote that lets the
second write through has no conditional writes, so a push could not move a ref safely there;
that is recorded (`conditionalWrites: false`) for pushes to refuse unless the user opts in with
`remote.<name>.allowUnconditionalPush`. What the probe reaches of the remote is only that key.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from modelvc.config import read_config_file, write_config_file
from modelvc.errors import ConfigError, RemoteExistsError, RemoteUnreachableError, UnknownRemoteError
from modelvc.remotes import (
    Remote,
    check_endpoint,
    check_remote_name,
    normalized_url,
    open_backend,
    parse_url,
    remotes_in,
)
from modelvc.repo import Repo

PROBE_PREFIX = "mvc-probe-"  # top level: a directory remote keeps no empty folder of it


def list_remotes(repo: Repo) -> list[Remote]:
    """Every configured remote, sorted by name."""
    return list(remotes_in(repo.config).values())


def get_remote(repo: Repo, name: str) -> Remote:
    """The remote `name`, or git's "No such remote" (what push and fetch will start from)."""
    configured = remotes_in(repo.config)
    if name not in configured:
        raise UnknownRemoteError(f"No such remote: '{name}'",
                                 hint="the remotes are: " + ", ".join(configured) if configured else
                                 "no remote is configured: 'mvc remote add origin URL'")
    return configured[name]


@dataclass(frozen=True)
class RemoteShown:
    """`remote show NAME` without asking the remote (git's `remote show -n`): its settings,
    the branches last fetched from it, and the local branches that pull from it."""

    remote: Remote
    tracking: dict[str, str]  # branch name on the remote -> commit, as last fetched
    pulled_by: dict[str, str]  # local branch -> the remote branch it merges

    def to_dict(self) -> dict[str, Any]:
        return self.remote.to_dict() | {
            "remote_branches": [{"name": name, "commit": commit} for name, commit in self.tracking.items()],
            "pulled_by": [{"branch": branch, "remote_branch": merge} for branch, merge in self.pulled_by.items()]}


def show_remote(repo: Repo, name: str) -> RemoteShown:
    """What the repository knows of the remote `name`, from its config and refs alone."""
    from modelvc.transfer.refsel import HEADS
    from modelvc.transfer.upstream import upstream_of

    remote = get_remote(repo, name)
    tracking = dict(sorted(repo.refs.under(f"refs/remotes/{name}/").items()))
    pulled_by = {branch: upstream.merge[len(HEADS):] for branch in sorted(repo.refs.branches())
                 if (upstream := upstream_of(repo.config, branch)) is not None and upstream.remote == name}
    return RemoteShown(remote, tracking, pulled_by)


def add_remote(repo: Repo, name: str, url: str, *, cwd: Path, endpoint: str | None = None,
               region: str | None = None, path_style: bool | None = None, check: bool = True) -> Remote:
    """Configure a new remote; with `check`, probe it first (nothing is written if that fails)."""
    check_remote_name(name)
    remote = Remote(name, _url(url, cwd), check_endpoint(endpoint) if endpoint else None, region or None,
                    path_style)
    _refuse_settings_that_do_not_apply(remote)
    with repo.transaction(), _config(repo) as config:
        if name in remotes_in(config):
            raise RemoteExistsError(f"remote {name} already exists.")
        if check:
            remote = replace(remote, conditional_writes=probe_conditional_writes(remote))
        config["remote"] = {**_section(config), name: remote.to_config()}
    return remote


def set_partial(repo: Repo, name: str, partial: bool) -> None:
    """Mark the remote as a partial clone's promisor (`remote.NAME.partial`), or no longer."""
    with repo.transaction(), _config(repo) as config:
        if name not in remotes_in(config):
            raise UnknownRemoteError(f"No such remote: '{name}'")
        entry = config["remote"][name]
        if partial:
            entry["partial"] = True
        else:
            entry.pop("partial", None)


def remove_remote(repo: Repo, name: str) -> Remote:
    """Forget a remote, its settings, its remote-tracking refs and the upstreams of the branches
    that track it (git's `branch.X.remote` and `branch.X.merge` go too)."""
    with repo.transaction(), _config(repo) as config:
        remote = remotes_in(config).get(name)
        if remote is None:
            raise UnknownRemoteError(f"No such remote: '{name}'")
        del config["remote"][name]
        if not config["remote"]:
            del config["remote"]
        _repoint_upstreams(config, name, None)
        _move_tracking_refs(repo, name, None)
    return remote


def rename_remote(repo: Repo, old: str, new: str) -> Remote:
    """Give a remote another name, keeping every setting."""
    check_remote_name(new)
    with repo.transaction(), _config(repo) as config:
        found = remotes_in(config)
        if old not in found:
            raise UnknownRemoteError(f"No such remote: '{old}'")
        if new in found:
            raise RemoteExistsError(f"remote {new} already exists.")
        config["remote"][new] = config["remote"].pop(old)
        _repoint_upstreams(config, old, new)
        _move_tracking_refs(repo, old, new)
    return replace(found[old], name=new)


def _repoint_upstreams(config: dict[str, Any], old: str, new: str | None) -> None:
    """Make the branches whose upstream is on remote `old` track `new` instead, or (None) drop
    their upstream, as git's `remote rename` and `remote remove` do."""
    section = config.get("branch")
    if not isinstance(section, dict):
        return
    for branch, entry in list(section.items()):
        if not isinstance(entry, dict) or entry.get("remote") != old:
            continue
        if new is not None:
            entry["remote"] = new
            continue
        entry.pop("remote")
        entry.pop("merge", None)
        if not entry:
            del section[branch]
    if not section:
        del config["branch"]


def _move_tracking_refs(repo: Repo, old: str, new: str | None) -> None:
    """Rename (or, to None, delete) the remote-tracking refs refs/remotes/OLD/* (and
    refs/remote-registry/OLD/*) and the cache of
    the remote's pack indexes, as git's `remote rename` and `remote remove` do."""
    from modelvc.transfer.view import drop_cache, rename_cache

    prefix = f"{old}/"
    for name, commit in repo.refs.remote_branches().items():
        if not name.startswith(prefix):
            continue
        if new is not None:
            repo.refs.update(f"refs/remotes/{new}/{name[len(prefix):]}", commit, None,
                             f"remote: renamed refs/remotes/{name} to refs/remotes/{new}/{name[len(prefix):]}")
        repo.refs.delete(f"refs/remotes/{name}", commit, f"remote: {'renamed' if new else 'removed'} {old}")
    registry = f"refs/remote-registry/{old}/"  # its note chain and stages (transfer/refsel.py)
    for name, head in repo.refs.under(registry).items():
        if new is not None:
            repo.refs.update(f"refs/remote-registry/{new}/{name}", head, None, f"remote: renamed {registry}{name}")
        repo.refs.delete(registry + name, head, f"remote: {'renamed' if new else 'removed'} {old}")
    if new is None:
        drop_cache(repo.mvc_dir, old)
    else:
        rename_cache(repo.mvc_dir, old, new)


def set_remote_url(repo: Repo, name: str, url: str, *, cwd: Path, check: bool = True) -> Remote:
    """Point a remote elsewhere, keeping its other settings; the new place is probed as `add`
    probes (a different server may lack conditional writes)."""
    with repo.transaction(), _config(repo) as config:
        remote = remotes_in(config).get(name)
        if remote is None:
            raise UnknownRemoteError(f"No such remote '{name}'")
        remote = replace(remote, url=_url(url, cwd), conditional_writes=None)
        _refuse_settings_that_do_not_apply(remote)
        if check:
            remote = replace(remote, conditional_writes=probe_conditional_writes(remote))
        entry = config["remote"][name]
        entry.pop("conditionalWrites", None)
        entry.update(remote.to_config())
    return remote


def probe_conditional_writes(remote: Remote) -> bool:
    """Whether the remote refuses a second create-only write of a key (a unique probe key,
    deleted afterwards). RemoteUnreachableError when it cannot be reached or written."""
    from modelvc.store.backend import BackendUnavailable, NotFoundInBackend

    location = parse_url(remote.url)
    if location.directory is not None and not location.directory.is_dir():
        raise RemoteUnreachableError(f"cannot reach remote '{remote.name}': no such directory {location.directory}",
                                     hint="create it, or add the remote with --no-check")
    key = PROBE_PREFIX + secrets.token_hex(16)
    try:
        backend = open_backend(remote)
        first = backend.write_if_absent(key, b"first")
        second = backend.write_if_absent(key, b"second")
        try:
            backend.delete(key)
        except NotFoundInBackend:
            pass
    except BackendUnavailable as exc:
        raise RemoteUnreachableError(f"cannot reach remote '{remote.name}': {exc}",
                                     hint="check the URL, the endpoint and the credentials in the environment "
                                          "(AWS_*, AZURE_STORAGE_*), or add the remote with --no-check") from None
    except OSError as exc:
        raise RemoteUnreachableError(f"cannot write to remote '{remote.name}': {exc.strerror or exc}: "
                                     f"{exc.filename or remote.url}",
                                     hint="check the directory's permissions, or add the remote with --no-check",
                                     ) from None
    return first and not second


def _url(url: str, cwd: Path) -> str:
    return normalized_url(url, cwd)


def _refuse_settings_that_do_not_apply(remote: Remote) -> None:
    from modelvc.errors import UsageError

    scheme = parse_url(remote.url).scheme
    if scheme == "file" and (remote.endpoint or remote.region or remote.path_style is not None):
        raise UsageError("--endpoint, --region and --path-style are for s3:// and az:// remotes")
    if scheme == "az" and (remote.region or remote.path_style is not None):
        raise UsageError("--region and --path-style are for s3:// remotes")


def _section(config: dict[str, Any]) -> dict[str, Any]:
    """The config's `remote` object; a damaged one is the user's to repair, never overwritten."""
    section = config.get("remote", {})
    if not isinstance(section, dict):
        raise ConfigError("corrupt config: 'remote' in .mvc/config is not an object",
                          hint="repair or remove it in .mvc/config")
    return section


@contextmanager
def _config(repo: Repo) -> Iterator[dict[str, Any]]:
    """The repository's config file, read for a change and written back when the block ends."""
    path = repo.mvc_dir / "config"
    data = read_config_file(path, missing_ok=False)
    yield data
    write_config_file(path, data)
