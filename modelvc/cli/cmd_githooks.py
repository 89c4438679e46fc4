"""mvc check-models-in-git: the pre-commit hook that keeps model files out of git."""

from __future__ import annotations

from pathlib import Path

import click

from modelvc.cli.output import cwd_of


@click.command("check-models-in-git")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@click.pass_context
def check_models_in_git_command(ctx: click.Context, files: tuple[str, ...]) -> None:
    """Exit 1 when any of FILES (default: the files staged in git) is a model file.

    A model file is told by its name (.safetensors, .gguf, .pt, .bin, .onnx...) or its first
    bytes. Each one found is named on stderr with how to move it to mvc. For pre-commit.
    """
    from modelvc.formats.sniff import model_format

    cwd = cwd_of(ctx)
    names = list(files) if files else staged_in_git(cwd)
    found = [(name, kind) for name in names if (kind := model_format(cwd / name)) is not None]
    for name, kind in found:
        click.echo(f"error: {name} is a model file ({kind}): version it with mvc, not git", err=True)
    if found:
        listed = " ".join(name for name, _ in found)
        click.echo(f"hint: git rm --cached {listed} && mvc add {listed}", err=True)
        ctx.exit(1)


def staged_in_git(cwd: Path) -> list[str]:
    from modelvc.gitinfo import run_git

    out = run_git(cwd, "diff", "--cached", "--name-only", "--diff-filter=ACMR", "-z", "--relative")
    return [name for name in out.decode(errors="surrogateescape").split("\0") if name] if out else []
