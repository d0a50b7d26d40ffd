"""Running a template, as a straight pipeline: validate, prepare secrets, record the run as
running, execute, scrub, save. Whatever ends the run (ok, a failed cell, cancel, timeout, a
signal to the process) it is recorded; a process killed outright leaves it `running`, and the
next reader of the index finishes it as interrupted (see trail.reconcile).

Execution goes through papermill's engine registry to the `mlops` engine (runner/engine.py),
with the kernel's environment and the progress/cancel hooks as its arguments; papermill never
writes the notebook (no output path), so nothing unscrubbed reaches the disk.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlops_widgets
from mlops_widgets.backends import backend_name as resolve_backend_name
from mlops_widgets.backends.base import Backend
from mlops_widgets.errors import MlopsError
from mlops_widgets.runner import kernel, lifecycle, prepare, warm
from mlops_widgets.runner.control import ProgressCallback, ProgressEvent, RunControl
from mlops_widgets.runner.notebook import mark_error, outcome, parameterize, template_notebook
from mlops_widgets.runner.params import validate_parameters
from mlops_widgets.runner.process import identity, user
from mlops_widgets.runner.record import read_raised, read_results
from mlops_widgets.runner.secrets import SECRET_ENV_PREFIX, from_environment, scrub_notebook
from mlops_widgets.runner.templates import Template, get_template
from mlops_widgets.runner.trail import (
    RESULTS_FILE,
    TEMPLATE_COPY,
    RunRecord,
    get_run,
    iso,
    save_run,
    update_run,
    utc_now,
)
from mlops_widgets.workspace import Workspace

log = logging.getLogger(__name__)

__all__ = ["ProgressEvent", "rerun", "run_template"]


def _resolve_backend(
    backend: str | Backend | None, workspace: Workspace | str | os.PathLike[str] | None
) -> tuple[str, Workspace]:
    ws: Workspace | str | os.PathLike[str] | None
    if isinstance(backend, Backend):
        ws = backend.workspace if workspace is None else workspace
        name = backend.name
    else:
        ws, name = workspace, resolve_backend_name(backend)
    return name, ws if isinstance(ws, Workspace) else Workspace(ws)


def _engine() -> Any:
    """papermill's engine registry with the `mlops` engine in it (from its entry point; an
    install made before the entry point existed gets it registered here)."""
    from papermill.engines import papermill_engines
    from papermill.exceptions import PapermillException

    from mlops_widgets.runner.engine import ENGINE_NAME, MlopsEngine

    try:
        papermill_engines.get_engine(ENGINE_NAME)
    except PapermillException:
        papermill_engines.register(ENGINE_NAME, MlopsEngine)
    return papermill_engines


def _execute(
    nb: Any,
    *,
    kernel_name: str,
    base_env: dict[str, str],
    run_env: dict[str, str],
    cwd: str,
    control: RunControl,
) -> tuple[Any, bool]:
    """Run every cell in a warm kernel (when one is kept for this base environment) or a new
    one; returns the executed notebook and whether it was warm, or raises what stopped it
    (kernel start failure, dead kernel, Stopped). The kernel is shut down whatever happens."""
    from mlops_widgets.runner.engine import ENGINE_NAME

    engines = _engine()
    spare = warm.take(kernel_name, base_env)
    if spare is not None:
        control.kernel_log.close()
        km, control.kernel_log = spare
        args: dict[str, Any] = {"prelude": warm.prelude(run_env, cwd)}
    else:
        km = kernel.new_manager(kernel_name)
        args = {
            "kernel_env": {**base_env, **run_env},
            "kernel_cwd": cwd,
            "kernel_log": control.kernel_log,
            "extra_arguments": kernel.EXTRA_ARGUMENTS,
        }
    try:
        executed = engines.execute_notebook_with_engine(
            ENGINE_NAME,
            nb,
            kernel_name=kernel_name,
            output_path=None,
            progress_bar=False,
            log_output=False,
            autosave_cell_every=0,
            start_timeout=kernel.KERNEL_START_TIMEOUT_S,
            km=km,
            hooks=control,
            **args,
        )
    finally:
        if spare is not None:
            warm.retire(km)
        else:
            kernel.shutdown(km)
    return executed, spare is not None


def _record(
    tmpl: Template, run_id: str, short_id: str, ws: Workspace, backend_name: str, **fields: Any
) -> RunRecord:
    import papermill

    return RunRecord(
        run_id=run_id,
        short_id=short_id,
        template=tmpl.name,
        template_hash=tmpl.hash,
        backend=backend_name,
        workspace=str(ws.root),
        user=user(),
        package_version=mlops_widgets.__version__,
        papermill_version=papermill.__version__,
        notebook_name=f"{tmpl.name}.ipynb",
        template_copy_name=TEMPLATE_COPY,
        **fields,
    )


def run_template(
    template: str | os.PathLike[str] | Template,
    params: Mapping[str, Any] | None = None,
    *,
    secrets: Mapping[str, str] | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    backend: str | Backend | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
    rerun_of: str | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> RunRecord:
    """Run a template and record it (see the package docstring). Raises only for bad input or an
    unwritable workspace, before any kernel starts; a failed, cancelled or interrupted run comes
    back as its RunRecord."""
    # validate
    tmpl = get_template(template)
    backend_name, ws = _resolve_backend(backend, workspace)
    given, secret_values = prepare.split_secrets(tmpl, params, secrets)
    checked = validate_parameters(tmpl, given, workspace=ws)
    if timeout is not None and timeout <= 0:
        raise MlopsError(f"timeout must be a positive number of seconds, got {timeout}")
    workdir = str(Path(cwd).resolve() if cwd is not None else Path.cwd())
    kernel_name = "python3"

    # prepare secrets and the kernel's environment
    started, t0 = utc_now(), time.monotonic()
    short_id = uuid.uuid4().hex[:8]
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{tmpl.name}-{short_id}"
    base_env = prepare.kernel_environment(str(ws.root), backend_name)
    scrub = prepare.scrubber(secret_values, checked, base_env)
    nb = parameterize(template_notebook(tmpl), checked, [n for n in tmpl.secret_names if n in secret_values])
    kernel_name = nb.metadata.get("kernelspec", {}).get("name") or kernel_name

    # record it as running (this checks the workspace is writable before anything executes)
    lifecycle.clean_staging(ws)
    process = identity()
    record = _record(
        tmpl,
        run_id,
        short_id,
        ws,
        backend_name,
        parameters=scrub(checked),
        secret_names=sorted(secret_values),
        host=process["host"],
        cwd=workdir,
        started_at=iso(started),
        ended_at=None,
        duration_s=None,
        status="running",
        error=None,
        results={},
        rerun_of=rerun_of,
        timeout_s=timeout,
        process=process,
    )
    record = save_run(ws, record, {TEMPLATE_COPY: tmpl.raw})
    log.info("run %s of %s started on the %s backend", run_id, tmpl.name, backend_name)
    results_path = record.dir / RESULTS_FILE
    run_env = prepare.run_environment(run_id, str(results_path), secret_values)

    # execute
    control = RunControl(nb, run_id, tmpl.name, progress, cancel, timeout)
    failure: BaseException | None = None
    # From here a SIGTERM or SIGHUP stops the run as interrupted, even one that comes while the
    # kernel is being started (the server extension's Cancel of a job just begun).
    with lifecycle.deferred_signals(control) as received:
        control.emit("starting", "Starting the kernel")
        watcher = threading.Thread(target=control.watch, name=f"mlops-run-watch-{short_id}", daemon=True)
        watcher.start()
        try:
            nb, record.warm_kernel = lifecycle.run_waiting(
                lambda: _execute(
                    nb,
                    kernel_name=kernel_name,
                    base_env=base_env,
                    run_env=run_env,
                    cwd=workdir,
                    control=control,
                ),
                control,
            )
        except (Exception, KeyboardInterrupt) as exc:  # whatever stopped it is recorded, not raised
            failure = exc
        finally:
            control.finished.set()
            watcher.join()
            warm.replenish(kernel_name, base_env)

        # scrub
        record.status, error = outcome(nb, failure, control, read_raised(results_path))
        control.close()
        if error is not None and error.get("cell_index") is not None:
            mark_error(nb, error["cell_index"], error.get("execution_count"))
        nb.metadata["mlops"] = {"run_id": run_id, "template": tmpl.name, "status": record.status}
        record.ended_at, record.duration_s = iso(utc_now()), round(time.monotonic() - t0, 3)
        record.error, record.results = scrub(error), scrub(read_results(results_path))
        files = {record.notebook_name: _scrubbed_text(nb, scrub, record, secret_values).encode()}

        # save
        record = update_run(ws, record, files)
        results_path.unlink(missing_ok=True)
    log.info("run %s %s after %.1f s", run_id, record.status, record.duration_s)
    control.emit(record.status, (error or {}).get("heading") if error else None)
    lifecycle.redeliver(received)
    return record


def _scrubbed_text(nb: Any, scrub: Any, record: RunRecord, secret_values: Mapping[str, str]) -> str:
    """The executed notebook scrubbed, as text; when a secret cannot be scrubbed from it, a
    notebook saying so takes its place (the run is still recorded, never with the secret)."""
    import nbformat

    try:
        return nbformat.writes(scrub_notebook(nb, scrub))
    except MlopsError as exc:
        note = (
            f"run {record.run_id} of template {record.template} ended {record.status}, but its "
            f"notebook was not saved: {exc}; give it a longer secret value "
            f"({', '.join(sorted(secret_values)) or 'none given'})"
        )
        record.error = {**(record.error or {}), "notebook_not_saved": note}
        return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(note)]))


def rerun(
    run: str,
    *,
    params: Mapping[str, Any] | None = None,
    workspace: Workspace | str | os.PathLike[str] | None = None,
    secrets: Mapping[str, str] | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    timeout: float | None = None,
) -> RunRecord:
    """Run a past run again: its stored template copy, its parameters (`params` replace some),
    on its backend and in its working folder (when it still exists); the secrets it had must be
    given again, and so must a parameter stored masked."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    old = get_run(run, ws)
    if old.kind != "template":
        raise MlopsError(
            f"{old.run_id} is an event record ({old.template}), not a template run: it cannot be re-run"
        )
    parameters = {**old.parameters, **(params or {})}
    prepare.refuse_masked(old.run_id, parameters, "runs.rerun")
    given = dict(secrets or {})
    for name in old.secret_names:
        if name not in given and (value := from_environment(name)) is not None:
            given[name] = value
    missing = [n for n in old.secret_names if not given.get(n)]
    if missing:
        wanted = ", ".join(f"{n} (${SECRET_ENV_PREFIX}{n} or ${n.upper()})" for n in missing)
        raise MlopsError(f"run {old.run_id} was given secrets that are not set now: {wanted}")
    cwd = old.cwd if old.cwd and Path(old.cwd).is_dir() else None
    return run_template(
        Template(old.template_copy, name=old.template),
        parameters,
        secrets=given,
        workspace=ws,
        backend=old.backend,
        progress=progress,
        cancel=cancel,
        timeout=timeout if timeout is not None else old.timeout_s,
        rerun_of=old.run_id,
        cwd=cwd,
    )
