"""What the REST endpoints answer, as plain functions of JSON-able values (the handlers only
move them over HTTP). Paths a client gives are relative to the server's root and must stay
inside it; secrets go to the runner and nowhere else.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.settings import LAB_OPEN_PANEL
from mlops_widgets.workspace import Workspace, inside

if TYPE_CHECKING:
    from mlops_widgets.app import App, RunRecord

RUN_LIMIT = 500


def workspace(chosen: str | None = None) -> Workspace:
    """The server's workspace: $MLOPS_HOME (set by `mlops lab`), else the default one; or the
    one a panel in a notebook works on (its links name it), which must be a workspace already:
    a name from the browser never makes one."""
    if not chosen:
        return Workspace()
    ws = Workspace(chosen)
    if not ws.is_workspace():
        raise NotFoundError(f"{chosen}: no mlops workspace there")
    return ws


def _app(chosen: str | None = None) -> App:
    """The core on the server's workspace (or the one a panel's link names) and backend."""
    from mlops_widgets.app import App

    return App(workspace(chosen))


def backend_name() -> str:
    """The server's backend: $MLOPS_BACKEND, else local."""
    return _app().backend_name


def info(root: Path) -> dict[str, Any]:
    app = _app()
    ws = app.workspace
    try:
        shown = ws.root.relative_to(root).as_posix()
    except ValueError:
        shown = str(ws.root)
    try:  # where the file browser shows the runs' notebooks, when it does
        runs: str | None = app.runs_folder().relative_to(root).as_posix()
    except ValueError:
        runs = None
    return {
        "workspace": str(ws.root),
        "workspace_shown": shown,
        "runs_shown": runs,
        "backend": app.backend_name,
        # `mlops lab` asks for the panel to open when JupyterLab starts
        "open_panel": LAB_OPEN_PANEL.from_env(),
    }


def deployments() -> list[dict[str, Any]]:
    """Deployments with their state and their unacknowledged alerts (for the badges); none yet
    when the workspace is new."""
    app = _app()
    if not app.workspace.db_path.exists():
        return []
    return [{**row.to_dict(), "alerts": app.alert_count(row.name)} for row in app.deployments()]


def runs(filters: dict[str, str | None]) -> list[dict[str, Any]]:
    """The audit trail, newest first, filtered as the Runs tab and `mlops runs list` do."""
    app = _app()
    if not app.workspace.db_path.exists():
        return []
    rows = app.runs(
        template=filters.get("template"),
        status=filters.get("status"),
        deployment_name=filters.get("deployment"),
        since=filters.get("since"),
        limit=RUN_LIMIT,
    )
    keep = (
        "run_id",
        "short_id",
        "template",
        "status",
        "started_at",
        "ended_at",
        "duration_s",
        "deployment_name",
        "error",
        "rerun_of",
        "kind",
    )
    return [{k: getattr(r, k) for k in keep} for r in rows]


def training() -> list[dict[str, Any]]:
    """The training jobs, newest first: their ids, states and times (what the status bar counts;
    the panel's Train tab shows the rest)."""
    keep = ("id", "state", "framework", "created_at", "started_at", "ended_at")
    return [{k: getattr(job, k) for k in keep} for job in _app().training_jobs()]


def run(run_id: str, ws: str | None = None) -> dict[str, Any]:
    """A run's record and what a re-run asks: its parameters (with each one's help) and the
    names of its secrets (never values: none are stored)."""
    app = _app(ws)
    record = app.run_record(run_id)
    data = record.to_dict()
    data.pop("dir")
    data.pop("notebook")
    data["deployment_name"] = record.deployment_name
    data["error"] = (record.error or {}).get("summary")
    try:
        declared = app.run_template_copy(record).parameters
    except MlopsError:
        declared = {}
    data["parameter_help"] = {n: p.help for n, p in declared.items() if n in record.parameters}
    return data


def run_notebook(run_id: str, ws: str | None = None) -> dict[str, Any]:
    """The executed notebook as it ran (already scrubbed of secrets), for the read-only view."""
    record = _app(ws).run_record(run_id)
    if record.kind == "event":
        raise NotFoundError(f"{record.short_id} is an event record ({record.template}): it has no notebook")
    try:
        return json.loads(record.notebook.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"run {record.short_id} has no executed notebook at {record.notebook}") from None


def _outcome(record: RunRecord) -> dict[str, Any]:
    return {
        "run_id": record.run_id,
        "short_id": record.short_id,
        "status": record.status,
        "error": (record.error or {}).get("summary"),
    }


def clone(run_id: str, root: Path, dest: str, ws: str | None = None) -> dict[str, str]:
    """An editable copy of the run beside the user's files: its template with its parameters."""
    target = inside(root, dest, "clone's path")
    path = _app(ws).clone_run(run_id, target)
    return {"path": path.relative_to(root).as_posix()}


def notebook_plan(root: Path, rel: str) -> dict[str, Any]:
    """The one action JupyterLab offers on a notebook (the core decides): "open" its run (an
    executed run's notebook), "clone" (run a clone's parameters cell) or "template" (run it as a
    template: the parameters its form asks)."""
    plan = _app().notebook_plan(inside(root, rel, "notebook"))
    if plan.run is not None:
        return {"action": plan.action, "run_id": plan.run.run_id, "short_id": plan.run.short_id}
    if plan.clone is not None:
        clone = plan.clone
        return {
            "action": plan.action,
            "origin": clone.origin,
            "parameters": clone.parameters,
            "secret_names": clone.secret_names,
        }
    assert plan.template is not None
    template = plan.template
    return {
        "action": plan.action,
        "template": template.name,
        "fields": [p.to_dict() for p in template.parameters.values()],
        "secret_names": template.secret_names,
    }


def notebook_check(root: Path, rel: str, params: dict[str, str]) -> dict[str, Any]:
    """The form's texts for a notebook run, checked as the run would check them: each field's
    problem, for the form to show while the user types."""
    return {"problems": _app().notebook_problems(inside(root, rel, "notebook"), params)}


def job(
    job_id: str,
    action: str,
    args: dict[str, Any],
    secrets: dict[str, str],
    *,
    progress: Any = None,
    cancel: threading.Event | None = None,
) -> dict[str, Any]:
    """Run one job of the server's (handlers.JOB_ROUTES' actions) through the core, in the
    server's workspace and backend; the run is in the audit trail whatever its outcome, and its
    progress in the change feed under `job_id`. Runs in a job's own process (worker.py), never in
    the Jupyter server's. Secrets given empty are left out (the form's blank fields)."""
    from mlops_widgets.app import jobs

    given = {k: v for k, v in secrets.items() if v}
    kwargs = dict(args)
    if action == "rerun":
        kwargs["secrets"] = given
    elif action == "notebook_run":
        root = Path(kwargs.pop("root"))
        path = inside(root, kwargs["path"], "notebook")
        action, kwargs = (
            "run_notebook",
            {"path": path, "params": kwargs.get("params") or {}, "cwd": os.fspath(root)},
        )
        kwargs["secrets"] = given
    elif action == "train_submit":
        kwargs["secrets"] = given
    elif action == "deploy_create":  # secret custom args come apart from the others, never logged
        kwargs["custom_args"] = {**(kwargs.get("custom_args") or {}), **given}
    record = jobs.execute(_app(), job_id, action, kwargs, progress=progress, cancel=cancel)
    return {**_outcome(record), "results": record.results}
