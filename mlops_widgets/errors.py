"""The one exception type a user sees: the CLI prints it and exits 1, the panel shows it inline."""

from __future__ import annotations


class MlopsError(Exception):
    """A user-facing error: bad input, a missing object, a refused operation.

    Its message is complete and names what is wrong and where; no traceback is shown.
    """


class NotFoundError(MlopsError):
    """A named object (asset, entry, deployment, run, subscription...) does not exist."""


class ConflictError(MlopsError):
    """The operation clashes with the current state (name taken, deployment started...)."""
