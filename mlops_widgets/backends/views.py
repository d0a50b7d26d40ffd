"""Typed views: what the backend protocols return, one frozen dataclass per kind of object, the
same type and fields on every backend, so callers read attributes a type checker knows instead
of dict keys listed in docstrings. Where a view becomes JSON (`--json`, the REST API, records)
it goes through its one `to_dict()`, whose shape is the one users and tests rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

# Deployment statuses: ready to serve, and the local backend's word for a service that is down.
READY = ("IDLE", "BUSY")
SERVICE_DOWN = "SERVICE_DOWN"


def plain(value: Any) -> Any:
    """A view's value as JSON-able data: dataclasses through their `to_dict`, tuples as lists,
    mappings copied (so a caller changing the result never changes the frozen view)."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def _as_dict(view: Any) -> dict[str, Any]:
    return {f.name: plain(getattr(view, f.name)) for f in fields(view)}


@dataclass(frozen=True)
class KernelView:
    """One kernel of a deployment; what a backend does not know (a cluster's pids) is None."""

    pod: str
    state: str  # starting, idle, busy, stopping, or the cluster's word
    pid: int | None = None
    gpu: str | None = None
    cpus: tuple[int, ...] | None = None
    started_at: str | None = None  # ISO 8601 UTC
    tasks_done: int | None = None
    log: str | None = None  # the kernel's log file (local)

    @property
    def ready(self) -> bool:
        return self.state in ("idle", "busy")

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class DeploymentView:
    """An EDI deployment with its state and its kernels, as `Inference.view` and `list` give it.

    `state` is "started" or "stopped"; `status` STOPPED, STARTING, IDLE, BUSY, FAILED, STOPPING,
    or SERVICE_DOWN (the local service is not running); ready to serve = IDLE or BUSY. `error`
    is None or the text (e.g. an on_kernel_start failure, with the kernel log's tail in
    `error_log`); custom and secret args are names only, never values."""

    name: str
    state: str
    status: str
    service: str  # running, not running (local), wmla (cpd)
    url: str | None
    model_path: str | None
    kernel_file: str
    deployed_at: str | None  # ISO 8601 UTC
    updated_at: str | None
    custom_args: tuple[str, ...]
    secret_args: tuple[str, ...]
    profile: Mapping[str, Any]  # as `dlim model viewprofile -j` shows it, secret values masked
    kernels: tuple[KernelView, ...] = ()
    queued: int = 0
    error: str | None = None
    error_log: str | None = None
    warnings: tuple[str, ...] = ()
    requests: Mapping[str, int] | None = field(default=None)  # {total, failed} (local)

    @property
    def ready(self) -> bool:
        """Serving requests (IDLE or BUSY)."""
        return self.status in READY

    @property
    def kernel_min(self) -> int | None:
        """The profile's kernel_min (None when the profile does not say)."""
        policy = self.profile.get("policy")
        value = policy.get("kernel_min") if isinstance(policy, Mapping) else None
        return None if value is None else int(value)

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class JobView:
    """A training job, as `Training.submit`, `list`, `get` and `stop` give it. `state` is one of
    training_protocol.JOB_STATES; `output` is where the job's output folder is (a local path,
    or the exec's result on the cluster). What one backend does not know is None or empty:
    a cluster's exit codes and logged metrics, the local backend's application id."""

    id: str
    backend: str
    state: str
    framework: str | None
    main: str | None
    workers: int
    devices_per_worker: int
    memory: str | None
    runtime: str | None = None  # local: the runtime the workers ran on
    data: Mapping[str, str | None] | None = None  # {volume, path} of the data folder
    params: Mapping[str, Any] = field(default_factory=dict)  # what it ran with and logged
    metrics: Mapping[str, Any] = field(default_factory=dict)  # what its script logged
    created_at: str | None = None  # ISO 8601 UTC
    started_at: str | None = None
    ended_at: str | None = None
    exit_codes: Mapping[str, int] = field(default_factory=dict)  # worker -> code (local)
    gpus: Mapping[str, Any] = field(default_factory=dict)  # worker -> GPUs (local)
    error: str | None = None
    error_log: str | None = None  # the failing worker's log tail
    output: str
    app_id: str | None = None  # cpd: WMLA's application id
    args: str | None = None  # cpd: the exec's arguments, secret values masked

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


# --- monitoring: derived once from OpenScale's {metadata, entity} documents -------------------
# The backends speak OpenScale's shape (monitoring_protocol.py); `MonitoringViews`
# (backends/monitoring_views.py) turns what they return into these, for both backends alike.

LIMIT_KINDS = ("lower_limit", "upper_limit")  # OpenScale's threshold types, in the order read


def _time(value: Any) -> str | None:
    """A time as ISO 8601 UTC with +00:00 whichever way it came (IBM's client answers "...Z")."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC).isoformat()
    except ValueError:
        return str(value)


def _entity(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    return doc.get("entity") or {}


def _meta(doc: Mapping[str, Any]) -> Mapping[str, Any]:
    return doc.get("metadata") or {}


@dataclass(frozen=True)
class SubscriptionView:
    """A monitored deployment's subscription: `name` is "<deployment name> Monitor"."""

    id: str
    name: str | None
    deployment_name: str | None
    service_provider_id: str | None
    created_at: str | None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> SubscriptionView:
        e = _entity(doc)
        return cls(
            id=str(_meta(doc)["id"]),
            name=(e.get("asset") or {}).get("name"),
            deployment_name=(e.get("deployment") or {}).get("name"),
            service_provider_id=e.get("service_provider_id"),
            created_at=_time(_meta(doc).get("created_at")),
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class InstanceThreshold:
    """A monitor instance's override of one metric's limit (OpenScale's {metric_id, type, value})."""

    metric_id: str
    type: str  # lower_limit | upper_limit
    value: float

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class MonitorInstanceView:
    """One monitor definition attached to a subscription, with its threshold overrides, the
    provider's parameters and its schedule (OpenScale's shape, read by `monitors.schedule`)."""

    id: str
    monitor_id: str  # the monitor definition's id
    target_id: str  # the subscription's id
    thresholds: tuple[InstanceThreshold, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    schedule: Mapping[str, Any] | None = None
    state: str | None = None
    created_at: str | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> MonitorInstanceView:
        e = _entity(doc)
        return cls(
            id=str(_meta(doc)["id"]),
            monitor_id=str(e["monitor_definition_id"]),
            target_id=str((e.get("target") or {}).get("target_id")),
            thresholds=tuple(
                InstanceThreshold(str(t["metric_id"]), str(t["type"]), float(t["value"]))
                for t in e.get("thresholds") or []
            ),
            parameters=dict(e.get("parameters") or {}),
            schedule=e.get("schedule") or None,
            state=(e.get("status") or {}).get("state"),
            created_at=_time(_meta(doc).get("created_at")),
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class ScheduleView:
    """A monitor instance's schedule as users read it: its repeat (and in words), enabled or
    paused, and its next slots (`next_at` UTC; `next_times` in local time)."""

    every: str
    in_words: str
    status: str  # enabled | paused
    next_at: str | None
    next_times: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return self.status == "enabled"

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class RunView:
    """One evaluation of a monitor instance: `state` running, finished or error; `error` the
    failure's messages joined (None when it did not fail)."""

    id: str
    monitor_instance_id: str | None
    state: str | None
    triggered_by: str | None = None
    started_at: str | None = None
    completed_at: str | None = None
    error: str | None = None

    @classmethod
    def from_document(cls, doc: Mapping[str, Any], monitor_instance_id: str | None = None) -> RunView:
        """`monitor_instance_id`: the instance it was read from (IBM's client leaves it out)."""
        e = _entity(doc)
        status = e.get("status") or {}
        errors = (status.get("failure") or {}).get("errors") or []
        return cls(
            id=str(_meta(doc)["id"]),
            monitor_instance_id=e.get("monitor_instance_id") or monitor_instance_id,
            state=status.get("state"),
            triggered_by=e.get("triggered_by"),
            started_at=_time(status.get("started_at")),
            completed_at=_time(status.get("completed_at")),
            error="; ".join(str(x.get("message")) for x in errors) or None,
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class MeasuredMetric:
    """One metric of a measurement with the limit the service attached (None: no threshold)."""

    id: str
    value: float
    limit: float | None = None
    limit_type: str | None = None  # lower_limit | upper_limit

    @property
    def violated(self) -> bool:
        if self.limit is None:
            return False
        return self.value < self.limit if self.limit_type == "lower_limit" else self.value > self.limit

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class MeasurementView:
    """What one run published: its metrics (each with its limit), issue count and time."""

    id: str
    monitor_instance_id: str | None
    monitor_id: str | None
    run_id: str | None
    timestamp: str | None  # ISO 8601 UTC, as published
    created_at: str | None
    issue_count: int | None
    metrics: tuple[MeasuredMetric, ...] = ()

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> MeasurementView:
        e = _entity(doc)
        metrics = []
        for values in e.get("values") or []:
            for m in values.get("metrics") or []:
                kind = next((k for k in LIMIT_KINDS if m.get(k) is not None), None)
                limit = float(m[kind]) if kind else None
                metrics.append(MeasuredMetric(str(m["id"]), m["value"], limit, kind))
        return cls(
            id=str(_meta(doc)["id"]),
            monitor_instance_id=e.get("monitor_instance_id"),
            monitor_id=e.get("monitor_definition_id"),
            run_id=e.get("run_id"),
            timestamp=_time(e.get("timestamp")),
            created_at=_time(_meta(doc).get("created_at")),
            issue_count=e.get("issue_count"),
            metrics=tuple(metrics),
        )

    @property
    def measured_at(self) -> str | None:
        """When it was measured: its timestamp, else when the service stored it."""
        return self.timestamp or self.created_at

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True)
class ViolationView:
    """One metric of a measurement beyond its limit ('lower': below it is a violation)."""

    metric: str  # the metric's name
    value: float
    limit: float | None
    direction: str | None  # lower | upper

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)


@dataclass(frozen=True, kw_only=True)
class AlertView:
    """A measurement with violations, recorded once in the workspace (`ops.alerts`): which
    deployment, monitor and run, the violated metrics (`new_violations`: the ones whose episode
    it opens) and whether the user acknowledged it and the channels were notified."""

    alert_id: str
    deployment_name: str
    monitor_id: str
    monitor_instance_id: str
    measurement_id: str
    run_id: str | None
    audit_run_id: str | None  # the template run evaluating it, when there was one
    measured_at: str  # ISO 8601 UTC
    violations: tuple[ViolationView, ...]
    new_violations: tuple[str, ...]
    acknowledged_at: str | None = None
    notified_at: str | None = None
    opens_episode: bool = False

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> AlertView:
        """From the alert as recorded (and as the JSON of `monitor alerts` shows it)."""
        return cls(
            **{k: v for k, v in record.items() if k not in ("violations", "new_violations")},
            violations=tuple(
                ViolationView(v["metric"], v["value"], v.get("limit"), v.get("direction"))
                for v in record.get("violations") or []
            ),
            new_violations=tuple(record.get("new_violations") or []),
        )

    def to_dict(self) -> dict[str, Any]:
        return _as_dict(self)
