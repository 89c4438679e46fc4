"""mvc init, add, rm, status."""

from __future__ import annotations

from pathlib import Path

import click

from modelvc import ids
from modelvc.cli.cmd_completion import complete_paths
from modelvc.cli.output import counted, cwd_of, emit_json, human_size, open_repo, progress_bar, quiet_option


@click.command("init")
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@quiet_option
@click.pass_context
def init_command(ctx: click.Context, path: str | None, as_json: bool, quiet: bool) -> None:
    """Create an empty repository in PATH (default: the current directory).

    Refuses (exit 3) when a repository already exists there: nothing is overwritten.
    Inside a git work tree, also adds '/.mvc/' to PATH/.gitignore (created if missing),
    so git never versions mvc's store.
    """
    from modelvc.ops.gitside import ignore_store
    from modelvc.repo import FORMAT_VERSION, Repo

    target = (cwd_of(ctx) / path) if path else cwd_of(ctx)
    repo = Repo.init(Path(target))
    update = ignore_store(repo.root)
    if as_json:
        emit_json({"root": str(repo.root), "mvc_dir": str(repo.mvc_dir), "format_version": FORMAT_VERSION,
                   "gitignore": update.to_dict() if update is not None else None})
        return
    if not quiet:
        click.echo(f"Initialized empty modelvc repository in {repo.mvc_dir}")
        echo_gitignore(update)


def echo_gitignore(update) -> None:
    if update is None:
        return
    if update.added:
        click.echo(f"Added {', '.join(update.added)} to {update.path}")
    else:
        click.echo(f"{update.path} already has /.mvc/")


@click.command("add")
@click.argument("paths", nargs=-1, required=True, shell_complete=complete_paths)
@click.option("-f", "--force", is_flag=True, help="Add paths that .mvcignore ignores, too.")
@click.option("--gitignore/--no-gitignore", "gitignore", default=None,
              help="In a git work tree, add what is stored to .gitignore (default: config core.gitignore, true).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--dereference", is_flag=True,
              help="Store what symbolic links point to as regular files, not the links themselves.")
@quiet_option
@click.pass_context
def add_command(ctx: click.Context, paths: tuple[str, ...], force: bool, gitignore: bool | None,
                as_json: bool, dereference: bool, quiet: bool) -> None:
    """Stage files for the next commit (files, directories, or glob patterns).

    Directories are walked recursively, skipping paths matched by .mvcignore (naming an
    ignored path exits 1 unless -f). Files that were deleted from the working tree are
    unstaged. Chunks are stored now, deduplicated against everything already in the store.
    In a git work tree, a directory's files that git tracks are left to git, a file named
    here that git tracks is stored with a warning, and what is stored is added to .gitignore.
    A symbolic link is stored as a link (its target, never followed) unless --dereference.
    """
    from modelvc.ops.add import add

    repo = open_repo(ctx)
    with progress_bar(quiet) as bar:
        result = add(repo, list(paths), cwd_of(ctx), bar, force=force, gitignore=gitignore,
                     dereference=dereference)
    if as_json:
        emit_json(result.to_dict())
        return
    warn_skipped(result.skipped)
    for path, warnings in result.warnings.items():
        for warning in warnings:
            click.echo(f"warning: {path}: {warning}", err=True)
    for path in result.versioned_twice:
        click.echo(f"warning: {path} is tracked by git too: it is now versioned twice", err=True)
    if quiet:
        return
    for path in result.staged:
        click.echo(f"add '{path}'")
    for path in result.removed:
        click.echo(f"remove '{path}'")
    if result.staged:
        click.echo(f"{counted(len(result.staged), 'file')} staged: {human_size(result.new_raw_bytes)} new data, "
                   f"stored as {human_size(result.new_stored_bytes)}")
    if result.left_to_git:
        click.echo(f"{counted(len(result.left_to_git), 'file')} left to git, which tracks them or owns them "
                   "(name one to store it in mvc as well)")
    if result.gitignore is not None and result.gitignore.added:
        click.echo(f"Added {counted(len(result.gitignore.added), 'path')} to {result.gitignore.path}")


@click.command("rm")
@click.argument("paths", nargs=-1, required=True, shell_complete=complete_paths)
@click.option("--cached", is_flag=True, help="Only stop tracking; keep the working files.")
@click.option("-f", "--force", is_flag=True, help="Remove even content that no commit holds.")
@click.pass_context
def rm_command(ctx: click.Context, paths: tuple[str, ...], cached: bool, force: bool) -> None:
    """Stop tracking files (and delete them from the working tree unless --cached).

    As git's rm, refuses (exit 5, nothing removed) a file with changes staged in the index, with
    local modifications, or (even with --cached) with staged content in neither the file nor HEAD.
    """
    from modelvc.ops.add import rm

    result = rm(open_repo(ctx), list(paths), cached, force, cwd_of(ctx))
    for path in result.removed:
        click.echo(f"rm '{path}'")


@click.command("status")
@click.option("-s", "--short", "short", is_flag=True, help="Two-letter codes, one path per line.")
@click.option("--porcelain", is_flag=True, help="Like --short, stable for scripts.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option("--exit-code", is_flag=True, help="Exit 1 when anything is staged, modified or untracked.")
@click.option("-u", "--untracked-files", "untracked", type=click.Choice(["normal", "no"]), default="normal",
              help="'no': do not list untracked files (nor count them for --exit-code).")
@click.pass_context
def status_command(ctx: click.Context, short: bool, porcelain: bool, as_json: bool, exit_code: bool,
                   untracked: str) -> None:
    """Show staged changes, unstaged changes and untracked files.

    Unchanged files are recognised from their size, mtime and inode without being read.
    In a git work tree, files git tracks are not listed as untracked: they are git's.
    """
    from modelvc.ops.status import status

    result = status(open_repo(ctx), untracked=untracked != "no")
    if not as_json:
        warn_skipped(result.skipped)
    render_status(result, short or porcelain, as_json)
    if exit_code and not result.clean:
        ctx.exit(1)


def upstream_line(upstream: str, ahead: int, behind: int) -> str:
    """git's words for a branch against its upstream."""
    if ahead and behind:
        return (f"Your branch and '{upstream}' have diverged,\nand have {ahead} and {behind} different commits "
                "each, respectively.")
    if ahead:
        return f"Your branch is ahead of '{upstream}' by {counted(ahead, 'commit')}."
    if behind:
        return f"Your branch is behind '{upstream}' by {counted(behind, 'commit')}, and can be fast-forwarded."
    return f"Your branch is up to date with '{upstream}'."


def render_status(result, short: bool, as_json: bool) -> None:

    def shown(path: str) -> str:
        return f"{result.renamed_from[path]} -> {path}" if path in result.renamed_from else path

    if as_json:
        emit_json(result.to_dict())
        return
    if short:
        codes: dict[str, list[str]] = {}
        for kind, path in result.staged:
            codes.setdefault(path, [" ", " "])[0] = kind[0].upper()
        for kind, path in result.unstaged:
            codes.setdefault(path, [" ", " "])[1] = kind[0].upper()
        for path in sorted(codes):
            click.echo(f"{''.join(codes[path])} {shown(path)}")
        for path in result.untracked:
            click.echo(f"?? {path}")
        return
    click.echo(f"On branch {result.branch}" if result.branch else
               f"HEAD detached at {ids.short(result.head) if result.head else '?'}")
    if result.upstream is not None:
        click.echo(upstream_line(result.upstream, result.ahead, result.behind))
    if result.head is None:
        click.echo("\nNo commits yet")
    labels = {"added": "new file:", "modified": "modified:", "deleted": "deleted:", "renamed": "renamed:"}
    sections = [("Changes to be committed:", result.staged, "green"),
                ("Changes not staged for commit:", result.unstaged, "red")]
    for title, rows, colour in sections:
        if rows:
            click.echo(f"\n{title}")
            for kind, path in rows:
                click.secho(f"\t{labels[kind]:<12}{shown(path) if rows is result.staged else path}", fg=colour)
    if result.untracked:
        click.echo("\nUntracked files:")
        for path in result.untracked:
            click.secho(f"\t{path}", fg="red")
    if result.clean:
        click.echo("nothing to commit, working tree clean")


@click.command("mv")
@click.argument("sources", nargs=-1, required=True, shell_complete=complete_paths)
@click.argument("destination", shell_complete=complete_paths)
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing destination.")
@click.pass_context
def mv_command(ctx: click.Context, sources: tuple[str, ...], destination: str, force: bool) -> None:
    """Move or rename tracked files or directories, in the working tree and the index.

    Nothing is re-read or stored: the index keeps each file's id. status and diff show the
    move as a rename (R old -> new). Refuses (exit 5) to overwrite an existing destination
    unless -f; a source that is not tracked exits 4.
    """
    from modelvc.ops.mv import mv

    result = mv(open_repo(ctx), list(sources), destination, force, cwd_of(ctx))
    for old, new in result.moved:
        click.echo(f"rename '{old}' -> '{new}'")


@click.command("restore")
@click.argument("paths", nargs=-1, required=True, shell_complete=complete_paths)
@click.option("-S", "--staged", is_flag=True, help="Set the index back to HEAD (unstage); the working files stay.")
@click.option("-W", "--worktree", is_flag=True,
              help="Set the working files back to the index (the default without --staged).")
@quiet_option
@click.pass_context
def restore_command(ctx: click.Context, paths: tuple[str, ...], staged: bool, worktree: bool, quiet: bool) -> None:
    """Undo staging or local edits of PATHs, as git's restore.

    \b
    mvc restore PATH            the working file becomes what the index holds (edits are lost)
    mvc restore --staged PATH   the index entry becomes HEAD's: 'mvc add' undone, file untouched
    mvc restore -S -W PATH      both: the file and the index back to HEAD
    """
    from modelvc.ops.restore import restore

    with progress_bar(quiet) as bar:
        result = restore(open_repo(ctx), list(paths), staged, worktree or not staged, cwd_of(ctx), bar)
    if quiet:
        return
    for path in result.unstaged:
        click.echo(f"unstaged '{path}'")
    for path in result.written:
        click.echo(f"restored '{path}'")


def warn_skipped(names: list[str]) -> None:
    for name in names:
        click.echo(f"warning: skipping '{name}': its name is not valid UTF-8 (rename it to track it)", err=True)
