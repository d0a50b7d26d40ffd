"""The REST endpoints under `<base_url>mlops/`: Jupyter's APIHandler gives them the server's
authentication (token or cookie) and XSRF checks on every request that changes something.

Every read works on a worker thread (`_call`): the embedded backend blocks, and the server's
event loop must keep serving JupyterLab meanwhile. Long work (a re-run, a clone's run, a deploy,
an evaluation, a training submission: each a template run of the core) is a job (jobs.py) in a
process of its own: starting one answers 202 with its job and run ids, `jobs/<id>` its progress and
outcome, `jobs/<id>/cancel` stops it. `events?since=SEQ` follows the workspace's change feed
(a long poll: it answers as soon as a change numbered after SEQ exists, whatever process made it).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, overload

from jupyter_server.base.handlers import APIHandler
from tornado import web

from mlops_widgets import events_feed
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.server import views
from mlops_widgets.server.jobs import Jobs

RUN = r"(?P<run>[0-9A-Za-z_.-]+)"  # event ids hold their dotted action
NAME = r"(?P<name>[0-9A-Za-z_.-]+)"  # a deployment name
JOB = r"(?P<job>[0-9a-f]+)"
FEED_CHECK_S = 0.2  # how often a waiting follower's request looks at the feed
FEED_WAIT_S = 25.0  # a follower with nothing new is answered empty after this (it asks again)


class _Base(APIHandler):
    """JSON in, JSON out; an MlopsError becomes a 400 whose body carries its message and hint."""

    @property
    def root(self) -> Path:
        return Path(self.settings["server_root_dir"]).expanduser().resolve()

    def body(self) -> dict[str, Any]:
        try:
            data = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise web.HTTPError(400, f"the request body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise web.HTTPError(400, "the request body must be a JSON object")
        return data

    def _refuse(self, exc: MlopsError) -> None:
        self.set_status(404 if isinstance(exc, NotFoundError) else 400)
        hint = exc.hint
        self.finish(
            json.dumps(
                {
                    "message": exc.message,
                    "hint": None if hint is None else {"action": hint.action, "text": hint.text},
                }
            )
        )

    async def _call(self, fn: Any, *args: Any) -> None:
        try:
            result = await asyncio.to_thread(fn, *args)
        except MlopsError as exc:
            self._refuse(exc)
            return
        self.finish(json.dumps(result, default=str))

    @property
    def jobs(self) -> Jobs:
        return self.settings["mlops_jobs"]

    async def _start(self, action: str, args: dict[str, Any], secrets: dict[str, str]) -> None:
        """Start a job: 202 with its view once its run is recorded, else the refusal."""
        try:
            job = await self.jobs.start(action, args, secrets)
        except MlopsError as exc:
            self._refuse(exc)
            return
        self.set_status(202)
        self.finish(json.dumps(job.view(), default=str))


def text(data: dict[str, Any], key: str, *, required: bool = False) -> str | None:
    """The body's `key` as a string (None when absent and not `required`), else 400."""
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise web.HTTPError(400, f"{key} must be a string, got {_kind(value)}")
    return value


def mapping(data: dict[str, Any], key: str, *, strings: bool = False) -> dict[str, Any]:
    """The body's `key` as a JSON object (empty when absent); with `strings`, every value a
    string (secrets), else 400."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise web.HTTPError(400, f"{key} must be a JSON object (name: value), got {_kind(value)}")
    if strings:
        bad = sorted(k for k, v in value.items() if not isinstance(v, str))
        if bad:
            raise web.HTTPError(400, f"{key}: the value of {', '.join(bad)} must be a string")
    return value


def number(data: dict[str, Any], key: str) -> float:
    """The body's `key` as a number of 0 or more, else 400."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise web.HTTPError(400, f"{key} must be a number of 0 or more, got {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true or false"}.get(
        type(value), "null" if value is None else "a number"
    )


class InfoHandler(_Base):
    @web.authenticated
    async def get(self) -> None:
        await self._call(views.info, self.root)


class DeploymentsHandler(_Base):
    @web.authenticated
    async def get(self) -> None:
        await self._call(views.deployments)

    @web.authenticated
    async def post(self) -> None:
        """Deploy a staged model: a job (the core's deploy_create)."""
        data = self.body()
        args: dict[str, Any] = {
            "name": text(data, "name", required=True),
            "model_asset_id": text(data, "model_asset_id", required=True),
            "kernel_filename": text(data, "kernel_filename"),
            "custom_args": mapping(data, "custom_args", strings=True),
        }
        for key in ("wait_timeout", "connection_timeout"):
            if data.get(key) is not None:
                args[key] = number(data, key)
        await self._start("deploy_create", args, mapping(data, "secrets", strings=True))


class EvaluateHandler(_Base):
    @web.authenticated
    async def post(self, name: str) -> None:
        """Evaluate a deployment's monitors (or one) now: a job (the core's evaluate)."""
        data = self.body()
        await self._start("evaluate", {"name": name, "monitor_id": text(data, "monitor_id")}, {})


class TrainingHandler(_Base):
    @web.authenticated
    async def get(self) -> None:
        await self._call(views.training)

    @web.authenticated
    async def post(self) -> None:
        """Submit a training job: a job (the core's train_submit)."""
        data = self.body()
        await self._start(
            "train_submit", {"params": mapping(data, "params")}, mapping(data, "secrets", strings=True)
        )


class RunsHandler(_Base):
    @web.authenticated
    async def get(self) -> None:
        filters = {
            k: self.get_query_argument(k, "") or None for k in ("template", "status", "deployment", "since")
        }
        await self._call(views.runs, filters)


class RunHandler(_Base):
    @web.authenticated
    async def get(self, run: str) -> None:
        await self._call(views.run, run, self.get_query_argument("workspace", None))


class RunNotebookHandler(_Base):
    @web.authenticated
    async def get(self, run: str) -> None:
        await self._call(views.run_notebook, run, self.get_query_argument("workspace", None))


class RerunHandler(_Base):
    @web.authenticated
    async def post(self, run: str) -> None:
        data = self.body()
        if data.get("workspace") is not None:
            raise web.HTTPError(400, "workspace: a run's workspace is the server's, it cannot be named")
        params, secrets = mapping(data, "params"), mapping(data, "secrets", strings=True)
        await self._start("rerun", {"run_id": run, "params": params}, secrets)


class CloneHandler(_Base):
    @web.authenticated
    async def post(self, run: str) -> None:
        data = self.body()
        await self._call(
            views.clone, run, self.root, text(data, "dest", required=True), text(data, "workspace")
        )


class NotebookPlanHandler(_Base):
    @web.authenticated
    async def get(self) -> None:
        await self._call(views.notebook_plan, self.root, self.get_query_argument("path", ""))


class NotebookCheckHandler(_Base):
    @web.authenticated
    async def post(self) -> None:
        data = self.body()
        path = text(data, "path", required=True)
        await self._call(views.notebook_check, self.root, path, mapping(data, "params", strings=True))


class NotebookRunHandler(_Base):
    @web.authenticated
    async def post(self) -> None:
        data = self.body()
        args = {
            "root": str(self.root),
            "path": text(data, "path", required=True),
            "params": mapping(data, "params", strings=True),
        }
        await self._start("notebook_run", args, mapping(data, "secrets", strings=True))


class JobHandler(_Base):
    @web.authenticated
    async def get(self, job: str) -> None:
        try:
            self.finish(json.dumps(self.jobs.get(job).view(), default=str))
        except MlopsError as exc:
            self._refuse(exc)


class JobCancelHandler(_Base):
    @web.authenticated
    async def post(self, job: str) -> None:
        try:
            self.set_status(202)
            self.finish(json.dumps(self.jobs.cancel(job).view(), default=str))
        except MlopsError as exc:
            self._refuse(exc)


class EventsHandler(_Base):
    """The change feed as a long poll. Without `since`: at once, no changes and the latest seq
    (where a new follower starts). With `since=SEQ`: the changes after SEQ as soon as there is
    one, else none after `wait` seconds (at most FEED_WAIT_S); each carries its seq and the
    answer's `last` is where the follower resumes, after a dropped connection too."""

    # Every open page follows the feed, all day: not activity to Jupyter's idle culling (nor to
    # a hub's), as JupyterLab's own status polls are not.
    _track_activity = False
    _gone = False

    def on_connection_close(self) -> None:
        self._gone = True

    @web.authenticated
    async def get(self) -> None:
        after = self._number("since", None)
        wait = min(self._number("wait", FEED_WAIT_S) or 0.0, FEED_WAIT_S)
        ws = views.workspace()
        try:
            if after is None:
                last = await asyncio.to_thread(events_feed.last_seq, ws)
                self.finish(json.dumps({"events": [], "last": last}))
                return
            deadline = asyncio.get_running_loop().time() + wait
            while True:
                changes = await asyncio.to_thread(events_feed.since, ws, int(after))
                if changes or self._gone or asyncio.get_running_loop().time() >= deadline:
                    break
                await asyncio.sleep(FEED_CHECK_S)
        except MlopsError as exc:  # the workspace cannot be read: said as any refusal
            self._refuse(exc)
            return
        if self._gone:
            return
        last = changes[-1].seq if changes else int(after)
        self.finish(json.dumps({"events": [c.to_dict() for c in changes], "last": last}))

    @overload
    def _number(self, name: str, default: float) -> float: ...

    @overload
    def _number(self, name: str, default: None) -> float | None: ...

    def _number(self, name: str, default: float | None) -> float | None:
        """The query argument `name` as a number of 0 or more (400 otherwise), else `default`."""
        value = self.get_query_argument(name, None)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise web.HTTPError(400, f"{name} must be a number, got {value!r}") from None
        if number < 0:
            raise web.HTTPError(400, f"{name} must be 0 or more, got {value!r}")
        return number


def routes(base_url: str) -> list[tuple[str, type]]:
    prefix = base_url.rstrip("/") + "/mlops/"
    return [
        (prefix + "info", InfoHandler),
        (prefix + "deployments", DeploymentsHandler),
        (prefix + f"deployments/{NAME}/evaluate", EvaluateHandler),
        (prefix + "training", TrainingHandler),
        (prefix + "runs", RunsHandler),
        (prefix + f"runs/{RUN}", RunHandler),
        (prefix + f"runs/{RUN}/notebook", RunNotebookHandler),
        (prefix + f"runs/{RUN}/rerun", RerunHandler),
        (prefix + f"runs/{RUN}/clone", CloneHandler),
        (prefix + "notebooks/plan", NotebookPlanHandler),
        (prefix + "notebooks/run", NotebookRunHandler),
        (prefix + "notebooks/check", NotebookCheckHandler),
        (prefix + f"jobs/{JOB}", JobHandler),
        (prefix + f"jobs/{JOB}/cancel", JobCancelHandler),
        (prefix + "events", EventsHandler),
    ]
