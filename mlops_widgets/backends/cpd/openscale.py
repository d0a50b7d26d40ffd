"""OpenScale's client areas through ibm-watson-openscale (the Monitoring protocol of backends/monitoring_protocol.py).

Each area maps onto `wos_client.<area>` almost verbatim; results are the SDK's response objects
as dicts, i.e. OpenScale's own `{metadata, entity}` shapes, so ops read them as they read the
embedded backend's. Two adaptations keep both backends alike for ops:
- OpenScale's own monitors (quality, fairness, drift, model_health, performance, ...) are left
  out of definition and instance listings: this tool configures custom monitors only, and
  OpenScale attaches model_health and performance instances to every new subscription.
- monitor definitions are created with name = the monitor id, because OpenScale derives a
  definition's id from its name (the original's ids such as segmentation_metrics_v22 are kept).

A run is OpenScale's: `runs.add` triggers it and returns it `running`; OpenScale calls the
monitor's integrated system (the provider published as a WML function), which publishes the
measurement and marks the run finished or failed. Callers poll `runs.get`. As IBM's
custom-monitor helper does, every instance carries `enable_custom_metric_runs: True` (without
it OpenScale never calls the provider) and `custom_metrics_wait_time` (how long OpenScale waits
for the provider: the instance's own value, else $MLOPS_CPD_CUSTOM_METRICS_WAIT_TIME, else 360 s
as the original's A3).
"""

from __future__ import annotations

import uuid
from typing import Any

from mlops_widgets.backends.cpd.client import OPENSCALE_CPD_INSTANCE, CpdSession
from mlops_widgets.backends.monitoring_protocol import Resource, Thresholds
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.monitors.definitions import MonitorDefinition
from mlops_widgets.monitors.thresholds import LIMIT_TYPES, check_instance_thresholds
from mlops_widgets.settings import CPD_CUSTOM_METRICS_WAIT_TIME

DATA_MART_ID = OPENSCALE_CPD_INSTANCE
WAIT_TIME_ENV = CPD_CUSTOM_METRICS_WAIT_TIME.env
CUSTOM_RUNTIME = "custom_metrics_provider"
OPENSCALE_BUILTIN_MONITORS = frozenset(
    {
        "fairness",
        "quality",
        "drift",
        "drift_v2",
        "explainability",
        "model_health",
        "performance",
        "mrm",
        "assurance",
        "generative_ai_quality",
        "correlations",
    }
)


def _dict(response: Any) -> Any:
    """A DetailedResponse's result as plain JSON (the SDK parses results into model objects)."""
    result = response.result if hasattr(response, "result") else response
    return result.to_dict() if hasattr(result, "to_dict") else result


def created(resource: Resource) -> str:
    return str((resource.get("metadata") or {}).get("created_at") or "")


def _v2() -> Any:
    """The SDK's request classes (imported inside `call`, so inside the containment)."""
    from ibm_watson_openscale.base_classes import watson_open_scale_v2

    return watson_open_scale_v2


def _enums() -> Any:
    from ibm_watson_openscale.supporting_classes import enums

    return enums


class Area:
    """One OpenScale client area (`wos_client.<area>`) on a session."""

    def __init__(self, session: CpdSession) -> None:
        self._s = session

    @property
    def _wos(self) -> Any:
        return self._s.openscale()

    def _call(self, what: str, fn: Any, *, idempotent: bool = True) -> Any:
        return self._s.call(what, lambda: _dict(fn()), idempotent=idempotent)


class CpdServiceProviders(Area):
    def list(self, name: str | None = None) -> list[Resource]:
        found = self._call("listing OpenScale service providers", lambda: self._wos.service_providers.list())[
            "service_providers"
        ]
        found = [p for p in found if name is None or p["entity"].get("name") == name]
        return sorted(found, key=created)

    def get(self, service_provider_id: str) -> Resource:
        return self._call(
            f"reading service provider {service_provider_id}",
            lambda: self._wos.service_providers.get(service_provider_id),
        )

    def add(
        self, name: str, *, service_type: str = "custom_machine_learning", description: str = ""
    ) -> Resource:
        if not name.strip():
            raise MlopsError("a service provider needs a name")
        # a "headless" provider (notebook C1): OpenScale never calls it, so empty credentials
        return self._call(
            f"creating service provider {name!r}",
            lambda: self._wos.service_providers.add(
                name=name,
                service_type=service_type,
                description=description,
                operational_space_id="production",
                credentials=_v2().WMLCredentialsCP4D(),
                background_mode=True,
            ),
            idempotent=False,
        )

    def delete(self, service_provider_id: str) -> None:
        self._s.call(
            f"deleting service provider {service_provider_id}",
            lambda: self._wos.service_providers.delete(service_provider_id, background_mode=True),
        )


class CpdSubscriptions(Area):
    def list(self, *, service_provider_id: str | None = None, name: str | None = None) -> list[Resource]:
        found = self._call(
            "listing OpenScale subscriptions",
            lambda: self._wos.subscriptions.list(service_provider_id=service_provider_id),
        )["subscriptions"]
        found = [s for s in found if name is None or s["entity"]["asset"].get("name") == name]
        return sorted(found, key=created)

    def get(self, subscription_id: str) -> Resource:
        return self._call(
            f"reading subscription {subscription_id}", lambda: self._wos.subscriptions.get(subscription_id)
        )

    def add(
        self,
        *,
        service_provider_id: str,
        name: str,
        deployment_name: str,
        deployment_url: str = "",
    ) -> Resource:
        def add() -> Any:
            v2, enums = _v2(), _enums()
            return self._wos.subscriptions.add(
                data_mart_id=DATA_MART_ID,
                service_provider_id=service_provider_id,
                asset=v2.Asset(
                    asset_id=str(uuid.uuid4()),
                    name=name,
                    url=deployment_url,
                    asset_type=enums.AssetTypes.MODEL,
                    # as the original's A3 did: its subscriptions are reused by name
                    input_data_type=enums.InputDataType.STRUCTURED,
                    problem_type=enums.ProblemType.MULTICLASS_CLASSIFICATION,
                ),
                deployment=v2.AssetDeploymentRequest(
                    deployment_id=deployment_name,
                    name=deployment_name,
                    url=deployment_url,
                    deployment_type=enums.DeploymentTypes.ONLINE,
                ),
                asset_properties=v2.AssetPropertiesRequest(probability_fields=["probability"]),
                background_mode=True,
            )

        return self._call(f"subscribing deployment {deployment_name}", add, idempotent=False)

    def delete(self, subscription_id: str) -> None:
        self._s.call(
            f"deleting subscription {subscription_id}",
            lambda: self._wos.subscriptions.delete(subscription_id, background_mode=True),
        )


class CpdMonitorDefinitions(Area):
    def list(self) -> list[Resource]:
        found = self._call(
            "listing OpenScale monitor definitions", lambda: self._wos.monitor_definitions.list()
        )["monitor_definitions"]
        return [d for d in found if d["metadata"]["id"] not in OPENSCALE_BUILTIN_MONITORS]

    def get(self, monitor_definition_id: str) -> Resource:
        try:
            return self._call(
                f"reading monitor definition {monitor_definition_id}",
                lambda: self._wos.monitor_definitions.get(monitor_definition_id),
            )
        except NotFoundError:
            known = ", ".join(d["metadata"]["id"] for d in self.list()) or "none"
            raise NotFoundError(
                f"OpenScale has no monitor definition {monitor_definition_id!r} (custom ones: {known})",
                hint=Hint(
                    "monitor.publish",
                    f"publish monitor {monitor_definition_id} on this cluster",
                    {"monitor": monitor_definition_id},
                ),
            ) from None

    def add(self, definition: MonitorDefinition) -> Resource:
        with_id = [d for d in self.list() if d["metadata"]["id"] == definition.id]
        if with_id:
            return with_id[0]

        def add() -> Any:
            v2 = _v2()
            metrics = [
                v2.MonitorMetricRequest(
                    name=name,
                    thresholds=[v2.MetricThreshold(type=LIMIT_TYPES[t.direction], default=t.value)],
                )
                for name, t in definition.thresholds.items()
            ]
            return self._wos.monitor_definitions.add(
                name=definition.id,  # OpenScale derives the id from the name
                description=f"{definition.name}: {definition.description}",
                metrics=metrics,
                tags=[],
                # the original's subscriptions are structured, ours alike; images are what the
                # providers read, so image subscriptions qualify too
                applies_to=v2.ApplicabilitySelection(input_data_type=["structured", "unstructured_image"]),
                # as IBM's helper does for scheduled custom monitors: OpenScale keeps instance
                # schedules only on definitions run by a custom metrics provider (4.5.1 migration)
                monitor_runtime=v2.MonitorRuntime(type=CUSTOM_RUNTIME),
                background_mode=True,
            )

        self._call(f"creating monitor definition {definition.id}", add, idempotent=False)
        return self.get(definition.id)


def custom_metric_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """An instance's parameters with what makes OpenScale call its provider."""
    out = dict(parameters)
    out["enable_custom_metric_runs"] = True
    if out.get("custom_metrics_wait_time") is None:
        out["custom_metrics_wait_time"] = CPD_CUSTOM_METRICS_WAIT_TIME.from_env()
    return out


def _overrides(thresholds: Thresholds) -> list[Any]:
    return [
        _v2().MetricThresholdOverride(metric_id=t["metric_id"], type=t["type"], value=float(t["value"]))
        for t in thresholds
    ]


def in_minutes(schedule: dict[str, Any]) -> dict[str, Any]:
    """A schedule as OpenScale takes it: its smallest unit is the minute, so a repeat in seconds
    must be whole minutes."""
    if schedule.get("repeat_unit") != "second":
        return schedule
    seconds = int(schedule["repeat_interval"])
    if seconds % 60:
        raise MlopsError(
            f"OpenScale repeats a schedule in whole minutes, got {seconds} s",
            hint=Hint("monitor.schedule.minutes", "give the repeat in minutes, hours or days"),
        )
    return {**schedule, "repeat_interval": seconds // 60, "repeat_unit": "minute", "repeat_type": "minute"}


class CpdMonitorInstances(Area):
    def __init__(self, session: CpdSession, definitions: CpdMonitorDefinitions) -> None:
        super().__init__(session)
        self._definitions = definitions

    def list(
        self, *, target_id: str | None = None, monitor_definition_id: str | None = None
    ) -> list[Resource]:
        found = self._call(
            "listing OpenScale monitor instances",
            lambda: self._wos.monitor_instances.list(
                data_mart_id=DATA_MART_ID,
                monitor_definition_id=monitor_definition_id,
                target_target_id=target_id,
            ),
        )["monitor_instances"]
        if monitor_definition_id is None:
            found = [
                i for i in found if i["entity"]["monitor_definition_id"] not in OPENSCALE_BUILTIN_MONITORS
            ]
        return sorted(found, key=created)

    def get(self, monitor_instance_id: str) -> Resource:
        return self._call(
            f"reading monitor instance {monitor_instance_id}",
            lambda: self._wos.monitor_instances.get(monitor_instance_id),
        )

    def create(
        self,
        *,
        monitor_definition_id: str,
        target_id: str,
        thresholds: Thresholds,
        parameters: dict[str, Any],
    ) -> Resource:
        thresholds = check_instance_thresholds(self._definitions.get(monitor_definition_id), thresholds)
        if self.list(target_id=target_id, monitor_definition_id=monitor_definition_id):
            raise ConflictError(
                f"subscription {target_id} already has a {monitor_definition_id} monitor "
                "instance: update it instead"
            )
        return self._call(
            f"creating the {monitor_definition_id} monitor on subscription {target_id}",
            lambda: self._wos.monitor_instances.create(
                data_mart_id=DATA_MART_ID,
                monitor_definition_id=monitor_definition_id,
                target=_v2().Target(target_type="subscription", target_id=target_id),
                parameters=custom_metric_parameters(parameters),
                thresholds=_overrides(thresholds),
                background_mode=True,
            ),
            idempotent=False,
        )

    def update(
        self,
        monitor_instance_id: str,
        *,
        thresholds: Thresholds | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Resource:
        current = self.get(monitor_instance_id)
        changes: list[tuple[str, Any]] = []
        if thresholds is not None:
            definition = self._definitions.get(current["entity"]["monitor_definition_id"])
            changes.append(("/thresholds", check_instance_thresholds(definition, thresholds)))
        if parameters is not None:
            changes.append(("/parameters", custom_metric_parameters(parameters)))
        if changes:
            self._call(
                f"updating monitor instance {monitor_instance_id}",
                lambda: self._wos.monitor_instances.update(
                    monitor_instance_id,
                    [_v2().JsonPatchOperation(op="replace", path=p, value=v) for p, v in changes],
                    update_metadata_only=True,
                ),
            )
        return self.get(monitor_instance_id)

    def set_schedule(self, monitor_instance_id: str, schedule: dict[str, Any] | None) -> Resource:
        """OpenScale's instance schedule (PATCH /schedule); OpenScale runs it, provided the
        instance's definition has `monitor_runtime: custom_metrics_provider` (IBM's 4.5.1
        migration removes the schedules of custom monitor instances whose definition has none)."""
        current = self.get(monitor_instance_id)
        if schedule is not None:
            did = current["entity"]["monitor_definition_id"]
            runtime = (self._definitions.get(did)["entity"].get("monitor_runtime") or {}).get("type")
            if runtime != CUSTOM_RUNTIME:
                raise MlopsError(
                    f"monitor definition {did} was created without monitor_runtime "
                    f"{CUSTOM_RUNTIME!r}, so OpenScale would drop a schedule on its instances",
                    hint=Hint(
                        "monitor.publish",
                        f"delete monitor definition {did} in OpenScale and publish monitor {did} again",
                        {"monitor": did},
                    ),
                )
            op = _v2().JsonPatchOperation(op="replace", path="/schedule", value=in_minutes(schedule))
        elif current["entity"].get("schedule"):
            op = _v2().JsonPatchOperation(op="remove", path="/schedule")
        else:
            return current
        self._call(
            f"scheduling monitor instance {monitor_instance_id}",
            lambda: self._wos.monitor_instances.update(monitor_instance_id, [op], update_metadata_only=True),
        )
        return self.get(monitor_instance_id)

    def delete(self, monitor_instance_id: str) -> None:
        self._s.call(
            f"deleting monitor instance {monitor_instance_id}",
            lambda: self._wos.monitor_instances.delete(monitor_instance_id, background_mode=True),
        )
