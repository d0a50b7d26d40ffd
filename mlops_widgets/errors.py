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
