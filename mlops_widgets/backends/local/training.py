"""`LocalTraining`: the `Training` protocol on this machine. A job is a supervised group of
local processes running the main script from a copy of the submission folder (see
`training_supervisor` for how it runs, `training_jobs` for what is kept on disk)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local.inference.environment import without_credentials
from mlops_widgets.backends.local.inference.gpus import detect_gpus
from mlops_widgets.backends.local.inference.runtimes import Runtimes
from mlops_widgets.backends.local.training_jobs import (
    SUPERVISOR_MODULE,
    job_dir,
    jobs_dir,
    kill_workers,
    new_job_id,
    now,
    read_job,
    settle,
    supervisor_alive,
    update_job,
    view,
    worker_log_dir,
    write_job,
)
from mlops_widgets.backends.local.training_logs import worker_lines
from mlops_widgets.backends.packing import copy_sparse
from mlops_widgets.backends.training_protocol import (
    JOB_ENDED,
    JOB_FINISHED,
    JOB_KILLED,
    JOB_SUBMITTED,
    TrainingSpec,
)
from mlops_widgets.backends.views import JobView
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.masking import is_credential
from mlops_widgets.workspace import Workspace

STOP_WAIT_S = 30.0


class LocalTraining:
    """Training jobs of the workspace, each run by a detached supervisor process."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def _data_dir(self, spec: TrainingSpec) -> str | None:
        if not spec.data_volume:
            return None
        from mlops_widgets.backends.local.volumes import LocalVolumes

        path = LocalVolumes(self.workspace).local_path(spec.data_volume, spec.data_path or "")
        if path is None or not path.exists():
            raise NotFoundError(f"the data path {spec.data_path!r} is not on volume {spec.data_volume!r}")
        return str(path)

    def submit(
        self, folder: Path, spec: TrainingSpec, *, secret_env: dict[str, str] | None = None
    ) -> JobView:
        folder = Path(folder)
        spec.check(folder)
        # A credential among the spec's variables travels as a secret: never in job.json.
        moved = {k: v for k, v in (spec.env or {}).items() if is_credential(k, v)}
        if moved:
            spec = dataclasses.replace(
                spec, env={k: v for k, v in (spec.env or {}).items() if k not in moved}
            )
            secret_env = {**moved, **(secret_env or {})}
        gpus = len(detect_gpus())
        if spec.workers * spec.devices_per_worker > gpus:
            raise MlopsError(
                f"the job asks for {spec.workers * spec.devices_per_worker} GPU(s) "
                f"({spec.workers} worker(s) x {spec.devices_per_worker}); this machine has {gpus}",
                hint=Hint(
                    "train.devices",
                    "ask for fewer devices per worker (0 runs on the CPU)",
                    {"available": str(gpus)},
                ),
            )
        data_dir = self._data_dir(spec)
        python = Runtimes(self.workspace).python(spec.runtime)  # an unknown runtime is refused now
        job_id = new_job_id()
        target = jobs_dir(self.workspace) / job_id
        target.mkdir(mode=0o700)
        try:
            shutil.copytree(folder, target / "submission", symlinks=True, copy_function=copy_sparse)
            write_job(
                target,
                {
                    "id": job_id,
                    "state": JOB_SUBMITTED,
                    "created_at": now(),
                    "spec": spec.to_dict(),
                    "data_dir": data_dir,
                    "python": python,
                    "secret_env_names": sorted(secret_env or {}),
                },
            )
            # The launcher forks the supervisor and returns; secrets travel on its stdin only.
            subprocess.run(
                [sys.executable, "-m", SUPERVISOR_MODULE, str(target)],
                input=json.dumps(secret_env or {}).encode(),
                env=without_credentials(os.environ),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                check=True,
                timeout=60,
            )
        except subprocess.CalledProcessError as exc:
            shutil.rmtree(target, ignore_errors=True)
            raise MlopsError(
                f"training job {job_id} did not start: {exc.stderr.decode(errors='replace')[-2000:]}"
            ) from None
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        return self.get(job_id)

    def list(self) -> list[JobView]:
        root = self.workspace.root / "training"  # read only: a workspace without jobs stays as it is
        views = []
        for folder in root.iterdir() if root.is_dir() else []:
            if (folder / "job.json").is_file():
                with contextlib.suppress(MlopsError):
                    views.append(view(folder, settle(folder)))
        return sorted(views, key=lambda v: v.created_at or "", reverse=True)

    def get(self, job_id: str) -> JobView:
        folder = job_dir(self.workspace, job_id)
        return view(folder, settle(folder))

    def logs(
        self, job_id: str, *, worker: int | None = None, tail: int | None = None, follow: bool = False
    ) -> Iterator[str]:
        folder = job_dir(self.workspace, job_id)
        workers = int(read_job(folder)["spec"]["workers"])
        if worker is not None and not 0 <= worker < workers:
            raise MlopsError(f"training job {job_id} has workers 0 to {workers - 1}, not {worker}")
        chosen = [worker] if worker is not None else list(range(workers))
        return worker_lines(
            [worker_log_dir(folder, w) for w in chosen],
            tail=tail,
            follow=follow,
            ended=lambda: settle(folder)["state"] in JOB_ENDED,
        )

    def stop(self, job_id: str) -> JobView:
        """SIGTERM to the supervisor, which kills the workers and records killed; whatever of
        the job still runs then (its supervisor was gone) is killed here by the workers' pod
        names."""
        folder = job_dir(self.workspace, job_id)
        job = read_job(folder)
        if job["state"] in JOB_ENDED:
            return view(folder, job)
        if supervisor_alive(job):
            with contextlib.suppress(ProcessLookupError):
                os.kill(job["supervisor_pid"], signal.SIGTERM)
            deadline = time.monotonic() + STOP_WAIT_S
            while supervisor_alive(read_job(folder)) and time.monotonic() < deadline:
                time.sleep(0.1)
        kill_workers(job)

        def killed(current: dict[str, Any]) -> None:
            if current["state"] not in JOB_ENDED:
                current.update(state=JOB_KILLED, error="stopped by the user", ended_at=now())

        return view(folder, update_job(folder, killed))

    def download_output(self, job_id: str, dest: Path) -> Path:
        folder = job_dir(self.workspace, job_id)
        job = settle(folder)
        if job["state"] != JOB_FINISHED:
            raise ConflictError(
                f"training job {job_id} is {job['state']}: only a finished job's output can be staged",
                hint=Hint(
                    "train.wait", "wait until the job has finished, or submit it again", {"job_id": job_id}
                ),
            )
        output = folder / "output"
        if not output.is_dir() or not any(output.iterdir()):
            raise NotFoundError(
                f"training job {job_id} finished without writing anything to its output folder"
            )
        shutil.copytree(output, dest, symlinks=False, copy_function=copy_sparse)
        return dest
