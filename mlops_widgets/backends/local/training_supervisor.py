"""The supervisor of one local training job: a detached process that runs the job's workers,
writes their logs and records how the job ended.

    python -m mlops_widgets.backends.local.training_supervisor JOB_DIR   (secret env as JSON on stdin)

Why a process of its own rather than a companion of the local service: a job must outlive the
command that submitted it, and a detached process does without the service (nothing to start,
no route to add), keeps the job's secrets in memory only (they come on stdin), and a restart
or crash of the inference service never touches a running job. It double-forks and starts a
session of its own, so it is nobody's zombie and no terminal or kernel takes it down.

Each worker runs `python <main> <args>` in the submission copy (on the job's runtime's Python),
under a reaper (`backends/local/reaper.py`: whatever the worker starts, even a process that left
its session and environment, ends with it, /dev/shm files included) in a session of its own,
with WMLA's job variables (DATA_DIR, RESULT_DIR, LOG_DIR), the job's variables, CUDA_VISIBLE_DEVICES
(GPUs taken with the inference service's allocator, less those other jobs hold) and, for a
distributed framework, torchrun's RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR
and MASTER_PORT. A worker that fails ends the job: the others are stopped, the job is failed with
the worker's exit code and log tail; so does a worker whose processes hold more memory than the
job's worker memory (the inference kernels' watchdog, by RSS). OMP_NUM_THREADS is 1 per worker
of a distributed job unless the job sets it (as torchrun). At the end the metrics and parameters
the script reported (`training_metrics`) are kept in job.json. SIGTERM (`stop`) kills every
process of every worker; a supervisor that dies takes its workers with it (their reapers watch it).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local import reaper
from mlops_widgets.backends.local.inference.environment import for_runtime, ordinary
from mlops_widgets.backends.local.inference.gpus import Gpus
from mlops_widgets.backends.local.inference.kernel_logs import KernelLog, pod_tail
from mlops_widgets.backends.local.inference.procs import kill_kernel, process_tree, resident_mb
from mlops_widgets.backends.local.training_jobs import (
    now,
    pod_name,
    read_job,
    supervisor_alive,
    update_job,
    worker_log_dir,
)
from mlops_widgets.backends.local.training_metrics import collect, worker_variables
from mlops_widgets.backends.training_protocol import (
    DISTRIBUTED,
    JOB_ENDED,
    JOB_FAILED,
    JOB_FINISHED,
    JOB_KILLED,
    JOB_RUNNING,
)

STOP_GRACE_S = 3.0  # between SIGTERM and SIGKILL of a stopped job's workers
POLL_S = 0.1
MEMORY_CHECK_S = 0.5
UNITS = {"": 1 / 2**20, "k": 1 / 1024, "m": 1.0, "g": 1024.0}


def memory_mb(size: str) -> float:
    """A worker memory such as 512m or 8g (bytes without a unit), in MB."""
    text = str(size).strip().lower()
    unit = text[-1] if text and text[-1] in "kmg" else ""
    return float(text[: len(text) - len(unit)]) * UNITS[unit]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def take_gpus(folder: Path, count: int) -> list[str]:
    """`count` GPUs not held by another running job (under the training folder's lock)."""
    if count == 0:
        return []
    fd = os.open(folder.parent / ".gpus.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        held: set[str] = set()
        for other in folder.parent.iterdir():
            with contextlib.suppress(Exception):
                job = read_job(other)
                if other != folder and job["state"] not in JOB_ENDED and supervisor_alive(job):
                    held.update(g for gs in (job.get("gpus") or {}).values() for g in gs)
        gpus = Gpus()
        free = [g for g in gpus.ids if g not in held]
        if len(free) < count:
            raise RuntimeError(
                f"the job needs {count} GPU(s) but {len(free)} of this machine's {len(gpus.ids)} are free"
            )
        taken = free[:count]
        update_job(folder, lambda j: j.update(gpus={"all": taken}))
        return taken
    finally:
        os.close(fd)


def worker_env(
    job: dict[str, Any], folder: Path, worker: int, gpus: list[str], port: int, secret_env: dict[str, str]
) -> dict[str, str]:
    spec = job["spec"]
    env = for_runtime(ordinary(os.environ), job.get("python") or sys.executable)
    env.update(worker_variables(folder))
    env.update({str(k): str(v) for k, v in (spec.get("env") or {}).items()})
    if int(spec["workers"]) > 1:  # as torchrun does: one thread per worker unless told otherwise
        env.setdefault("OMP_NUM_THREADS", "1")
    env.update(secret_env)
    env.update(
        PYTHONUNBUFFERED="1",
        MSD_POD_NAME=pod_name(job["id"], worker),
        RESULT_DIR=str(folder / "output"),
        LOG_DIR=str(worker_log_dir(folder, worker)),
        CUDA_VISIBLE_DEVICES=",".join(gpus),
    )
    if job.get("data_dir"):
        env["DATA_DIR"] = job["data_dir"]
    if spec["framework"] in DISTRIBUTED:
        env.update(
            RANK=str(worker),
            LOCAL_RANK=str(worker),
            GROUP_RANK="0",
            WORLD_SIZE=str(spec["workers"]),
            LOCAL_WORLD_SIZE=str(spec["workers"]),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
        )
    return env


class Supervisor:
    def __init__(self, folder: Path, secret_env: dict[str, str]) -> None:
        self.folder = folder
        self.secret_env = secret_env
        self.job = read_job(folder)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.pumps: list[threading.Thread] = []
        self.logs: list[KernelLog] = []
        self.stopping = threading.Event()

    def _pump(self, worker: int, proc: subprocess.Popen[bytes], log: KernelLog) -> None:
        pod = f"worker-{worker}"
        assert proc.stdout is not None
        while chunk := os.read(proc.stdout.fileno(), 65536):  # what the pipe holds, as it comes
            log.feed(pod, chunk)
        log.close_pod(pod)

    def start_workers(self) -> None:
        spec = self.job["spec"]
        count = int(spec["workers"])
        per = int(spec["devices_per_worker"])
        gpus = take_gpus(self.folder, count * per)
        port = _free_port()
        (self.folder / "output").mkdir(exist_ok=True)
        assigned: dict[str, list[str]] = {}
        for worker in range(count):
            mine = gpus[worker * per : (worker + 1) * per]
            assigned[str(worker)] = mine
            log = KernelLog(
                worker_log_dir(self.folder, worker),
                secrets=list(self.secret_env.values()),
                environ=os.environ,
            )
            proc = subprocess.Popen(
                reaper.wrap([self.job.get("python") or sys.executable, spec["main"], *spec.get("args", [])]),
                cwd=self.folder / "submission",
                env=worker_env(self.job, self.folder, worker, mine, port, self.secret_env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.workers.append(proc)
            self.logs.append(log)
            pump = threading.Thread(target=self._pump, args=(worker, proc, log), daemon=True)
            pump.start()
            self.pumps.append(pump)
        update_job(
            self.folder,
            lambda j: j.update(
                state=JOB_RUNNING,
                started_at=now(),
                gpus=assigned,
                worker_pids={str(i): p.pid for i, p in enumerate(self.workers)},
            ),
        )

    def kill_all(self) -> None:
        """SIGTERM every worker's session, then SIGKILL whatever of each worker is left
        (children that left the session too: they carry the worker's pod name)."""
        for proc in self.workers:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < deadline and any(p.poll() is None for p in self.workers):
            time.sleep(POLL_S)
        for i, proc in enumerate(self.workers):
            reaper.stop(proc.pid)
            kill_kernel(proc.pid, pod_name(self.job["id"], i))

    def over_memory(self) -> tuple[int, float] | None:
        """(worker, MB) of the first worker whose processes hold more than its memory."""
        limit = memory_mb(self.job["spec"]["memory"])
        for i, proc in enumerate(self.workers):
            if proc.poll() is None:
                used = resident_mb([p for p in process_tree(proc.pid) if p != proc.pid])  # not its reaper
                if used > limit:
                    return i, used
        return None

    def wait(self) -> tuple[str, str | None, int | None]:
        """Until every worker ended, a worker failed, one held more memory than the job's
        worker memory, or a stop came: (state, error, failed worker)."""
        next_check = 0.0
        while True:
            if self.stopping.is_set():
                self.kill_all()
                return JOB_KILLED, "stopped by the user", None
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + MEMORY_CHECK_S
                over = self.over_memory()
                if over is not None:
                    self.kill_all()
                    worker, used = over
                    limit = self.job["spec"]["memory"]
                    return (
                        JOB_FAILED,
                        f"worker {worker} exceeded its worker memory ({limit}): its processes held {used:.0f} MB",
                        worker,
                    )
            codes = [p.poll() for p in self.workers]
            failed = next((i for i, c in enumerate(codes) if c not in (None, 0)), None)
            if failed is not None:
                self.kill_all()
                return JOB_FAILED, f"worker {failed} exited with code {codes[failed]}", failed
            if all(c == 0 for c in codes):
                for i in range(len(self.workers)):  # what a worker left running goes with it
                    kill_kernel(self.workers[i].pid, pod_name(self.job["id"], i))
                return JOB_FINISHED, None, None
            time.sleep(POLL_S)

    def run(self) -> None:
        signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        signal.signal(signal.SIGINT, lambda *_: self.stopping.set())
        error_log = None
        try:
            self.start_workers()
            state, error, failed = self.wait()
        except Exception as exc:  # a job that cannot start ends failed, with the reason
            self.kill_all()
            state, error, failed = JOB_FAILED, str(exc), None
        for pump in self.pumps:
            pump.join(timeout=10)
        for log in self.logs:
            log.close()
        if failed is not None:
            error_log = pod_tail(worker_log_dir(self.folder, failed), f"worker-{failed}")
        codes = {str(i): p.returncode for i, p in enumerate(self.workers)}
        metrics, logged_params = collect(self.folder)
        update_job(
            self.folder,
            lambda j: j.update(
                state=state,
                error=error,
                error_log=error_log,
                exit_codes=codes,
                ended_at=now(),
                metrics=metrics,
                logged_params=logged_params,
            ),
        )


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    folder = Path(args[0])
    secret_env = json.loads(sys.stdin.read() or "{}")
    recorded, record = os.pipe()
    if os.fork() > 0:  # the launcher returns once the supervisor has recorded its pid (the
        os.close(record)  # reaper of a run that submits a job spares a recorded supervisor)
        os.read(recorded, 1)
        os._exit(0)
    os.close(recorded)
    os.setsid()
    # Let go of the launcher's pipes (it waits for their end): the supervisor's own errors go
    # to the job's supervisor.log.
    devnull = os.open(os.devnull, os.O_RDWR)
    own_log = os.open(folder / "supervisor.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    for fd, target in ((0, devnull), (1, devnull), (2, own_log)):
        os.dup2(target, fd)
    update_job(folder, lambda j: j.update(supervisor_pid=os.getpid()))
    os.close(record)
    Supervisor(folder, secret_env).run()


if __name__ == "__main__":
    main()
