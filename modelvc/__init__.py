"""modelvc: git-like version control for model artifacts."""

__version__ = "0.1.0"
