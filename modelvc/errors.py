"""One exception hierarchy; each class carries the exit code the CLI maps it to.

The messages are written for the user: what went wrong and what to do about it.
"""

from __future__ import annotations

import errno
from typing import Any


class MvcError(Exception):
    """Base of every error modelvc reports to a user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(MvcError):
    """The command line asks for something that does not make sense."""

    exit_code = 2


class NotARepositoryError(MvcError):
    exit_code = 3


class UnknownRevisionError(MvcError):
    """A revision, ref or path that does not exist (or is ambiguous)."""

    exit_code = 4


class PathNotFoundError(UnknownRevisionError):
    """A path given on the command line matches nothing."""


class LocalChangesError(MvcError):
    """An operation would overwrite uncommitted work."""

    exit_code = 5

    def __init__(self, message: str, paths: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.paths = paths


class LockTimeoutError(MvcError):
    exit_code = 6


class IntegrityError(MvcError):
    """Stored bytes do not match their id, or an object is missing."""

    exit_code = 7


class FormatVersionError(MvcError):
    """The repository was written by a newer (or unknown) format version."""

    exit_code = 8


class NothingToCommitError(MvcError):
    exit_code = 9


class RefError(MvcError):
    """Invalid ref name, a ref that already exists, or a lost compare-and-swap."""

    exit_code = 10


class AlreadyExistsError(RefError):
    pass


class RefConflictError(RefError):
    """A ref moved under us between read and update (compare-and-swap lost)."""


EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "differences found (diff/status --exit-code), problems found (fsck), an ignored path added "
       "without -f, or an unexpected error",
    2: "usage error: bad option, bad value, path outside the working tree",
    3: "not a modelvc repository, or (init) a repository already exists there",
    4: "unknown or ambiguous revision, ref or path",
    5: "uncommitted local changes would be overwritten",
    6: "timed out waiting for the repository lock",
    7: "integrity error: stored data is corrupt or missing",
    8: "repository format version not supported by this modelvc",
    9: "nothing to commit",
    10: "invalid ref name, ref already exists, or branch not fully merged (branch -d)",
    11: "no space left on device (or disk quota exceeded) while writing",
    12: "permission denied, or a read-only file system",
    13: "a file changed while mvc was reading it; nothing was staged",
    14: "configuration error: a damaged .mvc/config, an unreadable config file or .mvcignore, "
        "an unknown key, a bad value",
    15: "author identity unknown (set user.name and user.email)",
    16: "a remote cannot be reached or refuses access (network, credentials, a missing bucket)",
    17: "a metrics, params or Trainer state file is missing or malformed; nothing was committed",
    18: "push rejected: the remote branch has commits the pushed one lacks (non-fast-forward, fetch "
        "first), or it moved during the push; nothing of yours is lost",
    19: "pull: the branch and its upstream have diverged, so it cannot be fast-forwarded",
}


class ConfigError(MvcError):
    """A configuration file or key that cannot be used: unreadable, unknown key, bad value
    (the repository's .mvc/config damaged included)."""

    exit_code = 14


class IgnoredPathError(MvcError):
    """A path named on the command line is ignored by .mvcignore (git's exit code: 1)."""

    exit_code = 1

    def __init__(self, message: str, paths: list[str], hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.paths = paths


class IdentityError(MvcError):
    """No author name or email is configured anywhere (git's 'Please tell me who you are')."""

    exit_code = 15


class MissingObjectError(IntegrityError):
    """A manifest, tree, commit or tag that something refers to is not in the store."""


class CorruptObjectError(IntegrityError):
    """A stored object does not match its id, cannot be decoded, or contradicts what it lists."""


class MissingChunkError(IntegrityError):
    """A chunk (or the pack holding it, or a delta's base) is not in the store."""


class CorruptChunkError(IntegrityError):
    """A chunk's stored bytes, its pack record or its pack index do not match what they claim."""


class CorruptRefError(IntegrityError):
    """HEAD or a ref file holds something other than a ref or a commit id."""


class CorruptIndexError(IntegrityError):
    """The index (staging area) cannot be read, or an entry contradicts its stored manifest."""


class NotFullyMergedError(RefError):
    """`branch -d` of a branch whose commits nothing else reaches: they would only live in reflogs."""


class UnsafePathError(IntegrityError):
    """A path read from the store or the index that could reach outside the working tree."""


class SymlinkInWayError(LocalChangesError):
    """A symbolic link (or a file) stands where the working tree needs a directory."""


class FileChangedError(MvcError):
    """A file was written to while mvc read it: what was read is no version of it."""

    exit_code = 13

    def __init__(self, path: str) -> None:
        super().__init__(f"'{path}' changed while mvc was reading it; nothing was staged",
                         hint="run the command again when whatever writes the file is done")
        self.path = path


class NoSpaceError(MvcError):
    """The disk (or a quota) filled up while writing; what was being written is rolled back."""

    exit_code = 11


class PermissionDeniedError(MvcError):
    """The operating system refused access to a file or directory mvc needed."""

    exit_code = 12


_NO_SPACE = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
_DENIED = {errno.EACCES: "permission denied", errno.EPERM: "permission denied",
           errno.EROFS: "read-only file system"}


def from_os_error(exc: OSError) -> MvcError | None:
    """The MvcError an OSError stands for, told apart by errno; None when it is not one of ours.

    The file is the one the OSError names: writers name their target where the system call
    itself names none (write, fsync), see modelvc.fsutil.naming. When a clean-up step failed
    the same way while handling the first failure (saving the index after a checkout write
    hit a full disk, or closing a file flushed it again), the first named file is the one named.
    """
    chain = [exc]
    while isinstance(chain[-1].__context__, OSError) and chain[-1].__context__.errno == exc.errno:
        chain.append(chain[-1].__context__)
    named = [error.filename for error in reversed(chain) if error.filename is not None]
    what = named[0] if named else "the repository"
    if exc.errno in _NO_SPACE:
        return NoSpaceError(f"{_NO_SPACE[exc.errno]} while writing {what}",
                            hint="no file was left half-written; free some space and run the command again")
    if exc.errno in _DENIED:
        return PermissionDeniedError(f"{_DENIED[exc.errno]}: {what}",
                                     hint="check the owner and permissions of that path")
    return None


class RepositoryExistsError(MvcError):
    """`init` where a repository already is: refused (git would reinitialize), a repository error."""

    exit_code = 3


class UnknownRemoteError(UsageError):
    """A remote name that is not configured (git: "No such remote", exit 2)."""


class RemoteExistsError(MvcError):
    """`remote add` or `remote rename` to a name already configured (git: exit 3)."""

    exit_code = 3


class RemoteUnreachableError(MvcError):
    """A remote that cannot be reached or refuses us: network, credentials, a missing bucket,
    container or directory."""

    exit_code = 16


class MetadataFileError(MvcError):
    """A metrics, params or Trainer state file that is missing or cannot be parsed (named, with the
    line and column of a syntax error); nothing is committed."""

    exit_code = 17


class UnknownTensorError(PathNotFoundError):
    """read_tensor named a tensor the stored model file does not hold (or cannot give bytes for)."""


class NotAModelFileError(UnknownTensorError):
    """read_tensor named a stored file that is no model file modelvc can read tensors from."""


class QueryError(UsageError):
    """A --where, --sort, --since or --until that cannot be read."""


class PushRejectedError(MvcError):
    """A push refused for some refs (git's "! [rejected]"): `result` says what was sent and which
    refs moved; the others stay where they were on the remote."""

    exit_code = 18

    def __init__(self, message: str, hint: str | None = None, result: Any = None) -> None:
        super().__init__(message, hint)
        self.result = result  # a modelvc.transfer.result.TransferResult


class NotFastForwardError(MvcError):
    """`pull` on a branch that has diverged from its upstream (git: "Not possible to fast-forward")."""

    exit_code = 19
