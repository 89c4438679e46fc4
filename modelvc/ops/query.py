"""Finding versions by their values: the --where, --sort, --since and --until of `log` and `runs`,
and the table `runs` prints (a row per commit, a column per metric and param).

A commit's values (metrics, params, meta) come from one function, commit_values, so every
query sees a commit the same way. Params and meta are text, yet `lr=3e-4` must match a stored
`0.0003`: a comparison is numeric when both sides read as numbers, else textual.
"""

from __future__ import annotations

import math
import operator
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from modelvc.errors import QueryError
from modelvc.objects import Commit

if TYPE_CHECKING:
    from modelvc.ops.annotate import Annotations

NAMESPACES = ("metrics", "params", "meta")


class _Listed(Protocol):
    @property
    def id(self) -> str: ...


_Entry = TypeVar("_Entry", bound=_Listed)
Value = float | str

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
    "=": operator.eq, "==": operator.eq, "!=": operator.ne}
_TERM = re.compile(r"(?P<key>[^<>=!]*?)\s*(?P<op><=|>=|!=|==|=|<|>)\s*(?P<value>.*)", re.DOTALL)
_AND = re.compile(r"(?:^|\s+)and(?:\s+|$)", re.IGNORECASE)
_OR = re.compile(r"\sor\s", re.IGNORECASE)
_FORMS = "KEY<VALUE, with < <= > >= = or !="
_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400,
          "month": 30 * 86400, "year": 365 * 86400}
_AGO = re.compile(r"(\d+|an?|one)[\s.]+(second|minute|hour|day|week|month|year)s?[\s.]+ago", re.IGNORECASE)
_DATE_FORMS = "use 2026-01-31, '2026-01-31 12:00', '2 weeks ago', yesterday or a unix time"


@dataclass(frozen=True)
class CommitValues:
    """What a query sees of a commit: its metrics (numbers), params and meta (text)."""

    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    meta: dict[str, str] = field(default_factory=dict)

    def lookup(self, key: str) -> Value | None:
        """`metrics.acc`, `params.lr`, `meta.task` in that group; a bare key in metrics, then
        params, then meta; None where the commit has no such key."""
        group, dot, name = key.partition(".")
        if dot and group in NAMESPACES:
            found: Value | None = getattr(self, group).get(name)
            return found
        for values in (self.metrics, self.params, self.meta):
            if key in values:
                return values[key]
        return None


def own_values(commit: Commit) -> CommitValues:
    """The values recorded in the commit object itself."""
    return CommitValues(dict(commit.metrics), dict(commit.params), dict(commit.meta))


def commit_values(commit_id: str, own: CommitValues,
                  annotations: Mapping[str, Annotations] | None = None) -> CommitValues:
    """A commit's values as every query and `runs` see them, from its own (own_values, or the
    commit-metadata cache's copy of them): the one place where values added to a commit later
    (annotations: ops.annotate.all_annotations) join its own, a note's value winning."""
    found = annotations.get(commit_id) if annotations else None
    if found is None:
        return own
    return CommitValues(own.metrics | found.metrics, own.params | found.params, own.meta | found.meta)


def as_number(value: Value) -> float | None:
    """A finite number, from a metric or from text that reads as one ('3e-4', '0.0003')."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def as_text(value: Value) -> str:
    """Text to compare with text: a metric as Python writes the float."""
    return repr(value) if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Condition:
    """One comparison of a --where: KEY OP VALUE."""

    key: str
    op: str
    value: str
    number: float | None = field(init=False, compare=False)  # the value read as a number

    def __post_init__(self) -> None:
        object.__setattr__(self, "number", as_number(self.value))

    def holds(self, values: CommitValues) -> bool:
        """A missing key fails, whatever the operator; numbers compare as numbers."""
        stored = values.lookup(self.key)
        if stored is None:
            return False
        stored_number = as_number(stored)
        if stored_number is not None and self.number is not None:
            return _COMPARE[self.op](stored_number, self.number)
        return _COMPARE[self.op](as_text(stored), self.value)


def parse_where(expression: str) -> list[Condition]:
    """The conditions of one --where (joined with 'and'); QueryError says what is wrong."""
    def bad(problem: str) -> QueryError:
        return QueryError(f"--where '{expression}': {problem}", hint=f"write conditions as {_FORMS}, joined with 'and'")

    if not expression.strip():
        raise bad("empty expression")
    terms = _AND.split(expression.strip())
    if any(not term.strip() for term in terms):
        raise bad("a condition is missing before or after 'and'")
    conditions = []
    for term in terms:
        found = _TERM.fullmatch(term.strip())
        if found is None:
            raise bad(f"'{term.strip()}' is no comparison")
        key, op, value = found["key"].strip(), found["op"], found["value"].strip()
        if not key:
            raise bad(f"no key before '{op}'")
        if any(character.isspace() for character in key):
            raise bad(f"key '{key}' contains a space")
        group, dot, name = key.partition(".")
        if dot and group in NAMESPACES and not name:
            raise bad(f"no key after '{group}.'")
        if not value:
            raise bad(f"no value after '{op}'")
        if value[0] in "<>=!":
            raise bad(f"'{op}{value[0]}' is not an operator")
        if _OR.search(value):
            raise bad("only 'and' joins conditions")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        conditions.append(Condition(key, op, value))
    return conditions


@dataclass(frozen=True)
class SortKey:
    """One --sort: KEY ascending, or -KEY descending."""

    key: str
    descending: bool = False


def parse_sort(text: str) -> SortKey:
    """'KEY' sorts ascending, '-KEY' descending."""
    descending = text.startswith("-")
    key = text[1:].strip() if descending or text.startswith("+") else text.strip()
    if not key:
        raise QueryError(f"--sort '{text}': no key", hint="give a metric, param or meta key: --sort val_loss, "
                                                          "--sort -acc")
    return SortKey(key, descending)


def parse_date(text: str, option: str, now: float | None = None) -> int:
    """Unix seconds from the cheap forms of git's dates: ISO dates and times (local time when
    no offset is given), 'N units ago', now/today/yesterday, a unix time ('@1700000000')."""
    now = time.time() if now is None else now
    stripped = text.strip()
    lowered = stripped.lower()
    if re.fullmatch(r"@?\d+", stripped):
        return int(stripped.lstrip("@"))
    if lowered == "now":
        return int(now)
    if lowered in ("today", "yesterday"):
        midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        return int(midnight) - (86400 if lowered == "yesterday" else 0)
    ago = _AGO.fullmatch(stripped)
    if ago:
        count = 1 if not ago[1].isdigit() else int(ago[1])
        return int(now) - count * _UNITS[ago[2].lower()]
    try:
        iso = stripped[:-1] + "+00:00" if stripped[-1:] in ("Z", "z") else stripped  # Python 3.10 wants the offset
        return int(datetime.fromisoformat(iso).timestamp())
    except ValueError:
        raise QueryError(f"{option} '{text}': not a date", hint=_DATE_FORMS) from None


@dataclass(frozen=True)
class Query:
    """Which commits of a walk to keep (--where, --since, --until) and in what order (--sort)."""

    where: tuple[Condition, ...] = ()
    sort: tuple[SortKey, ...] = ()
    since: int | None = None
    until: int | None = None

    @classmethod
    def parse(cls, where: Sequence[str] = (), sort: Sequence[str] = (), since: str | None = None,
              until: str | None = None, now: float | None = None) -> Query:
        """A query from the options as typed; QueryError (exit 2) for one that cannot be read."""
        return cls(tuple(c for expression in where for c in parse_where(expression)),
                   tuple(parse_sort(text) for text in sort),
                   None if since is None else parse_date(since, "--since", now),
                   None if until is None else parse_date(until, "--until", now))

    @property
    def filters(self) -> bool:
        return bool(self.where) or self.since is not None or self.until is not None

    def keeps(self, moment: int, values: Callable[[], CommitValues]) -> bool:
        """Whether a commit made at `moment` passes; `values` gives its values (when asked)."""
        if (self.since is not None and moment < self.since) or (self.until is not None and moment > self.until):
            return False
        if not self.where:
            return True
        found = values()
        return all(condition.holds(found) for condition in self.where)

    def order(self, entries: list[_Entry], values: Callable[[str], CommitValues]) -> list[_Entry]:
        """Sorted by each key in turn (the first deciding); commits without a key last; ties
        keep the walk's order, newest first. Numbers before text."""
        for sort in reversed(self.sort):
            looked = [(values(e.id).lookup(sort.key), e) for e in entries]
            present = [(value, e) for value, e in looked if value is not None]
            present.sort(key=lambda pair: _rank(pair[0]), reverse=sort.descending)
            entries = [e for _, e in present] + [e for value, e in looked if value is None]
        return entries


def _rank(value: Value) -> tuple[int, float, str]:
    number = as_number(value)
    return (0, number, "") if number is not None else (1, 0.0, as_text(value))
