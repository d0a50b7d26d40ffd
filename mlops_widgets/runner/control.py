"""A running template's control: progress over its code cells, and stopping it (cancel, timeout,
a signal to the process) by interrupting its kernel, then killing it if it does not stop.

`RunControl` is what the papermill engine calls around each cell (its hooks).
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, Any

from mlops_widgets.runner import kernel
from mlops_widgets.runner.templates import cell_heading

# Seconds a stopped cell gets after the interrupt before its kernel is killed.
INTERRUPT_GRACE_S = 5.0


@dataclass(frozen=True)
class ProgressEvent:
    """What a running template is doing: code cells done out of total, the current step."""

    run_id: str
    template: str
    status: str  # starting, running, ok, failed, cancelled, interrupted
    done: int
    total: int
    heading: str | None
    cell_index: int | None = None


ProgressCallback = Callable[[ProgressEvent], None]


class Stopped(Exception):
    """Raised at a cell boundary once the run is cancelled, interrupted or past its timeout."""


class RunControl:
    """Progress events and stopping for one run; the engine's hooks.

    `reason` becomes "cancelled" (the caller's event or Ctrl-C), "timeout" or "interrupted" (a
    signal ended the process); a watcher thread then interrupts the kernel and kills it after
    INTERRUPT_GRACE_S."""

    def __init__(
        self,
        nb: Any,
        run_id: str,
        template: str,
        callback: ProgressCallback | None,
        cancel: threading.Event | None,
        timeout: float | None,
        kernel_log: IO[bytes] | None = None,
    ) -> None:
        self.run_id, self.template, self.callback = run_id, template, callback
        self.cancel, self.timeout = cancel, timeout
        self.code = {i for i, c in enumerate(nb.cells) if c.cell_type == "code"}
        self.headings: dict[int, str | None] = {}
        heading = None
        for i, cell in enumerate(nb.cells):
            heading = cell_heading(cell) or heading
            self.headings[i] = heading
        self.done = 0
        self.reason: str | None = None
        self.km: Any = None
        self.kernel_log: IO[bytes] = kernel_log or tempfile.TemporaryFile()
        self.current_cell: int | None = None
        self.deadline: float | None = None  # the timeout counts from the first cell (kernel started)
        self.finished = threading.Event()
        self._stop = threading.Event()

    @property
    def total(self) -> int:
        return len(self.code)

    def emit(self, status: str, heading: str | None, cell_index: int | None = None) -> None:
        """A progress event to the caller; a caller that can no longer be written to (a closed
        terminal after a hang-up) stops getting them, the run goes on."""
        if self.callback is None:
            return
        try:
            self.callback(
                ProgressEvent(self.run_id, self.template, status, self.done, self.total, heading, cell_index)
            )
        except OSError:
            self.callback = None

    # the engine's hooks

    def kernel_started(self, km: Any) -> None:
        self.km = km

    def cell_start(self, index: int) -> None:
        if self.deadline is None and self.timeout:
            self.deadline = time.monotonic() + self.timeout
        self.check()
        self.current_cell = index
        if index in self.code:
            self.emit("running", self.headings.get(index), index)

    def cell_complete(self, index: int) -> None:
        if self.current_cell == index and index in self.code:  # not a cell a stop kept from starting
            self.done += 1
            self.emit("running", self.headings.get(index), index)

    # stopping

    def check(self) -> None:
        if self.reason is None and self.cancel is not None and self.cancel.is_set():
            self.reason = "cancelled"
        if self.reason:
            raise Stopped(self.reason)

    def stop(self, reason: str) -> None:
        """Stop the run (from any thread, a signal handler included): the first reason wins."""
        self.reason = self.reason or reason
        self._stop.set()

    def watch(self) -> None:
        """The watcher thread's body: waits for a stop, the cancel event or the deadline."""
        while not self.finished.wait(0.05):
            if self.cancel is not None and self.cancel.is_set():
                self.stop("cancelled")
            elif self.deadline is not None and time.monotonic() >= self.deadline:
                self.stop("timeout")
            if self._stop.is_set():
                self._stop_kernel()
                return

    def _stop_kernel(self) -> None:
        proc = kernel.kernel_process(self.km)
        if proc is None or proc.poll() is not None:
            return  # not started yet: check() stops the run before its first cell
        # Its reaper leads the kernel's process group (a session of its own) and ignores SIGINT.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGINT)
        if not self.finished.wait(INTERRUPT_GRACE_S) and proc.poll() is None:
            kernel.stop_tree(self.km)

    def kernel_log_tail(self, lines: int = 20) -> str:
        self.kernel_log.seek(0)
        return "\n".join(self.kernel_log.read().decode(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.kernel_log.close()
