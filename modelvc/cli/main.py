"""The `mvc` entry point: lazy command loading and the one place errors become exit codes."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from modelvc import __version__

INTERNAL_ERROR = 70
INTERRUPTED = 130

COMMANDS = {
    "init": "files", "add": "files", "rm": "files", "status": "files",
    "commit": "history", "log": "history", "show": "history", "diff": "history",
    "checkout": "moves", "rollback": "moves", "branch": "moves", "tag": "moves", "reflog": "moves",
    "fsck": "upkeep", "gc": "upkeep", "stats": "upkeep",
    "mv": "files", "restore": "files", "cat": "history", "completion": "completion",
    "config": "config", "check-models-in-git": "githooks",
    "runs": "query",
    "remote": "remote", "push": "sync", "fetch": "sync", "pull": "sync", "clone": "sync",
    "annotate": "registry", "promote": "registry", "history": "registry", "stages": "registry",
}


class MvcGroup(click.Group):
    """Loads each command's module only when it runs, so `mvc status` starts fast."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = COMMANDS.get(name)
        if module is None:
            return None
        return getattr(importlib.import_module(f"modelvc.cli.cmd_{module}"), f"{name.replace('-', '_')}_command")

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        """Click's own error output (a Usage block, 'Error: ...') in mvc's one form instead:
        'error: <message>' and a hint on stderr, exit 2 for a usage error."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            message = " ".join(exc.format_message().split()).removesuffix(".")
            click.echo(f"error: {message[0].lower() + message[1:] if message else message}", err=True)
            context = getattr(exc, "ctx", None)
            if isinstance(exc, click.UsageError) and context is not None:
                click.echo(f"hint: see '{context.command_path} --help'", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("interrupted", err=True)
            sys.exit(INTERRUPTED)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context):
        from modelvc.errors import MvcError, from_os_error

        try:
            try:
                return super().invoke(ctx)
            except OSError as exc:  # a full disk or a refused access is the user's to fix, not a bug
                error = from_os_error(exc)
                if error is None:
                    raise
                raise error from exc
        except MvcError as exc:
            if os.environ.get("MVC_DEBUG") == "1":
                raise
            click.echo(f"error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"hint: {exc.hint}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(INTERRUPTED)
        except BrokenPipeError:
            sys.stderr.close()
            ctx.exit(1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            if os.environ.get("MVC_DEBUG") == "1":
                raise
            click.echo(f"error: internal error: {type(exc).__name__}: {exc}", err=True)
            click.echo("hint: run again with MVC_DEBUG=1 for a traceback, and report it", err=True)
            ctx.exit(INTERNAL_ERROR)


@click.group("mvc", cls=MvcGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False), default=None,
              help="Run as if mvc was started in this directory.")
@click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto",
              help="Colour the output: auto (when a terminal, unless NO_COLOR or TERM=dumb), always, never.")
@click.version_option(__version__, prog_name="mvc")
@click.pass_context
def cli(ctx: click.Context, directory: str | None, color: str) -> None:
    """modelvc: version control for model files.

    Chunk-level dedup that understands safetensors, GGUF and PyTorch checkpoints,
    float-aware compression, and a diff that says which tensors changed.
    See 'mvc COMMAND --help' for each command; exit codes are listed in docs/cli.md.
    """
    cwd = Path(directory).resolve() if directory else Path.cwd()
    if directory and not cwd.is_dir():
        raise click.UsageError(f"-C {directory}: no such directory")
    ctx.obj = {"cwd": cwd}
    ctx.color = colour_wanted(color)


def colour_wanted(choice: str) -> bool | None:
    """True or False to force colour on or off; None lets click colour only a terminal."""
    if choice != "auto":
        return choice == "always"
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return None


def main() -> None:
    # Process-wide settings are the CLI's (the library leaves the process as it finds it; the
    # allocator is tuned when a repository's threads start: see open_repo's tune_allocator).
    # modelvc never calls BLAS, but numpy's OpenBLAS starts a thread per core that spins
    # while waiting for work: 3% of a checkout's CPU on two cores. Set before numpy loads.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    cli(prog_name="mvc")


if __name__ == "__main__":
    main()
