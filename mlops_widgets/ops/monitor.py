"""Monitoring steps: service providers, monitor create (subscription + instances) and
evaluation runs, plus computing a provider on two folders. Read views (status, history,
trends, listings) are in `ops.monitor_views`, schedules in `ops.schedule`, alerts in
`ops.alerts`.

Backend-agnostic: everything goes through `backend.monitoring` (OpenScale's model and shapes),
so the same code reads the embedded backend and OpenScale. Entries are found by deployment name
and updated through `ops.space`, never rewritten whole.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from mlops_widgets.backends.base import MONITOR_METADATA, Backend
from mlops_widgets.backends.monitoring_protocol import RUN_RUNNING, Resource
from mlops_widgets.backends.views import MonitorInstanceView, RunView
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.monitors import registry
from mlops_widgets.monitors.base import ProviderInput
from mlops_widgets.monitors.schedule import from_entry, min_interval_s
from mlops_widgets.monitors.thresholds import (
    LIMIT_TYPES,
    effective_thresholds,
    parse_threshold,
    parse_thresholds,
    violations,
)
from mlops_widgets.ops import alerts, space
from mlops_widgets.ops.monitor_views import (
    MONITORS_KEY,
    SUBSCRIPTION_KEY,
    existing_subscription,
    instances_of,
    measurement_summary,
    metric_names,
    read,
    rid,
    run_summary,
    subscription_name,
    subscription_of,
)

DEFAULT_SERVICE_PROVIDER = "OpenScale Headless Service Provider"


# --- service providers ---------------------------------------------------------------------------


def _provider_summary(p: Resource) -> dict[str, Any]:
    e = p["entity"]
    return {
        "service_provider_id": rid(p),
        "name": e.get("name"),
        "service_type": e.get("service_type"),
        "created_at": p["metadata"].get("created_at"),
    }


def provider_create(backend: Backend, name: str = DEFAULT_SERVICE_PROVIDER) -> dict[str, Any]:
    """Create the headless service provider (notebook C1) once: an existing one of this name is
    returned instead of adding a duplicate (OpenScale would accept one, making lookups ambiguous)."""
    existing = backend.monitoring.service_providers.list(name=name)
    if existing:
        return {**_provider_summary(existing[0]), "created": False}
    created = backend.monitoring.service_providers.add(
        name,
        service_type="custom_machine_learning",
        description="Headless provider for WMLA EDI deployments (no endpoint is called).",
    )
    return {**_provider_summary(created), "created": True}


def provider_list(backend: Backend) -> list[dict[str, Any]]:
    return [_provider_summary(p) for p in backend.monitoring.service_providers.list()]


def find_service_provider(backend: Backend, name: str = DEFAULT_SERVICE_PROVIDER) -> Resource:
    """The provider to subscribe deployments from; a clear error says how to create it."""
    found = backend.monitoring.service_providers.list(name=name)
    if not found:
        raise NotFoundError(
            f"no OpenScale service provider named {name!r}",
            hint=Hint(
                "provider.create",
                "create it first (template C1_OpenScale_Dummy_ML_Provider)",
                {"name": name},
            ),
        )
    return found[0]


# --- subscriptions -------------------------------------------------------------------------------


def _set_subscription_id(backend: Backend, model_asset_id: str, sub_id: str | None) -> None:
    def change(entry: dict[str, Any]) -> None:
        entry[SUBSCRIPTION_KEY] = sub_id

    space.update_entry(backend, model_asset_id, change)


def ensure_subscription(backend: Backend, deployment_name: str, service_provider_id: str) -> dict[str, Any]:
    """The deployment's subscription, created if absent; its id is written into the entry."""
    asset_id, entry = space.get_entry(backend, deployment_name=deployment_name)
    sub = existing_subscription(backend, entry, deployment_name)
    created = sub is None
    if sub is None:
        wmla = entry.get("wmla_deployment") or {}
        sub_id = rid(
            backend.monitoring.subscriptions.add(
                service_provider_id=service_provider_id,
                name=subscription_name(deployment_name),
                deployment_name=deployment_name,
                deployment_url=wmla.get("deployment_url") or "",
            )
        )
    else:
        sub_id = sub.id
    if entry.get(SUBSCRIPTION_KEY) != sub_id:
        _set_subscription_id(backend, asset_id, sub_id)
    return {
        "model_asset_id": asset_id,
        "subscription_id": sub_id,
        "name": subscription_name(deployment_name),
        "created": created,
    }


# --- monitor instances ---------------------------------------------------------------------------


def map_thresholds(definition: Resource, thresholds: dict[str, Any] | None) -> list[dict[str, Any]]:
    """An entry's `{metric name: {threshold: [v, dir]}}` as OpenScale's instance thresholds
    `[{metric_id, type, value}]`; an unknown name is an error listing the definition's metrics."""
    by_name = {m["name"]: m["id"] for m in definition["entity"]["metrics"]}
    out = []
    for name, raw in (thresholds or {}).items():
        if name not in by_name:
            raise MlopsError(
                f"monitor {rid(definition)!r} has no metric {name!r}; its metrics are: {', '.join(by_name)}"
            )
        t = parse_threshold(raw, f"{rid(definition)}.thresholds.{name}")
        out.append({"metric_id": by_name[name], "type": LIMIT_TYPES[t.direction], "value": t.value})
    return out


def _monitors_of(entry: dict[str, Any], deployment_name: str) -> dict[str, dict[str, Any]]:
    monitors = entry.get(MONITORS_KEY) or {}
    if not monitors:
        raise MlopsError(
            f"the entry of deployment {deployment_name!r} has no monitors under {MONITORS_KEY}",
            hint=Hint(
                "monitor.thresholds",
                "add a monitor with its thresholds to the entry (a monitor's default thresholds "
                "are listed for it)",
                {"monitor": "segmentation_metrics"},
            ),
        )
    return monitors


def _schedule_of(settings: dict[str, Any] | None, min_s: int) -> dict[str, Any] | None:
    """The entry's `schedule: {every | cron, tz, paused}` as the instance's schedule (None: no
    schedule)."""
    return from_entry(settings, min_s) if settings else None


def _same_start(current: dict[str, Any] | None, wanted: dict[str, Any] | None) -> dict[str, Any] | None:
    """`current` compared without its start time: re-applying an unchanged schedule keeps the
    instance's slots (and its start) as they were."""
    if current is None or wanted is None:
        return current
    return {**current, "start_time": wanted.get("start_time")}


def configure_monitors(backend: Backend, deployment_name: str) -> list[dict[str, Any]]:
    """Make the subscription's monitor instances what the entry says: create, or update when it
    exists, one instance per monitor of the entry, carrying its thresholds and settings, and
    delete the instances of monitors the entry no longer has (else `monitor run` would still
    evaluate them while `monitor status`, which reads the entry, hides them). Every monitor is
    checked before any is changed, so a typo in one threshold leaves the subscription as it was."""
    _asset_id, entry, sub = subscription_of(backend, deployment_name)
    mon = backend.monitoring
    provider_meta = backend.space.read_document(MONITOR_METADATA)
    monitors = _monitors_of(entry, deployment_name)
    plans = []
    for monitor_id, settings in monitors.items():
        definition = mon.monitor_definitions.get(monitor_id)
        settings = dict(settings or {})
        thresholds = map_thresholds(definition, settings.pop("thresholds", None))
        parameters = settings
        integrated = (provider_meta.get(monitor_id) or {}).get("integrated_system_id")
        if integrated:
            parameters["custom_metrics_provider_id"] = integrated
        schedule = settings.pop("schedule", None)
        plans.append(
            (monitor_id, thresholds, parameters, _schedule_of(schedule, min_interval_s(backend.workspace)))
        )
    out = []
    for monitor_id, thresholds, parameters, schedule in plans:
        found = read(backend).instances(target_id=sub.id, monitor_definition_id=monitor_id)
        if found:
            doc = mon.monitor_instances.update(found[0].id, thresholds=thresholds, parameters=parameters)
            action = "updated"
        else:
            doc = mon.monitor_instances.create(
                monitor_definition_id=monitor_id,
                target_id=sub.id,
                thresholds=thresholds,
                parameters=parameters,
            )
            action = "created"
        inst = MonitorInstanceView.from_document(doc)
        current = dict(inst.schedule) if inst.schedule else None
        if schedule != _same_start(current, schedule):
            mon.monitor_instances.set_schedule(inst.id, schedule)
        out.append({"monitor_id": monitor_id, "monitor_instance_id": inst.id, "action": action})
    for inst in read(backend).instances(target_id=sub.id):
        if inst.monitor_id not in monitors:
            mon.monitor_instances.delete(inst.id)
            out.append({"monitor_id": inst.monitor_id, "monitor_instance_id": inst.id, "action": "deleted"})
    return out


def monitor_create(
    backend: Backend,
    deployment_name: str,
    service_provider_name: str = DEFAULT_SERVICE_PROVIDER,
    *,
    evaluate: bool = False,
) -> dict[str, Any]:
    """What template A3 does, in one call: find the provider, ensure the subscription (id into
    the entry), create or update the monitor instances, optionally evaluate them now."""
    provider = find_service_provider(backend, service_provider_name)
    sub = ensure_subscription(backend, deployment_name, rid(provider))
    monitors = configure_monitors(backend, deployment_name)
    runs = monitor_run(backend, deployment_name) if evaluate else []
    return {
        "deployment_name": deployment_name,
        "service_provider_id": rid(provider),
        **sub,
        "monitors": monitors,
        "runs": runs,
    }


# --- runs, status, history -----------------------------------------------------------------------


def monitor_run(
    backend: Backend,
    deployment_name: str,
    monitor_id: str | None = None,
    *,
    timeout: float = 600.0,
    triggered_by: str = "user",
) -> list[dict[str, Any]]:
    """Evaluate the deployment's monitors now (OpenScale's manual run), waiting up to `timeout`
    seconds for remote runs; one summary per monitor: state, error, issue count, violations.
    A measurement with violations is recorded as an alert (with the template run evaluating
    it, when there is one: `$MLOPS_RUN_ID`)."""
    _asset_id, _entry, sub = subscription_of(backend, deployment_name)
    mon = read(backend)
    out = []
    for inst in instances_of(backend, sub.id, monitor_id):
        run = RunView.from_document(backend.monitoring.runs.add(inst.id, triggered_by=triggered_by), inst.id)
        deadline = time.monotonic() + timeout
        while run.state == RUN_RUNNING and time.monotonic() < deadline:
            time.sleep(2.0)
            run = mon.run(inst.id, run.id)
        definition_id = inst.monitor_id
        summary = {"monitor_id": definition_id, "monitor_instance_id": inst.id, **run_summary(run)}
        published = mon.measurements(inst.id, run_id=run.id, limit=1)
        if published:
            names = metric_names(backend, definition_id)
            m = measurement_summary(published[0], names)
            summary.update(
                measurement_id=m["measurement_id"], issue_count=m["issue_count"], violations=m["violations"]
            )
        out.append(summary)
    alerts.record(backend, deployment_name, audit_run_id=os.environ.get("MLOPS_RUN_ID"))
    return out


def check_runs(runs: list[dict[str, Any]]) -> None:
    """Raise when an evaluation failed (or has not finished), naming each with its error, so a
    template run evaluating monitors fails as they did."""
    failed = [r for r in runs if r.get("state") != "finished"]
    if failed:
        raise MlopsError(
            "; ".join(
                f"{r['monitor_id']}: run {r['run_id']} {r['state']}: {r.get('error') or ''}".rstrip(": ")
                for r in failed
            )
        )


def delete_subscription_for(backend: Backend, deployment_name: str) -> list[str]:
    """Drop the deployment's subscription(s) (the entry's, and any named "<name> Monitor") with
    their monitors, and clear the entry's subscription id. Returns the ids dropped ([] when there
    was none); works after the entry is gone, for `deploy delete --remove-monitor`."""
    mon = backend.monitoring
    try:
        asset_id, entry = space.get_entry(backend, deployment_name=deployment_name)
    except NotFoundError:
        asset_id, entry = None, {}
    ids = [s.id for s in read(backend).subscriptions(name=subscription_name(deployment_name))]
    own = entry.get(SUBSCRIPTION_KEY)
    if own and own not in ids:
        try:
            mon.subscriptions.get(own)
            ids.insert(0, own)
        except NotFoundError:
            pass
    for sub_id in ids:
        mon.subscriptions.delete(sub_id)
    if asset_id is not None and own:
        _set_subscription_id(backend, asset_id, None)
    return ids


def monitor_delete(backend: Backend, deployment_name: str) -> dict[str, Any]:
    """`monitor delete --name N`: like delete_subscription_for, but nothing to drop is an error."""
    dropped = delete_subscription_for(backend, deployment_name)
    if not dropped:
        raise NotFoundError(f"deployment {deployment_name!r} has no monitor subscription to delete")
    return {"deployment_name": deployment_name, "deleted_subscription_ids": dropped}


# --- definitions, thresholds, computing on folders ------------------------------------------------


def monitor_register(
    backend: Backend, monitor_id: str, provider: str, thresholds: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Register a monitor id (e.g. segmentation_metrics_v22) computed by an existing provider, in
    this workspace (so the config model accepts it) and in the backend's monitor definitions."""
    definition = registry.register_definition(
        monitor_id, provider, thresholds=thresholds, workspace=backend.workspace
    )
    created = backend.monitoring.monitor_definitions.add(definition)
    return {"monitor_id": rid(created), "provider": provider, "metrics": definition.metric_names}


def monitor_compute(
    backend: Backend,
    monitor_id: str,
    dir_gt: str | Path,
    dir_pred: str | Path,
    *,
    most_recent: float | None = None,
    thresholds: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run a monitor's provider on two folders with no subscription (the B1 notebook's local
    test): every metric with its limit (defaults, or `thresholds` in the entry's shape) and the
    violations. A provider failure raises its message."""
    definition = registry.definition(monitor_id, backend.workspace)
    limits = effective_thresholds(definition, parse_thresholds(definition, thresholds))
    values = registry.provider(definition.provider).evaluate(
        ProviderInput(Path(dir_gt), Path(dir_pred), most_recent=most_recent)
    )
    found = violations(values, limits)
    return {
        "monitor_id": monitor_id,
        "dir_gt": str(dir_gt),
        "dir_pred": str(dir_pred),
        "most_recent": most_recent,
        "issue_count": len(found),
        "violations": [v.to_dict() for v in found],
        "metrics": [
            {
                "metric": name,
                "value": value,
                "limit": limits[name].value,
                "direction": limits[name].direction,
                "violated": limits[name].violated_by(value),
            }
            for name, value in values.items()
        ],
    }
