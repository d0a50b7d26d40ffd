"""Monitoring steps: service providers, monitor create (subscription + instances), evaluation
runs, status, history, and computing a provider on two folders.

Backend-agnostic: everything goes through `backend.monitoring` (OpenScale's model and shapes),
so the same code reads the embedded backend and OpenScale. Entries are found by deployment name
and updated through `ops.space`, never rewritten whole.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlops_widgets.backends.base import MONITOR_METADATA, RUN_RUNNING, Backend, Resource
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.monitors import registry
from mlops_widgets.monitors.base import ProviderInput
from mlops_widgets.monitors.definitions import Threshold
from mlops_widgets.monitors.thresholds import (
    DIRECTION_OF,
    LIMIT_TYPES,
    effective_thresholds,
    parse_threshold,
    parse_thresholds,
    violations,
)
from mlops_widgets.ops import space

DEFAULT_SERVICE_PROVIDER = "OpenScale Headless Service Provider"
SUBSCRIPTION_KEY = "openscale_subscription_id"
MONITORS_KEY = "openscale_custom_metric_provider"


def subscription_name(deployment_name: str) -> str:
    """The original's subscription name for a deployment."""
    return f"{deployment_name} Monitor"


def _id(resource: Resource) -> str:
    return resource["metadata"]["id"]


# --- service providers ---------------------------------------------------------------------------


def _provider_summary(p: Resource) -> dict[str, Any]:
    e = p["entity"]
    return {
        "service_provider_id": _id(p),
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
            f"no OpenScale service provider named {name!r}: create it with "
            f"`mlops provider create --name {name!r}` (template C1_OpenScale_Dummy_ML_Provider)"
        )
    return found[0]


# --- subscriptions -------------------------------------------------------------------------------


def _existing_subscription(backend: Backend, entry: dict[str, Any], deployment_name: str) -> Resource | None:
    """The entry's subscription if it still exists, else one named after the deployment."""
    sub_id = entry.get(SUBSCRIPTION_KEY)
    if sub_id:
        try:
            return backend.monitoring.subscriptions.get(sub_id)
        except NotFoundError:
            pass
    named = backend.monitoring.subscriptions.list(name=subscription_name(deployment_name))
    return named[0] if named else None


def _set_subscription_id(backend: Backend, model_asset_id: str, sub_id: str | None) -> None:
    def change(entry: dict[str, Any]) -> None:
        entry[SUBSCRIPTION_KEY] = sub_id

    space.update_entry(backend, model_asset_id, change)


def ensure_subscription(backend: Backend, deployment_name: str, service_provider_id: str) -> dict[str, Any]:
    """The deployment's subscription, created if absent; its id is written into the entry."""
    asset_id, entry = space.get_entry(backend, deployment_name=deployment_name)
    sub = _existing_subscription(backend, entry, deployment_name)
    created = sub is None
    if sub is None:
        wmla = entry.get("wmla_deployment") or {}
        sub = backend.monitoring.subscriptions.add(
            service_provider_id=service_provider_id,
            name=subscription_name(deployment_name),
            deployment_name=deployment_name,
            deployment_url=wmla.get("deployment_url") or "",
        )
    if entry.get(SUBSCRIPTION_KEY) != _id(sub):
        _set_subscription_id(backend, asset_id, _id(sub))
    return {
        "model_asset_id": asset_id,
        "subscription_id": _id(sub),
        "name": subscription_name(deployment_name),
        "created": created,
    }


def _subscription_of(backend: Backend, deployment_name: str) -> tuple[str, dict[str, Any], Resource]:
    asset_id, entry = space.get_entry(backend, deployment_name=deployment_name)
    sub = _existing_subscription(backend, entry, deployment_name)
    if sub is None:
        raise NotFoundError(
            f"deployment {deployment_name!r} has no monitor subscription: "
            f"run `mlops monitor create --name {deployment_name}` first"
        )
    return asset_id, entry, sub


# --- monitor instances ---------------------------------------------------------------------------


def map_thresholds(definition: Resource, thresholds: dict[str, Any] | None) -> list[dict[str, Any]]:
    """An entry's `{metric name: {threshold: [v, dir]}}` as OpenScale's instance thresholds
    `[{metric_id, type, value}]`; an unknown name is an error listing the definition's metrics."""
    by_name = {m["name"]: m["id"] for m in definition["entity"]["metrics"]}
    out = []
    for name, raw in (thresholds or {}).items():
        if name not in by_name:
            raise MlopsError(
                f"monitor {_id(definition)!r} has no metric {name!r}; its metrics are: {', '.join(by_name)}"
            )
        t = parse_threshold(raw, f"{_id(definition)}.thresholds.{name}")
        out.append({"metric_id": by_name[name], "type": LIMIT_TYPES[t.direction], "value": t.value})
    return out


def _monitors_of(entry: dict[str, Any], deployment_name: str) -> dict[str, dict[str, Any]]:
    monitors = entry.get(MONITORS_KEY) or {}
    if not monitors:
        raise MlopsError(
            f"the entry of deployment {deployment_name!r} has no monitors under {MONITORS_KEY}: add "
            "one with its thresholds (`mlops monitor thresholds --monitor segmentation_metrics` "
            "prints the defaults)"
        )
    return monitors


def configure_monitors(backend: Backend, deployment_name: str) -> list[dict[str, Any]]:
    """Make the subscription's monitor instances what the entry says: create, or update when it
    exists, one instance per monitor of the entry, carrying its thresholds and settings, and
    delete the instances of monitors the entry no longer has (else `monitor run` would still
    evaluate them while `monitor status`, which reads the entry, hides them). Every monitor is
    checked before any is changed, so a typo in one threshold leaves the subscription as it was."""
    _asset_id, entry, sub = _subscription_of(backend, deployment_name)
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
        plans.append((monitor_id, thresholds, parameters))
    out = []
    for monitor_id, thresholds, parameters in plans:
        found = mon.monitor_instances.list(target_id=_id(sub), monitor_definition_id=monitor_id)
        if found:
            inst = mon.monitor_instances.update(_id(found[0]), thresholds=thresholds, parameters=parameters)
            action = "updated"
        else:
            inst = mon.monitor_instances.create(
                monitor_definition_id=monitor_id,
                target_id=_id(sub),
                thresholds=thresholds,
                parameters=parameters,
            )
            action = "created"
        out.append({"monitor_id": monitor_id, "monitor_instance_id": _id(inst), "action": action})
    for inst in mon.monitor_instances.list(target_id=_id(sub)):
        monitor_id = inst["entity"]["monitor_definition_id"]
        if monitor_id not in monitors:
            mon.monitor_instances.delete(_id(inst))
            out.append({"monitor_id": monitor_id, "monitor_instance_id": _id(inst), "action": "deleted"})
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
    sub = ensure_subscription(backend, deployment_name, _id(provider))
    monitors = configure_monitors(backend, deployment_name)
    runs = monitor_run(backend, deployment_name) if evaluate else []
    return {
        "deployment_name": deployment_name,
        "service_provider_id": _id(provider),
        **sub,
        "monitors": monitors,
        "runs": runs,
    }


# --- runs, status, history -----------------------------------------------------------------------


def _instances(backend: Backend, sub_id: str, monitor_id: str | None = None) -> list[Resource]:
    found = backend.monitoring.monitor_instances.list(target_id=sub_id, monitor_definition_id=monitor_id)
    if monitor_id and not found:
        raise NotFoundError(f"subscription {sub_id} has no {monitor_id!r} monitor")
    return found


def _run_error(run: Resource) -> str | None:
    errors = ((run["entity"].get("status") or {}).get("failure") or {}).get("errors") or []
    return "; ".join(str(e.get("message")) for e in errors) or None


def _run_summary(run: Resource) -> dict[str, Any]:
    status = run["entity"].get("status") or {}
    return {
        "run_id": _id(run),
        "state": status.get("state"),
        "error": _run_error(run),
        "started_at": status.get("started_at"),
        "completed_at": status.get("completed_at"),
    }


def _metric_names(backend: Backend, monitor_id: str) -> dict[str, str]:
    """Metric id -> name; {} when the definition is gone (status then shows ids, not an error)."""
    try:
        definition = backend.monitoring.monitor_definitions.get(monitor_id)
    except NotFoundError:
        return {}
    return {m["id"]: m["name"] for m in definition["entity"]["metrics"]}


def _measured(measurement: Resource, names: dict[str, str]) -> list[dict[str, Any]]:
    """Each metric of a measurement with its name, limit and whether it violates it."""
    out = []
    for values in measurement["entity"].get("values") or []:
        for m in values.get("metrics") or []:
            kind = next((k for k in DIRECTION_OF if m.get(k) is not None), None)
            item = {"metric": names.get(m["id"], m["id"]), "id": m["id"], "value": m["value"]}
            if kind:
                t = Threshold(float(m[kind]), DIRECTION_OF[kind])
                item.update(limit=t.value, direction=t.direction, violated=t.violated_by(m["value"]))
            else:
                item.update(limit=None, direction=None, violated=False)
            out.append(item)
    return out


def _measurement_summary(measurement: Resource, names: dict[str, str]) -> dict[str, Any]:
    metrics = _measured(measurement, names)
    e = measurement["entity"]
    return {
        "measurement_id": _id(measurement),
        "run_id": e.get("run_id"),
        "timestamp": e.get("timestamp"),
        "issue_count": e.get("issue_count"),
        "violations": [
            {k: m[k] for k in ("metric", "value", "limit", "direction")} for m in metrics if m["violated"]
        ],
        "metrics": metrics,
    }


def monitor_run(
    backend: Backend,
    deployment_name: str,
    monitor_id: str | None = None,
    *,
    timeout: float = 600.0,
) -> list[dict[str, Any]]:
    """Evaluate the deployment's monitors now (OpenScale's manual run), waiting up to `timeout`
    seconds for remote runs; one summary per monitor: state, error, issue count, violations."""
    _asset_id, _entry, sub = _subscription_of(backend, deployment_name)
    mon = backend.monitoring
    out = []
    for inst in _instances(backend, _id(sub), monitor_id):
        run = mon.runs.add(_id(inst), triggered_by="user")
        deadline = time.monotonic() + timeout
        while (run["entity"].get("status") or {}).get("state") == RUN_RUNNING and time.monotonic() < deadline:
            time.sleep(2.0)
            run = mon.runs.get(_id(inst), _id(run))
        definition_id = inst["entity"]["monitor_definition_id"]
        summary = {"monitor_id": definition_id, "monitor_instance_id": _id(inst), **_run_summary(run)}
        latest = mon.measurements.list(_id(inst), limit=1)
        if latest and latest[0]["entity"].get("run_id") == _id(run):
            names = _metric_names(backend, definition_id)
            m = _measurement_summary(latest[0], names)
            summary.update(
                measurement_id=m["measurement_id"], issue_count=m["issue_count"], violations=m["violations"]
            )
        out.append(summary)
    return out


def monitor_status(backend: Backend, deployment_name: str) -> dict[str, Any]:
    """Per monitor of the entry: the latest measurement (id, run id, time, issue count, each
    metric with its limit, the violating ones apart) and the latest run, whose error shows when
    the last evaluation failed."""
    asset_id, entry, sub = _subscription_of(backend, deployment_name)
    mon = backend.monitoring
    monitors = []
    for monitor_id in entry.get(MONITORS_KEY) or {}:
        item: dict[str, Any] = {"monitor_id": monitor_id}
        found = mon.monitor_instances.list(target_id=_id(sub), monitor_definition_id=monitor_id)
        if not found:
            item.update(state="not configured", monitor_instance_id=None)
            monitors.append(item)
            continue
        inst = found[0]
        item["monitor_instance_id"] = _id(inst)
        runs = mon.runs.list(_id(inst), limit=1)
        item["latest_run"] = _run_summary(runs[0]) if runs else None
        latest = mon.measurements.query(target_id=_id(sub), monitor_definition_id=monitor_id, recent_count=1)
        if latest:
            item.update(_measurement_summary(latest[0], _metric_names(backend, monitor_id)))
        if runs and item["latest_run"]["state"] not in ("finished", None):
            item["state"] = item["latest_run"]["state"]  # error / running: the last evaluation's
        elif latest:
            item["state"] = "issues" if item["issue_count"] else "ok"
        else:
            item["state"] = "not evaluated"
        monitors.append(item)
    return {
        "deployment_name": deployment_name,
        "model_asset_id": asset_id,
        "subscription_id": _id(sub),
        "monitors": monitors,
    }


def monitor_history(
    backend: Backend,
    deployment_name: str,
    monitor_id: str | None = None,
    metric: str | None = None,
    *,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Past measurements of the deployment's monitors, newest first; with `metric`, that metric's
    value and limit only (a metric no selected monitor has is an error listing their metrics)."""
    _asset_id, _entry, sub = _subscription_of(backend, deployment_name)
    mon = backend.monitoring
    selected = []
    for inst in _instances(backend, _id(sub), monitor_id):
        names = _metric_names(backend, inst["entity"]["monitor_definition_id"])
        selected.append((inst, names))
    if metric is not None:
        having = [(inst, names) for inst, names in selected if metric in names.values()]
        if not having:
            known = sorted({n for _inst, names in selected for n in names.values()})
            raise MlopsError(
                f"no monitor of {deployment_name!r}{f' ({monitor_id})' if monitor_id else ''} has a "
                f"metric {metric!r}; the metrics are: {', '.join(known)}"
            )
        selected = having
    rows = []
    for inst, names in selected:
        for m in mon.measurements.list(_id(inst), limit=limit):
            s = _measurement_summary(m, names)
            row = {"monitor_id": inst["entity"]["monitor_definition_id"]}
            row.update({k: s[k] for k in ("measurement_id", "run_id", "timestamp", "issue_count")})
            if metric is None:
                row["metrics"] = {x["metric"]: x["value"] for x in s["metrics"]}
            else:
                x = next((x for x in s["metrics"] if x["metric"] == metric), None)
                if x is None:  # a measurement published without this metric
                    continue
                row.update({k: x[k] for k in ("metric", "value", "limit", "direction", "violated")})
            rows.append(row)
    rows.sort(key=lambda r: r["timestamp"] or "", reverse=True)
    return rows[:limit] if limit is not None else rows


def monitor_list(backend: Backend) -> list[dict[str, Any]]:
    """Subscriptions with their monitors, and the entry (model asset id) each belongs to."""
    mon = backend.monitoring
    owners = {
        e.get(SUBSCRIPTION_KEY): key
        for key, e in space.list_entries(backend).items()
        if e.get(SUBSCRIPTION_KEY)
    }
    out = []
    for sub in mon.subscriptions.list():
        e = sub["entity"]
        out.append(
            {
                "subscription_id": _id(sub),
                "name": (e.get("asset") or {}).get("name"),
                "deployment_name": (e.get("deployment") or {}).get("name"),
                "service_provider_id": e.get("service_provider_id"),
                "model_asset_id": owners.get(_id(sub)),
                "created_at": sub["metadata"].get("created_at"),
                "monitors": [
                    {"monitor_id": i["entity"]["monitor_definition_id"], "monitor_instance_id": _id(i)}
                    for i in mon.monitor_instances.list(target_id=_id(sub))
                ],
            }
        )
    return out


def delete_subscription_for(backend: Backend, deployment_name: str) -> list[str]:
    """Drop the deployment's subscription(s) (the entry's, and any named "<name> Monitor") with
    their monitors, and clear the entry's subscription id. Returns the ids dropped ([] when there
    was none); works after the entry is gone, for `deploy delete --remove-monitor`."""
    mon = backend.monitoring
    try:
        asset_id, entry = space.get_entry(backend, deployment_name=deployment_name)
    except NotFoundError:
        asset_id, entry = None, {}
    ids = [_id(s) for s in mon.subscriptions.list(name=subscription_name(deployment_name))]
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


def monitor_thresholds(backend: Backend, monitor_id: str) -> dict[str, dict[str, list[Any]]]:
    """A definition's default thresholds in the entry's shape (the original's
    get_default_thresholds), ready to paste under the monitor's `thresholds`."""
    definition = backend.monitoring.monitor_definitions.get(monitor_id)
    out = {}
    for m in definition["entity"]["metrics"]:
        t = (m.get("thresholds") or [{}])[0]
        if t.get("type") in DIRECTION_OF:
            out[m["name"]] = {"threshold": [t.get("default"), DIRECTION_OF[t["type"]]]}
    return out


def monitor_definitions(backend: Backend) -> list[dict[str, Any]]:
    """The monitor definitions the backend knows, with their metric names."""
    return [
        {
            "monitor_id": _id(d),
            "name": d["entity"].get("name"),
            "description": d["entity"].get("description"),
            "metrics": [m["name"] for m in d["entity"].get("metrics") or []],
        }
        for d in backend.monitoring.monitor_definitions.list()
    ]


def monitor_register(
    backend: Backend, monitor_id: str, provider: str, thresholds: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Register a monitor id (e.g. segmentation_metrics_v22) computed by an existing provider, in
    this workspace (so the config model accepts it) and in the backend's monitor definitions."""
    definition = registry.register_definition(
        monitor_id, provider, thresholds=thresholds, workspace=backend.workspace
    )
    created = backend.monitoring.monitor_definitions.add(definition)
    return {"monitor_id": _id(created), "provider": provider, "metrics": definition.metric_names}


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
