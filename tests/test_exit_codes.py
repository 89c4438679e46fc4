"""Every exit code the CLI can give is documented, and every error class has one of them."""

from __future__ import annotations

import re
from pathlib import Path

from modelvc import errors
from modelvc.cli.main import INTERNAL_ERROR, INTERRUPTED

DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def error_classes():
    pending = [errors.MvcError]
    while pending:
        cls = pending.pop()
        yield cls
        pending.extend(cls.__subclasses__())


def test_each_error_class_has_a_listed_exit_code():
    for cls in error_classes():
        assert cls.exit_code in errors.EXIT_CODES, cls


def test_docs_list_every_exit_code():
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", DOCS.read_text(), re.M)}
    assert set(errors.EXIT_CODES) | {INTERNAL_ERROR, INTERRUPTED} == documented
