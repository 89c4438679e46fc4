"""mvc fsck, gc, stats."""

from __future__ import annotations

import click

from modelvc.cli.output import counted, emit_json, human_size, open_repo, progress_bar
from modelvc.errors import IntegrityError
from modelvc.ids import is_full_id, short


@click.command("fsck")
@click.option("--read-data", is_flag=True,
              help="Also verify every chunk in every pack, reachable or not, and each pack against its index.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def fsck_command(ctx, read_data, as_json) -> None:
    """Verify every object and chunk reachable from refs, reflogs and the index.

    Every chunk is decompressed and hashed. Reports what is missing or corrupt and which
    commits and paths it breaks; exits 7 when anything is wrong.
    """
    from modelvc.ops.fsck import fsck

    with progress_bar() as bar:
        result = fsck(open_repo(ctx), read_data, bar)
    if as_json:
        emit_json(result.to_dict())
    else:
        for problem in result.problems:
            name = short(problem.object) if is_full_id(problem.object) else problem.object
            click.echo(f"{problem.kind} {name}: {problem.detail}", err=True)
            for commit_id, path in problem.breaks:
                where = "the index" if commit_id == "index" else f"commit {short(commit_id)}"
                click.echo(f"  breaks {path} in {where}", err=True)
        for note in result.notes:
            click.echo(f"note: {note}")
        click.echo(f"checked {counted(result.commits, 'commit')}, {counted(result.objects, 'object')}, "
                   f"{counted(result.chunks, 'chunk')} ({human_size(result.chunk_bytes)})")
    if not result.ok:
        if not as_json:
            click.echo(f"error: {counted(len(result.problems), 'problem')} found", err=True)
        ctx.exit(IntegrityError.exit_code)


@click.command("gc")
@click.option("--prune", metavar="TIME",
              help="Delete unreachable data older than TIME: 'now', 'never', '2 weeks', a date (default: an hour).")
@click.option("--grace", type=click.FloatRange(min=0), default=None,
              help="Keep unreachable data younger than this many seconds (default 3600; 0 is --prune=now).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def gc_command(ctx, prune, grace, as_json) -> None:
    """Expire old reflog entries, delete unreachable objects, rewrite packs that are mostly dead.

    Reflog entries expire as in git: after gc.reflogExpire (90 days), or gc.reflogExpireUnreachable
    (30 days) for commits the ref no longer reaches. To get the space of a mistaken commit back
    today: 'mvc reflog expire --expire=now --all' then 'mvc gc --prune=now'.
    """
    import time

    from modelvc.expiry import parse_expiry
    from modelvc.ops.gc import GRACE_SECONDS, gc

    if prune is not None and grace is not None:
        raise click.UsageError("give --prune or --grace, not both")
    if prune is not None:
        now = time.time()
        grace = max(0.0, now - parse_expiry(prune, now))
    with progress_bar() as bar:
        result = gc(open_repo(ctx), GRACE_SECONDS if grace is None else grace, bar)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(f"expired {counted(result.reflog_entries_expired, 'reflog entry', 'reflog entries')}; "
               f"removed {counted(result.objects_removed, 'object')}, {counted(result.chunks_removed, 'chunk')}, "
               f"{counted(result.incomplete_removed, 'incomplete pack')}; "
               f"rewrote {counted(result.packs_rewritten, 'pack')} into {result.packs_written}; "
               f"freed {human_size(result.bytes_freed)}")
    if result.upgraded_to is not None:
        click.echo(f"upgraded the repository to format {result.upgraded_to}")


def share_text(share: dict) -> str:
    return (f"{counted(share['commit_count'], 'commit')}, {counted(share['chunk_count'], 'chunk')} "
            f"({human_size(share['chunk_bytes'])}, "
            f"stored as {human_size(share['stored_bytes'])})")


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_context
def stats_command(ctx, as_json) -> None:
    """Bytes tracked across all versions vs bytes stored."""
    from modelvc.ops.stats import stats

    result = stats(open_repo(ctx))
    if as_json:
        emit_json(result.to_dict())
        return
    rows = [("commits", str(result.commits)), ("file versions", str(result.file_versions)),
            ("tracked (all versions)", human_size(result.tracked_bytes)),
            ("unique file versions", human_size(result.unique_file_bytes)),
            ("unique chunks", f"{result.unique_chunks} ({human_size(result.unique_chunk_bytes)})"),
            ("stored", f"{human_size(result.stored_bytes)} in {counted(result.packs, 'pack')} + objects"),
            ("stored / tracked", f"{result.ratio:.3f}"),
            ("chunks by codec", ", ".join(f"{k}: {v}" for k, v in result.codecs.items()) or "-"),
            ("delta blocks", f"{result.delta_chunks} ({human_size(result.delta_raw_bytes)} stored as "
                             f"{human_size(result.delta_stored_bytes)}, "
                             f"about {human_size(result.delta_saved_bytes)} saved)"),
            ("reached by refs", share_text(result.refs)),
            ("held only by reflogs", share_text(result.reflogs_only))]
    for label, value in rows:
        click.echo(f"{label:<24} {value}")
