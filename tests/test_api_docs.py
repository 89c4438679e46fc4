"""docs/api.md's examples run as written: every ```python block, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def test_python_blocks_are_found():
    assert len(python_blocks(DOC.read_text(encoding="utf-8"))) == 4


def test_the_examples_of_docs_api_md_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "api_example"}
    for block in python_blocks(DOC.read_text(encoding="utf-8")):
        exec(compile(block, str(DOC), "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert [line.split(" ", 1)[1] for line in printed] == ["step 10", "step 20", "step 30"]
    assert (tmp_path / "run" / ".mvc").is_dir()
