"""The embedded backend: everything in a workspace folder on this machine.

space: SQLite-indexed asset files and metadata documents; inference: a local EDI-compatible
service (its own process, 127.0.0.1); monitoring: OpenScale's model in the workspace database;
volumes: folders under the workspace (or $MLOPS_VOLUMES); training: jobs run by detached local
supervisor processes.
"""

from __future__ import annotations

from mlops_widgets.backends.base import Backend
from mlops_widgets.settings import HOME, VOLUMES
from mlops_widgets.workspace import Workspace


class LocalBackend(Backend):
    """A Backend whose kernels find the workspace and its volumes on this machine."""

    def kernel_environment(self) -> dict[str, str]:
        from mlops_widgets.backends.local.volumes import volumes_root

        root = str(self.workspace.root)
        return {
            **super().kernel_environment(),
            HOME.env: root,
            VOLUMES.env: str(volumes_root(self.workspace)),
        }


def create(workspace: Workspace) -> Backend:
    def space():
        from mlops_widgets.backends.local.space import LocalSpace

        return LocalSpace(workspace)

    def inference():
        from mlops_widgets.backends.local.inference import LocalInference

        return LocalInference(workspace)

    def monitoring():
        from mlops_widgets.backends.local.monitoring import LocalMonitoring

        return LocalMonitoring(workspace)

    def volumes():
        from mlops_widgets.backends.local.volumes import LocalVolumes

        return LocalVolumes(workspace)

    def training():
        from mlops_widgets.backends.local.training import LocalTraining

        return LocalTraining(workspace)

    return LocalBackend(
        "local",
        workspace,
        {
            "space": space,
            "inference": inference,
            "monitoring": monitoring,
            "volumes": volumes,
            "training": training,
        },
    )
