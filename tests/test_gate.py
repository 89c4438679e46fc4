"""The gate: CI lints (ruff) and type-checks (mypy) before it tests, and any finding fails it."""

from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def _ci_steps() -> list[str]:
    lines = (PROJECT / ".ci" / "run").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_ci_runs_ruff_and_mypy_before_the_tests_and_stops_at_a_finding():
    steps = _ci_steps()
    assert "set -euo pipefail" in steps  # a finding (non-zero exit) ends the run
    installs_gate = steps.index("pip install --quiet -e '.[dev]'")
    lint, types = steps.index("ruff check modelvc tests"), steps.index("mypy")
    tests = steps.index("pip install --quiet -e '.[test]' && python -m pytest -q")
    assert installs_gate < lint < types < tests


def test_ci_tests_with_the_readme_command():
    readme = (PROJECT / "README.md").read_text()
    assert "pip install -e '.[test]' && python -m pytest -q\n" in readme
    assert _ci_steps()[-1] == "pip install --quiet -e '.[test]' && python -m pytest -q"
