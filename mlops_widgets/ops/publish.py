"""Publishing a monitor (the original's B2 notebook): make its provider callable by the
monitoring service, register it as an integrated system and its monitor definition with the
default thresholds, and record both ids in the space's monitor metadata (`monitor_metadata.yml`),
where `monitor create` (A3) finds the provider of each monitor.

How the provider is made callable is the backend's business
(`monitoring.integrated_systems.publish_provider`): a WML deployable function on Cloud Pak for
Data, a registration only on the embedded backend, whose providers run in-process.
"""

from __future__ import annotations

import contextlib
from typing import Any

from mlops_widgets.backends.base import MONITOR_METADATA, Backend
from mlops_widgets.errors import MlopsError
from mlops_widgets.monitors import registry


def publish(backend: Backend, monitor_id: str, *, software_spec: str | None = None) -> dict[str, Any]:
    """Publish monitor `monitor_id` (a built-in, registered or entry-point definition).

    Re-publishing replaces the previous integrated system (the old function deployment is left
    for the admin to delete). Returns the ids recorded in the monitor metadata."""
    definition = registry.definition(monitor_id, backend.workspace)
    mon = backend.monitoring
    published = mon.integrated_systems.publish_provider(definition, software_spec=software_spec)
    system_id = published["integrated_system_id"]
    definition_res = mon.monitor_definitions.add(definition)
    previous: dict[str, Any] = {}

    def record(doc: dict[str, Any]) -> None:
        previous.update(doc.get(monitor_id) or {})
        doc[monitor_id] = {
            "integrated_system_id": system_id,
            "wml_deployment_id": published.get("wml_deployment_id"),
        }

    backend.space.update_document(MONITOR_METADATA, record)
    old = previous.get("integrated_system_id")
    if old and old != system_id:
        with contextlib.suppress(MlopsError):
            mon.integrated_systems.delete(old)
    return {
        "monitor_id": monitor_id,
        "monitor_definition_id": definition_res["metadata"]["id"],
        "integrated_system_id": system_id,
        "wml_deployment_id": published.get("wml_deployment_id"),
        "scoring_url": published.get("scoring_url"),
        "thresholds": definition.default_thresholds(),
    }
