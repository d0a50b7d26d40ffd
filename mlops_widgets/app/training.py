"""Training jobs: submit (a template run), stop, and the queries that follow them."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mlops_widgets.app._base import AppBase
from mlops_widgets.backends.views import JobView
from mlops_widgets.runner.trail import RunRecord

TRAIN_TEMPLATE = "A1_Submit_WMLA_Training"


class TrainingMixin(AppBase):
    """Training actions and queries of `App`."""

    # --- queries (nothing recorded) --------------------------------------------------------------

    def training_jobs(self) -> list[JobView]:
        """Every training job, newest first."""
        from mlops_widgets.ops import train

        return train.jobs(self.backend)

    def training_job(self, job_id: str) -> JobView:
        """One training job: state, resources, times, output, error and log tail."""
        from mlops_widgets.ops import train

        return train.status(self.backend, job_id)

    def training_logs(
        self, job_id: str, *, worker: int | None = None, tail: int | None = None, follow: bool = False
    ) -> Iterator[str]:
        """The workers' output, each line prefixed with its worker (only `worker`'s; the last
        `tail` of each; `follow`: until the job ends)."""
        from mlops_widgets.ops import train

        return train.logs(self.backend, job_id, worker=worker, tail=tail, follow=follow)

    def volumes(self) -> list[str]:
        """The storage volumes' names, where training data may be read from."""
        return self.backend.volumes.list_volumes()

    def volume_upload(self, volume: str, folder: Path, path: str) -> None:
        """Copy a local folder to `path` in a storage volume (data a job or a monitor reads there);
        data, not workflow state: nothing is recorded."""
        self.backend.volumes.upload_folder(volume, folder, path)

    # --- actions ---------------------------------------------------------------------------------

    def train_stop(self, job_id: str) -> JobView:
        """Stop a training job (every process of every worker); returns the job."""
        from mlops_widgets.ops import train

        with self._event("train.stop", {"job_id": job_id}) as event:
            job = train.stop(self.backend, job_id)
            event.result = {"state": job.state}
        return job

    def train_submit(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        secrets: Mapping[str, str] | None = None,
        progress: Any = None,
        cancel: threading.Event | None = None,
        cwd: str | os.PathLike[str] | None = None,
    ) -> RunRecord:
        """Build the submission folder and submit it as a training job (template
        A1_Submit_WMLA_Training; no parameters: the example training script). Job variables with a
        secret's name go to the run as secrets (a None value: read from the environment). Relative
        files and folders are read from `cwd` (default: this process's working folder)."""
        from mlops_widgets.ops.train import split_job_env

        given = dict(params or {})
        given["job_env"], secret = split_job_env(given.get("job_env") or {})
        return self.run(
            TRAIN_TEMPLATE,
            given,
            secrets={**secret, **(secrets or {})},
            progress=progress,
            cancel=cancel,
            cwd=cwd,
        )
