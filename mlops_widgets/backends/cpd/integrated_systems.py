"""OpenScale integrated systems, and publishing a monitor's provider as one (the B2
notebook): the provider deployed as a WML function (publish.py), registered with its versioned
scoring URL and the credentials OpenScale signs in with.
"""

from __future__ import annotations

import contextlib
from typing import Any

from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.backends.cpd.openscale import Area, CpdMonitorDefinitions, CpdMonitorInstances, created
from mlops_widgets.backends.cpd.publish import deploy_provider, remove_other_deployments
from mlops_widgets.backends.monitoring_protocol import Resource
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.monitors.definitions import MonitorDefinition


class CpdIntegratedSystems(Area):
    def list(self, type: str | None = None) -> list[Resource]:
        found = self._call(
            "listing OpenScale integrated systems", lambda: self._wos.integrated_systems.list(type=type)
        )
        return sorted(found["integrated_systems"], key=created)

    def get(self, integrated_system_id: str) -> Resource:
        return self._call(
            f"reading integrated system {integrated_system_id}",
            lambda: self._wos.integrated_systems.get(integrated_system_id),
        )

    def add(
        self,
        name: str,
        *,
        type: str = "custom_metrics_provider",
        description: str = "",
        connection: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
    ) -> Resource:
        return self._call(
            f"creating integrated system {name!r}",
            lambda: self._wos.integrated_systems.add(
                name=name,
                type=type,
                description=description,
                credentials=credentials or {},
                connection=connection or {},
            ),
            idempotent=False,
        )

    def associate(self, integrated_system_id: str, monitor_definition_id: str) -> Resource:
        """Tie the system to its monitor definition, as IBM's helper does (the OpenScale UI
        shows a custom monitor's provider through this)."""
        from ibm_watson_openscale.base_classes.watson_open_scale_v2 import JsonPatchOperation

        return self._call(
            f"associating integrated system {integrated_system_id} with monitor {monitor_definition_id}",
            lambda: self._wos.integrated_systems.update(
                integrated_system_id,
                [
                    JsonPatchOperation(
                        op="add",
                        path="/parameters",
                        value={"monitor_definition_ids": [monitor_definition_id]},
                    )
                ],
            ),
        )

    def delete(self, integrated_system_id: str) -> None:
        self._s.call(
            f"deleting integrated system {integrated_system_id}",
            lambda: self._wos.integrated_systems.delete(integrated_system_id),
        )

    def publish_provider(
        self, definition: MonitorDefinition, *, software_spec: str | None = None
    ) -> dict[str, Any]:
        """Deploy the provider as a WML function and register its versioned scoring URL with
        the credentials OpenScale signs in with (checked before anything is deployed). Like
        IBM's helper, re-publishing replaces: the monitor instances that used an earlier
        integrated system of this monitor are pointed at the new one, then the earlier
        systems, deployments and functions are deleted."""
        credentials = provider_credentials(self._s)
        deployed = deploy_provider(self._s, definition, software_spec=software_spec)
        name = f"{definition.id} metrics provider"
        earlier = [
            x["metadata"]["id"]
            for x in self.list(type="custom_metrics_provider")
            if x["entity"].get("name") == name
        ]
        system = self.add(
            name,
            type="custom_metrics_provider",
            description=f"mlops-widgets provider {definition.provider!r} for monitor {definition.id}",
            connection={"display_name": name, "endpoint": deployed["scoring_url"]},
            credentials=credentials,
        )
        system_id = system["metadata"]["id"]
        self.associate(system_id, definition.id)
        instances = CpdMonitorInstances(self._s, CpdMonitorDefinitions(self._s))
        for inst in instances.list(monitor_definition_id=definition.id):
            params = inst["entity"].get("parameters") or {}
            if params.get("custom_metrics_provider_id") in earlier:
                instances.update(
                    inst["metadata"]["id"], parameters={**params, "custom_metrics_provider_id": system_id}
                )
        for old in earlier:
            with contextlib.suppress(NotFoundError):
                self.delete(old)
        remove_other_deployments(self._s, definition, keep=deployed["wml_deployment_id"])
        return {"integrated_system_id": system_id, "endpoint": deployed["scoring_url"], **deployed}


def provider_credentials(session: CpdSession) -> dict[str, Any]:
    """How OpenScale signs in before calling the provider (IBM's custom-monitor helper on
    Cloud Pak for Data): USERNAME and APIKEY exchanged for a token at each evaluation (a token
    alone would expire); kept by OpenScale on the cluster only. WML passes the token OpenScale
    obtained to the function's score(payload, token)."""
    s = session.settings
    if not (s.username and s.apikey):
        raise MlopsError(
            "publishing a provider needs USERNAME and APIKEY: OpenScale signs in with them at "
            "every evaluation (a USER_ACCESS_TOKEN would expire)",
            hint=Hint("cpd.credentials", "set USERNAME and APIKEY in the environment"),
        )
    return {
        "auth_type": "bearer",
        "token_info": {
            "url": f"{s.base_url}/icp4d-api/v1/authorize",
            "headers": {"Content-Type": "application/json", "Accept": "application/json"},
            "payload": {"username": s.username, "api_key": s.apikey},
            "method": "post",
        },
    }
