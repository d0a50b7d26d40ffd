"""What the local service was asked through EDI's API by clients other than mlops, kept.

A companion of the local service (`mlops_widgets.companions` entry point): when IBM's EDI client
(or curl) changes a deployment's profile on `mlops serve`, the service announces it; this
records the change as an event of the audit trail (`deploy.profile_edit`, with the client and
each changed value before and after) and lays it into the resource_configs of the entry that
names the deployment, so that the next deploy applies it again instead of resetting it.
"""

from __future__ import annotations

import logging
from typing import Any

from mlops_widgets.backends import get_backend
from mlops_widgets.errors import NotFoundError
from mlops_widgets.ops import space
from mlops_widgets.ops.deploy import keep_resource_configs, resource_configs_from_changes
from mlops_widgets.runner import events
from mlops_widgets.workspace import Workspace

log = logging.getLogger(__name__)


class ServiceEvents:
    """Listens to the local service's announcements (`on_service_event`); holds no thread."""

    workspace: Workspace | None = None

    def start(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def stop(self) -> None:
        """Nothing runs between announcements."""

    def on_service_event(self, action: str, params: dict[str, Any]) -> None:
        if action != "deploy.profile_edit" or self.workspace is None:
            return
        name = params["deployment_name"]
        with events.recording(self.workspace, action, params, deployment_name=name, backend="local") as event:
            event.result = keep_in_entry(self.workspace, name, params["changed"])


def keep_in_entry(workspace: Workspace, name: str, changed: dict[str, list[Any]]) -> dict[str, Any]:
    """Lay a profile change into the resource_configs of the entry that names deployment `name`
    (none may: a folder deployed through EDI's API directly)."""
    update = resource_configs_from_changes(changed)
    backend = get_backend("local", workspace)
    try:
        key, _ = space.get_entry(backend, deployment_name=name)
    except NotFoundError:
        return {"entry": None, "resource_configs": {}}
    if update:
        keep_resource_configs(backend, key, update)
    return {"entry": key, "resource_configs": update}
