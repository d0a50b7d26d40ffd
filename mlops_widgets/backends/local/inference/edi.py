"""EDI v2 documents as IBM's `ibm-wmla` client models them (`Model`, `ModelInstance`,
`ModelAppProfile`), built by the service and read back by `LocalInference`.

The service writes them so that IBM's own client (`ElasticDistributedInferenceV2`) works against
`mlops serve`; our client derives the `Inference` protocol's view from the same documents (with
`backends/edi_view.py`, as the cpd backend does), so nothing but these shapes (and the
diagnostics under our own `/mlops/v1` prefix) crosses the wire.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

from mlops_widgets.backends.edi_view import ATTR_CUSTOM, ATTR_SECRET

# ModelInstance.state. EDI shows `enabled` once a started model serves and `disabled` once a
# stopped one's kernels are gone; start and stop are asynchronous, so the others lie between.
STARTING, ENABLED, STOPPING, DISABLED, ERROR = "starting", "enabled", "stopping", "disabled", "error"

# Our profile keys per section; everything else of IBM's ModelAppProfile is fixed for a local
# service and dropped when a profile comes back in.
_POLICY_KEYS = (
    "kernel_min",
    "kernel_max",
    "kernel_delay_release_time",
    "task_execution_timeout",
    "task_batch_size",
    "schedule_interval",
    "task_pipe_size",
)
_KERNEL_KEYS = ("connection_timeout", "gpu", "envs")


def epoch(iso: str | None) -> int:
    """An ISO timestamp as EDI's epoch seconds (0 when unknown)."""
    if not iso:
        return 0
    return int(datetime.datetime.fromisoformat(iso).timestamp())


def attributes(model: dict[str, Any], custom: list[str], secret: list[str]) -> list[dict[str, str]]:
    """model.json's attributes with the custom arg names of the deployment."""
    own = [a for a in model.get("attributes") or [] if a.get("key") not in (ATTR_CUSTOM, ATTR_SECRET)]
    return [
        *({"key": str(a.get("key")), "value": str(a.get("value", ""))} for a in own),
        {"key": ATTR_CUSTOM, "value": ",".join(sorted(custom))},
        {"key": ATTR_SECRET, "value": ",".join(sorted(secret))},
    ]


def model_doc(
    record: dict[str, Any], *, model_path: str, size: int, service_uri: str, creator: str, started_at: int
) -> dict[str, Any]:
    """A deployment as EDI's `Model` (no `state`: that is the instance's)."""
    model = record.get("model") or {}
    envs = [
        {"name": str(e["name"]), "value": str(e.get("value", ""))} for e in model.get("mk_environments") or []
    ]
    doc = {
        "schema_version": str(model.get("schema_version") or "1"),
        "uid": record.get("uid") or record["name"],
        "name": record["name"],
        "tag": str(model.get("tag") or "test"),
        "weight_path": str(model.get("weight_path") or "./"),
        "model_path": model_path,
        "size": size,
        "runtime": str(model.get("runtime") or "dlipy3"),
        "kernel_path": str(model.get("kernel_path") or "kernel.py"),
        "create_time": epoch(record.get("deployed_at")),
        "last_updated_time": epoch(record.get("updated_at")),
        "creator": creator,
        "attributes": attributes(
            model, list(record.get("custom_args") or {}), record.get("secret_args") or []
        ),
        "mk_environments": envs,
        "service_uri": service_uri,
    }
    if started_at:
        doc["started_at"] = started_at
    return doc


def container(kernel: dict[str, Any]) -> dict[str, Any]:
    """One kernel as an `isd_container` entry."""
    busy = kernel.get("state") == "busy"
    done = int(kernel.get("tasks_done") or 0)
    return {
        "container_uid": kernel["pod"],
        "container_host": "127.0.0.1",
        "container_status": kernel.get("state") or "starting",
        "running_task": int(busy),
        "finished_task": done,
        "failed_task": int(kernel.get("tasks_failed") or 0),
        "total_task": done + int(busy),
    }


def instance_doc(name: str, state: str, runtime: dict[str, Any] | None) -> dict[str, Any]:
    """EDI's `ModelInstance`: the state and, while kernels run, one instance with its containers."""
    instances = []
    if runtime is not None:
        instances.append(
            {
                "isd_uid": f"{name}-isd",
                "client_number": 0,
                "pending_tasks": int(runtime.get("queued") or 0),
                "request_per_sec": float(runtime.get("request_per_sec") or 0.0),
                "data_size_per_sec": float(runtime.get("data_size_per_sec") or 0.0),
                "isd_container": [container(k) for k in runtime.get("kernels") or []],
            }
        )
    return {"name": name, "state": state, "instances": instances}


def profile_doc(
    name: str,
    profile: dict[str, Any],
    *,
    created: str | None,
    updated: str | None,
    log_directory: str,
    working_directory: str,
    run_as: str,
) -> dict[str, Any]:
    """Our stored profile as EDI's `ModelAppProfile` (our `resources` is its `resreq`)."""
    resources = ((profile.get("resource_allocation") or {}).get("kernel") or {}).get("resources", "")
    kernel = profile.get("kernel") or {}
    allocation = {"consumer": "", "resource_group": "", "resreq": resources, "type": "local"}
    return {
        "name": name,
        "schema_version": "1",
        "type": "local",
        "replica": 1,
        "create_time": created or "",
        "last_update_time": updated or "",
        "policy": {
            "name": name,
            "task_pipe_size": 1,  # records saved before it was honoured
            **{k: profile["policy"][k] for k in _POLICY_KEYS if k in profile.get("policy", {})},
            "stream_discard_slow_tasks": False,
            "stream_number_per_group": 1,
        },
        "resource_allocation": {"kernel": allocation, "service": dict(allocation)},
        "kernel": {
            **{k: copy.deepcopy(kernel[k]) for k in _KERNEL_KEYS if k in kernel},
            "log_directory": log_directory,
            "run_as": run_as,
            "umask": "0077",
            "working_directory": working_directory,
        },
    }


def profile_update(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of an incoming profile (IBM's whole `ModelAppProfile`, or only some of our
    sections) that a local service honours, in our stored shape."""
    out: dict[str, Any] = {}
    policy = doc.get("policy")
    if isinstance(policy, dict):
        out["policy"] = {k: v for k, v in policy.items() if k in _POLICY_KEYS}
    kernel = doc.get("kernel")
    if isinstance(kernel, dict):
        out["kernel"] = {k: v for k, v in kernel.items() if k in _KERNEL_KEYS}
    allocation = (
        ((doc.get("resource_allocation") or {}).get("kernel") or {})
        if isinstance(doc.get("resource_allocation"), dict)
        else {}
    )
    resources = allocation.get("resources", allocation.get("resreq"))
    if resources:
        out["resource_allocation"] = {"kernel": {"resources": resources}}
    return out


def profile_from_doc(doc: dict[str, Any]) -> dict[str, Any]:
    """`ModelAppProfile` back in our shape: what `dlim model viewprofile -j` shows of a local one."""
    return {"name": doc.get("name"), **profile_update(doc)}


def runtime_doc(runtime: dict[str, Any]) -> dict[str, Any]:
    """One of our runtimes (a named Python interpreter) as EDI's `Runtime`, which has no name
    field: the name leads the description."""
    return {
        "schema_version": "1",
        "type": "python",
        "launcher": runtime["python"],
        "description": f"{runtime['name']}: Python {runtime.get('version') or '?'}",
        "envs": [],
        "epoch_created": epoch(runtime.get("added_at")),
    }
