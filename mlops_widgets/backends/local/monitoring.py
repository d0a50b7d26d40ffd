"""The embedded monitoring service: OpenScale's model in the workspace database (tables `mon_*`),
with the built-in and registered metric providers computing runs in-process.

Objects are stored as their OpenScale entity (JSON) beside a few indexed columns, and returned in
OpenScale's `{"metadata": {...}, "entity": {...}}` shape, so ops read both backends alike.
Storage is in `monitoring_store.py`; instances, measurements and runs (a run reads its folders in
place on the local storage volumes, backends/local/volumes.py) in `monitoring_runs.py`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from mlops_widgets.backends.local.monitoring_runs import LocalMeasurements, LocalMonitorInstances, LocalRuns
from mlops_widgets.backends.local.monitoring_store import DATA_MART_ID, Store, Table, now, one
from mlops_widgets.backends.monitoring_protocol import Resource
from mlops_widgets.errors import ConflictError, Hint, MlopsError
from mlops_widgets.monitors import registry
from mlops_widgets.monitors.definitions import MonitorDefinition
from mlops_widgets.monitors.thresholds import LIMIT_TYPES, metric_id
from mlops_widgets.workspace import Workspace


class LocalServiceProviders(Table):
    table, what, url = "mon_service_providers", "service provider", "/v2/service_providers"

    def list(self, name: str | None = None) -> list[Resource]:
        return self._select("? IS NULL OR name = ?", (name, name))

    def get(self, service_provider_id: str) -> Resource:
        return self._get(service_provider_id)

    def add(
        self, name: str, *, service_type: str = "custom_machine_learning", description: str = ""
    ) -> Resource:
        if not name.strip():
            raise MlopsError("a service provider needs a name")
        entity = {
            "name": name,
            "description": description,
            "service_type": service_type,
            "status": {"state": "active"},
        }
        new_id = str(uuid.uuid4())
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO mon_service_providers VALUES (?, ?, ?, ?)",
                (new_id, name, now(), json.dumps(entity)),
            )
        return self.get(new_id)

    def delete(self, service_provider_id: str) -> None:
        with self._store.write() as conn:
            one(conn, "mon_service_providers", service_provider_id, "service provider")
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM mon_subscriptions WHERE service_provider_id = ?",
                (service_provider_id,),
            ).fetchone()
            if n:
                raise ConflictError(
                    f"service provider {service_provider_id} still has {n} subscription(s)",
                    hint=Hint("monitor.delete", "delete the monitors of those deployments first"),
                )
            conn.execute("DELETE FROM mon_service_providers WHERE id = ?", (service_provider_id,))


class LocalSubscriptions(Table):
    table, what, url = "mon_subscriptions", "subscription", "/v2/subscriptions"

    def list(self, *, service_provider_id: str | None = None, name: str | None = None) -> list[Resource]:
        return self._select(
            "(? IS NULL OR service_provider_id = ?) AND (? IS NULL OR name = ?)",
            (service_provider_id, service_provider_id, name, name),
        )

    def get(self, subscription_id: str) -> Resource:
        return self._get(subscription_id)

    def add(
        self,
        *,
        service_provider_id: str,
        name: str,
        deployment_name: str,
        deployment_url: str = "",
    ) -> Resource:
        new_id = str(uuid.uuid4())
        entity = {
            "data_mart_id": DATA_MART_ID,
            "service_provider_id": service_provider_id,
            "asset": {
                "asset_id": str(uuid.uuid4()),
                "name": name,
                "asset_type": "model",
                "url": deployment_url,
            },
            "deployment": {
                "deployment_id": deployment_name,
                "name": deployment_name,
                "url": deployment_url,
                "deployment_type": "online",
            },
            "status": {"state": "active"},
        }
        with self._store.write() as conn:
            one(conn, "mon_service_providers", service_provider_id, "service provider")
            conn.execute(
                "INSERT INTO mon_subscriptions VALUES (?, ?, ?, ?, ?)",
                (new_id, service_provider_id, name, now(), json.dumps(entity)),
            )
        return self.get(new_id)

    def delete(self, subscription_id: str) -> None:
        self._delete(subscription_id)  # ON DELETE CASCADE drops its instances, runs and measurements


def definition_resource(defn: MonitorDefinition, created_at: str | None = None) -> Resource:
    """A monitor definition in OpenScale's shape; metric ids are OpenScale's (lower-case names).
    `entity.provider` (embedded only) names the provider that computes it."""
    metrics = [
        {
            "id": metric_id(name),
            "name": name,
            "thresholds": [{"type": LIMIT_TYPES[t.direction], "default": t.value}],
            "expected_direction": "increasing" if t.direction == "lower" else "decreasing",
        }
        for name, t in defn.thresholds.items()
    ]
    return {
        "metadata": {
            "id": defn.id,
            "url": f"/v2/monitor_definitions/{defn.id}",
            "created_at": created_at,
        },
        "entity": {
            "name": defn.name,
            "description": defn.description,
            "metrics": metrics,
            "tags": [],
            "applies_to": {"type": "custom_metrics", "input_data_type": ["unstructured_image"]},
            "provider": defn.provider,
        },
    }


class LocalMonitorDefinitions:
    """Definitions are the monitors registry's (built-ins, entry points, registrations in this
    workspace), so what the config model validates against is what runs."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def list(self) -> list[Resource]:
        return [definition_resource(d) for d in registry.definitions(self._store.workspace).values()]

    def get(self, monitor_definition_id: str) -> Resource:
        return definition_resource(registry.definition(monitor_definition_id, self._store.workspace))

    def add(self, definition: MonitorDefinition) -> Resource:
        known = registry.definitions(self._store.workspace)
        if definition.id not in known:
            registry.register_definition(
                definition.id,
                definition.provider,
                name=definition.name,
                description=definition.description,
                thresholds=definition.default_thresholds(),
                workspace=self._store.workspace,
            )
        return self.get(definition.id)


class LocalIntegratedSystems(Table):
    table, what, url = "mon_integrated_systems", "integrated system", "/v2/integrated_systems"

    def list(self, type: str | None = None) -> list[Resource]:
        return self._select("? IS NULL OR type = ?", (type, type))

    def get(self, integrated_system_id: str) -> Resource:
        return self._get(integrated_system_id)

    def add(
        self,
        name: str,
        *,
        type: str = "custom_metrics_provider",
        description: str = "",
        connection: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
    ) -> Resource:
        del credentials  # providers run in-process: nothing to sign in to, no secret to store
        new_id = str(uuid.uuid4())
        entity = {"name": name, "type": type, "description": description, "connection": connection or {}}
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO mon_integrated_systems VALUES (?, ?, ?, ?)",
                (new_id, type, now(), json.dumps(entity)),
            )
        return self.get(new_id)

    def publish_provider(
        self, definition: MonitorDefinition, *, software_spec: str | None = None
    ) -> dict[str, Any]:
        """Providers run in-process here: only the registration is made."""
        if software_spec:
            raise MlopsError(
                "a software specification only applies to the cpd backend (providers run in-process here)",
                hint=Hint("monitor.publish.local", "publish without one"),
            )
        name = f"{definition.id} metrics provider"
        endpoint = f"local:{definition.provider}"
        system = self.add(
            name,
            type="custom_metrics_provider",
            description=f"mlops-widgets provider {definition.provider!r} for monitor {definition.id}",
            connection={"display_name": name, "endpoint": endpoint},
        )
        return {
            "integrated_system_id": system["metadata"]["id"],
            "endpoint": endpoint,
            "wml_deployment_id": None,
        }

    def delete(self, integrated_system_id: str) -> None:
        self._delete(integrated_system_id)


class LocalMonitoring:
    """The `Monitoring` protocol on the workspace database; see `backends.base`."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        store = Store(workspace)
        self.service_providers = LocalServiceProviders(store)
        self.subscriptions = LocalSubscriptions(store)
        self.monitor_definitions = LocalMonitorDefinitions(store)
        self.integrated_systems = LocalIntegratedSystems(store)
        self.monitor_instances = LocalMonitorInstances(store, self.monitor_definitions)
        self.measurements = LocalMeasurements(store, self.monitor_definitions, self.monitor_instances)
        self.runs = LocalRuns(store, self.monitor_instances, self.measurements)
