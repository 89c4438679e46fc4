"""mvc commit, log, show, diff."""

from __future__ import annotations

import json

import click

from modelvc.cli.cmd_completion import complete_revs, complete_revs_and_paths
from modelvc.cli.cmd_query import paths_of, query_of, query_options
from modelvc.cli.output import (
    PathsAfterDashDash,
    counted,
    cwd_of,
    emit_json,
    format_time,
    format_value,
    human_size,
    open_repo,
    progress_bar,
)
from modelvc.ids import short


def git_line(commit) -> str | None:
    """'Git:    <id> (dirty)': the code an mvc commit was made with, if made in a git work tree."""
    if commit.git is None:
        return None
    code = commit.git.commit or "(no git commit yet)"
    return f"Git:    {code}{' (dirty)' if commit.git.dirty else ''}"


def echo_commit_body(commit) -> None:
    """Author, date, git line and the indented message: what log and show print alike."""
    click.echo(f"Author: {commit.author.name} <{commit.author.email}>")
    click.echo(f"Date:   {format_time(commit.author.time, commit.author.tz_minutes)}")
    if git_line(commit):
        click.echo(git_line(commit))
    click.echo()
    for line in commit.message.rstrip().splitlines():
        click.echo(f"    {line}")


def pairs_text(values: dict, annotated: dict | None = None) -> str:
    """'k=v k2=v2', each value that came from an annotation marked '(annotated)'."""
    marked = annotated or {}
    return " ".join(f"{k}={format_value(v)}" + (" (annotated)" if k in marked else "")
                    for k, v in sorted(values.items()))


@click.command("commit")
@click.option("-m", "--message", "messages", multiple=True,
              help="The commit message; several -m are paragraphs, joined by a blank line.")
@click.option("-F", "--file", "message_file", type=click.File("r", encoding="utf-8"),
              help="Read the commit message from FILE ('-': standard input).")
@click.option("--metric", "metrics", multiple=True, metavar="KEY=NUMBER", help="A metric (a number); repeatable.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="A parameter; repeatable.")
@click.option("--meta", "meta", multiple=True, metavar="KEY=VALUE", help="Free metadata; repeatable.")
@click.option("--metrics-file", "metrics_files", multiple=True, metavar="FILE",
              help="Metrics from a JSON or YAML file (nested keys joined with dots); repeatable.")
@click.option("--params-file", "params_files", multiple=True, metavar="FILE",
              help="Params from a JSON or YAML file, e.g. DVC's params.yaml; repeatable.")
@click.option("--params-reset", is_flag=True,
              help="Do not carry the parent commit's params over: only those given now.")
@click.option("--metrics-from-trainer", "trainer_state", metavar="[DIR]", is_flag=False, flag_value="",
              help="Metrics from a Hugging Face Trainer checkpoint-N/ directory's trainer_state.json: "
                   "step, epoch, best_metric and the last evaluation's eval_* values. Without DIR: the "
                   "trainer_state.json this commit adds or changes.")
@click.option("-a", "--all", "stage_all", is_flag=True,
              help="First stage every change to tracked files (deletions too), as 'mvc add' would.")
@click.option("--allow-empty", is_flag=True, help="Commit even when nothing changed.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the short id.")
@click.option("--json", "as_json", is_flag=True, help="Print the new commit as JSON.")
@click.pass_context
def commit_command(ctx, messages, message_file, metrics, params, meta, metrics_files, params_files, params_reset,
                   trainer_state, stage_all, allow_empty, quiet, as_json) -> None:
    """Record the staged files as a new version, with metrics, params and metadata.

    The message comes from -m (repeatable: one paragraph each) or -F FILE. Params carry over
    from the parent commit unless --params-reset; metrics describe this version only. Later
    sources win: the Trainer state, then each --metrics-file, then --metric (params: each
    --params-file, then --param). Exits 9 when nothing is staged (unless --allow-empty), 2 for
    a metric that is not a number, 17 for a missing or malformed metrics or params file.
    """
    from modelvc.ops.commit import commit, message_from, parse_pairs

    if messages and message_file is not None:
        raise click.UsageError("option -m cannot be combined with -F")
    message = message_from(list(messages), message_file.read() if message_file is not None else None)

    metric_values = parse_pairs(list(metrics), "--metric", numeric=True)
    param_values = parse_pairs(list(params), "--param")
    meta_values = parse_pairs(list(meta), "--meta")
    from modelvc.ops.add import add_tracked, staged_for_commit

    repo = open_repo(ctx)
    with staged_for_commit(repo):  # with -a, no other writer comes between staging and committing
        if stage_all:
            with progress_bar() as bar:
                add_tracked(repo, bar, save_index=False)
        result = commit(repo, message, metric_values, param_values, meta_values, allow_empty,
                        metrics_files=metrics_files, params_files=params_files,
                        trainer_state=True if trainer_state == "" else trainer_state,
                        params_reset=params_reset, cwd=cwd_of(ctx))
    if as_json:
        emit_json(result.to_dict())
    elif quiet:
        click.echo(short(result.id))
    else:
        root = "" if result.parents else " (root-commit)"
        where = result.branch or "detached HEAD"
        click.echo(f"[{where}{root} {short(result.id)}] {result.commit.subject}")
        click.echo(f" {counted(result.files_changed, 'file')} changed")


@click.command("log", cls=PathsAfterDashDash)
@click.argument("revs", nargs=-1, shell_complete=complete_revs)
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=0), help="Show at most N commits.")
@click.option("--all", "all_refs", is_flag=True, help="Start from every ref (branches, tags, remotes) and HEAD.")
@query_options
@click.option("--oneline", is_flag=True, help="One line per commit.")
@click.option("--metric", "metric_names", multiple=True, metavar="NAME", help="Show this metric per commit.")
@click.option("--json", "as_json", is_flag=True, help="Print the commits as JSON.")
@click.pass_context
def log_command(ctx, revs, limit, all_refs, where, sort, since, until, path_options, oneline, metric_names,
                as_json) -> None:
    """Show the history from REV (default HEAD), newest first.

    \b
    mvc log A..B         commits B reaches that A does not ('A..' = A..HEAD, '..B' = HEAD..B)
    mvc log ^A B         the same
    mvc log --all        from every branch, tag, remote-tracking ref and HEAD
    mvc log -- PATH...   only commits that changed those paths
    mvc log --all --where 'val_loss<2 and lr=3e-4' --sort val_loss -n 3
    """
    from modelvc.ops.log import log

    query = query_of(where, sort, since, until)
    repo = open_repo(ctx)
    if repo.head_commit() is None and not revs and not all_refs:
        if as_json:
            emit_json([])
        else:
            click.echo("no commits yet", err=True)
        return
    entries = log(repo, list(revs), limit, paths_of(ctx, path_options), cwd_of(ctx), all_refs, query)
    if as_json:
        emit_json([entry.to_dict() for entry in entries])
        return
    for entry in entries:
        c, added = entry.commit, entry.annotations
        metrics = c.metrics | added.metrics
        names = f" ({', '.join(entry.names)})" if entry.names else ""
        shown = {k: metrics[k] for k in metric_names if k in metrics} if metric_names else metrics
        if metric_names:
            missing = [k for k in metric_names if k not in metrics]
            extra = pairs_text(shown, added.metrics) + "".join(f" {k}=-" for k in missing)
        else:
            extra = pairs_text(shown, added.metrics)
        if oneline:
            click.echo(click.style(short(entry.id), fg="yellow") + names + f" {c.subject}"
                       + (f"  [{extra}]" if extra else ""))
            continue
        click.secho(f"commit {entry.id}{names}", fg="yellow")
        if len(c.parents) > 1:
            click.echo("Merge: " + " ".join(short(p) for p in c.parents))
        echo_commit_body(c)
        if extra:
            click.echo(f"\n    metrics: {extra}")
        if (c.params or added.params) and not metric_names:
            click.echo(f"    params:  {pairs_text(c.params | added.params, added.params)}")
        if added.meta and not metric_names:
            click.echo(f"    meta:    {pairs_text(c.meta | added.meta, added.meta)}")
        click.echo()


@click.command("show")
@click.argument("rev", default="HEAD", shell_complete=complete_revs_and_paths)
@click.option("--raw", is_flag=True, help="With REV:PATH, write the file's stored bytes to stdout (as 'mvc cat').")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@click.pass_context
def show_command(ctx, rev, raw, as_json) -> None:
    """Show a commit (message, metrics, params, metadata, files with sizes), or a file.

    'mvc show REV:PATH' lists a model file's tensors (name, dtype, shape, bytes) and its
    header metadata, read from the stored header alone; other files show size and chunks.
    'mvc show REV:PATH --raw' writes its bytes instead. 'mvc show PATH' (a file in the
    working tree) lists the tensors of that file as it is on disk.
    """
    from modelvc.ops.show import show_commit
    from modelvc.revparse import split_rev_path

    commit_rev, path = split_rev_path(rev)
    if raw:
        if path is None:
            raise click.UsageError("--raw needs REV:PATH")
        write_raw(ctx, commit_rev, path, None)
        return
    if path is not None:
        render_file(open_repo(ctx), commit_rev, path, as_json)
        return
    working = working_path(ctx, rev)
    if working is not None:
        render_working_file(ctx, working, as_json)
        return
    result = show_commit(open_repo(ctx), rev)
    c = result.commit
    if as_json:
        emit_json(result.to_dict())
        return
    names = f" ({', '.join(result.names)})" if result.names else ""
    click.secho(f"commit {result.id}{names}", fg="yellow")
    echo_commit_body(c)
    added = result.annotations
    echo_values("metrics", c.metrics, added.metrics)
    echo_params(c.params, {change.key: change.old for change in result.param_changes}, added.params)
    echo_values("meta", c.meta, added.meta)
    echo_annotations(added.notes)
    click.echo(f"\nfiles ({len([f for f in result.files if f.status != 'deleted'])}, "
               f"{human_size(result.total_size)}):")
    for f in result.files:
        click.echo(f"  {f.status:<9} {human_size(f.size) if f.status != 'deleted' else '':>10}  {f.path}")


def annotated_note(key: str, own: dict, annotated: dict) -> str:
    """'  (annotated)', or '  (annotated; committed 1.95)' when a note replaced the commit's value."""
    if key not in annotated:
        return ""
    return f"  (annotated; committed {format_value(own[key])})" if key in own else "  (annotated)"


def echo_values(title: str, values: dict, annotated: dict | None = None) -> None:
    """A commit's values with what annotations added or replaced, marked as such."""
    added = annotated or {}
    if values or added:
        click.echo(f"\n{title}:")
        shown = values | added
        for key in sorted(shown):
            click.echo(f"  {key} = {format_value(shown[key])}{annotated_note(key, values, added)}")


def echo_params(params: dict, was: dict, annotated: dict | None = None) -> None:
    """A commit's params, each that differs from the first parent's marked with the old value
    ('(was 0.0003)', '(new)'), and those the parent had that are gone as 'KEY = -'; those
    annotations added or replaced are marked '(annotated)'."""
    added = annotated or {}
    if not params and not was and not added:
        return
    click.echo("\nparams:")
    for key in sorted(set(params) | set(was) | set(added)):
        value = format_value(added[key]) if key in added else format_value(params[key]) if key in params else "-"
        if key in added:
            note = annotated_note(key, params, added)
        elif key not in was:
            note = ""
        else:
            note = "  (new)" if was[key] is None else f"  (was {format_value(was[key])})"
        click.echo(f"  {key} = {value}{note}")


def echo_annotations(notes: list) -> None:
    """The notes of a commit, newest first: id, when, who, why and what each added."""
    if not notes:
        return
    click.echo(f"\nannotations ({len(notes)}):")
    for record in notes:
        note = record.note
        added = " ".join(filter(None, (pairs_text(note.metrics), pairs_text(note.params), pairs_text(note.meta))))
        why = note.message.splitlines()[0] if note.message else ""
        text = ": ".join(filter(None, (why, added)))
        click.echo(f"  {short(record.id)}  {format_time(note.author.time, note.author.tz_minutes)}  "
                   f"{note.author.name} <{note.author.email}>  {text}")


def working_path(ctx, rev: str):
    """The working-tree file `rev` names when it names no revision; both at once is ambiguous."""
    from pathlib import Path

    from modelvc.errors import UnknownRevisionError, UsageError

    candidate = cwd_of(ctx) / rev
    if not candidate.is_file():
        return None
    repo = open_repo(ctx)
    try:
        repo.resolve(rev)
    except UnknownRevisionError:
        return Path(candidate)
    raise UsageError(f"ambiguous argument '{rev}': both revision and filename",
                     hint=f"write HEAD:{rev} for the stored file, or ./{rev} for the working one")


def render_working_file(ctx, path, as_json: bool) -> None:
    from modelvc.ops.show import show_working_file

    render_file_result(show_working_file(open_repo(ctx).root, path), as_json)


def write_raw(ctx, rev: str, path: str, output: str | None) -> None:
    import sys

    from modelvc.ops.show import write_stored_file

    repo = open_repo(ctx)
    if output is None:
        write_stored_file(repo, rev, path, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return
    from modelvc.fsutil import atomic_writer

    with atomic_writer(cwd_of(ctx) / output, 0o644) as handle:
        write_stored_file(repo, rev, path, handle)


@click.command("cat")
@click.argument("spec", metavar="REV:PATH", shell_complete=complete_revs)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (replaced atomically) instead of stdout.")
@click.pass_context
def cat_command(ctx, spec, output) -> None:
    """Write the bytes of PATH as stored in REV to stdout or FILE, every chunk verified.

    PATH is from the repository root. The working tree and the index are neither read nor
    written, so this is safe in scripts and hooks. Exit 4 for an unknown REV or PATH, 7 when
    stored data is corrupt (nothing is written to FILE then).
    """
    from modelvc.revparse import split_rev_path

    rev, path = split_rev_path(spec)
    if not path:
        raise click.UsageError(f"expected REV:PATH, got '{spec}' (e.g. HEAD:model.safetensors)")
    write_raw(ctx, rev, path, output)


def render_file(repo, rev: str, path: str, as_json: bool) -> None:
    from modelvc.ops.show import show_file

    render_file_result(show_file(repo, rev, path), as_json)


def render_file_result(result, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
        return
    if result.commit is None:
        click.echo(f"{result.path} (working tree): {human_size(result.size)}")
    else:
        click.echo(f"{result.path} at {short(result.commit)}: {human_size(result.size)}, "
                   f"{counted(result.chunks, 'chunk')}")
    summary = result.model
    if summary is None:
        return
    click.echo(f"format: {summary.format}, {len(summary.tensors)} tensors, "
               f"{summary.total_numel:,} parameters, {human_size(summary.total_tensor_bytes)}")
    for warning in summary.warnings:
        click.secho(f"warning: {warning}", fg="red")
    width = max((len(t.name) for t in summary.tensors), default=10)
    for t in summary.tensors:
        shape = "[" + ", ".join(map(str, t.shape)) + "]" if t.shape is not None else "?"
        stored = ("  stride [" + ", ".join(map(str, t.stride)) + "]" if t.stride is not None else "") + (
            "  deflated" if t.deflated else "")
        click.echo(f"  {t.name:<{width}}  {t.dtype or '?':<8} {shape:<20} {human_size(t.bytes):>10}{stored}")
    if summary.metadata:
        click.echo("metadata:")
        for key, value in summary.metadata.items():
            click.echo(f"  {key}: {json.dumps(value, default=str)[:200]}")


@click.command("diff", cls=PathsAfterDashDash)
@click.argument("revs", nargs=-1, shell_complete=complete_revs_and_paths)
@click.option("--stat", is_flag=True, help="Only a summary line per file and the totals.")
@click.option("--stats", "tensor_stats", is_flag=True,
              help="For each changed tensor: max |Δ|, mean |Δ|, relative L2 change, fraction of elements changed.")
@click.option("--all", "show_all", is_flag=True, help="List unchanged tensors too (else only their count).")
@click.option("--no-tensors", is_flag=True, help="Compare files only, not the tensors inside model files.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
@click.option("--exit-code", is_flag=True,
              help="Exit 1 when files differ (within the given paths), 0 when none do.")
@click.option("--metrics", "count_values", is_flag=True,
              help="With --exit-code, count metric and param changes as differences too.")
@click.pass_context
def diff_command(ctx, revs, stat, tensor_stats, show_all, no_tensors, as_json, exit_code, count_values) -> None:
    """Show what changed: HEAD vs the working tree, REV vs the working tree, or REV1 vs REV2.

    For each file: added, deleted or modified, old and new sizes, and how many bytes of
    the new version are shared with the old one at chunk level. For model files
    (safetensors, GGUF, PyTorch checkpoints, .npz, .npy): the tensors added, deleted,
    modified in dtype, shape or value, and header metadata changes; unchanged tensors are
    recognised from chunk ids without reading them. Between two commits, also the metric
    and param changes. 'mvc diff A B -- PATH...' limits it to paths.
    """
    from modelvc.ops.diff import diff

    if len(revs) > 2:
        raise click.UsageError("diff takes at most two revisions (use '--' before paths)")
    old_rev = revs[0] if revs else None
    new_rev = revs[1] if len(revs) > 1 else None
    with progress_bar() as bar:
        result = diff(open_repo(ctx), old_rev, new_rev, ctx.meta.get("paths"), cwd_of(ctx), bar,
                      models=not no_tensors and not stat, stats=tensor_stats)
    if as_json:
        emit_json(result.to_dict(all_tensors=show_all))
    else:
        render_diff(result, stat, show_all)
    if exit_code and (result.has_changes or (count_values and result.values_changed)):
        ctx.exit(1)


def render_model(model, show_all: bool) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in model.counts.items() if n)
    click.echo(f"    tensors: {counts or 'none'}")
    colours = {"added": "green", "deleted": "red", "modified": "yellow", "dtype": "cyan", "shape": "cyan",
               "uncompared": "magenta", "unchanged": None}
    for t in model.tensors:
        if t.status == "unchanged" and not show_all:
            continue
        old = f"{t.old_dtype} {list(t.old_shape) if t.old_shape is not None else ''}" if t.old_dtype else ""
        new = f"{t.new_dtype} {list(t.new_shape) if t.new_shape is not None else ''}" if t.new_dtype else ""
        shape = (new if t.status in ("added", "modified", "unchanged") else old if t.status == "deleted"
                 else new or old if t.status == "uncompared" else f"{old} -> {new}")
        line = f"    {t.status:<9} {t.name}  {shape}".rstrip()
        if t.stats is not None:
            s = t.stats
            rel = f"{s.rel_l2:.3g}" if s.rel_l2 is not None else "-"
            line += (f"  max|Δ| {s.max_abs_diff:.3g}  mean|Δ| {s.mean_abs_diff:.3g}  rel L2 {rel}"
                     f"  changed {100 * s.fraction_changed:.3g}%")
        elif t.stats_note and t.status == "modified":
            line += f"  ({t.stats_note})"
        if t.note:
            line += f"  ({t.note})"
        click.secho(line, fg=colours.get(t.status))
    for change in model.metadata:
        old = json.dumps(change.old, default=str) if change.old is not None else "-"
        new = json.dumps(change.new, default=str) if change.new is not None else "-"
        click.echo(f"    metadata {change.key}: {old[:120]} -> {new[:120]}")
    for note in model.notes:
        click.echo(f"    note: {note}")


def render_diff(result, stat: bool, show_all: bool = False) -> None:
    colours = {"added": "green", "deleted": "red", "modified": "yellow", "mode": "cyan", "renamed": "cyan"}
    for f in result.files:
        if f.status == "renamed":
            click.secho(f"renamed   {f.old_path} -> {f.path}  {human_size(f.new_size)}", fg=colours[f.status])
            continue
        sizes = (human_size(f.new_size) if f.status == "added" else human_size(f.old_size)
                 if f.status == "deleted" else f"{human_size(f.old_size)} -> {human_size(f.new_size)}")
        line = f"{f.status:<9} {f.path}  {sizes}"
        if f.status == "modified" and f.new_size:
            share = 100 * f.shared_bytes / f.new_size
            line += f"  (shares {human_size(f.shared_bytes)}, {share:.0f}% with the old version)"
        if f.status == "mode":
            line += f"  mode {f.old_mode:o} -> {f.new_mode:o}"
        click.secho(line, fg=colours[f.status])
        if f.model is not None and not stat:
            render_model(f.model, show_all)
    if stat:
        changed = sum(1 for f in result.files)
        new_bytes = sum((f.new_size or 0) - f.shared_bytes for f in result.files if f.status != "deleted")
        click.echo(f" {counted(changed, 'file')} changed, {human_size(new_bytes)} of new content")
        return
    old_added, new_added = result.old_annotations, result.new_annotations
    for title, rows in (("metrics", result.metrics), ("params", result.params)):
        if rows:
            click.echo(f"{title}:")
            for row in rows:
                delta = f"  ({row.delta:+.6g})" if getattr(row, "delta", None) is not None else ""
                click.echo(f"  {row.key}: {diff_value(row.old, row.key, old_added, title)}"
                           f" -> {diff_value(row.new, row.key, new_added, title)}{delta}")


def diff_value(value, key: str, annotations, section: str) -> str:
    """A metric or param of one side of a diff, '(annotated)' when a note gave it."""
    if value is None:
        return "-"
    marked = annotations is not None and key in annotations.section(section)
    return format_value(value) + (" (annotated)" if marked else "")
