"""mvc runs: the commits log would list, as a table with a row per commit and a column per
metric and param (as `dvc exp show`); the CLI renders it as a table, JSON, CSV or Markdown."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelvc.objects import Commit
from modelvc.ops.annotate import all_annotations
from modelvc.ops.log import log
from modelvc.ops.query import CommitValues, Query, Value, commit_values, own_values
from modelvc.repo import Repo
from modelvc.vocabulary import signature_dict


@dataclass(frozen=True)
class Column:
    """A column of `runs`: a metric or a param; `header` is its name, qualified
    (metrics.NAME, params.NAME) only where a metric and a param share the name."""

    group: str  # "metrics" | "params"
    name: str
    header: str


@dataclass(frozen=True)
class RunRow:
    """One commit of the table, with the values its cells are read from."""

    id: str
    commit: Commit
    names: list[str]
    values: CommitValues

    def cell(self, column: Column) -> Value | None:
        found: Value | None = getattr(self.values, column.group).get(column.name)
        return found

    def to_dict(self, columns: list[Column]) -> dict[str, Any]:
        author = self.commit.author
        chosen = {group: {c.name: self.cell(c) for c in columns if c.group == group and self.cell(c) is not None}
                  for group in ("metrics", "params")}
        return {"id": self.id, "author": signature_dict(author.name, author.email, author.time, author.tz_minutes),
                "subject": self.commit.subject, "names": list(self.names), **chosen,
                "meta": dict(self.values.meta)}


@dataclass(frozen=True)
class RunsTable:
    """The rows of `mvc runs`, in log's order (or --sort's), and the columns to show."""

    columns: list[Column]
    rows: list[RunRow]

    def to_dict(self) -> list[dict[str, Any]]:
        return [row.to_dict(self.columns) for row in self.rows]


def runs(repo: Repo, revs: Sequence[str] = (), all_refs: bool = False, query: Query | None = None,
         limit: int | None = None, metrics: Sequence[str] = (), params: Sequence[str] = (),
         paths: list[str] | None = None, cwd: Path | None = None) -> RunsTable:
    """The commits log would list, as a table: every metric and param seen as columns, or only
    those named (naming any metric or param chooses the columns exactly)."""
    entries = log(repo, list(revs), limit, paths, cwd, all_refs, query)
    notes = all_annotations(repo)
    rows = [RunRow(e.id, e.commit, e.names, commit_values(e.id, own_values(e.commit), notes)) for e in entries]
    if metrics or params:
        chosen = [("metrics", name) for name in dict.fromkeys(metrics)]
        chosen += [("params", name) for name in dict.fromkeys(params)]
    else:
        chosen = [("metrics", name) for name in sorted({k for row in rows for k in row.values.metrics})]
        chosen += [("params", name) for name in sorted({k for row in rows for k in row.values.params})]
    names = [name for _, name in chosen]
    columns = [Column(group, name, f"{group}.{name}" if names.count(name) > 1 else name) for group, name in chosen]
    return RunsTable(columns, rows)
