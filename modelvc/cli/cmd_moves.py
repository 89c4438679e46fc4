"""mvc checkout, rollback, branch, tag, reflog."""

from __future__ import annotations

import click

from modelvc.cli.cmd_completion import complete_branches, complete_revs, complete_revs_and_paths
from modelvc.cli.output import (
    PathsAfterDashDash,
    counted,
    cwd_of,
    emit_json,
    human_size,
    open_repo,
    progress_bar,
    quiet_option,
)
from modelvc.ids import short


def move_summary(move) -> str:
    parts = []
    if move.written:
        parts.append(f"{counted(len(move.written), 'file')} written")
    if move.removed:
        parts.append(f"{len(move.removed)} removed")
    if move.kept_local:
        parts.append(f"local changes kept in: {', '.join(move.kept_local)}")
    if move.fetched is not None:
        parts.append(f"{counted(move.fetched.chunks, 'chunk')} ({human_size(move.fetched.bytes_received)}) fetched "
                     f"from {move.fetched.remote} in {counted(move.fetched.requests, 'request')}")
    return "; ".join(parts)


@click.command("checkout", cls=PathsAfterDashDash)
@click.argument("args", nargs=-1, shell_complete=complete_revs_and_paths)
@click.option("-b", "new_branch", metavar="NEW", help="Create branch NEW at START (default HEAD) and switch to it.")
@click.option("-f", "--force", is_flag=True, help="Discard local changes that would be overwritten.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@quiet_option
@click.pass_context
def checkout_command(ctx, args, new_branch, force, as_json, quiet) -> None:
    """Switch to a branch or revision, or restore files from one.

    \b
    mvc checkout BRANCH          switch branch (HEAD follows it)
    mvc checkout REV             detached HEAD at a tag, id, HEAD~N, REV^ ...
    mvc checkout -b NEW [START]  create a branch and switch to it
    mvc checkout REV -- PATH...  restore files from REV (HEAD stays)
    mvc checkout -- PATH...      restore files from the index (local edits are lost)

    Refuses (exit 5, naming the files) to overwrite uncommitted changes unless --force.
    Untracked files are left alone.
    """
    from modelvc.ops.checkout import checkout, checkout_new_branch, restore_paths

    repo = open_repo(ctx)
    paths = ctx.meta.get("paths")
    with progress_bar(quiet) as bar:
        if new_branch is not None:
            if len(args) > 1 or paths:
                raise click.UsageError("checkout -b takes a new branch name and at most one START")
            result = checkout_new_branch(repo, new_branch, args[0] if args else None, force, bar)
            message = f"Switched to a new branch '{new_branch}'"
        elif paths is not None and not args:
            if not paths:
                raise click.UsageError("checkout -- PATH... needs at least one path")
            from modelvc.ops.restore import restore

            restored = restore(repo, paths, cwd=cwd_of(ctx), progress=bar)
            count = len(restored.written)
            if not quiet and not as_json:
                click.echo(f"Updated {count} path{'' if count == 1 else 's'} from the index")
            elif as_json:
                emit_json(restored.to_dict())
            return
        elif paths is not None or len(args) > 1:
            rev, specs = args[0], (list(args[1:]) + (paths or []))
            if not specs:
                raise click.UsageError("checkout REV -- PATH... needs at least one path")
            result = restore_paths(repo, rev, specs, force, cwd_of(ctx), bar)
            message = f"Restored {counted(len(result.restored_paths or []), 'path')} from {rev}"
        elif len(args) == 1:
            result = checkout(repo, args[0], force, bar)  # a remote's branch of that name: a new branch tracking it
            message = (f"Switched to a new branch '{result.branch}'" if result.created_branch
                       else f"Switched to branch '{result.branch}'" if result.branch
                       else f"HEAD is now at {short(result.commit)} (detached)")
        else:
            raise click.UsageError("checkout needs a branch or revision (see 'mvc checkout --help')")
    if as_json:
        emit_json(result.to_dict())
        return
    if quiet:
        return
    if result.created_branch and result.branch:
        echo_tracking(repo, result.branch)
    click.echo(message)
    summary = move_summary(result.move)
    if summary:
        click.echo(summary)


def echo_tracking(repo, branch: str) -> None:
    """git's line for a new branch made at a remote-tracking branch, which now tracks it."""
    from modelvc.transfer.upstream import upstream_of

    upstream = upstream_of(repo.config, branch)
    if upstream is not None:
        click.echo(f"branch '{branch}' set up to track '{upstream.short}'.")


@click.command("rollback")
@click.argument("rev", required=False, shell_complete=complete_revs)
@click.option("--hard", is_flag=True,
              help="Move the branch back instead of adding a commit (the reflog keeps the old position).")
@click.option("-f", "--force", is_flag=True, help="Discard local changes that would be overwritten.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@quiet_option
@click.pass_context
def rollback_command(ctx, rev, hard, force, as_json, quiet) -> None:
    """Go back to REV's content (default: the parent of HEAD).

    Makes a new commit "Rollback to <id>: <subject>" whose files are REV's, so history is
    kept; metrics and params are copied from REV. With --hard, moves the current branch to
    REV instead.
    """
    from modelvc.ops.rollback import rollback

    with progress_bar(quiet) as bar:
        result = rollback(open_repo(ctx), rev, hard, force, bar)
    if as_json:
        emit_json(result.to_dict())
        return
    if quiet:
        return
    if result.new_commit is None:  # --hard: no new commit
        click.echo(f"HEAD is now at {short(result.target)} (was {short(result.previous)}; see 'mvc reflog')")
    else:
        where = result.branch or "detached HEAD"
        click.echo(f"[{where} {short(result.new_commit)}] Rollback to {short(result.target)}")
    summary = move_summary(result.move)
    if summary:
        click.echo(summary)


@click.command("branch")
@click.argument("name", required=False, shell_complete=complete_branches)
@click.argument("start", required=False, shell_complete=complete_revs)
@click.option("-d", "--delete", "delete", is_flag=True,
              help="Delete branch NAME if another branch, a tag or HEAD reaches its tip (its reflog is kept).")
@click.option("-D", "force_delete", is_flag=True, help="Delete branch NAME even if nothing else reaches its tip.")
@click.option("-m", "--move", "rename", is_flag=True,
              help="Rename branch NAME to START ('-m NEW': the current branch), with its reflog.")
@click.option("-r", "--remotes", is_flag=True, help="List the remote-tracking branches (origin/main).")
@click.option("-a", "--all", "all_branches", is_flag=True, help="List local and remote-tracking branches.")
@click.option("-u", "--set-upstream-to", "upstream", metavar="UPSTREAM",
              help="Make NAME (default: the current branch) track the remote-tracking branch UPSTREAM.")
@click.option("--unset-upstream", is_flag=True, help="Forget the upstream of NAME (default: the current branch).")
@click.option("-v", "--verbose", count=True, help="Twice (-vv): each branch's upstream, ahead and behind.")
@click.option("--json", "as_json", is_flag=True, help="Print branches as JSON.")
@click.pass_context
def branch_command(ctx, name, start, delete, force_delete, rename, remotes, all_branches, upstream, unset_upstream,
                   verbose, as_json) -> None:
    """List branches, create NAME at START (default HEAD), delete (-d, -D) or rename (-m) one.

    \b
    mvc branch -d NAME       refuses (exit 10) when no other branch, tag or HEAD reaches NAME
    mvc branch -D NAME       deletes it anyway (its commits stay in the reflogs until they expire)
    mvc branch -m OLD NEW    renames OLD, its reflog too; HEAD follows when OLD is current
    mvc branch -u origin/main [NAME]   NAME tracks origin/main (pull, push and status use it)
    A branch made at a remote-tracking branch (mvc branch x origin/x) tracks it.
    """
    from modelvc.ops.names import create_branch, delete_branch, list_branches, rename_branch, set_branch_upstream

    repo = open_repo(ctx)
    if upstream is not None or unset_upstream:
        if start or (upstream is not None and unset_upstream):
            raise click.UsageError("branch -u UPSTREAM and --unset-upstream take at most one branch NAME")
        info = set_branch_upstream(repo, name, upstream)
        if upstream is not None:
            echo_tracking(repo, info.name)
        return
    if delete or force_delete:
        if name is None or start:
            raise click.UsageError("branch -d takes exactly one branch name")
        info = delete_branch(repo, name, force=force_delete)
        click.echo(f"Deleted branch {name} (was {short(info.commit)})")
        return
    if rename:
        if not name:
            raise click.UsageError("branch -m takes OLD NEW, or NEW to rename the current branch")
        old, new = (name, start) if start else (None, name)
        info = rename_branch(repo, old, new)
        if as_json:
            emit_json(info.to_dict())
        else:
            click.echo(f"Renamed branch {old} to {new}" if old else f"Renamed the current branch to {new}")
        return
    if name is not None:  # '' too: refused as an invalid name, not taken as "list"
        info = create_branch(repo, name, start)
        if as_json:
            emit_json(info.to_dict())
        else:
            echo_tracking(repo, name)
            click.echo(f"Created branch {name} at {short(info.commit)}")
        return
    infos = list_branches(repo, local=not remotes or all_branches, remote=remotes or all_branches)
    if as_json:
        emit_json([info.to_dict() for info in infos])
        return
    local = set(repo.refs.branches()) if all_branches or verbose > 1 else set()
    for info in infos:
        marker = "*" if info.current else " "
        shown = f"remotes/{info.name}" if all_branches and info.name not in local else info.name
        tracking = tracking_text(repo, info.name, info.commit) if verbose > 1 and info.name in local else ""
        click.echo(f"{marker} {shown:<20} {short(info.commit)} {tracking}{info.subject}")


def tracking_text(repo, branch: str, commit: str) -> str:
    """git's `branch -vv` note: '[origin/main: ahead 1, behind 2] ', '[origin/main] ', or ''."""
    from modelvc.transfer.upstream import divergence, upstream_of

    found = divergence(repo, branch, commit)
    if found is None:
        upstream = upstream_of(repo.config, branch)
        return f"[{upstream.short}: gone] " if upstream is not None else ""
    upstream, ahead, behind = found
    counts = ", ".join(text for text in (f"ahead {ahead}" if ahead else "", f"behind {behind}" if behind else "")
                       if text)
    return f"[{upstream.short}{': ' + counts if counts else ''}] "


@click.command("tag")
@click.argument("name", required=False)
@click.argument("rev", required=False, shell_complete=complete_revs)
@click.option("-m", "--message", help="Make an annotated tag with this message.")
@click.option("-d", "--delete", "delete", is_flag=True, help="Delete tag NAME.")
@click.option("-f", "--force", is_flag=True, help="Move an existing tag.")
@click.option("--json", "as_json", is_flag=True, help="Print tags as JSON.")
@click.pass_context
def tag_command(ctx, name, rev, message, delete, force, as_json) -> None:
    """List tags, tag REV (default HEAD) as NAME, or delete a tag with -d."""
    from modelvc.ops.names import create_tag, delete_tag, list_tags

    repo = open_repo(ctx)
    if delete:
        if name is None or rev:
            raise click.UsageError("tag -d takes exactly one tag name")
        info = delete_tag(repo, name)
        click.echo(f"Deleted tag {name} (was {short(info.commit)})")
        return
    if name is not None:
        info = create_tag(repo, name, rev, message, force)
        if as_json:
            emit_json(info.to_dict())
        else:
            click.echo(f"Tagged {short(info.commit)} as {name}")
        return
    infos = list_tags(repo)
    if as_json:
        emit_json([info.to_dict() for info in infos])
        return
    for info in infos:
        click.echo(f"{info.name:<20} {short(info.commit)} {info.message or info.subject}")


class ReflogGroup(click.Group):
    """'mvc reflog [REF]' shows, as 'git reflog' does; 'mvc reflog expire' prunes."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("-h", "--help")):
            args = ["show", *args]
        return super().parse_args(ctx, args)


@click.group("reflog", cls=ReflogGroup)
def reflog_command() -> None:
    """Show where a ref has pointed ('mvc reflog [show] [REF]'), or expire old entries.

    \b
    mvc reflog [show] [REF] [-n N] [--json]
    mvc reflog expire [--expire=TIME] [--expire-unreachable=TIME] (--all | REF...)
    """


@reflog_command.command("show")
@click.argument("ref", default="HEAD", shell_complete=complete_branches)
@click.option("-n", "--max-count", "limit", type=click.IntRange(min=0), help="Show at most N entries.")
@click.option("--json", "as_json", is_flag=True, help="Print entries as JSON.")
@click.pass_context
def reflog_show_command(ctx, ref, limit, as_json) -> None:
    """Show where REF (default HEAD; or a branch name) has pointed, newest first: REF@{n}."""
    repo = open_repo(ctx)
    refname = ref if ref == "HEAD" or ref.startswith("refs/") else f"refs/heads/{ref}"
    entries = repo.refs.reflog(refname)[:limit] if limit is not None else repo.refs.reflog(refname)
    if as_json:
        emit_json([entry.to_dict() for entry in entries])
        return
    for number, e in enumerate(entries):
        click.echo(f"{click.style(short(e.new), fg='yellow')} {ref}@{{{number}}}: {e.message}")


@reflog_command.command("expire")
@click.argument("refs", nargs=-1, shell_complete=complete_branches)
@click.option("--expire", metavar="TIME", help="Drop entries older than TIME (default gc.reflogExpire, 90 days).")
@click.option("--expire-unreachable", metavar="TIME",
              help="Drop entries older than TIME whose commit the ref no longer reaches "
                   "(default gc.reflogExpireUnreachable, 30 days).")
@click.option("--all", "all_refs", is_flag=True, help="Every reflog, deleted branches' included.")
@click.option("--json", "as_json", is_flag=True, help="Print what was pruned as JSON.")
@click.pass_context
def reflog_expire_command(ctx, refs, expire, expire_unreachable, all_refs, as_json) -> None:
    """Drop old reflog entries, so that gc can delete what only they kept alive.

    TIME is 'now' (everything), 'never', '30 days', '2.weeks.ago' or a date. Dropping entries
    loses the 'mvc reflog' record of where refs were; the commits themselves go at the next
    'mvc gc' unless a branch or tag reaches them.
    """
    from modelvc.expiry import parse_expiry
    from modelvc.ops.expire import expire_reflogs

    if bool(refs) == all_refs:
        raise click.UsageError("reflog expire takes REF... or --all")
    for value in (expire, expire_unreachable):
        if value is not None:
            parse_expiry(value)
    result = expire_reflogs(open_repo(ctx), None if all_refs else list(refs), expire, expire_unreachable)
    if as_json:
        emit_json(result.to_dict())
        return
    for name, count in result.pruned.items():
        click.echo(f"{name}: pruned {count} entr{'y' if count == 1 else 'ies'}")
    click.echo(f"pruned {result.total_pruned} reflog entries, kept {result.kept}")
