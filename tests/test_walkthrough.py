"""The README's first command: the walkthrough runs on a machine with no identity configured."""

from __future__ import annotations

import os
import subprocess
import sys


def test_walkthrough_runs_without_any_configured_identity(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MVC_", "GIT_"))}
    env.update(HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), GIT_CONFIG_NOSYSTEM="1")
    result = subprocess.run([sys.executable, "-m", "modelvc.walkthrough", str(tmp_path / "tour")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "$ mvc fsck\nchecked 4 commits" in result.stdout
    log = subprocess.run([sys.executable, "-m", "modelvc", "log", "-n", "1", "--json"], cwd=tmp_path / "tour",
                         capture_output=True, text=True, env=env)
    assert '"Walkthrough"' in log.stdout
