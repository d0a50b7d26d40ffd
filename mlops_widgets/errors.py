"""The one exception type a user sees: the CLI prints it and exits 1, the panel shows it inline.

An error says what is wrong in plain words; what fixes it travels beside the message as a
`Hint` keyed by the action, so each front end names its own means: the CLI a flag or a
command, the panel the control that does it. No message carries a CLI flag.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hint:
    """What the user can do about an error.

    `action` is a stable key front ends look up (e.g. "stage.replace", "deploy.delete",
    "monitor.register"); `text` says the same in plain words, no flag, for any front end
    without an entry for the key (logs, run records); `args` are the values a rendering may
    need (a deployment name, a monitor id).
    """

    action: str
    text: str
    args: Mapping[str, str] = field(default_factory=dict)


def render_hint(hint: Hint, renderings: Mapping[str, str]) -> str:
    """`hint` in a front end's words: its entry in `renderings` (action -> text with `{arg}`
    fields) filled from its args, else its plain text."""
    template = renderings.get(hint.action)
    if template is None:
        return hint.text
    try:
        return template.format_map(dict(hint.args))
    except (KeyError, IndexError, ValueError):  # a rendering needing an arg the hint lacks
        return hint.text


def render_error(error: MlopsError, renderings: Mapping[str, str]) -> str:
    """The message, then the hint rendered from `renderings` (on a line of its own after a
    multi-line message, such as a config's list of problems)."""
    if error.hint is None:
        return error.message
    sep = "\n" if "\n" in error.message else ": "
    return f"{error.message}{sep}{render_hint(error.hint, renderings)}"


class MlopsError(Exception):
    """A user-facing error: bad input, a missing object, a refused operation.

    Its message is complete and names what is wrong and where; no traceback is shown.
    `str(error)` is the message followed by the hint's plain text, so a record or a log line
    reads whole without any front end.
    """

    def __init__(self, message: str, *, hint: Hint | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}: {self.hint.text}" if self.hint else self.message


class NotFoundError(MlopsError):
    """A named object (asset, entry, deployment, run, subscription...) does not exist."""


class ConflictError(MlopsError):
    """The operation clashes with the current state (name taken, deployment started...)."""
