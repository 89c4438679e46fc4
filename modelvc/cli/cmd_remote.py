"""mvc remote: the remotes a repository pushes to and fetches from (modelvc/ops/remote.py)."""

from __future__ import annotations

import click

from modelvc.cli.output import cwd_of, emit_json, open_repo

NO_CHECK_HELP = "Do not contact the remote (it may be unreachable now); its conditional writes stay unchecked."


@click.group("remote", invoke_without_command=True)
@click.option("-v", "--verbose", is_flag=True, help="Show each remote's URL (as git: fetch and push lines).")
@click.option("--json", "as_json", is_flag=True, help="Print every remote and its settings as JSON.")
@click.pass_context
def remote_command(ctx, verbose, as_json) -> None:
    """List remotes, or add, remove, rename and re-point one.

    URLs: s3://bucket/prefix (with --endpoint, --region, --path-style for S3-compatible
    servers), az://container/prefix, file:///path or a directory path. Credentials come only
    from the environment (AWS_*, AZURE_STORAGE_*): see docs/remotes.md.
    """
    if ctx.invoked_subcommand is not None:
        if verbose or as_json:
            raise click.UsageError("-v and --json go with the list: 'mvc remote -v'")
        return
    from modelvc.ops.remote import list_remotes

    remotes = list_remotes(open_repo(ctx))
    if as_json:
        emit_json([remote.to_dict() for remote in remotes])
        return
    for remote in remotes:
        if verbose:
            click.echo(f"{remote.name}\t{remote.url} (fetch)")
            click.echo(f"{remote.name}\t{remote.url} (push)")
        else:
            click.echo(remote.name)


@remote_command.command("add")
@click.argument("name")
@click.argument("url")
@click.option("--endpoint", help="The http(s) endpoint of an S3-compatible server (or of Azure Blob).")
@click.option("--region", help="The S3 region.")
@click.option("--path-style/--virtual-hosted", "path_style", default=None,
              help="S3 addressing: bucket in the path (most S3-compatible servers) or in the host name.")
@click.option("--no-check", is_flag=True, help=NO_CHECK_HELP)
@click.pass_context
def add_command(ctx, name, url, endpoint, region, path_style, no_check) -> None:
    """Add a remote NAME at URL, after checking it can be reached and has conditional writes."""
    from modelvc.ops.remote import add_remote

    remote = add_remote(open_repo(ctx), name, url, cwd=cwd_of(ctx), endpoint=endpoint, region=region,
                        path_style=path_style, check=not no_check)
    _warn_if_unconditional(remote)


@remote_command.command("remove")
@click.argument("name")
@click.pass_context
def remove_command(ctx, name) -> None:
    """Remove the remote NAME and its settings."""
    from modelvc.ops.remote import remove_remote

    remove_remote(open_repo(ctx), name)


@remote_command.command("rm", hidden=True)
@click.argument("name")
@click.pass_context
def rm_command(ctx, name) -> None:
    """Same as 'remove' (git's alias)."""
    ctx.invoke(remove_command, name=name)


@remote_command.command("rename")
@click.argument("old")
@click.argument("new")
@click.pass_context
def rename_command(ctx, old, new) -> None:
    """Rename the remote OLD to NEW, keeping its settings."""
    from modelvc.ops.remote import rename_remote

    rename_remote(open_repo(ctx), old, new)


@remote_command.command("set-url")
@click.argument("name")
@click.argument("url")
@click.option("--no-check", is_flag=True, help=NO_CHECK_HELP)
@click.pass_context
def set_url_command(ctx, name, url, no_check) -> None:
    """Point the remote NAME at URL (checked as 'add' checks it); its other settings stay."""
    from modelvc.ops.remote import set_remote_url

    _warn_if_unconditional(set_remote_url(open_repo(ctx), name, url, cwd=cwd_of(ctx), check=not no_check))


@remote_command.command("get-url")
@click.argument("name")
@click.pass_context
def get_url_command(ctx, name) -> None:
    """Print the URL of the remote NAME (for scripts, as 'git remote get-url')."""
    from modelvc.ops.remote import get_remote

    click.echo(get_remote(open_repo(ctx), name).url)


def _warn_if_unconditional(remote) -> None:
    if remote.conditional_writes is False:
        click.echo(f"warning: remote '{remote.name}' does not refuse a second create-only write "
                   "(no conditional writes): pushes to it will be refused unless "
                   f"'mvc config remote.{remote.name}.allowUnconditionalPush true'", err=True)
