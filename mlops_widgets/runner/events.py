"""Event records: state changes that are not template runs (a deployment started, stopped or
deleted, thresholds edited) leave a trace in the same audit trail as runs.

    record(workspace, "deploy.start", {"deployment_name": "demo"}, result={...})
    record(workspace, "deploy.delete", params, error="NotFoundError: no deployment demo")

    with recording(workspace, "deploy.stop", {"deployment_name": name}) as event:
        event.result = ops.deploy.stop(backend, name)   # recorded ok, or failed with the error

An event is a run record of kind "event": its action stands where a run has its template, its
status is ok or failed, its folder holds only run.json. `list_runs` lists both (`.kind` tells
them apart), `mlops runs list` shows the kind. Secrets never reach one: a parameter or result
named like a credential is stored masked, and values of this run's credential variables (and of
`secrets`, if the caller holds some) are masked wherever they appear.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import mlops_widgets
from mlops_widgets.errors import MlopsError
from mlops_widgets.masking import MASK, looks_like_credential
from mlops_widgets.runner.process import identity, user
from mlops_widgets.runner.secrets import Scrubber, ambient_secrets
from mlops_widgets.runner.trail import RunRecord, iso, save_run, utc_now
from mlops_widgets.settings import BACKEND
from mlops_widgets.workspace import Workspace

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


def _masked_names(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values under credential-looking keys replaced by the mask, at any depth."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if looks_like_credential(str(key)) and value not in (None, ""):
            out[key] = MASK
        elif isinstance(value, Mapping):
            out[key] = _masked_names(value)
        else:
            out[key] = value
    return out


def record(
    workspace: Workspace | str | os.PathLike[str] | None,
    action: str,
    params: Mapping[str, Any] | None = None,
    result: Mapping[str, Any] | None = None,
    error: str | BaseException | None = None,
    *,
    deployment_name: str | None = None,
    backend: str | None = None,
    secrets: Iterable[str] = (),
) -> RunRecord:
    """Record one event (`action`: a dotted name such as "deploy.start") with its parameters,
    its result or its error; returns the saved record. Raises MlopsError for a malformed action
    or values that are not plain data (JSON)."""
    if not _ACTION.match(action):
        raise MlopsError(f"event action {action!r} must be a dotted lower-case name, e.g. deploy.start")
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    scrub = Scrubber([*secrets, *ambient_secrets()])
    parameters = scrub(_masked_names(dict(params or {})))
    if deployment_name:
        parameters.setdefault("deployment_name", deployment_name)
    summary = None
    if error is not None:
        text = f"{type(error).__name__}: {error}" if isinstance(error, BaseException) else str(error)
        summary = {"summary": scrub(text), "heading": None}
    started = utc_now()
    short_id = uuid.uuid4().hex[:8]
    process = identity()
    rec = RunRecord(
        run_id=f"{started:%Y%m%dT%H%M%SZ}-{action}-{short_id}",
        short_id=short_id,
        template=action,
        template_hash="",
        parameters=parameters,
        secret_names=[],
        backend=backend or BACKEND.from_env(),
        workspace=str(ws.root),
        user=user(),
        host=process["host"],
        cwd=os.getcwd(),
        started_at=iso(started),
        ended_at=iso(started),
        duration_s=0.0,
        status="failed" if error is not None else "ok",
        error=summary,
        results=scrub(_masked_names(dict(result or {}))),
        rerun_of=None,
        package_version=mlops_widgets.__version__,
        papermill_version="",
        notebook_name="",
        template_copy_name="",
        kind="event",
    )
    try:
        rec.to_json()
    except (TypeError, ValueError) as exc:
        raise MlopsError(f"event {action}: parameters and result must be plain data (JSON): {exc}") from None
    return save_run(ws, rec, {})


@dataclass
class Outcome:
    """What the body of `recording` sets: the event's result."""

    result: Mapping[str, Any] | None = None


@contextlib.contextmanager
def recording(
    workspace: Workspace | str | os.PathLike[str] | None,
    action: str,
    params: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> Iterator[Outcome]:
    """Record the state change done in the `with` body: ok with `outcome.result`, or failed with
    the exception (which goes on). Keyword arguments as for `record`."""
    outcome = Outcome()
    try:
        yield outcome
    except (Exception, KeyboardInterrupt) as exc:
        with contextlib.suppress(MlopsError):  # the change's own error matters more
            record(workspace, action, params, error=exc, **kwargs)
        raise
    record(workspace, action, params, result=outcome.result, **kwargs)
