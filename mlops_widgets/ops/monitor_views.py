"""Monitoring read views: finding a deployment's subscription and monitor instances, and
summaries of runs and measurements (status, history, trends, listings, definitions).

Backend-agnostic like `ops.monitor` (the steps that change something), which builds on these
lookups; nothing here changes state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.monitoring_protocol import Resource
from mlops_widgets.backends.monitoring_views import MonitoringViews
from mlops_widgets.backends.views import (
    MeasurementView,
    MonitorInstanceView,
    RunView,
    ScheduleView,
    SubscriptionView,
)
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.monitors.definitions import Direction, Threshold
from mlops_widgets.monitors.schedule import describe, every_text, is_enabled, next_slots, parse_time
from mlops_widgets.monitors.thresholds import DIRECTION_OF
from mlops_widgets.ops import space

SUBSCRIPTION_KEY = "openscale_subscription_id"
MONITORS_KEY = "openscale_custom_metric_provider"
TREND_POINTS = 5  # measurements a trend is fitted on


def subscription_name(deployment_name: str) -> str:
    """The original's subscription name for a deployment."""
    return f"{deployment_name} Monitor"


def rid(resource: Resource) -> str:
    return str(resource["metadata"]["id"])


def read(backend: Backend) -> MonitoringViews:
    """The backend's monitoring, read as typed views."""
    return MonitoringViews(backend.monitoring)


# --- lookups ------------------------------------------------------------------------------------


def existing_subscription(
    backend: Backend, entry: dict[str, Any], deployment_name: str
) -> SubscriptionView | None:
    """The entry's subscription if it still exists, else one named after the deployment."""
    sub_id = entry.get(SUBSCRIPTION_KEY)
    if sub_id:
        try:
            return read(backend).subscription(sub_id)
        except NotFoundError:
            pass
    named = read(backend).subscriptions(name=subscription_name(deployment_name))
    return named[0] if named else None


def subscription_of(backend: Backend, deployment_name: str) -> tuple[str, dict[str, Any], SubscriptionView]:
    asset_id, entry = space.get_entry(backend, deployment_name=deployment_name)
    sub = existing_subscription(backend, entry, deployment_name)
    if sub is None:
        raise NotFoundError(
            f"deployment {deployment_name!r} has no monitor subscription",
            hint=Hint("monitor.create", "attach its monitors first", {"name": deployment_name}),
        )
    return asset_id, entry, sub


def instances_of(backend: Backend, sub_id: str, monitor_id: str | None = None) -> list[MonitorInstanceView]:
    found = read(backend).instances(target_id=sub_id, monitor_definition_id=monitor_id)
    if monitor_id and not found:
        raise NotFoundError(f"subscription {sub_id} has no {monitor_id!r} monitor")
    return found


# --- summaries ----------------------------------------------------------------------------------


def run_summary(run: RunView) -> dict[str, Any]:
    return {
        "run_id": run.id,
        "state": run.state,
        "error": run.error,
        "started_at": run.started_at,
        "completed_at": run.completed_at,
    }


def metric_names(backend: Backend, monitor_id: str) -> dict[str, str]:
    """Metric id -> name; {} when the definition is gone (status then shows ids, not an error)."""
    try:
        definition = backend.monitoring.monitor_definitions.get(monitor_id)
    except NotFoundError:
        return {}
    return {m["id"]: m["name"] for m in definition["entity"]["metrics"]}


def _measured(measurement: MeasurementView, names: dict[str, str]) -> list[dict[str, Any]]:
    """Each metric of a measurement with its name, limit and whether it violates it."""
    return [
        {
            "metric": names.get(m.id, m.id),
            "id": m.id,
            "value": m.value,
            "limit": m.limit,
            "direction": DIRECTION_OF[m.limit_type] if m.limit_type else None,
            "violated": m.violated,
        }
        for m in measurement.metrics
    ]


def measurement_summary(measurement: MeasurementView, names: dict[str, str]) -> dict[str, Any]:
    metrics = _measured(measurement, names)
    return {
        "measurement_id": measurement.id,
        "run_id": measurement.run_id,
        "timestamp": measurement.timestamp,
        "issue_count": measurement.issue_count,
        "violations": [
            {k: m[k] for k in ("metric", "value", "limit", "direction")} for m in metrics if m["violated"]
        ],
        "metrics": metrics,
    }


def schedule_summary(
    instance: MonitorInstanceView, now: datetime | None = None, *, local: bool = False
) -> ScheduleView | None:
    """An instance's schedule as users read it: repeat (and in words), enabled or paused, the
    next three slots in local time. `local`: the local backend's scheduler runs it, with the
    instance's offset (`monitors.schedule.offset_s`); OpenScale runs its own without one."""
    schedule = dict(instance.schedule) if instance.schedule else None
    if not schedule:
        return None
    enabled = is_enabled(schedule)
    key = instance.id if local else None
    times = next_slots(schedule, now or datetime.now(UTC), 3, key=key) if enabled else []
    return ScheduleView(
        every=every_text(schedule),
        in_words=describe(schedule),
        status="enabled" if enabled else "paused",
        next_at=times[0].isoformat() if times else None,
        next_times=tuple(t.astimezone().isoformat(timespec="seconds") for t in times),
    )


# --- views --------------------------------------------------------------------------------------


def monitor_status(backend: Backend, deployment_name: str) -> dict[str, Any]:
    """Per monitor of the entry: the latest measurement (id, run id, time, issue count, each
    metric with its limit, the violating ones apart) and the latest run, whose error shows when
    the last evaluation failed."""
    asset_id, entry, sub = subscription_of(backend, deployment_name)
    mon = read(backend)
    monitors = []
    for monitor_id in entry.get(MONITORS_KEY) or {}:
        item: dict[str, Any] = {"monitor_id": monitor_id}
        found = mon.instances(target_id=sub.id, monitor_definition_id=monitor_id)
        if not found:
            item.update(state="not configured", monitor_instance_id=None)
            monitors.append(item)
            continue
        inst = found[0]
        item["monitor_instance_id"] = inst.id
        scheduled = schedule_summary(inst, local=backend.name == "local")
        item["schedule"] = scheduled.to_dict() if scheduled else None
        runs = mon.runs(inst.id, limit=1)
        item["latest_run"] = run_summary(runs[0]) if runs else None
        latest = mon.latest(target_id=sub.id, monitor_definition_id=monitor_id, recent_count=1)
        if latest:
            item.update(measurement_summary(latest[0], metric_names(backend, monitor_id)))
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
        "subscription_id": sub.id,
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
    _asset_id, _entry, sub = subscription_of(backend, deployment_name)
    mon = read(backend)
    selected = []
    for inst in instances_of(backend, sub.id, monitor_id):
        names = metric_names(backend, inst.monitor_id)
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
        for m in mon.measurements(inst.id, limit=limit):
            s = measurement_summary(m, names)
            row: dict[str, Any] = {"monitor_id": inst.monitor_id}
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


@dataclass(frozen=True)
class SubscriptionRow:
    """One subscription of the listing: its view, the entry it belongs to (None: no entry names
    it) and its monitor instances."""

    subscription: SubscriptionView
    model_asset_id: str | None
    monitors: tuple[MonitorInstanceView, ...]

    def to_dict(self) -> dict[str, Any]:
        """As `monitor list --json` shows it: each monitor as its definition and instance ids."""
        sub = self.subscription
        return {
            "subscription_id": sub.id,
            "name": sub.name,
            "deployment_name": sub.deployment_name,
            "service_provider_id": sub.service_provider_id,
            "model_asset_id": self.model_asset_id,
            "created_at": sub.created_at,
            "monitors": [{"monitor_id": i.monitor_id, "monitor_instance_id": i.id} for i in self.monitors],
        }


def monitor_list(backend: Backend) -> list[SubscriptionRow]:
    """Subscriptions with their monitors, and the entry (model asset id) each belongs to."""
    mon = read(backend)
    owners = {
        e.get(SUBSCRIPTION_KEY): key
        for key, e in space.list_entries(backend).items()
        if e.get(SUBSCRIPTION_KEY)
    }
    return [
        SubscriptionRow(sub, owners.get(sub.id), tuple(mon.instances(target_id=sub.id)))
        for sub in mon.subscriptions()
    ]


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
            "monitor_id": rid(d),
            "name": d["entity"].get("name"),
            "description": d["entity"].get("description"),
            "metrics": [m["name"] for m in d["entity"].get("metrics") or []],
        }
        for d in backend.monitoring.monitor_definitions.list()
    ]


def _slope_per_hour(points: list[tuple[datetime, float]]) -> float | None:
    """Least-squares slope of value over time, per hour; None for fewer than two points or
    points all at one instant."""
    if len(points) < 2:
        return None
    t0 = points[0][0]
    xs = [(t - t0).total_seconds() / 3600 for t, _v in points]
    ys = [v for _t, v in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


def metric_trend(
    points: list[tuple[datetime, float]], limit: float | None, direction: Direction | None
) -> dict[str, Any]:
    """The trend of one metric's values (oldest first): slope per hour and, when it moves toward
    its limit from the right side, the expected time to cross it."""
    slope = _slope_per_hour(points)
    latest_at, latest = points[-1]
    out: dict[str, Any] = {
        "latest": latest,
        "latest_at": latest_at.isoformat(),
        "points": len(points),
        "slope_per_hour": slope,
        "toward_limit": False,
        "crosses_in_h": None,
        "crosses_at": None,
        "violated": False,
    }
    if limit is None or direction is None:
        return out
    violated = out["violated"] = Threshold(limit, direction).violated_by(latest)
    if slope is None:
        return out
    toward = slope < 0 if direction == "lower" else slope > 0
    out["toward_limit"] = toward and not violated
    if out["toward_limit"]:
        hours = (limit - latest) / slope
        out["crosses_in_h"] = hours
        out["crosses_at"] = (latest_at + timedelta(hours=hours)).isoformat()
    return out


def monitor_trends(
    backend: Backend, deployment_name: str, monitor_id: str | None = None, *, points: int = TREND_POINTS
) -> list[dict[str, Any]]:
    """Per monitor and metric: its limit, the latest value, the slope over the last `points`
    measurements and, where it moves toward its limit, when it is expected to cross it."""
    _asset_id, _entry, sub = subscription_of(backend, deployment_name)
    out = []
    for inst in instances_of(backend, sub.id, monitor_id):
        definition_id = inst.monitor_id
        names = metric_names(backend, definition_id)
        series: dict[str, list[tuple[datetime, float]]] = {}
        limits: dict[str, tuple[float | None, Direction | None]] = {}
        for m in reversed(read(backend).measurements(inst.id, limit=points)):
            at = parse_time(m.measured_at or "")
            for x in measurement_summary(m, names)["metrics"]:
                series.setdefault(x["metric"], []).append((at, float(x["value"])))
                limits[x["metric"]] = (x["limit"], x["direction"])
        for metric, values in series.items():
            limit, direction = limits[metric]
            out.append(
                {
                    "monitor_id": definition_id,
                    "metric": metric,
                    "limit": limit,
                    "direction": direction,
                    **metric_trend(values, limit, direction),
                }
            )
    return out
