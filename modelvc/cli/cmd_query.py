"""mvc runs, and the query options it shares with log (--where, --sort, --since, --until, --path)."""

from __future__ import annotations

import csv
import io
import sys
import time

import click

from modelvc.cli.cmd_completion import complete_revs
from modelvc.cli.output import PathsAfterDashDash, cwd_of, emit_json, format_value, open_repo
from modelvc.ids import short

QUERY_OPTIONS = [
    click.option("--where", "where", multiple=True, metavar="EXPR",
                 help="Keep commits whose metrics, params or meta satisfy EXPR: 'val_loss<2', 'lr=3e-4', "
                      "'task=summarization', joined with 'and'; params.KEY, metrics.KEY, meta.KEY choose the "
                      "group. Repeatable (all must hold)."),
    click.option("--sort", "sort", multiple=True, metavar="[-]KEY",
                 help="Order by KEY (-KEY: descending); commits without it last. Repeatable."),
    click.option("--since", metavar="DATE", help="Only commits made at or after DATE (2026-01-31, '2 weeks ago', "
                                                 "a unix time)."),
    click.option("--until", metavar="DATE", help="Only commits made at or before DATE."),
    click.option("--path", "path_options", multiple=True, metavar="PATH",
                 help="Only commits that changed PATH (as '-- PATH'); repeatable."),
]


def query_options(function):
    """The options log and runs share to choose commits by their values and dates."""
    for option in reversed(QUERY_OPTIONS):
        function = option(function)
    return function


def query_of(where, sort, since, until):
    from modelvc.ops.query import Query

    return Query.parse(where, sort, since, until)


def paths_of(ctx: click.Context, path_options) -> list[str] | None:
    paths = list(path_options) + list(ctx.meta.get("paths") or [])
    return paths or None


@click.command("runs", cls=PathsAfterDashDash)
@click.argument("revs", nargs=-1, shell_complete=complete_revs)
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=0), help="Show at most N commits.")
@click.option("--all", "all_refs", is_flag=True, help="Start from every ref (branches, tags, remotes) and HEAD.")
@query_options
@click.option("--metric", "metric_names", multiple=True, metavar="NAME",
              help="Show this metric as a column; with any --metric or --param, only the columns named.")
@click.option("--param", "param_names", multiple=True, metavar="NAME", help="Show this param as a column.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--csv", "as_csv", is_flag=True, help="Print the table as CSV.")
@click.option("--md", "as_md", is_flag=True, help="Print the table as a Markdown table.")
@click.pass_context
def runs_command(ctx, revs, limit, all_refs, where, sort, since, until, path_options, metric_names, param_names,
                 as_json, as_csv, as_md) -> None:
    """Compare versions: a row per commit, a column per metric and param.

    Selects commits as 'mvc log' does (REV..., A..B, --all, -n, --where, --sort, --since,
    --until, -- PATH), newest first unless --sort.

    \b
    mvc runs --all --where 'task=summarization' --sort val_loss -n 5
    mvc runs --metric val_loss --param lr --csv > runs.csv
    """
    from modelvc.ops.runs import runs

    if as_json + as_csv + as_md > 1:
        raise click.UsageError("choose one of --json, --csv and --md")
    query = query_of(where, sort, since, until)
    repo = open_repo(ctx)
    if repo.head_commit() is None and not revs and not all_refs:
        table = None
    else:
        table = runs(repo, revs, all_refs, query, limit, metric_names, param_names,
                     paths_of(ctx, path_options), cwd_of(ctx))
    if as_json:
        emit_json(table.to_dict() if table else [])
    elif table is None:
        click.echo("no commits yet", err=True)
    elif as_csv:
        click.echo(csv_text(table), nl=False)
    elif as_md:
        click.echo(markdown_text(table), nl=False)
    else:
        render_table(table)


def _date(commit) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(commit.author.time + commit.author.tz_minutes * 60))


def _cells(table, row, exact: bool) -> list[str]:
    """The row's values in column order: '' for a missing one; numbers in full with `exact`."""
    cells = []
    for column in table.columns:
        value = row.cell(column)
        cells.append("" if value is None else repr(value) if exact and isinstance(value, float)
                     else format_value(value))
    return cells


def csv_text(table) -> str:
    """Full ids, ISO times and numbers in full, for spreadsheets and pandas."""
    from modelvc.vocabulary import iso_time

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "time", "subject", *[c.header for c in table.columns]])
    for row in table.rows:
        author = row.commit.author
        writer.writerow([row.id, iso_time(author.time, author.tz_minutes), row.commit.subject,
                         *_cells(table, row, exact=True)])
    return out.getvalue()


def markdown_text(table) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |\n"

    headers = ["commit", "date", "subject", *[c.header for c in table.columns]]
    text = line(headers) + "|" + "|".join("---" for _ in headers) + "|\n"
    for row in table.rows:
        text += line([short(row.id), _date(row.commit), row.commit.subject, *_cells(table, row, exact=False)])
    return text


def render_table(table) -> None:
    from rich.console import Console
    from rich.table import Table

    rich_table = Table(box=None, pad_edge=False, header_style="bold")
    rich_table.add_column("commit", style="yellow", no_wrap=True)
    rich_table.add_column("date", no_wrap=True)
    rich_table.add_column("subject")
    for column in table.columns:
        rich_table.add_column(column.header, justify="right" if column.group == "metrics" else "left",
                              style="cyan" if column.group == "metrics" else None, no_wrap=True)
    for row in table.rows:
        names = f" ({', '.join(row.names)})" if row.names else ""
        rich_table.add_row(short(row.id) + names, _date(row.commit), row.commit.subject,
                           *[cell or "-" for cell in _cells(table, row, exact=False)])
    colour = click.get_current_context().color
    if sys.stdout.isatty():
        Console(no_color=colour is False).print(rich_table)
        return
    out = io.StringIO()  # a pipe or file: never cut to a width, no trailing blanks
    Console(file=out, width=100_000, force_terminal=bool(colour), color_system="standard" if colour else None,
            ).print(rich_table)
    click.echo("\n".join(line.rstrip() for line in out.getvalue().splitlines()), color=colour)
