"""Training steps (template A1_Submit_WMLA_Training, `mlops train`, the panel's Train tab):
build a submission folder, submit it as a job, follow it, and hand its output to staging.

What the original's A1 did with `cp`, a patched main script and `dlicmd.py --exec-start`, here
on either backend: the job runs locally as a supervised process group, or on WMLA through its
deep-learning execs API. A staged job output carries the job in its entry (`training_job`), so
lineage runs from training to deployment to monitoring.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.training_protocol import DISTRIBUTED, JOB_ENDED, JOB_FINISHED, TrainingSpec
from mlops_widgets.backends.views import JobView
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError

SNIPPET_BEGIN = "# --- added by mlops-widgets for a distributed framework: join the job's process group ---"
SNIPPET = f"""{SNIPPET_BEGIN}
import os as _mlops_os
import torch.distributed as _mlops_dist

_mlops_dist.init_process_group(
    backend="nccl" if _mlops_os.environ.get("CUDA_VISIBLE_DEVICES") else "gloo",
    init_method=f"tcp://{{_mlops_os.environ['MASTER_ADDR']}}:{{_mlops_os.environ['MASTER_PORT']}}",
    rank=int(_mlops_os.environ["RANK"]),
    world_size=int(_mlops_os.environ["WORLD_SIZE"]),
)
# --- end of the process group snippet ---
"""
POLL_S = 0.5


def _matches(pattern: str, what: str) -> list[Path]:
    found = sorted(glob.glob(os.path.expanduser(pattern))) if glob.has_magic(pattern) else [pattern]
    paths = [Path(os.path.expanduser(p)) for p in found]
    if not paths or not all(p.exists() for p in paths):
        raise NotFoundError(f"the {what} {pattern!r} to include does not exist")
    return paths


def add_process_group_snippet(script: Path) -> None:
    """Start `script` by joining the job's torch process group (the original's A1 patched the
    training file so); after any `from __future__` import, once."""
    text = script.read_text(encoding="utf-8")
    if SNIPPET_BEGIN in text:
        return
    lines = text.splitlines(keepends=True)
    after = max((i + 1 for i, line in enumerate(lines) if line.startswith("from __future__")), default=0)
    script.write_text("".join([*lines[:after], SNIPPET, "\n", *lines[after:]]), encoding="utf-8")


def build_submission_folder(
    files: list[str],
    folders: list[str],
    *,
    main: str,
    framework: str,
    process_group_file: str = "",
    dest: Path | None = None,
) -> Path:
    """A fresh folder with the files (wildcards allowed) and folders (copied with their name)
    to submit; with a distributed framework, `process_group_file` (a file of the folder) gets
    the process group snippet. The main file must be part of it. Returns the folder."""
    folder = Path(dest) if dest is not None else Path(tempfile.mkdtemp(prefix="mlops-submission-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        placed: dict[str, str] = {}
        items = [(p, False) for pattern in files for p in _matches(pattern, "file")]
        items += [(p, True) for pattern in folders for p in _matches(pattern, "folder")]
        for path, is_folder in items:
            if path.name in placed:
                raise ConflictError(
                    f"{path} and {placed[path.name]} would both be {path.name} in the submission folder"
                )
            placed[path.name] = str(path)
            if path.is_dir():
                if not is_folder:
                    raise MlopsError(f"{path} is a folder: include it among the folders")
                shutil.copytree(path, folder / path.name, symlinks=True)
            else:
                shutil.copy2(path, folder / path.name)
        if not (folder / main).is_file():
            raise NotFoundError(
                f"the main file {main!r} is not among the files and folders to include",
                hint=Hint(
                    "train.main", "include the main file, or name one of the included files", {"main": main}
                ),
            )
        if process_group_file and framework in DISTRIBUTED:
            target = folder / process_group_file
            if not target.is_file():
                raise NotFoundError(
                    f"the file {process_group_file!r} to start the process group in is not in the submission folder"
                )
            add_process_group_snippet(target)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder


def split_job_env(
    env: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """A job's variables as (plain, secret): a value None is read from the environment, and a
    credential (by name, a URL carrying one, or declared in $MLOPS_KERNEL_CREDENTIALS) goes to
    the run as a secret, as template runs keep them, whichever front end submits."""
    from mlops_widgets.masking import is_credential

    source = os.environ if environ is None else environ
    plain: dict[str, str] = {}
    secret: dict[str, str] = {}
    for name, value in env.items():
        if value is None:
            if name not in source:
                raise MlopsError(f"job variable {name} has no value and is not set in the environment")
            value = source[name]
        text = str(value)
        (secret if is_credential(name, text) else plain)[name] = text
    return plain, secret


def make_spec(
    *,
    framework: str,
    main: str,
    workers: int = 1,
    devices_per_worker: int = 0,
    memory: str = "8g",
    data_volume: str = "",
    data_path: str = "",
    env: dict[str, Any] | None = None,
    args: list[str] | None = None,
    runtime: str = "",
) -> TrainingSpec:
    """The job's spec from the template's parameters (an empty volume: no data path)."""
    if data_path and not data_volume:
        raise MlopsError(f"the data path {data_path!r} needs the storage volume it is on")
    return TrainingSpec(
        framework=framework,
        main=main,
        workers=int(workers),
        devices_per_worker=int(devices_per_worker),
        memory=str(memory),
        data_volume=data_volume or None,
        data_path=data_path or None if data_volume else None,
        env={str(k): str(v) for k, v in (env or {}).items()},
        args=tuple(str(a) for a in args or ()),
        runtime=runtime or None,
    )


def submit(
    backend: Backend,
    folder: Path,
    spec: TrainingSpec,
    *,
    secret_env: dict[str, str] | None = None,
    remove_folder: bool = True,
) -> JobView:
    """Submit the folder as a job; the job's view. The folder is removed once submitted (the
    backend holds its own copy) when `remove_folder`."""
    try:
        return backend.training.submit(Path(folder), spec, secret_env=secret_env)
    finally:
        if remove_folder:
            shutil.rmtree(folder, ignore_errors=True)


def wait(
    backend: Backend,
    job_id: str,
    *,
    timeout: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> JobView:
    """Poll the job until it ends (or `timeout` seconds pass: its view as it is then)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = None
    while True:
        job = backend.training.get(job_id)
        if job.state != last and progress is not None:
            progress(f"job {job_id}: {job.state}")
        last = job.state
        if job.state in JOB_ENDED or (deadline is not None and time.monotonic() >= deadline):
            return job
        time.sleep(POLL_S)


def summary(job: JobView) -> dict[str, Any]:
    """What a run records of a job: id, state, output location, and the error with its log tail."""
    return {
        "job_id": job.id,
        "state": job.state,
        "output": job.output,
        "error": job.error,
        "error_log": job.error_log,
    }


def raise_for_state(job: JobView) -> JobView:
    """The job, or an MlopsError when it failed or was killed (its error and log tail)."""
    if job.state in JOB_ENDED and job.state != JOB_FINISHED:
        tail = f"\n{job.error_log}" if job.error_log else ""
        raise MlopsError(f"training job {job.id} {job.state}: {job.error or 'no error recorded'}{tail}")
    return job


def jobs(backend: Backend) -> list[JobView]:
    return backend.training.list()


def status(backend: Backend, job_id: str) -> JobView:
    return backend.training.get(job_id)


def logs(
    backend: Backend, job_id: str, *, worker: int | None = None, tail: int | None = None, follow: bool = False
) -> Iterator[str]:
    return backend.training.logs(job_id, worker=worker, tail=tail, follow=follow)


def stop(backend: Backend, job_id: str) -> JobView:
    return backend.training.stop(job_id)


def lineage(job: JobView, backend: Backend) -> dict[str, Any]:
    """The entry's `training_job`: which job produced the model."""
    return {
        "job_id": job.id,
        "backend": backend.name,
        "framework": job.framework,
        "main": job.main,
        "output": job.output,
        "ended_at": job.ended_at,
        "params": dict(job.params),
        "metrics": dict(job.metrics),
    }


def fetch_output(backend: Backend, job_id: str, parent: Path) -> tuple[Path, dict[str, Any]]:
    """A finished job's output folder copied to `parent/<job id>` (so it is staged as
    `<job id>.zip`), and the job's lineage for the entry."""
    job = backend.training.get(job_id)
    if job.state != JOB_FINISHED:
        raise ConflictError(
            f"training job {job_id} is {job.state}: only a finished job's output can be staged",
            hint=Hint(
                "train.wait", "wait until the job has finished, or submit it again", {"job_id": job_id}
            ),
        )
    folder = backend.training.download_output(job_id, Path(parent) / job_id)
    return folder, lineage(job, backend)
