"""The monitor scheduler: a companion of the local service (`backends.local.companions`) that
evaluates each enabled monitor schedule at its slots, as a run of template
A5_Monitor_Evaluation, so every scheduled evaluation is in the audit trail.

- One evaluation at a time per monitor instance: a slot that comes while the instance's
  evaluation still runs (or waits in the queue) waits for it, then runs once.
- At most `max_evaluations` (a workspace setting, default the number of CPUs) evaluations run
  at once; the others wait in a queue, first come first served, shown by `mlops service status`
  and the schedule listings.
- Each evaluation takes the warm kernel kept while some schedule is enabled (runner.warm: a
  fresh kernel per run, started ahead), so it does not wait for a kernel start.
- A slot is claimed in the workspace database before it runs (`sched_slots`): slots missed
  while the service was down are caught up once (only the latest), never once per slot.
- A failed evaluation is recorded (a failed run, the monitor run's error) and the next slot
  tries again.
- After each evaluation, new alerts (and a failed evaluation) are queued to the workspace's
  notification channels and sent (`ops.notify`'s outbox retries what fails).
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

from mlops_widgets.backends import get_backend
from mlops_widgets.backends.monitoring_views import MonitoringViews
from mlops_widgets.monitors.schedule import is_enabled, latest_slot, min_interval_s, write_queue
from mlops_widgets.runner import kernel
from mlops_widgets.settings import MAX_EVALUATIONS, of_workspace
from mlops_widgets.workspace import Workspace, transaction

log = logging.getLogger(__name__)

TEMPLATE = "A5_Monitor_Evaluation"
TICK_S = 0.5
STOP_WAIT_S = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sched_slots (
    monitor_instance_id TEXT PRIMARY KEY, slot REAL NOT NULL, claimed_at TEXT NOT NULL);
"""


def scheduled(workspace: Workspace) -> list[dict[str, Any]]:
    """The monitor instances with an enabled schedule, with their deployment's name."""
    mon = MonitoringViews(get_backend("local", workspace).monitoring)
    names = {s.id: s.deployment_name for s in mon.subscriptions()}
    return [
        {
            "monitor_instance_id": inst.id,
            "deployment_name": names.get(inst.target_id),
            "monitor_id": inst.monitor_id,
            "schedule": dict(inst.schedule),
        }
        for inst in mon.instances()
        if inst.schedule and is_enabled(dict(inst.schedule))
    ]


def due(
    workspace: Workspace, now: datetime, enabled: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The enabled schedules (`enabled`, default: read now) whose latest slot at `now` has not
    been claimed yet, each with that `slot`."""
    enabled = scheduled(workspace) if enabled is None else enabled
    with workspace.tables(_SCHEMA) as conn:
        claimed = {r["monitor_instance_id"]: r["slot"] for r in conn.execute("SELECT * FROM sched_slots")}
    out, min_s = [], min_interval_s(workspace)
    for job in enabled:
        key = job["monitor_instance_id"]
        slot = latest_slot(job["schedule"], now, min_s, key=key)
        if slot is None or (key in claimed and slot.timestamp() <= claimed[key]):
            continue
        out.append({**job, "slot": slot})
    return out


def _public(job: dict[str, Any]) -> dict[str, Any]:
    """A queued or running evaluation as the listings show it."""
    out = {k: job[k] for k in ("monitor_instance_id", "deployment_name", "monitor_id")}
    for k in ("slot", "queued_at", "started_at"):
        if k in job:
            out[k] = job[k].isoformat()
    return out


def claim(workspace: Workspace, monitor_instance_id: str, slot: datetime) -> bool:
    """Take `slot` of the instance for this process; False when it (or a later one) was taken."""
    with workspace.tables(_SCHEMA) as conn, transaction(conn):
        return bool(
            conn.execute(
                "INSERT INTO sched_slots VALUES (?, ?, ?) ON CONFLICT (monitor_instance_id) DO UPDATE"
                " SET slot = excluded.slot, claimed_at = excluded.claimed_at WHERE excluded.slot > slot",
                (monitor_instance_id, slot.timestamp(), datetime.now(UTC).isoformat()),
            ).rowcount
        )


class MonitorScheduler:
    """Polls the schedules every TICK_S; due evaluations wait in a queue for one of `bound`
    worker threads (the workspace's max_evaluations, default the number of CPUs), so a burst of
    schedules never runs more kernels at once than the machine has cores. The queue and what
    runs are published in the workspace (`monitors.schedule.write_queue`) for the listings."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._queue: deque[dict[str, Any]] = deque()
        self._running: dict[str, dict[str, Any]] = {}
        self._threads: list[threading.Thread] = []
        self._warm_kept = False
        self.bound = 1
        self.workspace: Workspace | None = None

    def start(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.bound = int(of_workspace(workspace, MAX_EVALUATIONS) or os.cpu_count() or 1)
        self._publish()
        self._threads = [threading.Thread(target=self._loop, name="monitor-scheduler", daemon=True)]
        # kernel.in_thread: the event loop jupyter_client's blocking calls leave set for a worker
        # thread is closed with it.
        self._threads += [
            threading.Thread(target=kernel.in_thread, args=(self._work,), name=f"evaluate-{i}", daemon=True)
            for i in range(self.bound)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop polling; evaluations in progress are cancelled (recorded so) and waited for,
        queued ones are dropped (their slots are over; the next ones run)."""
        self._stop.set()
        with self._cond:
            self._queue.clear()
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(STOP_WAIT_S)
        self._warm(False)
        if self.workspace is not None:
            write_queue(self.workspace, None)

    def _loop(self) -> None:
        assert self.workspace is not None
        # Held open while polling: the short-lived connections of each tick then never close
        # the database's last connection, which would checkpoint and remove its WAL file twice
        # a second, under readers in other processes.
        keep = self.workspace.connect()
        try:
            while not self._stop.is_set():
                try:
                    self.tick(datetime.now(UTC))
                except Exception:
                    log.exception("monitor scheduler: checking the schedules failed")
                self._stop.wait(TICK_S)
        finally:
            keep.close()

    def tick(self, now: datetime) -> None:
        assert self.workspace is not None
        enabled = scheduled(self.workspace)
        self._warm(bool(enabled))
        for job in due(self.workspace, now, enabled):
            key = job["monitor_instance_id"]
            with self._cond:
                waiting = key in self._running or any(q["monitor_instance_id"] == key for q in self._queue)
            if waiting:
                continue  # one at a time: the slot stays unclaimed and runs once after
            if not job["deployment_name"] or not claim(self.workspace, key, job["slot"]):
                continue
            with self._cond:
                self._queue.append({**job, "queued_at": now})
                self._cond.notify()
            self._publish()

    def _work(self) -> None:
        """A worker: the queue's next evaluation, one after another, until stopped."""
        while True:
            with self._cond:
                while not self._queue and not self._stop.is_set():
                    self._cond.wait(1.0)
                if self._stop.is_set():
                    return
                job = self._queue.popleft()
                key = job["monitor_instance_id"]
                self._running[key] = {**job, "started_at": datetime.now(UTC)}
            self._publish()
            try:
                self._evaluate(job)
            finally:
                with self._cond:
                    self._running.pop(key, None)
                self._publish()

    def _publish(self) -> None:
        assert self.workspace is not None
        with self._cond:
            running, queued = list(self._running.values()), list(self._queue)
        try:
            write_queue(
                self.workspace,
                {
                    "bound": self.bound,
                    "running": [_public(j) for j in running],
                    "queued": [_public(j) for j in queued],
                },
            )
        except OSError:
            log.exception("monitor scheduler: the evaluation queue could not be written")

    def _warm(self, wanted: bool) -> None:
        """Keep a kernel started ahead (runner.warm) while some schedule is enabled, so a
        scheduled evaluation does not wait for a kernel start; none while nothing is scheduled."""
        from mlops_widgets.runner import warm

        if wanted != self._warm_kept:
            warm.keep_spare(wanted, workspace=self.workspace, backend="local")
            self._warm_kept = wanted

    def _evaluate(self, job: dict[str, Any]) -> None:
        from mlops_widgets.ops import notify
        from mlops_widgets.runner import run_template

        assert self.workspace is not None
        params = {
            "deployment_name": job["deployment_name"],
            "monitor_id": job["monitor_id"],
            "triggered_by": "schedule",
            "fail_on_error": True,
            "slot": job["slot"].isoformat(),
        }
        try:
            record = run_template(
                TEMPLATE, params, workspace=self.workspace, backend="local", cancel=self._stop
            )
            log.info(
                "scheduled evaluation of %s/%s (slot %s): run %s %s",
                job["deployment_name"],
                job["monitor_id"],
                params["slot"],
                record.run_id,
                record.status,
            )
            if record.status != "ok":
                notify.notify_evaluation_failed(
                    self.workspace,
                    deployment_name=job["deployment_name"],
                    monitor_id=job["monitor_id"],
                    run_id=record.run_id,
                    error=str((record.error or {}).get("message") or record.status),
                )
            notify.dispatch(self.workspace)  # the first attempt now; retries: the NotificationSender
        except Exception:
            log.exception("scheduled evaluation of %s/%s failed", job["deployment_name"], job["monitor_id"])
