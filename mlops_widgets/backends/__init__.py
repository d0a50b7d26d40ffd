"""Backends plug in here by name: `--backend NAME` / $MLOPS_BACKEND (default `local`).

Each entry names a module with `create(workspace) -> Backend`; modules are imported only when
chosen, so the IBM SDKs cost nothing to users of the embedded backend.
"""

from __future__ import annotations

import importlib
import os

from mlops_widgets.backends.base import Backend
from mlops_widgets.errors import MlopsError
from mlops_widgets.workspace import Workspace

REGISTRY: dict[str, str] = {
    "local": "mlops_widgets.backends.local",
    "cpd": "mlops_widgets.backends.cpd",
}
DEFAULT = "local"


def backend_name(name: str | None = None) -> str:
    """The chosen backend's name: the argument, else $MLOPS_BACKEND, else `local`."""
    chosen = name or os.environ.get("MLOPS_BACKEND") or DEFAULT
    if chosen not in REGISTRY:
        raise MlopsError(f"unknown backend {chosen!r}: choose one of {', '.join(REGISTRY)}")
    return chosen


def get_backend(name: str | None = None, workspace: str | os.PathLike[str] | Workspace | None = None) -> Backend:
    """The backend `name` on `workspace` (see `mlops_widgets.workspace.resolve_root`)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    module = importlib.import_module(REGISTRY[backend_name(name)])
    return module.create(ws)
