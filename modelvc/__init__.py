"""modelvc: git-like version control for model artifacts."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Repo", "__version__"]


def __getattr__(name: str) -> Any:
    """`from modelvc import Repo` loads the API on first use, so `mvc` starts no slower."""
    if name == "Repo":
        from modelvc.api import Repo

        return Repo
    raise AttributeError(f"module 'modelvc' has no attribute {name!r}")
