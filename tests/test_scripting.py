"""Exit codes for scripts, click's usage errors in mvc's one form, and colour switches."""

from __future__ import annotations

import pytest
from conftest import write

RED_TAB = "\x1b[31m\tnew.bin"


def test_status_exit_code(mvc, work):
    assert mvc("status", "--exit-code").exit_code == 0
    write(work / "new.bin", b"n")
    assert mvc("status", "--exit-code", ok=False).exit_code == 1  # untracked
    assert mvc("status", "--exit-code", "-uno").exit_code == 0
    mvc("add", "new.bin")
    assert mvc("status", "--exit-code", "--porcelain", ok=False).stdout == "A  new.bin\n"  # staged
    mvc("commit", "-m", "one")
    assert mvc("status", "--exit-code").exit_code == 0
    write(work / "new.bin", b"changed")
    assert mvc("status", "--exit-code", "-uno", ok=False).exit_code == 1  # modified
    assert mvc("status", ok=True).exit_code == 0  # without the option: 0 as before


def test_diff_exit_code_counts_files_in_the_paths_and_metrics_only_when_asked(mvc, work):
    write(work / "a.bin", b"a1")
    write(work / "b.bin", b"b1")
    mvc("add", ".")
    mvc("commit", "-m", "one", "--metric", "loss=2")
    write(work / "a.bin", b"a2")
    mvc("add", "a.bin")
    mvc("commit", "-m", "two", "--metric", "loss=1")
    mvc("commit", "--allow-empty", "-m", "three", "--metric", "loss=0.5")
    assert mvc("diff", "HEAD~2", "HEAD~1", "--exit-code", ok=False).exit_code == 1
    within = mvc("diff", "HEAD~2", "HEAD~1", "--exit-code", "--", "b.bin")
    assert within.exit_code == 0
    assert "loss: 2 -> 1" in within.stdout  # still printed
    assert mvc("diff", "HEAD~2", "HEAD~1", "--exit-code", "--metrics", "--", "b.bin", ok=False).exit_code == 1
    assert mvc("diff", "HEAD~1", "HEAD", "--exit-code").exit_code == 0
    assert mvc("diff", "HEAD~1", "HEAD", "--exit-code", "--metrics", ok=False).exit_code == 1
    assert mvc("diff", "HEAD", "HEAD", "--exit-code", "--metrics").exit_code == 0


@pytest.mark.parametrize("args,message", [
    (["add"], "error: missing argument 'PATHS...'\nhint: see 'mvc add --help'\n"),
    (["frobnicate"], "error: no such command 'frobnicate'\nhint: see 'mvc --help'\n"),
    (["status", "--nope"], "error: no such option '--nope'\nhint: see 'mvc status --help'\n"),
    (["log", "-n", "x"], "error: invalid value for '-n' / '--max-count': 'x' is not a valid integer range\n"
                         "hint: see 'mvc log --help'\n"),
    (["diff", "a", "b", "c"], "error: diff takes at most two revisions (use '--' before paths)\n"
                              "hint: see 'mvc diff --help'\n"),
    (["--color=pink", "status"], "error: invalid value for '--color': 'pink' is not one of 'auto', "
                                 "'always', 'never'\nhint: see 'mvc --help'\n"),
])
def test_usage_errors_are_one_error_line_and_exit_2(mvc, args, message):
    result = mvc(*args, ok=False)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", message)


def test_colour_always_never_and_the_environment(mvc, work, monkeypatch):
    write(work / "new.bin", b"n")
    assert RED_TAB in mvc("--color=always", "status").stdout
    assert "\x1b[" not in mvc("--color=never", "status").stdout
    assert "\x1b[" not in mvc("status").stdout  # auto: not a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in mvc("status").stdout
    assert RED_TAB in mvc("--color=always", "status").stdout  # an explicit choice wins, as git's


def test_auto_colour_is_off_for_no_color_and_dumb_terminals(monkeypatch):
    from modelvc.cli.main import colour_wanted

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert colour_wanted("auto") is None
    monkeypatch.setenv("TERM", "dumb")
    assert colour_wanted("auto") is False
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setenv("NO_COLOR", "")
    assert colour_wanted("auto") is False
    assert colour_wanted("always") is True and colour_wanted("never") is False


@pytest.mark.parametrize("command", ["config", "check-models-in-git", "status", "add", "diff"])
def test_help_of_new_commands_and_options(mvc_runner, command):
    text = mvc_runner(command, "--help").stdout
    expected = {"config": "--unset", "check-models-in-git": "model file", "status": "--exit-code",
                "add": "--no-gitignore", "diff": "--metrics"}[command]
    assert expected in text
