"""Long work of the server extension as jobs: each template run a browser starts (a re-run, a
clone's run, a deploy, an evaluation, a training submission) executes in a process of its own
(worker.py), never in the Jupyter server's, so no IBM SDK side effect and no crash of a run
touches the server; the workspace and the backend are the server's. `start` answers once the run is recorded (its id) or refused (the runner's
validation error); the job's progress, outcome and cancel are then asked by its id.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_widgets.app.jobs import new_id
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.settings import BACKEND, HOME

KEEP_ENDED = 200  # ended jobs remembered for their progress route, newest kept


@dataclass
class Job:
    """One job: its process, what it reported last, and how it ended."""

    id: str
    action: str
    process: asyncio.subprocess.Process
    run_id: str | None = None
    short_id: str | None = None
    progress: dict[str, Any] | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)  # the run is recorded, or the job ended
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def view(self) -> dict[str, Any]:
        """What the progress route answers."""
        return {
            "job_id": self.id,
            "action": self.action,
            "state": "ended" if self.ended.is_set() else "running",
            "run_id": self.run_id,
            "short_id": self.short_id,
            "progress": self.progress,
            "result": self.result,
            "error": None if self.error is None else self.error["message"],
        }


class Jobs:
    """The server's jobs, on its event loop."""

    def __init__(self, workspace_root: Path, backend_name: str) -> None:
        self.workspace_root, self.backend_name = workspace_root, backend_name
        self._jobs: dict[str, Job] = {}

    async def start(self, action: str, args: dict[str, Any], secrets: dict[str, str]) -> Job:
        """Spawn the job; return once its run is recorded. A refusal before the run starts (bad
        parameters, no such run) is raised as the runner's MlopsError, as a direct call would."""
        job_id = new_id()  # the core's: its progress in the change feed carries the same id
        env = {**os.environ, HOME.env: str(self.workspace_root), BACKEND.env: self.backend_name}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mlops_widgets.server.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        job = Job(job_id, action, process)
        spec = json.dumps({"job_id": job_id, "action": action, "args": args, "secrets": secrets}).encode()
        assert process.stdin is not None
        process.stdin.write(spec)
        await process.stdin.drain()
        process.stdin.close()
        self._remember(job)
        asyncio.get_running_loop().create_task(self._follow(job))
        await job.started.wait()
        if job.run_id is None and job.error is not None:
            error = job.error
            kind = NotFoundError if error.get("not_found") else MlopsError
            hint = error.get("hint")
            raise kind(error["message"], hint=None if hint is None else Hint(hint["action"], hint["text"]))
        return job

    async def _follow(self, job: Job) -> None:
        assert job.process.stdout is not None
        async for line in job.process.stdout:
            with contextlib.suppress(ValueError):
                message = json.loads(line)
                if "progress" in message:
                    job.progress = message["progress"]
                    job.run_id = job.run_id or job.progress.get("run_id")
                    job.short_id = job.short_id or (job.run_id or "").rpartition("-")[2] or None
                    job.started.set()
                elif "result" in message:
                    job.result = message["result"]
                elif "error" in message:
                    job.error = message["error"]
        code = await job.process.wait()
        if job.result is None and job.error is None:
            job.error = {"message": f"the job's process ended with exit code {code} before its run ended"}
        job.ended.set()
        job.started.set()

    def _remember(self, job: Job) -> None:
        self._jobs[job.id] = job
        ended = [j for j in self._jobs.values() if j.ended.is_set()]
        for old in ended[: max(0, len(ended) - KEEP_ENDED)]:
            del self._jobs[old.id]

    def get(self, job_id: str) -> Job:
        try:
            return self._jobs[job_id]
        except KeyError:
            raise NotFoundError(
                f"no job {job_id!r} (a job is remembered until the server restarts)"
            ) from None

    def cancel(self, job_id: str) -> Job:
        """Ask the job's run to stop (as Ctrl-C would: recorded cancelled)."""
        job = self.get(job_id)
        if not job.ended.is_set():
            with contextlib.suppress(ProcessLookupError):
                job.process.send_signal(signal.SIGINT)
        return job

    def close(self) -> None:
        """The server stops: runs still going are interrupted (and recorded so)."""
        for job in self._jobs.values():
            if not job.ended.is_set():
                with contextlib.suppress(ProcessLookupError):
                    job.process.send_signal(signal.SIGTERM)
