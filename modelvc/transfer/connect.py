"""Opening a configured remote for a transfer, and the one place its failures become errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from modelvc.errors import RemoteUnreachableError
from modelvc.remotes import Remote, open_backend, parse_url
from modelvc.repo import Repo
from modelvc.store.backend import BackendUnavailable
from modelvc.transfer.counting import CountingBackend
from modelvc.transfer.view import RemoteView, cache_dir


@dataclass
class Connection:
    remote: Remote
    backend: CountingBackend
    view: RemoteView


@contextmanager
def connected(repo: Repo, remote: Remote) -> Iterator[Connection]:
    """The remote's counted backend and its view (not yet loaded); a remote that cannot be
    reached, at the start or part-way, is RemoteUnreachableError naming it."""
    location = parse_url(remote.url)
    if location.directory is not None and not location.directory.is_dir():
        raise RemoteUnreachableError(f"cannot reach remote '{remote.name}': no such directory {location.directory}")
    try:
        backend = CountingBackend(open_backend(remote))
        yield Connection(remote, backend, RemoteView(backend, cache_dir(repo.mvc_dir, remote.name), remote.url))
    except BackendUnavailable as exc:
        raise RemoteUnreachableError(f"cannot reach remote '{remote.name}': {exc}",
                                     hint="check the URL, the endpoint and the credentials in the environment "
                                          "(AWS_*, AZURE_STORAGE_*)") from None
