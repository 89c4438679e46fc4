"""Metrics and params from the files training code writes, as the flat maps a commit holds.

JSON and YAML files (DVC's params.yaml and metrics.json) and a Hugging Face Trainer's
trainer_state.json. Nested keys join with dots (`optimizer.lr`) and list items take their
index (`layers.0`), so a diff names the one value that changed. Metrics must be finite
numbers; params are text, written the same whichever file format they came from. The rules
are documented in docs/metrics.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from os import PathLike
from pathlib import Path
from typing import Any

from modelvc.errors import MetadataFileError, MvcError, UsageError

TRAINER_STATE = "trainer_state.json"
FORMATS = {".json": "JSON", ".yaml": "YAML", ".yml": "YAML"}
MAX_DEPTH = 64  # deeper is no config: a YAML alias that contains itself never ends

FilePath = str | PathLike[str]


@dataclass(frozen=True)
class CommitValues:
    """A commit's metrics and the params it sets, read and checked before anything is written."""

    metrics: dict[str, int | float]
    params: dict[str, str]  # from the params files, then the pairs: later sources win
    file_roots: frozenset[str]  # top-level keys the params files set
    params_reset: bool = False

    def params_over(self, parent: Mapping[str, str]) -> dict[str, str]:
        """The parent's params carried over, then ours on top.

        A params file describes its top-level keys whole, so a carried param under one of
        them is dropped (a list that got shorter leaves no stale `layers.2` behind).
        """
        if self.params_reset:
            return dict(self.params)
        carried = {key: value for key, value in parent.items() if root_of(key) not in self.file_roots}
        return dict(sorted((carried | self.params).items()))


def root_of(key: str) -> str:
    return key.split(".", 1)[0]


def read_values(metrics: Mapping[str, Any] | None = None, params: Mapping[str, Any] | None = None,
                metrics_files: Iterable[FilePath] = (), params_files: Iterable[FilePath] = (),
                trainer_state: FilePath | bool | None = None, params_reset: bool = False,
                cwd: FilePath | None = None) -> CommitValues:
    """Everything a commit records besides its files, in precedence order (later wins):
    metrics from the Trainer state, then each metrics file, then `metrics`; params from each
    params file, then `params`. Relative paths are from `cwd` and named as given."""
    base = Path(cwd) if cwd is not None else Path.cwd()
    found: dict[str, int | float] = {}
    if isinstance(trainer_state, (str, PathLike)):  # True: the one the commit changes (ops.commit)
        found |= trainer_metrics(base / trainer_state, str(trainer_state))
    for name in metrics_files:
        document = load_file(base / name, str(name), "metrics")
        found |= metric_values(flatten(document, f"metrics file '{name}'"), str(name))
    found |= metric_values(flatten(dict(metrics or {}), None), None)
    from_files: dict[str, str] = {}
    for name in params_files:
        document = load_file(base / name, str(name), "params")
        from_files |= param_values(flatten(document, f"params file '{name}'"), str(name))
    given = param_values(flatten(dict(params or {}), None), None)
    return CommitValues(dict(sorted(found.items())), dict(sorted((from_files | given).items())),
                        frozenset(root_of(key) for key in from_files), params_reset)


def load_file(path: Path, shown: str, kind: str) -> Any:
    """The document in a .json, .yaml or .yml file; a MetadataFileError naming the file (and the
    line and column of a syntax error) when it is missing or malformed."""
    parser = FORMATS.get(path.suffix.lower())
    if parser is None:
        raise UsageError(f"{kind} file '{shown}' is neither JSON nor YAML",
                         hint="name it *.json, *.yaml or *.yml")
    try:
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        raise MetadataFileError(f"{kind} file '{shown}' does not exist") from None
    except IsADirectoryError:
        raise MetadataFileError(f"{kind} file '{shown}' is a directory") from None
    return parse_document(data, parser, shown, kind)


def parse_document(data: bytes, parser: str, shown: str, kind: str) -> Any:
    """A JSON or YAML document from a file's bytes (read from disk or from the store)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MetadataFileError(f"{kind} file '{shown}' is not UTF-8 text (byte {exc.start})") from None
    if parser == "JSON":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise MetadataFileError(f"{kind} file '{shown}' is not valid JSON: line {exc.lineno}, "
                                    f"column {exc.colno}: {exc.msg}") from None
    return _load_yaml(text, shown, kind)


def _load_yaml(text: str, shown: str, kind: str) -> Any:
    import yaml  # only when a YAML file is given: mvc's start-up stays as it was

    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise MetadataFileError(f"{kind} file '{shown}' is not valid YAML: {where}"
                                f"{exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise MetadataFileError(f"{kind} file '{shown}' is not valid YAML: {exc}") from None


def _structure_error(label: str | None, message: str) -> MvcError:
    """A file that is no mapping of names is malformed (its own exit code); a dict given by code
    is a usage error."""
    return MetadataFileError(f"{label}: {message}") if label is not None else UsageError(message)


def flatten(document: Any, label: str | None) -> dict[str, Any]:
    """Nested mappings and lists as one level of dotted keys; leaves (empty containers too) kept.

    `label` names the file in errors ("params file 'p.yaml'"); None for a dict given by code."""
    if document is None and label is not None:
        return {}  # an empty YAML file
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else f"a single value ({json.dumps(document, default=str)})"
        raise _structure_error(label, f"expected a mapping of names to values at the top, found {kind}")
    flat: dict[str, Any] = {}
    pending: list[tuple[str, Any, int]] = [("", document, 0)]
    while pending:
        prefix, value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise _structure_error(label, f"'{prefix[:80]}...' is nested more than {MAX_DEPTH} levels deep")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, bool) or not isinstance(key, (str, int)) or key == "":
                at = f" under '{prefix}'" if prefix else ""
                raise _structure_error(label, f"the key {key!r}{at} is not text (quote it)")
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(item, (dict, list)) and item:
                pending.append((name, item, depth + 1))
            elif name in flat:
                raise _structure_error(label, f"the key '{name}' appears twice once nested keys are joined "
                                              f"with dots")
            else:
                flat[name] = item
    return dict(sorted(flat.items()))


def _where(shown: str | None) -> str:
    return f" in '{shown}'" if shown is not None else ""


def metric_values(flat: Mapping[str, Any], shown: str | None) -> dict[str, int | float]:
    """Every value a finite number: a boolean, null or text is refused (exit 2), naming the key."""
    numbers: dict[str, int | float] = {}
    for key, value in flat.items():
        if value == {} or value == []:
            continue  # an empty group holds no metric
        if isinstance(value, bool):
            raise UsageError(f"metric '{key}'{_where(shown)} is a boolean ({json.dumps(value)}), not a number")
        if value is None:
            raise UsageError(f"metric '{key}'{_where(shown)} is null, not a number")
        if not isinstance(value, (int, float)):
            raise UsageError(f"metric '{key}'{_where(shown)} is not a number: {json.dumps(value, default=str)}")
        if not math.isfinite(value):
            raise UsageError(f"metric '{key}'{_where(shown)} is not a finite number: {value}")
        numbers[key] = value
    return numbers


def param_text(value: Any) -> str | None:
    """A param's value as text, the same for JSON and YAML: true/false/null as JSON writes them,
    floats in Python's shortest round-trip form (0.0003, 1e-05), dates in ISO 8601."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or value == {} or value == []:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return None


def param_values(flat: Mapping[str, Any], shown: str | None) -> dict[str, str]:
    texts: dict[str, str] = {}
    for key, value in flat.items():
        text = param_text(value)
        if text is None:
            raise UsageError(f"param '{key}'{_where(shown)} is a {type(value).__name__}, which mvc cannot keep as text")
        texts[key] = text
    return texts


def trainer_metrics(path: Path, shown: str) -> dict[str, int | float]:
    """The metrics of a Trainer checkpoint directory's trainer_state.json (or of that file)."""
    if path.is_dir():
        path, shown = path / TRAINER_STATE, f"{shown.rstrip('/')}/{TRAINER_STATE}"
    elif not path.exists():
        raise MetadataFileError(f"Trainer checkpoint '{shown}' does not exist")
    return trainer_state_metrics(load_file(path, shown, "Trainer state"), shown)


def trainer_state_metrics(state: Any, shown: str) -> dict[str, int | float]:
    """A Hugging Face Trainer's state as metrics: `step` (global_step), `epoch`, `best_metric` when
    set, and the eval_* values of the last evaluation in its log_history."""
    history = state.get("log_history", []) if isinstance(state, dict) else None
    if not isinstance(history, list) or isinstance(state.get("global_step"), bool) \
            or not isinstance(state.get("global_step"), int):
        raise MetadataFileError(f"'{shown}' is not a Hugging Face Trainer state (it needs a whole-number "
                                f"global_step and a log_history list)")
    found: dict[str, Any] = {"step": state["global_step"]}
    found |= {key: state[key] for key in ("epoch", "best_metric") if state.get(key) is not None}
    evaluations = [entry for entry in history if isinstance(entry, dict) and any(
        isinstance(key, str) and key.startswith("eval_") for key in entry)]
    if evaluations:
        found |= {key: value for key, value in evaluations[-1].items() if key.startswith("eval_")}
    return metric_values(flatten(found, f"Trainer state '{shown}'"), shown)
