"""A backend over object storage (S3 and S3-compatible servers, Azure Blob) through obstore.

obstore is imported here and nowhere else, and only remote commands import this module, so
`mvc`'s start-up does not pay for it (and it is an optional extra: modelvc[remote]).

How the contract of store/backend.py maps onto object storage:
- `write_if_absent` is a create-only put (If-None-Match: *); `swap_tagged` is a put with
  If-Match on the ETag read before (If-None-Match: * for a new key). A lost race comes back as
  AlreadyExists or Precondition; a key deleted meanwhile as NotFound (AWS answers 404 to If-Match
  on a missing key, SeaweedFS 412): each means "it moved", so the swap reports False.
- Listing is by path segment in obstore (`a/b` lists `a/b/...`, not `a/bc`): a prefix that ends
  inside a segment lists its directory and filters. Results are sorted here (stores do not
  promise an order).
- S3 deletes an absent key silently; the contract wants NotFoundInBackend, so `delete` asks first
  (deletes are upkeep, never on the push path).
- A range that starts at or past the end is empty here, as locally (S3 answers 416).
Any other failure (network, credentials, a missing bucket) is BackendUnavailable with the store's
own first line, which callers turn into the user's error naming the remote.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import AlreadyExistsError, BaseError, NotFoundError, PreconditionError

from modelvc.store.backend import (
    BackendUnavailable,
    ContentConflictInBackend,
    KeyList,
    KeyStat,
    NotFoundInBackend,
    Tagged,
    ValueList,
    _check_key,
    page_after,
)

if TYPE_CHECKING:
    from obstore.store import ObjectStore

# A request that fails is retried a few times, briefly: a dead endpoint is reported in seconds,
# not after obstore's default three minutes.
RETRY = {"max_retries": 3, "retry_timeout": timedelta(seconds=20)}
CLIENT = {"connect_timeout": "5s", "timeout": "300s"}
# obstore raises its NotFoundError from some calls and Python's FileNotFoundError from others.
NOT_FOUND = (NotFoundError, FileNotFoundError)


def _reason(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return first[:400]


def _bytes(data: bytes) -> bytes:
    """The value as bytes, or TypeError before anything is sent (a str is no value)."""
    if isinstance(data, str):
        raise TypeError("a backend value is bytes, not str")
    return bytes(memoryview(data))


class ObjectStoreBackend:
    """Keys as objects under a bucket or container prefix (the store carries the prefix)."""

    def __init__(self, store: ObjectStore, url: str) -> None:
        self.store = store
        self.url = url

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        return BackendUnavailable(f"{self.url}: {_reason(exc)}")

    def list(self, prefix: str) -> list[str]:
        return self._list(prefix, None)

    def list_after(self, prefix: str, start_after: str, limit: int | None = None) -> KeyList:
        return page_after(self._list(prefix, start_after), start_after, limit)

    def _list(self, prefix: str, offset: str | None) -> KeyList:
        directory = prefix.rpartition("/")[0]
        try:
            stream = obstore.list(self.store, directory or None, offset=offset, chunk_size=1000)
            keys = [meta["path"] for batch in stream for meta in batch]
        except BaseError as exc:
            raise self._unavailable(exc) from exc
        return sorted(key for key in keys if key.startswith(prefix))

    def read(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("a range starts and extends at or after 0")
        if length == 0:
            self.stat(key)  # an empty range of an absent key is still NotFound
            return b""
        options: Any = {}
        if length is not None:
            options["range"] = (offset, offset + length)
        elif offset:
            options["range"] = {"offset": offset}
        try:
            return bytes(obstore.get(self.store, _check_key(key), options=options).bytes())
        except NOT_FOUND:
            raise NotFoundInBackend(key) from None
        except BaseError as exc:
            if offset and offset >= self.stat(key).size:  # S3's 416: the range starts past the end
                return b""
            raise self._unavailable(exc) from exc

    def read_ranges(self, key: str, ranges: Sequence[tuple[int, int]]) -> ValueList:
        if any(offset < 0 or length < 0 for offset, length in ranges):
            raise ValueError("a range starts and extends at or after 0")
        if not ranges or not all(length for _, length in ranges):
            return [self.read(key, offset, length) for offset, length in ranges]
        try:
            found = obstore.get_ranges(self.store, _check_key(key), starts=[offset for offset, _ in ranges],
                                       lengths=[length for _, length in ranges])
        except NOT_FOUND:
            raise NotFoundInBackend(key) from None
        except BaseError:  # a range past the end: each read on its own says what is there
            return [self.read(key, offset, length) for offset, length in ranges]
        return [memoryview(part) for part in found]  # obstore's buffers, not copies: 363 MB less memmove a clone

    def write(self, key: str, data: bytes) -> None:
        if not self.write_if_absent(key, data) and self.read(key) != bytes(data):
            raise ContentConflictInBackend(key)

    def write_if_absent(self, key: str, data: bytes) -> bool:
        value = _bytes(data)
        try:
            obstore.put(self.store, _check_key(key), value, mode="create", use_multipart=False)
        except AlreadyExistsError:
            return False
        except PreconditionError:  # some servers answer a create-only put on an existing key so
            return False
        except BaseError as exc:
            raise self._unavailable(exc) from exc
        return True

    def compare_and_swap(self, key: str, expected: bytes | None, data: bytes) -> bool:
        value = _bytes(data)
        if expected is None:
            return self.swap_tagged(key, None, value)
        try:
            current = self.read_tagged(key)
        except NotFoundInBackend:
            return False
        return current.data == expected and self.swap_tagged(key, current.tag, value)

    def read_tagged(self, key: str) -> Tagged:
        try:
            found = obstore.get(self.store, _check_key(key))
            data = bytes(found.bytes())
        except NOT_FOUND:
            raise NotFoundInBackend(key) from None
        except BaseError as exc:
            raise self._unavailable(exc) from exc
        tag = found.meta["e_tag"]
        if tag is None:
            raise BackendUnavailable(f"{self.url}: the store gives no ETag, so refs cannot be moved safely")
        return Tagged(data, tag)

    def swap_tagged(self, key: str, tag: str | None, data: bytes) -> bool:
        value = _bytes(data)
        mode: Any = "create" if tag is None else {"e_tag": tag}
        try:
            obstore.put(self.store, _check_key(key), value, mode=mode, use_multipart=False)
        except (AlreadyExistsError, PreconditionError, *NOT_FOUND):
            return False
        except BaseError as exc:
            raise self._unavailable(exc) from exc
        return True

    def delete(self, key: str) -> None:
        self.stat(key)
        try:
            obstore.delete(self.store, key)
        except NOT_FOUND:
            raise NotFoundInBackend(key) from None
        except BaseError as exc:
            raise self._unavailable(exc) from exc

    def stat(self, key: str) -> KeyStat:
        try:
            meta = obstore.head(self.store, _check_key(key))
        except NOT_FOUND:
            raise NotFoundInBackend(key) from None
        except BaseError as exc:
            raise self._unavailable(exc) from exc
        return KeyStat(meta["size"], meta["last_modified"].timestamp())


def open_object_store(scheme: str, container: str, prefix: str, url: str, *, endpoint: str | None = None,
                      region: str | None = None, path_style: bool | None = None) -> ObjectStoreBackend:
    """obstore's S3Store ("s3") or AzureStore ("az") for a bucket or container and prefix.

    Only locations and addressing are passed: credentials are left to obstore, which reads the
    environment and the standard chains. Plain http is allowed only to an http:// endpoint.
    """
    from obstore.store import AzureStore, S3Store

    client: dict[str, Any] = {**CLIENT, "allow_http": bool(endpoint and endpoint.startswith("http://"))}
    config: dict[str, Any] = {}
    if endpoint:
        config["endpoint"] = endpoint
    if scheme == "s3":
        if region:
            config["region"] = region
        if path_style is not None:
            config["virtual_hosted_style_request"] = not path_style
    elif scheme != "az":
        raise ValueError(f"not an object store scheme: {scheme}")
    kind = S3Store if scheme == "s3" else AzureStore
    try:  # what the environment lacks (an Azure account name) is known here, before any request
        store: ObjectStore = kind(container, prefix=prefix or None, config=config,  # type: ignore[arg-type]
                                  client_options=client, retry_config=RETRY)  # type: ignore[arg-type]
    except BaseError as exc:
        raise BackendUnavailable(f"{url}: {_reason(exc)}") from exc
    return ObjectStoreBackend(store, url)
