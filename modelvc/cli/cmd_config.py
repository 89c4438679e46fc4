"""mvc config: read and write settings by dotted key, in the repository or the global file."""

from __future__ import annotations

import click

from modelvc.cli.output import emit_json, open_repo


@click.command("config")
@click.argument("key", required=False)
@click.argument("value", required=False)
@click.option("--global", "global_", is_flag=True, help="Use the user's global file, not the repository's.")
@click.option("-l", "--list", "list_", is_flag=True, help="List every key that is set, as KEY=VALUE.")
@click.option("--unset", is_flag=True, help="Remove KEY.")
@click.option("--json", "as_json", is_flag=True, help="With --list or a KEY: print JSON.")
@click.pass_context
def config_command(ctx, key, value, global_, list_, unset, as_json) -> None:
    """Get, set, unset or list settings: 'mvc config user.name', 'mvc config user.name "A U"'.

    KEY is dotted: gc.reflogExpire is "reflogExpire" inside "gc" in the JSON file; the first
    and last dots split a key with a name in it (branch.release/v1.2.remote). Keys:
    user.name, user.email, core.gitignore, gc.reflogExpire, gc.reflogExpireUnreachable,
    pack_max_bytes, delta_max_depth, gc.auto_packs, gc.auto_loose, remote.NAME.*,
    branch.NAME.remote, branch.NAME.merge (see docs/cli.md). The repository's file is
    .mvc/config; --global uses $XDG_CONFIG_HOME/mvc/config, else ~/.mvcconfig. Getting a
    key reads the repository's file, then the global one. A key that is not set exits 1 with
    no output (so does --unset of one), as git does; an unknown key or bad value exits 14.
    """
    from contextlib import nullcontext

    from modelvc.config import (
        flatten,
        global_config_path,
        lookup,
        read_config_file,
        set_value,
        settable,
        show_value,
        unset_value,
        write_config_file,
    )

    if list_ and (key is not None or unset):
        raise click.UsageError("--list takes no KEY and no --unset")
    if not list_ and key is None:
        raise click.UsageError("give a KEY (and a VALUE to set it), or --list")
    if unset and value is not None:
        raise click.UsageError("--unset takes a KEY and no VALUE")
    repo = None if global_ else open_repo(ctx)
    path = global_config_path() if repo is None else repo.mvc_dir / "config"
    if list_:
        rows = flatten(read_config_file(path))
        if as_json:
            emit_json(dict(rows))
            return
        for name, shown in rows:
            click.echo(f"{name}={show_value(shown)}")
        return
    if unset or value is not None:
        with repo.transaction() if repo is not None else nullcontext():
            data = read_config_file(path)
            changed = unset_value(data, key) if unset else set_value(data, key, value) is not None
            if changed:
                write_config_file(path, data)
        if unset and not changed:
            ctx.exit(1)
        return
    found = lookup(read_config_file(path), key)
    if found is None and repo is not None:
        found = lookup(read_config_file(global_config_path()), key)
    if found is None:
        settable(key)  # an unknown key is an error; a known one that is not set is just absent
        ctx.exit(1)
    if as_json:
        emit_json({key: found})
    else:
        click.echo(show_value(found))
