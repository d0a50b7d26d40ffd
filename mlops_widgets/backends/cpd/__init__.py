"""The Cloud Pak for Data backend: Watson Machine Learning space, WMLA EDI inference, OpenScale.

space: WML data assets (ibm-watson-machine-learning or ibm-watsonx-ai, by cluster version);
inference: WMLA EDI through IBM's ibm-wmla client (no `dlim` binary); monitoring:
ibm-watson-openscale; volumes: the storage volumes REST API; training: WMLA's deep-learning
execs through ibm-wmla.
Configured from the environment (see `session.py`); the SDKs are imported only when a service
is first used, inside the side-effect containment of `contain.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_widgets.backends.base import Backend
from mlops_widgets.settings import CPD_CA_BUNDLE
from mlops_widgets.workspace import Workspace

if TYPE_CHECKING:
    from mlops_widgets.backends.cpd.client import CpdSession


class CpdBackend(Backend):
    """A Backend that also exposes its cluster connection (`session`), for `mlops doctor` and
    for publishing monitor providers as WML functions."""

    def __init__(self, workspace: Workspace, session: CpdSession) -> None:
        self.session = session

        def space():
            from mlops_widgets.backends.cpd.space import CpdSpace

            return CpdSpace(session)

        def inference():
            from mlops_widgets.backends.cpd.inference import CpdInference

            return CpdInference(session)

        def monitoring():
            from mlops_widgets.backends.cpd.monitoring import CpdMonitoring

            return CpdMonitoring(session)

        def volumes():
            from mlops_widgets.backends.cpd.volumes import CpdVolumes

            return CpdVolumes(session)

        def training():
            from mlops_widgets.backends.cpd.training import CpdTraining

            return CpdTraining(session)

        super().__init__(
            "cpd",
            workspace,
            {
                "space": space,
                "inference": inference,
                "monitoring": monitoring,
                "volumes": volumes,
                "training": training,
            },
        )

    def kernel_environment(self) -> dict[str, str]:
        """The cluster's URL and the CA bundle the deploying side trusts (used where that file
        exists in the kernel)."""
        s = self.session.settings
        env = {"BASE_URL": s.base_url, CPD_CA_BUNDLE.env: s.ca_bundle}
        return {**super().kernel_environment(), **{k: v for k, v in env.items() if v}}


def create(workspace: Workspace) -> Backend:
    from mlops_widgets.backends.cpd.client import CpdSession

    return CpdBackend(workspace, CpdSession())
