"""mvc annotate, promote, history, stages: the registry view (docs/registry.md)."""

from __future__ import annotations

import click

from modelvc.cli.cmd_completion import complete_revs
from modelvc.cli.cmd_history import pairs_text
from modelvc.cli.output import emit_json, format_time, open_repo
from modelvc.ids import short


def message_text(messages: tuple[str, ...]) -> str:
    """Several -m are paragraphs, as commit's."""
    return "\n\n".join(messages)


@click.command("annotate")
@click.argument("rev", default="HEAD", shell_complete=complete_revs)
@click.option("--metric", "metrics", multiple=True, metavar="KEY=NUMBER", help="A metric (a number); repeatable.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter; repeatable.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE", help="Free metadata; repeatable.")
@click.option("-m", "--message", "messages", multiple=True, help="A note on what was added and why.")
@click.option("--list", "list_notes", is_flag=True, help="List the annotations of REV, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the note (or the list) as JSON.")
@click.pass_context
def annotate_command(ctx, rev, metrics, params, meta, messages, list_notes, as_json) -> None:
    """Add metrics, params or metadata to an existing commit (REV, default HEAD).

    The commit's id does not change: the values go into a note (refs/notes/commits), an
    object of the repository like a commit. log, show and diff show them beside the commit's own,
    marked '(annotated)'; a later note's value of a key wins. 'mvc annotate --list REV'
    lists who added what and when. Exits 2 for a bad KEY=VALUE, 4 for an unknown REV.
    """
    from modelvc.ops.annotate import annotate, notes_of
    from modelvc.ops.commit import parse_pairs

    if list_notes:
        if metrics or params or meta or messages:
            raise click.UsageError("--list takes no values to add")
        records = notes_of(open_repo(ctx), rev)
        if as_json:
            emit_json([record.to_dict() for record in records])
            return
        for record in records:
            echo_note(record)
        return
    metric_values = parse_pairs(list(metrics), "--metric", numeric=True)
    param_values = parse_pairs(list(params), "--param")
    meta_values = parse_pairs(list(meta), "--meta")
    record = annotate(open_repo(ctx), rev, metric_values, param_values, meta_values, message_text(messages))
    if as_json:
        emit_json(record.to_dict())
        return
    click.echo(f"[note {short(record.id)}] annotated {short(record.note.commit)}")


def echo_note(record) -> None:
    """A note as log shows a commit: who, when, the message, and what it added."""
    note = record.note
    click.secho(f"note {record.id} (commit {short(note.commit)})", fg="yellow")
    click.echo(f"Author: {note.author.name} <{note.author.email}>")
    click.echo(f"Date:   {format_time(note.author.time, note.author.tz_minutes)}")
    for line in note.message.splitlines():
        click.echo(f"    {line}")
    for title, values in (("metrics", note.metrics), ("params", note.params), ("meta", note.meta)):
        if values:
            click.echo(f"    {title}: {pairs_text(values)}")
    click.echo()


@click.command("promote")
@click.argument("args", nargs=-1, metavar="REV STAGE", shell_complete=complete_revs)
@click.option("-m", "--message", "messages", multiple=True, help="Why (kept in the stage's history).")
@click.option("--delete", is_flag=True, help="'promote --delete STAGE': the stage names no commit any more.")
@click.option("--json", "as_json", is_flag=True, help="Print the move as JSON.")
@click.pass_context
def promote_command(ctx, args, messages, delete, as_json) -> None:
    """Move STAGE (production, staging, any name) to REV, keeping every move in its history.

    A stage works as a revision wherever one does ('mvc checkout production', 'mvc diff
    staging production'); a branch or tag of the same name comes first (with a warning),
    'refs/stages/NAME' always means the stage. 'mvc history STAGE' shows who moved it, when
    and why. Exits 4 for an unknown REV (or --delete of an unknown stage), 10 for a bad name.
    """
    from modelvc.ops.stages import delete_stage, promote

    repo = open_repo(ctx)
    if delete:
        if len(args) != 1:
            raise click.UsageError("promote --delete takes one STAGE")
        record = delete_stage(repo, args[0], message_text(messages))
    else:
        if len(args) != 2:
            raise click.UsageError("promote takes REV STAGE (or --delete STAGE)")
        record = promote(repo, args[0], args[1], message_text(messages))
    if as_json:
        emit_json(record.to_dict())
        return
    was = f" (was {short(record.previous_commit)})" if record.previous_commit else ""
    if record.commit is None:
        click.echo(f"Deleted stage {record.stage}{was}")
    else:
        click.echo(f"Promoted {short(record.commit)} to {record.stage}{was}")


@click.command("history")
@click.argument("stages", nargs=-1, metavar="[STAGE]...")
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=0), help="Show at most N moves.")
@click.option("--json", "as_json", is_flag=True, help="Print the moves as JSON.")
@click.pass_context
def history_command(ctx, stages, limit, as_json) -> None:
    """Every move of STAGE (default: of every stage), newest first: when, to what, who, why."""
    from modelvc.ops.stages import history

    records = history(open_repo(ctx), list(stages))[:limit]
    if as_json:
        emit_json([record.to_dict() for record in records])
        return
    for record in records:
        echo_move(record)


def echo_move(record) -> None:
    """One line: date, stage, commit (and the one before), who, why."""
    move = record.move
    target = short(move.commit) if move.commit else "(deleted)"
    was = f" (was {short(record.previous_commit)})" if record.previous_commit else ""
    why = f"  {move.message.splitlines()[0]}" if move.message else ""
    click.echo(f"{format_time(move.author.time, move.author.tz_minutes)}  {move.stage}  "
               + click.style(target, fg="yellow") + f"{was}  {move.author.name} <{move.author.email}>{why}")


@click.command("stages")
@click.option("--json", "as_json", is_flag=True, help="Print each stage's last move as JSON.")
@click.pass_context
def stages_command(ctx, as_json) -> None:
    """Every stage with the commit it names and its last move (who, when, why)."""
    from modelvc.ops.stages import list_stages

    records = list_stages(open_repo(ctx))
    if as_json:
        emit_json([record.to_dict() for record in records])
        return
    for record in records:
        echo_move(record)
