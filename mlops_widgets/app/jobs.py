"""Long work as jobs: a template run, a stage, a deploy, an evaluation or a training submission
started through `App.start` returns at once with a `Job` handle (id, progress, cancel, wait).

Every job publishes its progress to the workspace's change feed (kind "progress", subject the
job id; payload: action, state running|ended, run_id, status, done, total, heading), so any front end
follows it live whatever process runs it: a thread of this process (`start`), or the server
extension's worker process (`execute`, the same code in the main thread, where the runner's
signal handling makes a SIGINT a recorded cancel).
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_widgets import events_feed
from mlops_widgets.errors import MlopsError
from mlops_widgets.runner.trail import RunRecord

if TYPE_CHECKING:
    from mlops_widgets.app import App
    from mlops_widgets.runner import ProgressEvent

# The core's methods that may run as a job: each takes `progress` and `cancel` and returns the
# record of the template run it made.
JOB_ACTIONS = frozenset(
    {
        "run",
        "rerun",
        "run_notebook",
        "stage",
        "stage_from_job",
        "deploy_create",
        "monitor_create",
        "evaluate",
        "train_submit",
    }
)


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def execute(
    app: App,
    job_id: str,
    action: str,
    kwargs: dict[str, Any],
    *,
    progress: Callable[[ProgressEvent], None] | None = None,
    cancel: threading.Event | None = None,
) -> RunRecord:
    """Run `action` (one of JOB_ACTIONS) on `app` now, publishing its progress as job `job_id`;
    raises the action's MlopsError when it is refused before its run starts."""
    if action not in JOB_ACTIONS:
        raise MlopsError(f"{action!r} is not an action that runs as a job ({', '.join(sorted(JOB_ACTIONS))})")
    ws = app.workspace
    seen: list[str] = []  # the run's id, once it started

    def follow(event: ProgressEvent) -> None:
        seen[:] = [event.run_id]
        events_feed.publish(
            ws,
            "progress",
            job_id,
            action=action,
            state="running",
            run_id=event.run_id,
            status=event.status,
            done=event.done,
            total=event.total,
            heading=event.heading,
        )
        if progress is not None:
            progress(event)

    try:
        record: RunRecord = getattr(app, action)(**kwargs, progress=follow, cancel=cancel)
    except BaseException:  # refused before its run started, or an error after it (a lost stage)
        run_id = seen[0] if seen else None
        status = "error" if seen else "refused"
        events_feed.publish(
            ws, "progress", job_id, action=action, state="ended", run_id=run_id, status=status
        )
        raise
    events_feed.publish(
        ws, "progress", job_id, action=action, state="ended", run_id=record.run_id, status=record.status
    )
    return record


class Job:
    """A job running in a thread of this process: `progress` (the latest event, None before the
    first), `cancel()` (the run stops at its next cell, recorded cancelled), `wait()` (its record,
    or the refusal raised)."""

    def __init__(self, app: App, action: str, kwargs: dict[str, Any]) -> None:
        self.id = new_id()
        self.action = action
        self.progress: ProgressEvent | None = None
        self._cancel = threading.Event()
        self._record: RunRecord | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._main, args=(app, kwargs), name=f"job-{self.id}", daemon=True
        )
        self._thread.start()

    def _main(self, app: App, kwargs: dict[str, Any]) -> None:
        def seen(event: ProgressEvent) -> None:
            self.progress = event

        try:
            self._record = execute(app, self.id, self.action, kwargs, progress=seen, cancel=self._cancel)
        except BaseException as exc:  # handed to wait()
            self._error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> RunRecord:
        """The run's record once the job ended; TimeoutError if it is still going after `timeout`."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"job {self.id} ({self.action}) is still running")
        if self._error is not None:
            raise self._error
        assert self._record is not None
        return self._record

    def view(self) -> dict[str, Any]:
        """Its state as JSON-able values."""
        return {
            "job_id": self.id,
            "action": self.action,
            "state": "ended" if self.done else "running",
            "progress": None if self.progress is None else dataclasses.asdict(self.progress),
        }
