"""Backends plug in here by name: `--backend NAME` / $MLOPS_BACKEND (default `local`).

A backend is a `create(workspace) -> Backend` function found through the entry point group
`mlops_widgets.backends` (this package declares `local` and `cpd` in its pyproject; another
package adds its own the same way), as monitors plug in through `mlops_widgets.monitors`.
Modules are imported only when chosen, so the IBM SDKs cost nothing to users of the embedded
backend.
"""

from __future__ import annotations

import os

from mlops_widgets.backends.base import Backend
from mlops_widgets.errors import MlopsError
from mlops_widgets.plugins import declared
from mlops_widgets.settings import BACKEND
from mlops_widgets.workspace import Workspace

ENTRY_POINT_GROUP = "mlops_widgets.backends"
# This package's own, as its pyproject declares them: found even when it runs from a source tree
# whose installed metadata predates them.
OWN: dict[str, str] = {
    "local": "mlops_widgets.backends.local:create",
    "cpd": "mlops_widgets.backends.cpd:create",
}


def installed() -> dict[str, str]:
    """Backend name -> `module:function` of every installed backend, sorted by name."""
    return {name: p.target for name, p in declared(ENTRY_POINT_GROUP, OWN).items()}


def backend_name(name: str | None = None) -> str:
    """The chosen backend's name: the argument, else $MLOPS_BACKEND, else `local`."""
    chosen = name or BACKEND.from_env()
    known = installed()
    if chosen not in known:
        raise MlopsError(f"unknown backend {chosen!r}: the installed backends are {', '.join(known)}")
    return chosen


def get_backend(
    name: str | None = None, workspace: str | os.PathLike[str] | Workspace | None = None
) -> Backend:
    """The backend `name` on `workspace` (see `mlops_widgets.workspace.resolve_root`)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    chosen = backend_name(name)
    create = declared(ENTRY_POINT_GROUP, OWN)[chosen].load()
    return create(ws)
