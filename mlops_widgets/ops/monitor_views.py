"""Monitoring read views: finding a deployment's subscription and monitor instances, and
summaries of runs and measurements (status, history, trends, listings, definitions).

Backend-agnostic like `ops.monitor` (the steps that change something), which builds on these
lookups; nothing here changes state.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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
    plain,
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


@dataclass(frozen=True)
class MetricReading:
    """One metric of a measurement by its name, with its limit and whether it violates it."""

    metric: str
    id: str
    value: float
    limit: float | None
    direction: Direction | None
    violated: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def readings(measurement: MeasurementView, names: dict[str, str]) -> tuple[MetricReading, ...]:
    """Each metric of a measurement with its name (its id when the definition is gone)."""
    return tuple(
        MetricReading(
            metric=names.get(m.id, m.id),
            id=m.id,
            value=m.value,
            limit=m.limit,
            direction=DIRECTION_OF[m.limit_type] if m.limit_type else None,
            violated=m.violated,
        )
        for m in measurement.metrics
    )


def _measured(measurement: MeasurementView, metrics: tuple[MetricReading, ...]) -> dict[str, Any]:
    """A measurement as JSON shows it: ids, time, issue count, the violated metrics, every metric."""
    return {
        "measurement_id": measurement.id,
        "run_id": measurement.run_id,
        "timestamp": measurement.timestamp,
        "issue_count": measurement.issue_count,
        "violations": [
            {"metric": m.metric, "value": m.value, "limit": m.limit, "direction": m.direction}
            for m in metrics
            if m.violated
        ],
        "metrics": [m.to_dict() for m in metrics],
    }


def measurement_summary(measurement: MeasurementView, names: dict[str, str]) -> dict[str, Any]:
    return _measured(measurement, readings(measurement, names))


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


@dataclass(frozen=True)
class MonitorState:
    """One monitor of a deployment's status. `state`: not configured (no instance), not
    evaluated, ok, issues, or the latest run's when it did not finish (error, running: its
    error then says why the last evaluation failed, `measurement` is the one before)."""

    monitor_id: str
    state: str
    monitor_instance_id: str | None = None
    schedule: ScheduleView | None = None
    latest_run: RunView | None = None
    measurement: MeasurementView | None = None  # the latest
    metrics: tuple[MetricReading, ...] = ()  # the latest measurement's

    @property
    def violations(self) -> tuple[MetricReading, ...]:
        return tuple(m for m in self.metrics if m.violated)

    def to_dict(self) -> dict[str, Any]:
        """As `monitor status --json` shows it (a monitor not configured: its id and state)."""
        if self.monitor_instance_id is None:
            return {"monitor_id": self.monitor_id, "state": self.state, "monitor_instance_id": None}
        out: dict[str, Any] = {
            "monitor_id": self.monitor_id,
            "monitor_instance_id": self.monitor_instance_id,
            "schedule": plain(self.schedule),
            "latest_run": run_summary(self.latest_run) if self.latest_run else None,
        }
        if self.measurement is not None:
            out.update(_measured(self.measurement, self.metrics))
        out["state"] = self.state
        return out


@dataclass(frozen=True)
class MonitorStatus:
    """A deployment's monitors as `monitor status` shows them, in the entry's order."""

    deployment_name: str
    model_asset_id: str
    subscription_id: str
    monitors: tuple[MonitorState, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment_name": self.deployment_name,
            "model_asset_id": self.model_asset_id,
            "subscription_id": self.subscription_id,
            "monitors": [m.to_dict() for m in self.monitors],
        }


def monitor_status(backend: Backend, deployment_name: str) -> MonitorStatus:
    """Per monitor of the entry: the latest measurement (each metric with its limit), the
    latest run, whose error shows when the last evaluation failed, and the schedule."""
    asset_id, entry, sub = subscription_of(backend, deployment_name)
    mon = read(backend)
    monitors = []
    for monitor_id in entry.get(MONITORS_KEY) or {}:
        found = mon.instances(target_id=sub.id, monitor_definition_id=monitor_id)
        if not found:
            monitors.append(MonitorState(monitor_id, "not configured"))
            continue
        inst = found[0]
        runs = mon.runs(inst.id, limit=1)
        run = runs[0] if runs else None
        latest = mon.latest(target_id=sub.id, monitor_definition_id=monitor_id, recent_count=1)
        measurement = latest[0] if latest else None
        metrics = readings(measurement, metric_names(backend, monitor_id)) if measurement else ()
        if run is not None and run.state not in ("finished", None):
            state = str(run.state)  # error / running: the last evaluation's
        elif measurement is not None:
            state = "issues" if measurement.issue_count else "ok"
        else:
            state = "not evaluated"
        monitors.append(
            MonitorState(
                monitor_id,
                state,
                inst.id,
                schedule_summary(inst, local=backend.name == "local"),
                run,
                measurement,
                metrics,
            )
        )
    return MonitorStatus(deployment_name, asset_id, sub.id, tuple(monitors))


@dataclass(frozen=True)
class HistoryRow:
    """One past measurement of a monitor with its metrics by name; for the history of one
    `metric`, `reading` is that metric's."""

    monitor_id: str
    measurement: MeasurementView
    metrics: tuple[MetricReading, ...]
    metric: str | None = None

    @property
    def reading(self) -> MetricReading | None:
        return next((m for m in self.metrics if m.metric == self.metric), None) if self.metric else None

    def to_dict(self) -> dict[str, Any]:
        """As `monitor history --json` lists it: every metric's value by name, or the one
        metric's value, limit, direction and whether it violated it."""
        m = self.measurement
        out: dict[str, Any] = {
            "monitor_id": self.monitor_id,
            "measurement_id": m.id,
            "run_id": m.run_id,
            "timestamp": m.timestamp,
            "issue_count": m.issue_count,
        }
        x = self.reading
        if x is None:
            out["metrics"] = {r.metric: r.value for r in self.metrics}
        else:
            out.update(
                metric=x.metric, value=x.value, limit=x.limit, direction=x.direction, violated=x.violated
            )
        return out


def monitor_history(
    backend: Backend,
    deployment_name: str,
    monitor_id: str | None = None,
    metric: str | None = None,
    *,
    limit: int | None = None,
) -> list[HistoryRow]:
    """Past measurements of the deployment's monitors, newest first; with `metric`, those that
    have it (a metric no selected monitor has is an error listing their metrics)."""
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
            row = HistoryRow(inst.monitor_id, m, readings(m, names), metric)
            if metric is not None and row.reading is None:  # published without this metric
                continue
            rows.append(row)
    rows.sort(key=lambda r: r.measurement.timestamp or "", reverse=True)
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
            for x in readings(m, names):
                series.setdefault(x.metric, []).append((at, float(x.value)))
                limits[x.metric] = (x.limit, x.direction)
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
