"""Start-up cost: commands that code no float planes never import numpy (0.13 s on its own)."""

from __future__ import annotations

import subprocess
import sys

from conftest import write

RUN_AND_REPORT = """
import sys
from modelvc.cli.main import main
try:
    main()
except SystemExit as exit:
    print("numpy" in sys.modules, exit.code or 0)
"""


def mvc_process(cwd, *args: str) -> tuple[bool, int]:
    """(whether numpy was imported, exit code) of one `mvc` run in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-c", RUN_AND_REPORT, *args], cwd=cwd, capture_output=True, text=True)
    assert result.stdout, result.stderr
    imported, code = result.stdout.split()[-2:]
    return imported == "True", int(code)


def test_status_add_commit_and_checkout_of_plain_data_do_not_import_numpy(mvc, work):
    write(work / "notes.txt", b"epoch 1: loss 2.31\n" * 20_000)
    assert mvc_process(work, "add", "notes.txt") == (False, 0)
    assert mvc_process(work, "commit", "-m", "one") == (False, 0)
    write(work / "notes.txt", b"epoch 2: loss 1.97\n" * 20_000)
    assert mvc_process(work, "commit", "-a", "-m", "two") == (False, 0)
    assert mvc_process(work, "status") == (False, 0)
    assert mvc_process(work, "checkout", "HEAD~1") == (False, 0)
    assert (work / "notes.txt").read_bytes() == b"epoch 1: loss 2.31\n" * 20_000
