"""Shared CLI plumbing: finding the repository, JSON output, sizes, progress bars, '--' paths."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from modelvc.objects import tz_text

if TYPE_CHECKING:
    import rich.progress


def cwd_of(ctx: click.Context) -> Path:
    return ctx.find_root().obj["cwd"]


def open_repo(ctx: click.Context):
    """The repository of the working directory, with the CLI's settings; closed with the command."""
    from modelvc.repo import Repo
    from modelvc.store.parallel import worker_count

    repo = Repo.discover(cwd_of(ctx), lock_timeout=lock_timeout(), workers=worker_count(), tune_allocator=True,
                         on_warning=lambda message: click.echo(f"warning: {message}", err=True))
    ctx.call_on_close(repo.close)
    give_promisor(repo)
    return repo


def give_promisor(repo) -> None:
    """A partial clone's Repo gets its remote's promisor (imported only then: start-up cost)."""
    from modelvc.promisor import partial_remote

    if partial_remote(repo.config) is not None:
        from modelvc.transfer.lazy import install_promisor

        install_promisor(repo)


def lock_timeout() -> float:
    """MVC_LOCK_TIMEOUT in seconds: a finite number >= 0 (nan would make the wait endless)."""
    import math

    from modelvc.errors import UsageError
    from modelvc.repo import DEFAULT_LOCK_TIMEOUT

    raw = os.environ.get("MVC_LOCK_TIMEOUT")
    if raw is None:
        return DEFAULT_LOCK_TIMEOUT
    try:
        timeout = float(raw)
    except ValueError:
        timeout = math.nan
    if not (math.isfinite(timeout) and timeout >= 0):
        raise UsageError(f"MVC_LOCK_TIMEOUT must be a finite number of seconds >= 0, not '{raw}'",
                         hint=f"unset it to wait the default {DEFAULT_LOCK_TIMEOUT:g} s")
    return timeout


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """'1 file', '2 files': a count in git's words, never 'file(s)'."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def human_size(count: int | None) -> str:
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def format_time(timestamp: int, tz_minutes: int) -> str:
    offset = tz_minutes * 60
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp + offset))
    return f"{stamp} {tz_text(tz_minutes)}"


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


class RichProgress:
    """A byte-count progress bar on stderr, shown only when stderr is a terminal (and not quiet)."""

    def __init__(self, quiet: bool = False) -> None:
        self._quiet = quiet
        self._progress: rich.progress.Progress | None = None
        self._task: rich.progress.TaskID | None = None

    def start(self, label: str, total: int) -> None:
        if self._quiet or not sys.stderr.isatty() or total <= 0:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeRemainingColumn(),
                            console=Console(stderr=True), transient=True)
        progress.start()
        self._progress, self._task = progress, progress.add_task(label, total=total)

    def advance(self, amount: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=amount)

    def finish(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


@contextmanager
def progress_bar(quiet: bool = False) -> Iterator[RichProgress]:
    bar = RichProgress(quiet)
    try:
        yield bar
    finally:
        bar.finish()


def quiet_option(function):
    return click.option("-q", "--quiet", is_flag=True,
                        help="Print nothing but warnings and errors; no progress bar.")(function)


class PathsAfterDashDash(click.Command):
    """Puts whatever follows a bare '--' into ctx.meta['paths'], as git's 'REV -- PATH' does."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            split = args.index("--")
            ctx.meta["paths"] = args[split + 1:]
            args = args[:split]
        else:
            ctx.meta["paths"] = None
        return super().parse_args(ctx, args)
