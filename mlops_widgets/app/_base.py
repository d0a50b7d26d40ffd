"""What every part of the application core shares: the workspace, the backend built on first
use, and the one way an action is recorded (an event in the audit trail)."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from typing import Any

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.runner import events
from mlops_widgets.workspace import Workspace


class AppBase:
    """The workspace and backend of one `App`; cheap to create (nothing opens until used)."""

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        backend: Backend | str | None = None,
    ) -> None:
        if isinstance(backend, Backend):
            self._backend: Backend | None = backend
            self.workspace = backend.workspace
            self.backend_name = backend.name
        else:
            from mlops_widgets.backends import backend_name

            self._backend = None
            self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
            self.backend_name = backend_name(backend)

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = get_backend(self.backend_name, self.workspace)
        return self._backend

    def _event(
        self, action: str, params: dict[str, Any], deployment_name: str | None = None
    ) -> AbstractContextManager[events.Outcome]:
        return events.recording(
            self.workspace, action, params, deployment_name=deployment_name, backend=self.backend_name
        )
