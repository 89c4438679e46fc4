"""Shell completion: ref names where a command takes a revision, files where it takes paths.

Click answers the shell's completion requests itself (the _MVC_COMPLETE protocol); these
functions supply the candidates. They read only ref files, so they answer as fast as
`mvc status` starts, and they never fail: outside a repository they offer nothing but files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:  # click.shell_completion costs every command 8 ms to import: only on use
    from click.shell_completion import CompletionItem

SHELLS = ("bash", "fish", "zsh")
# click's bash script drops the other candidates when one asks for file completion; this one
# adds the matching files to the ref names, so `mvc checkout ma<TAB>` offers `main` and `matrix.bin`.
_CLICK_BASH_FILES = """        elif [[ $type == 'file' ]]; then
            COMPREPLY=()
            compopt -o default"""
_MVC_BASH_FILES = """        elif [[ $type == 'file' ]]; then
            COMPREPLY+=($(compgen -f -- "$value"))
            compopt -o filenames 2>/dev/null"""


def _item(value: str, kind: str = "plain") -> CompletionItem:
    from click.shell_completion import CompletionItem

    return CompletionItem(value, type=kind)


def _repo(ctx: click.Context):
    from modelvc.errors import MvcError
    from modelvc.repo import Repo

    directory = ctx.find_root().params.get("directory")
    try:
        return Repo.discover(Path(directory).resolve() if directory else Path.cwd())
    except (MvcError, OSError):
        return None


def ref_names(ctx: click.Context, branches_only: bool = False) -> list[str]:
    repo = _repo(ctx)
    if repo is None:
        return []
    try:
        names = list(repo.refs.branches())
        if not branches_only:
            names = ["HEAD", *names, *(t for t in repo.refs.tags() if t not in names)]
    except Exception:  # noqa: BLE001 - a broken ref must not break the user's shell
        return []
    return names


def _stored_paths(ctx: click.Context, incomplete: str) -> list[CompletionItem]:
    """REV:PA<TAB> completes paths stored in REV."""
    rev, _, prefix = incomplete.partition(":")
    repo = _repo(ctx)
    if repo is None:
        return []
    try:
        paths = repo.tree_of(repo.resolve(rev)).as_map()
    except Exception:  # noqa: BLE001 - an unknown revision completes to nothing
        return []
    return [_item(f"{rev}:{p}") for p in sorted(paths) if p.startswith(prefix)]


def complete_revs(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    if ":" in incomplete:
        return _stored_paths(ctx, incomplete)
    return [_item(n) for n in ref_names(ctx) if n.startswith(incomplete)]


def complete_branches(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [_item(n) for n in ref_names(ctx, branches_only=True) if n.startswith(incomplete)]


def complete_paths(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    return [_item(incomplete, "file")]


def complete_revs_and_paths(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[CompletionItem]:
    if ":" in incomplete:
        return _stored_paths(ctx, incomplete)
    return complete_revs(ctx, param, incomplete) + complete_paths(ctx, param, incomplete)


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    bash:  eval "$(mvc completion bash)"        (in ~/.bashrc)
    zsh:   eval "$(mvc completion zsh)"         (in ~/.zshrc)
    fish:  mvc completion fish > ~/.config/fish/completions/mvc.fish

    Revisions complete to HEAD, branches and tags (REV:PATH to the paths stored in REV),
    paths to files, and arguments that take either to both.
    """
    from click.shell_completion import get_completion_class

    complete_class = get_completion_class(shell)
    assert complete_class is not None  # click.Choice(SHELLS) admits only shells click completes
    source = complete_class(ctx.find_root().command, {}, "mvc", "_MVC_COMPLETE").source()
    if shell == "bash":  # should click's script change, it stays as it is (files, no refs beside them)
        source = source.replace(_CLICK_BASH_FILES, _MVC_BASH_FILES)
    click.echo(source)
