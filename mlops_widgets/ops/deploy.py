"""Deploy steps: what template A2_WMLA_Model_Deploy and the `mlops deploy` commands call.

A2 as the original ran it, with its defects dropped: check the name and the entry; build the
submission folder (the dependency zip unpacked safely, the model asset unpacked under the
deployment folder, model.json with mk_environments); deploy it; write deployment_name and
deployment_url into the entry; set the profile from resource_configs; start; wait until ready.
Every step can be run again after a failure half-way, and `deploy_delete` cleans up whatever a
failed run left, so no state gets stuck. Backend-agnostic: only `Backend` protocols are used.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlops_widgets.backends.base import Backend, Progress
from mlops_widgets.backends.views import DeploymentView, plain
from mlops_widgets.config import RESOURCE_DEFAULTS, check_deployment_name
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.ops import space
from mlops_widgets.ops.submission import build_submission_folder

log = logging.getLogger(__name__)

POLICY_KEYS = (
    "kernel_min",
    "kernel_max",
    "kernel_delay_release_time",
    "task_execution_timeout",
    "task_batch_size",
)
WAIT_TIMEOUT = 300.0


def _wmla(entry: dict[str, Any]) -> dict[str, Any]:
    return entry.get("wmla_deployment") or {}


def _delete_first(name: str) -> Hint:
    return Hint("deploy.delete", "delete that deployment first", {"deployment": name})


def _logs(name: str) -> Hint:
    return Hint("deploy.logs", "the deployment's kernel logs say more", {"deployment": name})


def _view_or_none(backend: Backend, name: str) -> DeploymentView | None:
    try:
        return backend.inference.view(name)
    except NotFoundError:
        return None


# --- checks -------------------------------------------------------------------------------------


def check_create(backend: Backend, name: str, model_asset_id: str) -> dict[str, Any]:
    """The original's checks before a deploy: the name rule, the name not used by another entry,
    the asset staged and not already deployed. A deploy of the same asset under the same name
    that did not finish may run again. Returns the entry."""
    check_deployment_name(name)
    entries = space.list_entries(backend)
    _, entry = space.get_entry(backend, model_asset_id=model_asset_id, entries=entries)
    for key, other in entries.items():
        if key != model_asset_id and _wmla(other).get("deployment_name") == name:
            raise ConflictError(
                f"deployment name {name!r} is already used by the entry of model asset {key}: "
                "choose another name"
            )
    current = _wmla(entry).get("deployment_name")
    if current and current != name:
        raise ConflictError(
            f"model asset {model_asset_id} is already deployed as {current!r}", hint=_delete_first(current)
        )
    if current == name:
        view = _view_or_none(backend, name)
        if view is not None and view.state == "started" and view.ready:
            raise ConflictError(
                f"model asset {model_asset_id} is already deployed as {name!r} and running",
                hint=_delete_first(name),
            )
    if not _wmla(entry).get("dependency_filename") or not entry.get("model_asset"):
        raise MlopsError(
            f"the entry of model asset {model_asset_id} lacks model_asset or wmla_deployment.dependency_filename",
            hint=Hint("stage.first", "stage the model and its dependency first"),
        )
    return entry


# --- profile --------------------------------------------------------------------------------------


def profile_from_resource_configs(rc: dict[str, Any] | None) -> dict[str, Any]:
    """The EDI profile the original set from an entry's resource_configs: the kernel policy
    (defaults: the config model's, kernel_max 3, 60 s release delay and task timeout), the CPU
    and memory resources, one exclusive GPU per kernel when enable_gpus, and the kernels'
    start-up timeout (connection_timeout, 90 s)."""
    values = {**RESOURCE_DEFAULTS, **{k: v for k, v in (rc or {}).items() if v is not None}}
    policy = {key: int(values[key]) for key in POLICY_KEYS}
    if policy["kernel_max"] != -1:
        policy["kernel_max"] = max(policy["kernel_max"], policy["kernel_min"])
    profile: dict[str, Any] = {
        "policy": policy,
        "kernel": {
            "gpu": "exclusive" if values.get("enable_gpus") is True else "no",
            "connection_timeout": int(values["connection_timeout"]),
        },
    }
    n_cpus, memory = values.get("n_cpus"), values.get("memory_allocation")
    parts = []
    if n_cpus:
        parts += [f"ncpus={n_cpus}", f"ncpus_limit={n_cpus}"]
    if memory:
        parts += [f"mem={int(memory)}", f"mem_limit={int(memory)}"]
    if parts:
        profile["resource_allocation"] = {"kernel": {"resources": ",".join(parts)}}
    return profile


def resource_configs_from_changes(changed: dict[str, list[Any]]) -> dict[str, Any]:
    """The resource_configs keys a profile change implies (`changed`: {"policy.kernel_min":
    [old, new], ...}, as the local service announces an edit through EDI's API), so that the
    entry keeps it and the next deploy applies it again instead of resetting it."""
    out: dict[str, Any] = {}
    for path, (_, new) in changed.items():
        section, _, key = path.partition(".")
        if section == "policy" and key in POLICY_KEYS:
            out[key] = new
        elif path == "kernel.connection_timeout":
            out["connection_timeout"] = new
        elif path == "kernel.gpu":
            out["enable_gpus"] = new == "exclusive"
        elif path == "resource_allocation.kernel.resources":
            values = dict(part.partition("=")[::2] for part in str(new or "").split(","))
            for name, field in (("ncpus", "n_cpus"), ("mem", "memory_allocation")):
                with contextlib.suppress(ValueError):
                    number = float(values.get(f"{name}_limit") or values.get(name) or "")
                    out[field] = int(number) if number.is_integer() else number
    return out


# --- steps ----------------------------------------------------------------------------------------


def deploy_folder(
    backend: Backend,
    name: str,
    folder: Path,
    *,
    custom_args: dict[str, str] | None = None,
    secret_args: dict[str, str] | None = None,
    remove_folder: bool = False,
) -> DeploymentView:
    """Deploy (or update) the folder under `name`, stopping a running deployment of that name
    first (the original forced the update). `remove_folder` drops the built folder afterwards."""
    check_deployment_name(name)
    view = _view_or_none(backend, name)
    if view is not None and view.state == "started":
        backend.inference.stop(name)
    result = backend.inference.deploy(name, Path(folder), custom_args=custom_args, secret_args=secret_args)
    if remove_folder:
        shutil.rmtree(folder, ignore_errors=True)
    return result


def record_deployment(backend: Backend, model_asset_id: str, name: str) -> dict[str, str]:
    """Write deployment_name and deployment_url into the entry."""
    url = backend.inference.url(name)

    def change(entry: dict[str, Any]) -> None:
        wmla = entry.setdefault("wmla_deployment", {})
        wmla["deployment_name"], wmla["deployment_url"] = name, url

    space.update_entry(backend, model_asset_id, change)
    return {"deployment_name": name, "deployment_url": url}


def keep_resource_configs(backend: Backend, model_asset_id: str, values: dict[str, Any]) -> dict[str, Any]:
    """Lay `values` into the entry's resource_configs (so every later deploy applies them)."""

    def change(entry: dict[str, Any]) -> None:
        wmla = entry.setdefault("wmla_deployment", {})
        wmla["resource_configs"] = {**(wmla.get("resource_configs") or {}), **values}

    return space.update_entry(backend, model_asset_id, change)


def apply_profile(backend: Backend, name: str, model_asset_id: str) -> dict[str, Any]:
    """Set the deployment's profile from the entry's resource_configs (it must be stopped)."""
    _, entry = space.get_entry(backend, model_asset_id=model_asset_id)
    return backend.inference.update_profile(
        name, profile_from_resource_configs(_wmla(entry).get("resource_configs"))
    )


def wait_ready(
    backend: Backend, name: str, *, timeout: float = WAIT_TIMEOUT, progress: Progress | None = None
) -> DeploymentView:
    """Poll until the deployment serves (IDLE or BUSY), as the original polled `dlim model view`
    for IDLE; a failed start raises with its error and the kernel log's tail. `progress` hears
    of each change of status or of the number of ready kernels, not of every poll."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    last: tuple[int, int | None, str] | None = None
    while True:
        view = backend.inference.view(name)
        status, kernel_min = view.status, view.kernel_min
        ready = sum(1 for k in view.kernels if k.ready)
        if progress and last != (ready, kernel_min, status):
            last = (ready, kernel_min, status)
            total = "?" if kernel_min is None else kernel_min
            progress(ready, kernel_min, f"{name}: {status} ({ready}/{total} kernels ready)")
        if view.ready:
            return view
        if status == "FAILED" or view.state != "started":
            detail = f"\n{view.error_log}" if view.error_log else ""
            raise MlopsError(
                f"deployment {name} did not start: {view.error or status}{detail}", hint=_logs(name)
            )
        if time.monotonic() >= deadline:
            raise MlopsError(
                f"deployment {name} was not ready within {timeout:g} s (status {status})", hint=_logs(name)
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 1.0)


def start(
    backend: Backend,
    name: str,
    *,
    wait: bool = True,
    timeout: float = WAIT_TIMEOUT,
    progress: Progress | None = None,
    secret_args: dict[str, str] | None = None,
) -> DeploymentView:
    """Start a deployment and, unless kernel_min is 0 (no kernel until the first request), wait
    until it is ready."""
    log.info("starting deployment %s", name)
    view = backend.inference.start(check_deployment_name(name), secret_args=secret_args)
    if wait and view.kernel_min != 0:
        view = wait_ready(backend, name, timeout=timeout, progress=progress)
    return view


def stop(backend: Backend, name: str) -> DeploymentView:
    log.info("stopping deployment %s", name)
    return backend.inference.stop(check_deployment_name(name))


def deploy_create(
    backend: Backend,
    name: str,
    model_asset_id: str,
    *,
    kernel_filename: str | None = None,
    general_dependencies: Sequence[str] | None = None,
    custom_args: dict[str, str] | None = None,
    secret_args: dict[str, str] | None = None,
    wait: bool = True,
    timeout: float = WAIT_TIMEOUT,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Every step of A2 in one call (the template runs them one cell each)."""
    check_create(backend, name, model_asset_id)
    log.info("deploying asset %s as %s", model_asset_id, name)
    folder = build_submission_folder(backend, name, model_asset_id, kernel_filename, general_dependencies)
    deploy_folder(backend, name, folder, custom_args=custom_args, secret_args=secret_args, remove_folder=True)
    recorded = record_deployment(backend, model_asset_id, name)
    apply_profile(backend, name, model_asset_id)
    view = start(backend, name, wait=wait, timeout=timeout, progress=progress)
    return {**recorded, "model_asset_id": model_asset_id, "status": view.status}


def deploy_delete(
    backend: Backend, name: str, *, remove_monitor: bool = False, remove_config: bool = False
) -> dict[str, Any]:
    """Undeploy (stopping it first), then drop the monitor subscription when asked, then drop the
    entry (`remove_config`) or clear its deployment_name and deployment_url. Works on whatever a
    failed deploy left; NotFoundError only when neither a deployment nor an entry has the name."""
    check_deployment_name(name)
    try:
        key: str | None = space.get_entry(backend, deployment_name=name)[0]
    except NotFoundError:
        key = None
    view = _view_or_none(backend, name)
    log.info("deleting deployment %s (found: %s, entry: %s)", name, view is not None, key)
    if view is not None:
        if view.state == "started":
            backend.inference.stop(name)
        backend.inference.undeploy(name)
    dropped: list[str] = []
    if remove_monitor:
        from mlops_widgets.ops import monitor

        dropped = monitor.delete_subscription_for(backend, name)
    if key is not None:
        if remove_config:
            space.delete_entry(backend, model_asset_id=key)
        else:

            def clear(entry: dict[str, Any]) -> None:
                wmla = entry.setdefault("wmla_deployment", {})
                wmla["deployment_name"] = wmla["deployment_url"] = None

            space.update_entry(backend, key, clear)
    if view is None and key is None and not dropped:
        raise NotFoundError(
            f"no deployment named {name!r} and no entry refers to it",
            hint=Hint("deploy.list", "the list of deployments shows their names"),
        )
    return {
        "deployment_name": name,
        "undeployed": view is not None,
        "model_asset_id": key,
        "entry": None if key is None else ("removed" if remove_config else "cleared"),
        "deleted_subscription_ids": dropped,
    }


# --- queries --------------------------------------------------------------------------------------


def _by_deployment(backend: Backend) -> dict[str, str]:
    return {
        _wmla(e)["deployment_name"]: key
        for key, e in space.list_entries(backend).items()
        if _wmla(e).get("deployment_name")
    }


@dataclass(frozen=True)
class DeploymentRow:
    """One line of the deployment listing: the deployment's state with its entry's model asset
    id; an entry naming a deployment that does not exist is a row too (state "absent", status
    NOT DEPLOYED: a deploy that failed half-way)."""

    name: str
    state: str  # started, stopped, absent
    status: str  # DeploymentView's, or NOT DEPLOYED
    kernels: int
    model_asset_id: str | None
    url: str | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        """As `deploy list --json` and the sidebar's /mlops/deployments show it."""
        return asdict(self)


@dataclass(frozen=True)
class DeploymentDetail:
    """One deployment's view with its entry's model asset id and, for a model staged from a
    training job, that job as the entry keeps it (job_id, framework, main, ended_at, params,
    metrics)."""

    view: DeploymentView
    model_asset_id: str | None
    training_job: Mapping[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """As `deploy view --json` shows it: the view's fields, then these two."""
        return {
            **self.view.to_dict(),
            "model_asset_id": self.model_asset_id,
            "training_job": plain(self.training_job),
        }


def deploy_list(backend: Backend) -> list[DeploymentRow]:
    """Deployments with their entry's model asset id, plus entries naming a deployment that does
    not exist (a deploy that failed half-way: state "absent")."""
    owners = _by_deployment(backend)
    rows = [
        DeploymentRow(
            name=view.name,
            state=view.state,
            status=view.status,
            kernels=len(view.kernels),
            model_asset_id=owners.pop(view.name, None),
            url=view.url,
            error=view.error,
        )
        for view in backend.inference.list()
    ]
    rows += [
        DeploymentRow(
            name=name,
            state="absent",
            status="NOT DEPLOYED",
            kernels=0,
            model_asset_id=key,
            url=None,
            error="the entry names a deployment that does not exist: create it again, or delete it",
        )
        for name, key in sorted(owners.items())
    ]
    return rows


def deploy_view(backend: Backend, name: str) -> DeploymentDetail:
    """The deployment's view with the model asset id of its entry and, for a model staged from
    a training job, that job (its parameters and the metrics it reported)."""
    view = backend.inference.view(check_deployment_name(name))
    asset_id = _by_deployment(backend).get(name)
    training_job = None
    if asset_id:
        with contextlib.suppress(NotFoundError):
            training_job = space.get_entry(backend, model_asset_id=asset_id)[1].get("training_job")
    return DeploymentDetail(view, asset_id, training_job)


def infer(backend: Backend, name: str, data: bytes | str) -> bytes:
    """Send one request body to the deployment, verbatim."""
    return backend.inference.infer(
        check_deployment_name(name), data.encode() if isinstance(data, str) else data
    )


def logs(backend: Backend, name: str, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
    """The deployment's kernel log lines (see `Inference.logs`)."""
    if tail is not None and tail < 0:
        raise MlopsError(f"a log tail is a number of lines (0 or more), not {tail}")
    return backend.inference.logs(check_deployment_name(name), tail=tail, follow=follow)
