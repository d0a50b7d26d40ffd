"""A started deployment's kernel pool: kernels scaled by load, fed batches, replaced on faults.

Each kernel is its own process running the unmodified kernel file (`kernel_path/_mlops_kernel_boot.py`)
and talks to the service over an inherited socket pair. One service thread per kernel (its
feeder) takes batches from the deployment's queue and sends them; another reads the answers
(`pipeline.py`), so the only hand-off on the hot path is one condition variable. Once every
kernel the profile allows runs and none is idle, a busy kernel gets its next batch while it
works on the current one (up to `task_pipe_size` ahead, with task_batch_size 1: larger batches
are gathered while a kernel is busy), so that it never waits for the service between tasks.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local.inference.environment import kernel_environment
from mlops_widgets.backends.local.inference.gpus import Gpus
from mlops_widgets.backends.local.inference.kernel_logs import KernelLog, pod_tail
from mlops_widgets.backends.local.inference.kernel_path import _mlops_wire as wire
from mlops_widgets.backends.local.inference.kernel_proc import (
    SHUTDOWN_GRACE,
    KernelProc,
    KernelStartError,
    Limits,
)
from mlops_widgets.backends.local.inference.pipeline import Batch, KernelPipe
from mlops_widgets.backends.local.inference.tasks import ServiceError, Task
from mlops_widgets.config.model import KERNELS_MAX

log = logging.getLogger("mlops.inference")

EARLY_DEATHS = 3  # kernels that die at start, one after the other, before the deployment is failed
WAIT_SLACK = 30.0  # seconds a request may wait beyond a kernel start plus its task timeout


class KernelPool:
    """A started deployment: its queue and kernels. Lives in the service's memory only."""

    def __init__(
        self,
        name: str,
        record: dict[str, Any],
        *,
        model_dir: Path,
        logs_dir: Path,
        run_dir: Path,
        custom_args: dict[str, str],
        secret_args: dict[str, str],
        python: str,
        gpus: Gpus,
    ) -> None:
        """`python` runs the kernels (the deployment's runtime); `secret_args` are custom args
        masked in every form wherever a kernel prints them."""
        self.name = name
        self.model_dir = model_dir
        self.logs_dir = logs_dir
        self.run_dir = run_dir
        self.model = record.get("model") or {}
        self.profile = record["profile"]
        policy, kernel = self.profile["policy"], self.profile["kernel"]
        self.kernel_min: int = policy["kernel_min"]
        # Records saved before the service bounded profiles may hold -1 (unlimited) or more.
        kmax = policy["kernel_max"]
        self.kernel_max: int = KERNELS_MAX if kmax == -1 else min(kmax, KERNELS_MAX)
        self.delay_release: float = policy["kernel_delay_release_time"]
        self.timeout: float | None = (
            None if policy["task_execution_timeout"] < 0 else policy["task_execution_timeout"]
        )
        self.batch_size: int = policy["task_batch_size"]
        self.pipe_size: int = policy.get("task_pipe_size", 1)
        self.connection_timeout: float = kernel["connection_timeout"]
        self.gpu_mode: str = kernel["gpu"]
        self.custom_args = {**custom_args, **secret_args}
        self.python = python
        self.limits = Limits.from_profile(self.profile)
        self.log = KernelLog(logs_dir, secrets=list(secret_args.values()), environ=os.environ)
        self.gpus = gpus
        self.cond = threading.Condition()
        self.queue: deque[Task] = deque()
        self.kernels: dict[str, KernelProc] = {}
        self.threads: list[threading.Thread] = []
        self.state = "started"  # started, stopping, stopped, failed
        # Told of the transitions a user cares about (the service publishes them to the change
        # feed): "ready" (kernel_min kernels serve, once per start), "kernel_replaced", "failed",
        # "stopped". Never while serving requests (idle/busy are not transitions of interest).
        self.on_state: Callable[[str], None] = lambda state: None
        self._was_ready = False
        self.error: str | None = None
        self.error_log: str | None = None
        self.warnings: list[str] = []
        self.pipes: dict[str, KernelPipe] = {}
        self.early_deaths = 0
        self.requests = 0
        self.failures = 0
        self.started_at = time.time()
        self._pods = itertools.count(1)
        self._tasks = itertools.count(1)
        self.target_min = self.kernel_min
        if self.gpu_mode != "no" and not gpus.ids:
            self.warnings.append(
                f"the profile asks for GPUs (gpu: {self.gpu_mode}) but this machine has none: kernels run on CPU"
            )
        elif self.gpu_mode == "exclusive" and len(gpus.ids) < self.kernel_min:
            self.target_min = len(gpus.ids)
            self.warnings.append(
                f"kernel_min is {self.kernel_min} but this machine has {len(gpus.ids)} GPU(s) for "
                "exclusive kernels: at most that many kernels run"
            )

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        with self.cond:
            self._replenish_locked()

    def stop(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Stop every kernel (on_kernel_shutdown first, killed after `grace`); queued tasks fail."""
        with self.cond:
            if self.state in ("stopping", "stopped"):
                return
            self.state = "stopping"
            self._fail_queue_locked(503, f"deployment {self.name} was stopped")
            self.cond.notify_all()
        deadline = time.monotonic() + grace
        for t in list(self.threads):
            t.join(max(0.0, deadline - time.monotonic()))
        with self.cond:
            stuck = list(self.kernels.values())
        for k in stuck:
            k.kill()
        for t in list(self.threads):
            t.join(grace)
        self.log.close()
        with self.cond:
            self.state = "stopped"
        self.on_state("stopped")

    def fail(self, message: str, log_text: str | None = None) -> None:
        with self.cond:
            self._fail_locked(message, log_text)

    def _fail_locked(self, message: str, log_text: str | None) -> None:
        if self.state != "started":
            return
        self.state = "failed"
        mask = self.log.masker.mask  # a kernel's words may hold a secret custom arg
        message, log_text = mask(message), None if log_text is None else mask(log_text)
        self.error, self.error_log = message, log_text
        log.error("deployment %s failed: %s", self.name, message)
        self.on_state("failed")  # rare; under the lock so that it precedes any later transition
        self._fail_queue_locked(503, f"deployment {self.name} failed: {message}")
        self.cond.notify_all()

    def _fail_queue_locked(self, status: int, message: str) -> None:
        while self.queue:
            self.failures += 1
            self.queue.popleft().finish(status, error=message)

    # --- requests ---------------------------------------------------------------------------

    def submit(self, body: wire.Blob, on_done: Callable[[Task], None]) -> Task:
        """Queue a request for the kernels; `on_done(task)` once it is answered or failed."""
        task = Task(body, str(next(self._tasks)), on_done)
        with self.cond:
            if self.state == "failed":
                raise ServiceError(503, f"deployment {self.name} failed: {self.error}")
            if self.state != "started":
                raise ServiceError(503, f"deployment {self.name} is not started")
            self.requests += 1
            self.queue.append(task)
            if len(self.queue) > self._idle_locked():
                self._replenish_locked()
            self.cond.notify_all()  # idle kernels and busy ones with room wait alike
        return task

    def give_up(self, task: Task) -> ServiceError:
        """The 504 for a request whose caller waited `wait_limit()` in vain; one that no kernel
        took yet is taken back, so that it never runs."""
        with self.cond:
            try:
                self.queue.remove(task)
            except ValueError:
                return ServiceError(504, f"deployment {self.name}: no kernel answered in time")
            self.failures += 1
        return ServiceError(
            504, f"deployment {self.name}: no kernel took this request in time; it was dropped"
        )

    def wait_limit(self) -> float | None:
        """How long a request may wait in all: a kernel start plus the task timeout, with slack."""
        if self.timeout is None:
            return None
        return self.connection_timeout + self.timeout + WAIT_SLACK

    # --- scaling ----------------------------------------------------------------------------

    def _replenish_locked(self) -> None:
        """Start kernels up to kernel_min, and more (up to kernel_max) while tasks wait unserved."""
        if self.state != "started":
            return
        starting = sum(1 for k in self.kernels.values() if k.state == "starting")
        wanted = max(self.target_min - len(self.kernels), len(self.queue) - self._idle_locked() - starting, 0)
        for _ in range(int(min(wanted, self.kernel_max - len(self.kernels)))):
            if not self._spawn_locked():
                break

    def _idle_locked(self) -> int:
        """Kernels ready with nothing in flight."""
        return sum(1 for k in self.kernels.values() if k.state == "idle")

    def _saturated_locked(self) -> bool:
        """Every kernel the profile allows runs, none starting, idle or ending: only then does a
        busy kernel take a batch ahead (else an idle kernel, or the one that replaces an ending
        kernel, serves it at once instead of it waiting behind another task)."""
        return (
            self.batch_size == 1
            and len(self.kernels) >= self.kernel_max
            and all(k.state == "busy" for k in self.kernels.values())
            and not any(p.dead for p in self.pipes.values())
        )

    def _spawn_locked(self) -> bool:
        gpu = None
        if self.gpu_mode == "exclusive" and self.gpus.ids:
            gpu = self.gpus.take()
            if gpu is None:
                return False
        index = next(self._pods)
        pod = f"{self.name}-{index}-{uuid.uuid4().hex[:5]}"
        k = KernelProc(pod=pod, index=index, log=self.log, gpu=gpu, limits=self.limits, on_death=self._wake)
        self.kernels[pod] = k
        t = threading.Thread(target=self._kernel_thread, args=(k,), name=f"kernel-{pod}", daemon=True)
        self.threads = [th for th in self.threads if th.is_alive()]
        self.threads.append(t)
        t.start()
        return True

    # --- one kernel ---------------------------------------------------------------------------

    def _kernel_thread(self, k: KernelProc) -> None:
        error = None
        try:
            try:
                self._boot(k)
            except KernelStartError as exc:
                k.exit_reason = "start failed"
                k.end(self.run_dir)  # its last output reaches the log before the tail is read
                self.fail(str(exc), pod_tail(self.logs_dir, k.pod))
                return
            pipe = KernelPipe(self, k)
            with self.cond:
                self.pipes[k.pod] = pipe
                k.state, k.ready_at = "idle", time.monotonic()
                self.cond.notify_all()
                ready = sum(1 for o in self.kernels.values() if o.state in ("idle", "busy"))
                first_ready = not self._was_ready and ready >= self.target_min
                self._was_ready = self._was_ready or first_ready
            if first_ready:
                self.on_state("ready")
            pipe.open()
            while (batch := self._take(k, pipe)) is not None:
                if not pipe.send(batch):
                    break
        except Exception as exc:
            log.exception("kernel %s of %s: unexpected error", k.pod, self.name)
            k.exit_reason, error = "internal error", f"internal error of the inference service: {exc!r}"
            k.kill()  # the reader settles what is in flight
        finally:
            if k.pod in self.pipes:
                self.pipes[k.pod].close()
            k.end(self.run_dir)
            with self.cond:
                self.pipes.pop(k.pod, None)
                self.kernels.pop(k.pod, None)
                if k.gpu is not None:
                    self.gpus.give(k.gpu)
                self._count_early_death_locked(k, error)
                self._replenish_locked()
                self.cond.notify_all()
                replaced = self.state == "started" and k.exit_reason not in (
                    "stop",
                    "released",
                    "start failed",
                )
            if replaced:
                self.on_state("kernel_replaced")

    def _count_early_death_locked(self, k: KernelProc, error: str | None) -> None:
        """A kernel that keeps dying right after it starts (idle, or on an error of the service
        with it) would be restarted forever: the deployment fails with the last error instead.
        One that dies running a task ("died in task") does not count: the request killed it, it
        fails only the tasks it held, and bad requests must not take the deployment down."""
        if k.exit_reason not in ("died", "internal error"):
            return
        quick = k.tasks_done == 0 and (
            k.exit_reason == "internal error"
            or (k.ready_at is not None and time.monotonic() - k.ready_at < 10)
        )
        self.early_deaths = self.early_deaths + 1 if quick else 0
        if self.early_deaths >= EARLY_DEATHS:
            if error:
                why = f" (the last: {error})"
            elif k.memory_used_mb is not None:
                why = f" (the last {k.memory_message()})"
            else:
                why = ""
            self._fail_locked(
                f"kernels exited {EARLY_DEATHS} times in a row right after starting{why}",
                pod_tail(self.logs_dir, k.pod),
            )

    def _wake(self) -> None:
        """A kernel's process died: its thread, if idle, notices at once."""
        with self.cond:
            self.cond.notify_all()

    def _boot(self, k: KernelProc) -> None:
        env = kernel_environment(
            os.environ,
            name=self.name,
            model=self.model,
            profile=self.profile,
            model_dir=self.model_dir,
            pod=k.pod,
            gpu=k.gpu,
            python=self.python,
        )
        k.boot(
            python=self.python,
            env=env,
            cwd=self.model_dir.parent,
            run_dir=self.run_dir,
            frame={
                "kernel_file": str(self.model_dir / (self.model.get("kernel_path") or "kernel.py")),
                "custom_args": self.custom_args,
                "instance_id": k.pod,
                "kernel_id": str(k.index),
                "model_name": self.name,
                "model_description": json.dumps({**self.model, "model_path": str(self.model_dir)}),
            },
            connection_timeout=self.connection_timeout,
        )

    def _take(self, k: KernelProc, pipe: KernelPipe) -> Batch | None:
        """Wait for a batch this kernel may take (put in its pipe, to be sent); None when it
        should go (stop, idle release, death)."""
        with self.cond:
            idle_since = time.monotonic()
            while True:
                if pipe.dead:  # the reader met the kernel's end and said why
                    return None
                if self.state != "started":
                    k.exit_reason = "stop"
                    return None
                if self.queue and pipe.room() and (not pipe.inflight or self._saturated_locked()):
                    k.state = "busy"
                    n = min(self.batch_size, len(self.queue))
                    batch = Batch([self.queue.popleft() for _ in range(n)])
                    pipe.inflight.append(batch)
                    self.cond.notify_all()  # its reader waits for a batch in flight
                    return batch
                if pipe.inflight:
                    idle_since = time.monotonic()
                elif k.exited():
                    k.exit_reason = "died"
                    return None
                wait = 1.0
                # Kernels idle alike reach their release delay together: each counts the
                # others still staying, so that kernel_min of them stay.
                staying = sum(1 for other in self.kernels.values() if other.state != "stopping")
                if not pipe.inflight and staying > self.target_min:
                    left = self.delay_release - (time.monotonic() - idle_since)
                    if left <= 0:
                        k.exit_reason, k.state = "released", "stopping"
                        return None
                    wait = min(wait, left)
                self.cond.wait(wait)

    def requeue(self, tasks: list[Task], pod: str) -> None:
        """Tasks sent to a kernel that ended before running them: back to the front of the
        queue, once (the second time they fail)."""
        with self.cond:
            for t in reversed(tasks):
                t.attempts += 1
                if t.attempts > 1 or self.state != "started":
                    self.failures += 1
                    t.finish(503 if self.state != "started" else 500, error=self._lost(pod))
                else:
                    self.queue.appendleft(t)
            if tasks:
                self._replenish_locked()
            self.cond.notify_all()

    def _lost(self, pod: str) -> str:
        if self.state != "started":
            return f"deployment {self.name} was stopped before this task ran"
        return f"kernel {pod} of {self.name} ended before running this task"

    def fail_tasks(self, tasks: list[Task], status: int, *, error: str, detail: str | None = None) -> None:
        """Fail `tasks` with `error` (and a kernel's traceback), masked of the secret custom args."""
        mask = self.log.masker.mask
        error, detail = mask(error), None if detail is None else mask(detail)
        with self.cond:
            self.failures += len(tasks)
        for t in tasks:
            if detail is None:
                t.finish(status, error=error)
            else:
                t.finish(status, json.dumps({"error": error, "traceback": detail}).encode())

    # --- status -------------------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """State for `view`: status (STARTING, IDLE, BUSY, FAILED, STOPPING), kernels, error."""
        with self.cond:
            kernels = [k.describe() for k in self.kernels.values()]
            ready = sum(1 for k in self.kernels.values() if k.state in ("idle", "busy"))
            busy = any(k.state == "busy" for k in self.kernels.values()) or bool(self.queue)
            if self.state == "failed":
                status = "FAILED"
            elif self.state in ("stopping", "stopped"):
                status = "STOPPING" if self.state == "stopping" else "STOPPED"
            elif ready < self.target_min:
                status = "STARTING"
            else:
                status = "BUSY" if busy else "IDLE"
            return {
                "status": status,
                "kernels": kernels,
                "queued": len(self.queue),
                "error": self.error,
                "error_log": self.error_log,
                "warnings": list(self.warnings),
                "requests": {"total": self.requests, "failed": self.failures},
                "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
            }
