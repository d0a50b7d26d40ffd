"""A kernel's pipe: the batches sent to one kernel and not answered yet.

The pool's thread of a kernel (the feeder, `pool.py`) sends a batch as soon as the kernel has
room for it, also while the kernel runs the batch before (at most `task_pipe_size` ahead): the
next frame then waits in the channel, and the kernel reads it the moment it has answered, with no
round trip through the service in between. A reader thread per kernel takes the answers in order
(frames keep their order on the channel), makes room at once, then hands each task its answer.

Only the head batch runs; the task timeout counts from when the reader starts waiting for its
answer. When the kernel dies or runs past the timeout, the head batch fails; the batches behind
it never ran and go back to the deployment's queue (once: a batch that comes back again fails).
Sends go through a socket object of their own on the same channel, never under the reader's
timeout, so that a large body waiting for the busy kernel to read it is never cut in two.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_widgets.backends.local.inference.kernel_path import _mlops_wire as wire
from mlops_widgets.backends.local.inference.kernel_proc import KernelProc
from mlops_widgets.backends.local.inference.tasks import Task

if TYPE_CHECKING:
    from mlops_widgets.backends.local.inference.pool import KernelPool

log = logging.getLogger("mlops.inference")


@dataclass(eq=False)
class Batch:
    tasks: list[Task]
    sent: bool = False  # its frame may have reached the kernel (set before the write)


@dataclass(eq=False)
class KernelPipe:
    """The batches in flight to kernel `k`; every field is guarded by the pool's condition."""

    pool: KernelPool
    k: KernelProc
    inflight: deque[Batch] = field(default_factory=deque)
    closed: bool = False  # the feeder sends no more: the reader ends once the pipe is empty
    dead: bool = False  # the reader met the kernel's end (death, timeout): nothing more is sent
    out: socket.socket | None = None
    reader: threading.Thread | None = None

    def open(self) -> None:
        """Set the channel's timeouts and start the reader (the kernel is ready)."""
        sock = self.k.sock
        assert sock is not None
        # The file status flags are shared by both socket objects: the reader's one polls under
        # its timeout before each read, the sender's blocks; blocking is set last.
        sock.settimeout(self.pool.timeout)
        self.out = socket.socket(fileno=os.dup(sock.fileno()))
        self.out.setblocking(True)
        self.reader = threading.Thread(target=self._read, name=f"answers-{self.k.pod}", daemon=True)
        self.reader.start()

    def room(self) -> bool:
        return not self.dead and len(self.inflight) <= self.pool.pipe_size

    def send(self, batch: Batch) -> bool:
        """Write `batch` (already in `inflight`) to the kernel; False when the channel is gone
        (the reader then meets the end and settles every batch in flight)."""
        assert self.out is not None
        header = {"op": "tasks", "tasks": [{"id": t.id, "uuid": t.uuid} for t in batch.tasks]}
        # Marked before the write: a kernel may read the frame, run it and die before this
        # thread runs again, and a batch it ran must fail, never go back to the queue.
        with self.pool.cond:
            batch.sent = True
        try:
            wire.send(self.out, header, [t.body for t in batch.tasks])
        except OSError:
            with self.pool.cond:
                batch.sent = False  # not wholly written: the kernel cannot have run it
            self.k.kill()  # so that the reader meets the end at once
            return False
        return True

    def close(self) -> None:
        """The feeder is done: wait for the answers still due, then release the sender."""
        with self.pool.cond:
            self.closed = True
            self.pool.cond.notify_all()
        if self.reader is not None:
            self.reader.join()
        if self.out is not None:
            with contextlib.suppress(OSError):
                self.out.close()

    # --- the reader ------------------------------------------------------------------------

    def _read(self) -> None:
        try:
            while (batch := self._next()) is not None:
                try:
                    msg = wire.recv(self.k.reader)
                except TimeoutError:
                    self._end("timeout")
                    return
                except OSError:
                    msg = None
                if msg is None:
                    self._end("died in task")
                    return
                with self.pool.cond:
                    self.inflight.popleft()
                    if not self.inflight:
                        self.k.state = "idle"
                    self.k.tasks_done += len(batch.tasks)
                    self.pool.cond.notify_all()
                self.k.pump()  # what the task printed is in the log before its answer leaves
                self._answer(batch.tasks, *msg)
        except Exception as exc:  # no caller may wait for an answer that cannot come
            log.exception("kernel %s of %s: unexpected error reading answers", self.k.pod, self.pool.name)
            self.k.kill()
            with self.pool.cond:
                self.dead, batches = True, list(self.inflight)
                self.inflight.clear()
                self.pool.cond.notify_all()
            for b in batches:
                self.pool.fail_tasks(b.tasks, 500, error=f"internal error of the inference service: {exc!r}")

    def _next(self) -> Batch | None:
        with self.pool.cond:
            while not self.inflight and not self.closed:
                self.pool.cond.wait()
            return self.inflight[0] if self.inflight else None

    def _answer(self, tasks: list[Task], reply: dict[str, Any], blobs: list[bytes]) -> None:
        if reply.get("op") == "failed":
            error = (reply.get("error") or "").strip()
            last = error.splitlines()[-1] if error else "unknown error"
            self.pool.fail_tasks(tasks, 500, error=f"on_task_invoke raised {last}", detail=error)
            return
        flags = reply.get("set", [])
        for t, is_set, blob in zip(tasks, flags, blobs, strict=True):
            if is_set:
                t.finish(200, blob)
        unset = [t for t, is_set in zip(tasks, flags, strict=True) if not is_set]
        if unset:
            self.pool.fail_tasks(
                unset, 500, error="the kernel set no output for this task (set_output_data was not called)"
            )

    def _end(self, reason: str) -> None:
        """The kernel is gone (or past the timeout): fail the batch it ran, send the others
        back to the queue."""
        pool, k = self.pool, self.k
        with pool.cond:
            self.dead, batches = True, list(self.inflight)
            self.inflight.clear()
            if k.exit_reason != "internal error":  # the feeder's own failure says more
                k.exit_reason = reason
            head = batches[0] if batches and batches[0].sent else None
            pool.cond.notify_all()
        pool.requeue([t for b in batches if b is not head for t in b.tasks], k.pod)
        if head is None:
            return
        if reason == "timeout":
            k.kill()
            pool.fail_tasks(
                head.tasks,
                504,
                error=(
                    f"the task ran past task_execution_timeout ({pool.timeout:g} s) on kernel {k.pod} of "
                    f"{pool.name}; that kernel was replaced"
                ),
            )
            return
        code = k.exit_code(2.0)
        if pool.state != "started":
            error = f"deployment {pool.name} was stopped while this task ran"
            pool.fail_tasks(head.tasks, 503, error=error)
        elif k.memory_used_mb is not None:
            error = (
                f"kernel {k.pod} of {pool.name} {k.memory_message()} while running this task; it was replaced"
            )
            pool.fail_tasks(head.tasks, 500, error=error)
        else:
            error = (
                f"kernel {k.pod} of {pool.name} died (exit code {code}) while running this task; "
                "the deployment's kernel log has its output"
            )
            pool.fail_tasks(head.tasks, 500, error=error)
