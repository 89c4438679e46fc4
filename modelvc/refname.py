"""Which branch and tag names are allowed (git's check-ref-format rules).

The rules keep every name usable as a path under refs/ and unambiguous in revision syntax
("~", "^", ":" and "@{" mean something there), and keep names clear of the lock and temp
files other tools put beside refs.
"""

from __future__ import annotations

import re

from .errors import RefError

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")
_SPECIAL = re.compile(r"[~^:?*\[\\]")


def _problem(name: str) -> str | None:
    """The first rule `name` breaks, in words, or None when it is valid."""
    if not name:
        return "is empty"
    if name == "HEAD":
        return "'HEAD' is reserved"
    if name == "@":
        return "'@' alone is reserved"
    bad = _CONTROL_OR_SPACE.search(name)
    if bad:
        return "contains a space" if bad.group() == " " else "contains a control character"
    bad = _SPECIAL.search(name)
    if bad:
        return f"contains '{bad.group()}'"
    for sequence in ("..", "@{", "//"):
        if sequence in name:
            return f"contains '{sequence}'"
    for prefix in ("-", ".", "/"):
        if name.startswith(prefix):
            return f"starts with '{prefix}'"
    for suffix in ("/", ".", ".lock"):
        if name.endswith(suffix):
            return f"ends with '{suffix}'"
    for component in name.split("/"):
        if component.startswith("."):
            return f"component '{component}' starts with '.'"
        if component.endswith(".lock"):
            return f"component '{component}' ends with '.lock'"
    return None


def check_ref_name(name: str, what: str = "branch") -> None:
    """Raise RefError naming the broken rule; `what` says which kind of name it is."""
    problem = _problem(name)
    if problem is not None:
        raise RefError(f"invalid {what} name '{name}': {problem}")


def is_valid_ref_name(name: str) -> bool:
    return _problem(name) is None
