"""The local service over a long life: scheduled evaluations leave nothing behind (threads, file
descriptors), and the service comes back when it dies."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import add_entry, write_masks

from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.local.inference import service_info
from mlops_widgets.monitors import schedule as sched
from mlops_widgets.ops import monitor, schedule
from mlops_widgets.runner import list_runs

SEG, GEN = "segmentation_metrics", "generic_metrics"
WAIT_S = 300.0  # a failsafe for a loaded machine, not a timing: every wait ends on an event


def wait_for(what: str, check: Callable[[], Any], wait_s: float = WAIT_S) -> Any:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture
def ready(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """A deployment `demo` with both monitors attached; schedules may repeat every second."""
    monkeypatch.setenv(sched.MIN_ENV, "1")
    write_masks(backend.workspace.root / "volumes" / "vol" / "eval", 4, seed=0)
    monitor.provider_create(backend)
    add_entry(backend)
    monitor.monitor_create(backend, "demo")
    return backend


def _finished(backend: Backend) -> int:
    runs = list_runs(backend.workspace, template="A5_Monitor_Evaluation")
    return sum(r.status in ("ok", "failed") for r in runs)


def _idle_usage(backend: Backend, pid: int) -> tuple[int, int]:
    """The service's threads and open file descriptors once no evaluation runs and they stayed
    the same for 3 s (kernels of finished runs are shut down in the background)."""
    wait_for(
        "the evaluations to finish",
        lambda: (
            not [
                r
                for r in list_runs(backend.workspace, template="A5_Monitor_Evaluation")
                if r.status == "running"
            ]
        ),
    )
    seen: list[tuple[int, int]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (len(seen) < 15 or len(set(seen[-15:])) > 1):
        seen.append((len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))))
        time.sleep(0.2)
    return seen[-1]


def test_scheduled_evaluations_leave_no_threads_or_file_descriptors(ready: Backend) -> None:
    """Each evaluation once left its kernel client's ZMQ context (2 threads), its heartbeat
    thread and about 15 descriptors in the service, then its thread's event loop (an epoll and
    a socket pair): 40 evaluations would leave over 100 threads or 100 descriptors more."""
    schedule.set_schedule(ready, "demo", every="1s")
    pid = service_info(ready.workspace)["pid"]
    wait_for("10 scheduled evaluations", lambda: _finished(ready) >= 10)
    schedule.set_schedule(ready, "demo", paused=True)
    threads_before, fds_before = _idle_usage(ready, pid)
    done_before = _finished(ready)
    schedule.set_schedule(ready, "demo", paused=False)
    wait_for("40 more scheduled evaluations", lambda: _finished(ready) >= done_before + 40)
    schedule.set_schedule(ready, "demo", paused=True)
    threads_after, fds_after = _idle_usage(ready, pid)
    assert service_info(ready.workspace)["pid"] == pid  # the same service all along
    assert threads_after <= threads_before + 2, (threads_before, threads_after)
    assert fds_after <= fds_before + 4, (fds_before, fds_after)
