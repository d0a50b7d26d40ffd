"""The training protocol: WMLA's deep-learning v1 execs (a submission folder run by workers)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from mlops_widgets.backends.views import JobView
from mlops_widgets.errors import Hint, MlopsError, NotFoundError

# A job is seen as a `JobView` (backends/views.py).

JOB_SUBMITTED = "submitted"
JOB_RUNNING = "running"
JOB_FINISHED = "finished"
JOB_FAILED = "failed"
JOB_KILLED = "killed"
JOB_STATES = (JOB_SUBMITTED, JOB_RUNNING, JOB_FINISHED, JOB_FAILED, JOB_KILLED)
JOB_ENDED = (JOB_FINISHED, JOB_FAILED, JOB_KILLED)
# WMLA's framework names (dlicmd --exec-start); the distributed ones start numWorker workers
# that find each other through torchrun's variables.
FRAMEWORKS = ("PyTorch", "distPyTorch", "TensorFlow", "distTensorFlow")
DISTRIBUTED = ("distPyTorch", "distTensorFlow")


@dataclass(frozen=True)
class TrainingSpec:
    """What a training submission asks for, in WMLA's terms (dlicmd's options)."""

    framework: str  # --exec-start
    main: str  # --model-main: the script run in the submission folder
    workers: int = 1  # --numWorker
    devices_per_worker: int = 0  # --workerDeviceNum (GPUs)
    memory: str = "8g"  # --workerMemory
    data_volume: str | None = None  # the storage volume holding the data (--cs-datastore-meta)
    data_path: str | None = None  # the data folder on that volume
    env: dict[str, str] | None = None  # --msd-env, non-secret variables
    args: tuple[str, ...] = ()  # arguments of the main script
    runtime: str | None = None  # local: the runtime (`mlops runtime`) the workers run on; None: dlipy3

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["args"] = list(self.args)
        return out

    def check(self, folder: Path) -> None:
        """Refuse a submission of `folder` before anything is copied or sent: one message
        naming what is wrong."""
        if self.framework not in FRAMEWORKS:
            raise MlopsError(f"framework {self.framework!r} is not one of {', '.join(FRAMEWORKS)}")
        if not folder.is_dir():
            raise NotFoundError(f"the submission folder {folder} does not exist")
        main = Path(self.main)
        if not self.main or main.is_absolute() or ".." in main.parts or not (folder / main).is_file():
            raise NotFoundError(f"the main file {self.main!r} is not in the submission folder {folder}")
        if self.workers < 1 or self.devices_per_worker < 0:
            raise MlopsError(
                f"workers must be at least 1 and devices per worker at least 0, got "
                f"{self.workers} and {self.devices_per_worker}"
            )
        if self.workers > 1 and self.framework not in DISTRIBUTED:
            raise MlopsError(
                f"framework {self.framework} runs one worker, {self.workers} were asked for",
                hint=Hint(
                    "train.distributed",
                    "choose a distributed framework (distPyTorch) or one worker",
                    {"frameworks": ", ".join(DISTRIBUTED)},
                ),
            )
        if not re.match(r"^\d+(\.\d+)?[kKmMgG]?$", str(self.memory)):
            raise MlopsError(f"worker memory {self.memory!r} must be a size such as 512m or 8g")
        for name in self.env or {}:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(name)):
                raise MlopsError(f"job environment variable {name!r} is not a valid variable name")


@runtime_checkable
class Training(Protocol):
    """Training jobs (WMLA's deep-learning execs): a submission folder run by one or more
    workers, each with its own log; ended jobs keep their output folder for staging."""

    def submit(
        self, folder: Path, spec: TrainingSpec, *, secret_env: dict[str, str] | None = None
    ) -> JobView:
        """Submit a copy of `folder` as a job and return its view (submitted or running).
        `secret_env` become environment variables of the workers, never written to disk."""
        ...

    def list(self) -> list[JobView]:
        """Every job's view, newest first."""
        ...

    def get(self, job_id: str) -> JobView:
        """One job's view; NotFoundError when missing."""
        ...

    def logs(
        self, job_id: str, *, worker: int | None = None, tail: int | None = None, follow: bool = False
    ) -> Iterator[str]:
        """The workers' output (one worker's with `worker`), oldest first: all, or the last
        `tail` lines; with `follow`, then each new line until the job ends or the caller stops."""
        ...

    def stop(self, job_id: str) -> JobView:
        """Kill every process of the job; it ends killed (an ended job is left as it is)."""
        ...

    def download_output(self, job_id: str, dest: Path) -> Path:
        """The job's output folder copied into the new folder `dest`; MlopsError unless the
        job finished."""
        ...
