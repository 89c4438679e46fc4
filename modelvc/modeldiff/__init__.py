"""Model-aware comparison: which tensors were added, removed, reshaped or changed, and by how much.

The library behind `mvc diff` and `mvc show` for model files. It reads through ByteSources,
never loads a whole tensor, and prints nothing.
"""

from __future__ import annotations

from modelvc.modeldiff.compare import compare_models
from modelvc.modeldiff.describe import describe_model
from modelvc.modeldiff.results import (
    STATUSES,
    MetaChange,
    ModelDiff,
    ModelSummary,
    TensorChange,
    TensorInfo,
    TensorStats,
)
from modelvc.modeldiff.version import FileVersion

__all__ = [
    "STATUSES",
    "FileVersion",
    "MetaChange",
    "ModelDiff",
    "ModelSummary",
    "TensorChange",
    "TensorInfo",
    "TensorStats",
    "compare_models",
    "describe_model",
]
