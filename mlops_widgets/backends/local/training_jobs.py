"""Local training jobs on disk: one folder per job under `<workspace>/training/<job id>/`.

    job.json      the spec, the state and what the supervisor learnt (pids, GPUs, exit codes)
    submission/   the copy of the submission folder the workers run in (their cwd)
    output/       the job's output folder ($RESULT_DIR), staged as a model once finished
    logs/worker-N the worker's log (rotated, secrets masked: see inference.kernel_logs)

job.json is replaced atomically and only under the job's lock, so the submitting command, the
supervisor and `stop` never lose each other's changes. A job whose supervisor is gone while the
file still says running is reported failed (the machine rebooted, or the supervisor was
killed), never stuck.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_widgets import events_feed
from mlops_widgets.backends.local.inference.procs import alive, cmdline, kill_kernel
from mlops_widgets.backends.training_protocol import JOB_ENDED, JOB_FAILED, JOB_RUNNING, JOB_SUBMITTED
from mlops_widgets.backends.views import JobView
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace, atomic_write

JOB_FILE = "job.json"
SUPERVISOR_MODULE = "mlops_widgets.backends.local.training_supervisor"
LOST = "the job's supervisor ended without recording an outcome (it was killed, or the machine restarted)"


LAUNCH_S = 120.0  # a job still without a supervisor after this long never got one


def _age_s(job: dict[str, Any]) -> float:
    created = datetime.strptime(job["created_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (datetime.now(UTC) - created).total_seconds()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_job_id() -> str:
    return f"train-{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def jobs_dir(workspace: Workspace) -> Path:
    return workspace.dir("training")


def job_dir(workspace: Workspace, job_id: str) -> Path:
    """The job's folder; NotFoundError naming the job when there is none."""
    if not job_id or "/" in job_id or job_id.startswith("."):
        raise NotFoundError(f"no training job {job_id!r}")
    folder = jobs_dir(workspace) / job_id
    if not (folder / JOB_FILE).is_file():
        raise NotFoundError(f"no training job {job_id!r} in workspace {workspace.root}")
    return folder


def pod_name(job_id: str, worker: int) -> str:
    """The marker every process of a worker carries (MSD_POD_NAME), found even after a setsid."""
    return f"{job_id}-worker-{worker}"


def kill_workers(job: dict[str, Any]) -> None:
    """SIGKILL whatever still runs of the job's workers, found by their pod names."""
    for worker in range(int(job["spec"]["workers"])):
        kill_kernel(-1, pod_name(job["id"], worker))


def worker_log_dir(folder: Path, worker: int) -> Path:
    return folder / "logs" / f"worker-{worker}"


def read_job(folder: Path) -> dict[str, Any]:
    try:
        return json.loads((folder / JOB_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"no training job {folder.name!r}") from None
    except ValueError as exc:
        raise MlopsError(f"training job {folder.name}: {JOB_FILE} is not valid JSON: {exc}") from None


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def write_job(folder: Path, job: dict[str, Any]) -> None:
    """Write job.json; every change of a job goes through here, so it is announced here."""
    atomic_write(folder / JOB_FILE, json.dumps(job, indent=2))
    # <workspace>/training/<job id>/: whatever process writes it (the CLI, the supervisor)
    events_feed.publish(Workspace(folder.parent.parent), "job", folder.name, state=job.get("state"))


def update_job(folder: Path, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Read-modify-write job.json under the job's lock; returns the job as written."""
    with _locked(folder):
        job = read_job(folder)
        change(job)
        write_job(folder, job)
        return job


def supervisor_alive(job: dict[str, Any]) -> bool:
    """Whether the job's supervisor process still runs (a reused pid does not count)."""
    pid = job.get("supervisor_pid")
    return isinstance(pid, int) and alive(pid) and SUPERVISOR_MODULE in (cmdline(pid) or "")


def settle(folder: Path) -> dict[str, Any]:
    """The job as recorded, marked failed when its supervisor is gone before recording an end."""
    job = read_job(folder)
    if job["state"] in JOB_ENDED or supervisor_alive(job):
        return job
    if job["state"] == JOB_SUBMITTED and not job.get("supervisor_pid") and _age_s(job) < LAUNCH_S:
        return job  # the submitting command is still launching it

    def fail(current: dict[str, Any]) -> None:
        if current["state"] in (JOB_SUBMITTED, JOB_RUNNING) and not supervisor_alive(current):
            kill_workers(current)  # nobody watches them any more: a failed job leaves nothing running
            current.update(state=JOB_FAILED, error=LOST, ended_at=current.get("ended_at") or now())

    return update_job(folder, fail)


def job_params(job: dict[str, Any]) -> dict[str, Any]:
    """What a job was run with: its arguments, variables (secrets are never in job.json),
    workers, memory and runtime, and the parameters its script logged to MLflow."""
    spec = job["spec"]
    return {
        "args": list(spec.get("args") or []),
        "env": dict(spec.get("env") or {}),
        "workers": spec["workers"],
        "memory": spec["memory"],
        "runtime": spec.get("runtime") or "dlipy3",
        **(job.get("logged_params") or {}),
    }


def view(folder: Path, job: dict[str, Any]) -> JobView:
    """The protocol's job view of a job.json."""
    spec = job["spec"]
    data = {"volume": spec["data_volume"], "path": spec["data_path"]} if spec.get("data_volume") else None
    return JobView(
        id=job["id"],
        backend="local",
        state=job["state"],
        framework=spec["framework"],
        main=spec["main"],
        workers=spec["workers"],
        devices_per_worker=spec["devices_per_worker"],
        memory=spec["memory"],
        runtime=spec.get("runtime") or "dlipy3",
        data=data,
        params=job_params(job),
        metrics=job.get("metrics") or {},
        created_at=job["created_at"],
        started_at=job.get("started_at"),
        ended_at=job.get("ended_at"),
        exit_codes=job.get("exit_codes") or {},
        gpus=job.get("gpus") or {},
        error=job.get("error"),
        error_log=job.get("error_log"),
        output=str(folder / "output"),
    )
