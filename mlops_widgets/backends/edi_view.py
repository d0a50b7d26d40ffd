"""EDI's documents (`Model`, `ModelInstance`, as IBM's `ibm-wmla` client models them) made into a
`DeploymentView`: once, for both backends, since the local service and WMLA on Cloud Pak for
Data answer the same documents; what only one backend knows (the profile as shown, the local
service's kernel processes and errors) comes in beside them.

EDI's instance states as both backends answer them: `enabled` (WMLA) / `started` serve;
`not-available` (WMLA, right after a start: no `instances` yet) and `starting` are starting;
`stopping` (local); `disabled` / `stopped` and our `no-instance` (a 404: never started) are
stopped; `error` (local) is a failed start.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from mlops_widgets.backends.views import DeploymentView, KernelView

# Custom arg names (never values) ride along as model attributes.
ATTR_CUSTOM, ATTR_SECRET = "mlops_custom_args", "mlops_secret_args"
NO_INSTANCE = "no-instance"  # our word for a 404 on the instance: never started

_PHASE = {
    "enabled": "started",
    "started": "started",
    "not-available": "starting",
    "starting": "starting",
    "stopping": "stopping",
    "disabled": "stopped",
    "stopped": "stopped",
    NO_INSTANCE: "stopped",
    "error": "failed",
}
_SERVING = ("running", "ready", "started")  # a container's status while it serves (WMLA: Running)

Document = Mapping[str, Any]


def phase(instance: Document) -> str:
    """started, starting, stopping, stopped, failed, or another state as EDI names it."""
    state = str(instance.get("state") or "").lower()
    return _PHASE.get(state, state or "unknown")


def _items(instance: Document) -> list[Document]:
    return [i for i in instance.get("instances") or [] if isinstance(i, Mapping)]


def status(instance: Document) -> str:
    """The status line of `dlim model view`: IDLE / BUSY when serving, else the phase."""
    now = phase(instance)
    if now == "started":
        items = _items(instance)
        busy = any(int(i.get("pending_tasks") or 0) for i in items) or any(
            int(c.get("running_task") or 0) for i in items for c in i.get("isd_container") or []
        )
        return "BUSY" if busy else "IDLE"
    return now.upper()


def attribute_names(model: Document, key: str) -> tuple[str, ...]:
    """The names a model attribute lists (comma-separated), e.g. the custom args' names."""
    for a in model.get("attributes") or []:
        if a.get("key") == key:
            return tuple(n for n in str(a.get("value") or "").split(",") if n)
    return ()


def iso(when: int | str | None) -> str | None:
    """EDI's epoch seconds as ISO 8601 UTC (a timestamp already ISO is kept; 0 is unknown)."""
    if not when:
        return None
    if isinstance(when, str) and not when.isdigit():
        return when
    return datetime.datetime.fromtimestamp(int(when), datetime.UTC).isoformat(timespec="seconds")


def kernel_view(container: Document, process: Document | None = None) -> KernelView:
    """An `isd_container` as a kernel, with the local service's process details when known."""
    state = str(container.get("container_status") or "").lower()
    if state in _SERVING:
        state = "busy" if int(container.get("running_task") or 0) else "idle"
    proc = process or {}
    cpus = proc.get("cpus")
    return KernelView(
        pod=str(container.get("container_uid")),
        state=state,
        pid=proc.get("pid"),
        gpu=proc.get("gpu"),
        cpus=None if cpus is None else tuple(cpus),
        started_at=proc.get("started_at"),
        tasks_done=container.get("finished_task"),
        log=proc.get("log"),
    )


def deployment_view(
    model: Document,
    instance: Document,
    *,
    service: str,
    url: str | None,
    profile: Mapping[str, Any],
    diagnostics: Document | None = None,
) -> DeploymentView:
    """The view of one deployment from its `Model` and `ModelInstance` documents. `diagnostics`:
    what the local service adds under /mlops/v1 (kernel processes, error, error_log, warnings,
    requests); a cluster has none."""
    more = diagnostics or {}
    processes = {str(k.get("pod")): k for k in more.get("kernels") or []}
    containers = [c for i in _items(instance) for c in i.get("isd_container") or []]
    requests = more.get("requests")
    return DeploymentView(
        name=str(model.get("name")),
        # the protocol's two states: a deployment starting is started, its status says STARTING
        state="stopped" if phase(instance) in ("stopped", "stopping") else "started",
        status=status(instance),
        service=service,
        url=url,
        model_path=model.get("model_path"),
        kernel_file=str(model.get("kernel_path") or "kernel.py"),
        deployed_at=iso(model.get("create_time")),
        updated_at=iso(model.get("last_updated_time")),
        custom_args=attribute_names(model, ATTR_CUSTOM),
        secret_args=attribute_names(model, ATTR_SECRET),
        profile=profile,
        kernels=tuple(kernel_view(c, processes.get(str(c.get("container_uid")))) for c in containers),
        queued=sum(int(i.get("pending_tasks") or 0) for i in _items(instance)),
        error=more.get("error"),
        error_log=more.get("error_log"),
        warnings=tuple(more.get("warnings") or ()),
        requests=None if requests is None else dict(requests),
    )
