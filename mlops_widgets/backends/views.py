"""Typed views: what the backend protocols return, one frozen dataclass per kind of object, the
same type and fields on every backend, so callers read attributes a type checker knows instead
of dict keys listed in docstrings. Where a view becomes JSON (`--json`, the REST API, records)
it goes through its one `to_dict()`, whose shape is the one users and tests rely on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
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
