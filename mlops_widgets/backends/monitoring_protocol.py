"""The monitoring protocol: OpenScale's model (service providers, subscriptions, monitor
definitions, integrated systems, monitor instances, runs, measurements)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from mlops_widgets.monitors.definitions import MonitorDefinition


# Every object crosses the boundary as OpenScale returns it:
#     {"metadata": {"id": str, "url": str, "created_at": ISO-8601 UTC}, "entity": {...}}
# so status code reads both backends alike. The entity fields each backend must fill:
#   service provider   {name, description, service_type, status: {state}}
#   subscription       {service_provider_id, asset: {asset_id, name, asset_type, url},
#                       deployment: {deployment_id, name, url, deployment_type}, status: {state}}
#                      (asset.name is the subscription name "<deployment name> Monitor";
#                       deployment.name is the EDI deployment's name)
#   monitor definition {name, description, metrics: [{id, name, thresholds: [{type, default}]}], tags}
#                      (threshold type: "lower_limit" | "upper_limit")
#   integrated system  {name, type ("custom_metrics_provider"), description, connection: {...}}
#   monitor instance   {monitor_definition_id, target: {target_type: "subscription", target_id},
#                       parameters: {...}, thresholds: [{metric_id, type, value}], status: {state}}
#   run                {monitor_instance_id, triggered_by, status: {state: "running"|"finished"|
#                       "error", started_at, completed_at, failure: {errors: [{code, message}]}}}
#   measurement        {monitor_instance_id, monitor_definition_id, run_id, timestamp, issue_count,
#                       target: {target_type, target_id},
#                       values: [{metrics: [{id, value, lower_limit? , upper_limit?}], tags: []}]}
# Lists are newest first unless said otherwise. A missing id raises NotFoundError.

Resource = dict[str, Any]
# OpenScale's thresholds of a monitor instance: [{metric_id, type, value}] (a name of its own:
# inside the classes below, `list` is a method).
Thresholds = list[dict[str, Any]]

# OpenScale run states.
RUN_RUNNING = "running"
RUN_FINISHED = "finished"
RUN_ERROR = "error"


@runtime_checkable
class ServiceProviders(Protocol):
    """Where monitored deployments live (`wos_client.service_providers`); EDI is not an
    OpenScale built-in, so a "headless" custom provider stands in (notebook C1)."""

    def list(self, name: str | None = None) -> list[Resource]:
        """Providers, oldest first (the original took the first match by name)."""
        ...

    def get(self, service_provider_id: str) -> Resource: ...

    def add(
        self, name: str, *, service_type: str = "custom_machine_learning", description: str = ""
    ) -> Resource:
        """Create a provider (OpenScale allows several with one name; callers check first)."""
        ...

    def delete(self, service_provider_id: str) -> None: ...


@runtime_checkable
class Subscriptions(Protocol):
    """One subscription per monitored deployment (`wos_client.subscriptions`)."""

    def list(self, *, service_provider_id: str | None = None, name: str | None = None) -> list[Resource]:
        """Subscriptions, filtered by provider and by subscription name (entity.asset.name)."""
        ...

    def get(self, subscription_id: str) -> Resource: ...

    def add(
        self,
        *,
        service_provider_id: str,
        name: str,
        deployment_name: str,
        deployment_url: str = "",
    ) -> Resource:
        """Subscribe a deployment; `name` is the subscription name ("<deployment name> Monitor")."""
        ...

    def delete(self, subscription_id: str) -> None:
        """Drop a subscription with its monitor instances, runs and measurements."""
        ...


@runtime_checkable
class MonitorDefinitions(Protocol):
    """Which metrics a monitor publishes, with ids and default thresholds
    (`wos_client.monitor_definitions`)."""

    def list(self) -> list[Resource]: ...

    def get(self, monitor_definition_id: str) -> Resource:
        """NotFoundError names the known definitions and how to register one."""
        ...

    def add(self, definition: MonitorDefinition) -> Resource:
        """Create the definition (the B2 step), or return it when one with this id exists."""
        ...


@runtime_checkable
class IntegratedSystems(Protocol):
    """Endpoints that compute a custom monitor's metrics (`wos_client.integrated_systems`)."""

    def list(self, type: str | None = None) -> list[Resource]: ...

    def get(self, integrated_system_id: str) -> Resource: ...

    def add(
        self,
        name: str,
        *,
        type: str = "custom_metrics_provider",
        description: str = "",
        connection: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
    ) -> Resource:
        """Register an endpoint. `credentials`: how the service signs in to it (remote backends;
        the embedded backend calls nothing and keeps none, so no secret lands in its database)."""
        ...

    def delete(self, integrated_system_id: str) -> None: ...

    def publish_provider(
        self, definition: MonitorDefinition, *, software_spec: str | None = None
    ) -> dict[str, Any]:
        """Make `definition`'s provider callable by the monitoring service and register it as an
        integrated system (`monitor publish`). Remote backends deploy it (a WML function on
        Cloud Pak for Data, runtime `software_spec`) and give the service the credentials to
        call it. Returns integrated_system_id, endpoint and wml_deployment_id (None when nothing
        was deployed)."""
        ...


@runtime_checkable
class MonitorInstances(Protocol):
    """One instance per (subscription, monitor definition), carrying threshold overrides and the
    provider's parameters (`wos_client.monitor_instances`)."""

    def list(
        self, *, target_id: str | None = None, monitor_definition_id: str | None = None
    ) -> list[Resource]:
        """Instances, filtered by subscription id (target_id) and definition."""
        ...

    def get(self, monitor_instance_id: str) -> Resource: ...

    def create(
        self,
        *,
        monitor_definition_id: str,
        target_id: str,
        thresholds: Thresholds,
        parameters: dict[str, Any],
    ) -> Resource:
        """Attach a definition to a subscription. `thresholds` are OpenScale's
        `[{metric_id, type: "lower_limit"|"upper_limit", value}]`; an unknown metric id is an
        MlopsError naming the definition's metrics. ConflictError when one already exists."""
        ...

    def update(
        self,
        monitor_instance_id: str,
        *,
        thresholds: Thresholds | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Resource:
        """Replace thresholds and/or parameters (OpenScale's PATCH of /thresholds, /parameters)."""
        ...

    def set_schedule(self, monitor_instance_id: str, schedule: dict[str, Any] | None) -> Resource:
        """Replace the instance's `schedule` (OpenScale's shape, see `monitors.schedule`; None
        removes it). Who runs it is the backend's: OpenScale on cpd, the workspace's service
        locally (started when an enabled schedule is set)."""
        ...

    def delete(self, monitor_instance_id: str) -> None: ...


@runtime_checkable
class Runs(Protocol):
    """Evaluations of a monitor instance (`wos_client.monitor_instances.runs`)."""

    def add(self, monitor_instance_id: str, *, triggered_by: str = "user") -> Resource:
        """Start an evaluation (OpenScale's manual run). The embedded backend computes it before
        returning (state finished or error); a remote one may return it running: poll `get`."""
        ...

    def get(self, monitor_instance_id: str, run_id: str) -> Resource: ...

    def list(self, monitor_instance_id: str, *, limit: int | None = None) -> list[Resource]:
        """Runs, newest first."""
        ...


@runtime_checkable
class Measurements(Protocol):
    """What a run published (`wos_client.monitor_instances.measurements`)."""

    def add(
        self,
        monitor_instance_id: str,
        *,
        run_id: str,
        metrics: dict[str, float],
        timestamp: str | None = None,
    ) -> Resource:
        """Publish one measurement: `metrics` maps metric id -> value; the service attaches each
        metric's limit from the instance's thresholds and counts the issues."""
        ...

    def query(self, *, target_id: str, monitor_definition_id: str, recent_count: int = 1) -> list[Resource]:
        """The latest measurements of a definition on a subscription (as the original queried)."""
        ...

    def list(
        self, monitor_instance_id: str, *, limit: int | None = None, run_id: str | None = None
    ) -> list[Resource]:
        """Measurements of an instance, newest first (history); `run_id`: only what that run
        published (a run's result is read by its id, never by page order)."""
        ...


@runtime_checkable
class Monitoring(Protocol):
    """OpenScale's model: service providers, subscriptions, monitor definitions, integrated
    systems, monitor instances, runs and measurements, one attribute per OpenScale client area
    so the cpd backend maps each onto `wos_client.<area>` almost verbatim."""

    service_providers: ServiceProviders
    subscriptions: Subscriptions
    monitor_definitions: MonitorDefinitions
    integrated_systems: IntegratedSystems
    monitor_instances: MonitorInstances
    runs: Runs
    measurements: Measurements
