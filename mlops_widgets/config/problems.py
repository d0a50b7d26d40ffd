"""Problems found in a config, their dotted paths, and the error that carries them all at once.

A path names a value the way a user reads the YAML: `a.b.c` for mapping keys, `[i]` for list
items, `["odd key"]` for keys that are not plain words (asset ids with dots, spaces...). The
panel maps problems to its fields by these paths, so their shape is part of the API.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from mlops_widgets.errors import Hint, MlopsError

Severity = Literal["error", "warning"]

_BARE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
# One path segment: `.name` (or `name` at the start), `[3]`, `["quoted key"]`.
_SEGMENT = re.compile(r'\.?[A-Za-z0-9_][A-Za-z0-9_-]*|\[\d+\]|\["(?:[^"\\]|\\.)*"\]')


def join_path(path: str, key: object) -> str:
    """The path of `key` inside the mapping at `path`."""
    text = str(key)
    if _BARE.fullmatch(text):
        return f"{path}.{text}" if path else text
    return f"{path}[{json.dumps(text, ensure_ascii=False)}]"


def item_path(path: str, index: int) -> str:
    """The path of item `index` of the list at `path`."""
    return f"{path}[{index}]"


def parent_path(path: str) -> str:
    """The path one level up ("" for a top-level key)."""
    starts = [m.start() for m in _SEGMENT.finditer(path)]
    return path[: starts[-1]] if starts else ""


def line_of(path: str, lines: Mapping[str, int] | None) -> int | None:
    """The YAML line of `path`, else of its nearest ancestor that has one (a missing key's parent)."""
    if not lines:
        return None
    while True:
        line = lines.get(path)
        if line is not None or not path:
            return line
        path = parent_path(path)


@dataclass(frozen=True)
class Problem:
    """One thing wrong (severity 'error') or worth knowing ('warning') about a config value."""

    path: str
    message: str
    line: int | None = None
    severity: Severity = "error"

    def format(self, source: str | None = None) -> str:
        """`<file>:<line>: <path>: <message>`, leaving out the parts that are unknown."""
        where = source or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        parts = [p for p in (where, self.path) if p]
        note = "warning: " if self.severity == "warning" else ""
        return ": ".join([*parts, note + self.message])

    def __str__(self) -> str:
        return self.format()


def ordered(problems: Iterable[Problem]) -> list[Problem]:
    """Errors, then warnings, each in file order (problems without a line keep their place last)."""
    items = list(problems)

    def by_line(p: Problem) -> tuple[bool, int]:
        return (p.line is None, p.line or 0)

    errors = sorted((p for p in items if p.severity == "error"), key=by_line)
    warnings = sorted((p for p in items if p.severity == "warning"), key=by_line)
    return errors + warnings


class ConfigError(MlopsError):
    """A config that does not validate: every problem found, not only the first.

    `str()` is a summary line followed by one line per problem, ready for the CLI's stderr.
    """

    def __init__(
        self, problems: Iterable[Problem], source: str | None = None, *, hint: Hint | None = None
    ) -> None:
        self.problems: list[Problem] = ordered(problems)
        self.source = source
        super().__init__(self._text(), hint=hint)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def _text(self) -> str:
        n, w = len(self.errors), len(self.warnings)
        summary = f"{n} problem{'s' if n != 1 else ''} in {self.source or 'the entry'}"
        if w:
            summary += f" (and {w} warning{'s' if w != 1 else ''})"
        return "\n".join([summary, *(p.format(self.source) for p in self.problems)])
