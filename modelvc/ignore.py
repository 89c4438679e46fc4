"""`.mvcignore`: exactly `.gitignore`'s rules, through the pathspec library's gitwildmatch.

pathspec costs about 30 ms to import, so it is loaded only when a `.mvcignore` exists:
`mvc status` in a repository without one never pays for it.
"""

from __future__ import annotations

from pathlib import Path

from modelvc.errors import ConfigError

IGNORE_FILE = ".mvcignore"
# Never listed, added or written, whatever .mvcignore says: git's and our own metadata.
PROTECTED_NAMES = frozenset({".git", ".mvc"})


def is_protected(path: str) -> bool:
    """Whether a repo path is, or lies inside, a `.git` or `.mvc` at any depth."""
    return any(part.lower() in PROTECTED_NAMES for part in path.split("/"))  # as on a case-insensitive disk


class IgnoreRules:
    """The patterns of a `.mvcignore`, matched as git matches a top-level `.gitignore`:
    negation, `**`, anchoring and directory-only patterns included."""

    def __init__(self, lines: list[str]) -> None:
        self._spec = None
        if any(line.strip() and not line.startswith("#") for line in lines):
            import pathspec

            self._spec = pathspec.GitIgnoreSpec.from_lines(lines)

    @classmethod
    def load(cls, root: Path) -> IgnoreRules:
        path = root / IGNORE_FILE
        try:
            data = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return cls([])
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})",
                              hint=f"save {IGNORE_FILE} as UTF-8") from None
        return cls(text.splitlines())

    def ignored(self, path: str, is_dir: bool) -> bool:
        """Whether git would ignore this path (a path inside an ignored directory included)."""
        if self._spec is None:
            return False
        return self._spec.match_file(path + "/" if is_dir else path)
