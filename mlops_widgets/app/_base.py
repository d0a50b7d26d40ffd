"""What every part of the application core shares: the workspace, the backend built on first
use, and the two ways an action is recorded (an event in the audit trail, or a template run)."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.base import Backend
from mlops_widgets.runner import events
from mlops_widgets.runner.trail import RunRecord
from mlops_widgets.workspace import Workspace

if TYPE_CHECKING:
    from mlops_widgets.monitors import MonitorDefinition


class AppBase:
    """The workspace and backend of one `App`; cheap to create (nothing opens until used)."""

    def __init__(
        self,
        workspace: Workspace | str | os.PathLike[str] | None = None,
        backend: Backend | str | None = None,
    ) -> None:
        self._backend_name: str | None
        if isinstance(backend, Backend):
            self._backend: Backend | None = backend
            self.workspace = backend.workspace
            self._backend_name = backend.name
        else:
            self._backend = None
            self.workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
            self._backend_name = None
            self._backend_choice = backend

    @property
    def backend_name(self) -> str:
        """The chosen backend's name: the one given, else $MLOPS_BACKEND, else `local`; an
        uninstalled one is refused when first needed (reading the audit trail needs none)."""
        if self._backend_name is None:
            from mlops_widgets.backends import backend_name

            self._backend_name = backend_name(self._backend_choice)
        return self._backend_name

    @property
    def backend(self) -> Backend:
        if self._backend is None:
            self._backend = get_backend(self.backend_name, self.workspace)
        return self._backend

    def definitions(self) -> dict[str, MonitorDefinition]:
        """Every monitor definition this workspace knows (built-ins, plug-ins, registrations):
        what an entry is validated against, whichever front end asks."""
        from mlops_widgets.monitors import known_definitions

        return known_definitions(self.workspace)

    def _event(
        self, action: str, params: dict[str, Any], deployment_name: str | None = None
    ) -> AbstractContextManager[events.Outcome]:
        return events.recording(
            self.workspace, action, params, deployment_name=deployment_name, backend=self.backend_name
        )

    def run(
        self,
        template: str | os.PathLike[str],
        params: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        progress: Any = None,
        cancel: threading.Event | None = None,
        timeout: float | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> RunRecord:
        """Run a template on this workspace and backend (validated and recorded by the runner);
        a failed or cancelled run comes back as its record."""
        from mlops_widgets.runner import run_template

        return run_template(
            template,
            params,
            secrets=secrets,
            workspace=self.workspace,
            backend=self.backend_name,
            progress=progress,
            cancel=cancel,
            timeout=timeout,
            cwd=cwd,
        )
