"""The steps of the workflow, backend-agnostic: what templates, the CLI and the panel call.

One module per area (`space`, `deploy`, `monitor`); every step takes a `Backend` first.
Template cells obtain theirs with `connect()`, which follows the environment the runner sets.
"""

from __future__ import annotations

import os

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend


def connect(backend: str | None = None, workspace: str | os.PathLike[str] | None = None) -> Backend:
    """The backend to act on: arguments, else $MLOPS_BACKEND and $MLOPS_HOME (set by the runner)."""
    return get_backend(backend, workspace)
