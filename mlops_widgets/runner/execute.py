"""Running a template: validate, parameterize, execute with papermill in a fresh kernel, scrub,
and save the run to the audit trail, whatever the outcome (ok, failed, cancelled).

Papermill is driven through its engine API with its notebook-execution manager subclassed for
per-cell progress and cancellation, and with output_path None: papermill itself never writes the
notebook, so nothing unscrubbed reaches the disk. The kernel gets its settings and secrets
through its environment (a per-run kernel-manager class), never through the notebook.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import mlops_widgets
from mlops_widgets.backends import backend_name as resolve_backend_name
from mlops_widgets.backends.base import Backend
from mlops_widgets.errors import MlopsError
from mlops_widgets.masking import MASK
from mlops_widgets.runner.params import validate_parameters
from mlops_widgets.runner.record import RESULTS_ENV, read_results
from mlops_widgets.runner.secrets import (
    SECRET_ENV_PREFIX,
    Scrubber,
    ambient_secrets,
    check_secret,
    env_name,
    from_environment,
    scrub_notebook,
)
from mlops_widgets.runner.templates import Template, cell_heading, get_template
from mlops_widgets.runner.trail import (
    TEMPLATE_COPY,
    RunRecord,
    get_run,
    iso,
    save_run,
    utc_now,
)
from mlops_widgets.workspace import Workspace

# Seconds a cancelled or timed-out cell gets to stop after the interrupt before its kernel is killed.
INTERRUPT_GRACE_S = 5.0
KERNEL_START_TIMEOUT_S = 60


@dataclass(frozen=True)
class ProgressEvent:
    """What a running template is doing: code cells done out of total, the current step."""

    run_id: str
    template: str
    status: str  # starting, running, ok, failed, cancelled
    done: int
    total: int
    heading: str | None
    cell_index: int | None = None


ProgressCallback = Callable[[ProgressEvent], None]


class _Stopped(Exception):
    """Raised at a cell boundary once the run is cancelled or past its timeout."""


class _Control:
    """Cancellation and timeout: a watcher thread interrupts the kernel, then kills it."""

    def __init__(self, cancel: threading.Event | None, timeout: float | None) -> None:
        self.cancel = cancel
        self.timeout = timeout
        self.reason: str | None = None  # "cancelled" or "timeout"
        self.km: Any = None
        self.kernel_log: IO[bytes] = tempfile.TemporaryFile()  # closed by close()
        self.current_cell: int | None = None
        self.finished = threading.Event()

    def kernel_log_tail(self, lines: int = 20) -> str:
        self.kernel_log.seek(0)
        return "\n".join(self.kernel_log.read().decode(errors="replace").splitlines()[-lines:])

    def close(self) -> None:
        self.kernel_log.close()

    def check(self) -> None:
        if self.reason is None and self.cancel is not None and self.cancel.is_set():
            self.reason = "cancelled"
        if self.reason:
            raise _Stopped(self.reason)

    def watch(self) -> None:
        deadline = time.monotonic() + self.timeout if self.timeout else None
        while not self.finished.wait(0.05):
            if self.cancel is not None and self.cancel.is_set():
                self.reason = self.reason or "cancelled"
            elif deadline is not None and time.monotonic() >= deadline:
                self.reason = self.reason or "timeout"
            else:
                continue
            self._stop_kernel()
            return

    def _stop_kernel(self) -> None:
        proc = getattr(getattr(self.km, "provisioner", None), "process", None)
        if proc is None or proc.poll() is not None:
            return  # not started yet: check() stops the run before its first cell
        proc.send_signal(signal.SIGINT)
        if not self.finished.wait(INTERRUPT_GRACE_S) and proc.poll() is None:
            proc.kill()


class _Progress:
    """Turns papermill's cell callbacks into ProgressEvents over the code cells."""

    def __init__(self, nb: Any, run_id: str, template: str, callback: ProgressCallback | None):
        self.run_id, self.template, self.callback = run_id, template, callback
        self.code = {i for i, c in enumerate(nb.cells) if c.cell_type == "code"}
        self.headings: dict[int, str | None] = {}
        heading = None
        for i, cell in enumerate(nb.cells):
            heading = cell_heading(cell) or heading
            self.headings[i] = heading
        self.done = 0

    @property
    def total(self) -> int:
        return len(self.code)

    def emit(self, status: str, heading: str | None, cell_index: int | None = None) -> None:
        if self.callback is not None:
            self.callback(
                ProgressEvent(self.run_id, self.template, status, self.done, self.total, heading, cell_index)
            )

    def started(self, index: int) -> None:
        if index in self.code:
            self.emit("running", self.headings.get(index), index)

    def completed(self, index: int) -> None:
        if index in self.code:
            self.done += 1
            self.emit("running", self.headings.get(index), index)


def _kernel_manager_class(env: dict[str, str], control: _Control) -> type:
    """A kernel manager that starts its kernel with `env` (settings and secrets) and lets
    `control` reach the kernel process."""
    from jupyter_client.manager import AsyncKernelManager

    class RunKernelManager(AsyncKernelManager):
        async def _async_pre_start_kernel(self, **kw: Any) -> Any:
            kw["env"] = dict(env)
            kw.setdefault("transport_encryption", "auto")  # the kernelspec declares curve support
            # The kernel's own log (not the cells' output, which goes to the notebook) would
            # clutter the user's terminal: kept aside for the error of a kernel that dies.
            kw["stdout"] = kw["stderr"] = control.kernel_log
            control.km = self
            return await super()._async_pre_start_kernel(**kw)

    return RunKernelManager


def template_notebook(template: Template) -> Any:
    """The template as a notebook object, with the metadata papermill expects."""
    import nbformat

    nb = nbformat.reads(template.raw.decode("utf-8"), as_version=4)
    nb = nbformat.v4.upgrade(nb) or nb
    nb.metadata.setdefault(
        "papermill", {"default_parameters": {}, "parameters": {}, "environment_variables": {}}
    )
    for cell in nb.cells:
        cell.metadata.setdefault("tags", [])
    return nb


def parameterize(nb: Any, params: Mapping[str, Any], secret_params: list[str]) -> Any:
    """Papermill's injected-parameters cell for `params`; each secret parameter is injected as
    code reading the kernel's environment, so its value is never in the notebook."""
    if not params and not secret_params:
        return nb
    from papermill.parameterize import parameterize_notebook

    nb = parameterize_notebook(nb, dict(params), language="python")
    if secret_params:
        cell = next(c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", []))
        lines = ["from mlops_widgets.runner.secrets import secret  # secrets come from the environment"]
        lines += [f"{name} = secret({name!r})" for name in secret_params]
        cell.source = cell.source.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
    return nb


def _error_of(nb: Any, headings: dict[int, str | None]) -> dict[str, Any] | None:
    """The first error output of the executed notebook (SystemExit(0) is not an error)."""
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            if out.get("ename") == "SystemExit" and out.get("evalue") in ("", "0"):
                continue
            ename, evalue = out.get("ename", ""), out.get("evalue", "")
            return {
                "summary": f"{ename}: {evalue}" if evalue else ename,
                "ename": ename,
                "evalue": evalue,
                "cell_index": index,
                "execution_count": cell.get("execution_count"),
                "heading": headings.get(index),
            }
    return None


def _mark_error(nb: Any, cell_index: int, execution_count: Any) -> None:
    """Papermill's red banner at the top and anchor above the failing cell."""
    import nbformat
    from papermill.execute import ERROR_ANCHOR_MSG, ERROR_MARKER_TAG, ERROR_MESSAGE_TEMPLATE

    banner = nbformat.v4.new_markdown_cell(ERROR_MESSAGE_TEMPLATE % str(execution_count))
    anchor = nbformat.v4.new_markdown_cell(ERROR_ANCHOR_MSG)
    banner.metadata["tags"] = [ERROR_MARKER_TAG]
    anchor.metadata["tags"] = [ERROR_MARKER_TAG]
    nb.cells.insert(cell_index, anchor)
    nb.cells.insert(0, banner)


def _outcome(
    nb: Any, failure: BaseException | None, control: _Control, tracker: _Progress
) -> tuple[str, dict[str, Any] | None]:
    """Status and error of a finished execution: cancelled, timed out, a failed cell, or what
    stopped the kernel (it failed to start, or died: then with the kernel's log)."""
    error = _error_of(nb, tracker.headings)
    if control.reason is None and isinstance(failure, KeyboardInterrupt):
        control.reason = "cancelled"  # Ctrl-C in the calling process
    where = control.current_cell
    heading = tracker.headings.get(where) if where is not None else None
    if control.reason == "cancelled":
        return "cancelled", {**(error or {}), "summary": "cancelled", "heading": heading}
    if control.reason == "timeout":
        return "failed", {
            **(error or {}),
            "summary": f"timed out after {control.timeout:g} s",
            "heading": heading,
        }
    if error is not None:
        return "failed", error
    if failure is not None:
        return "failed", {
            "summary": f"{type(failure).__name__}: {failure}".removesuffix(": "),
            "ename": type(failure).__name__,
            "evalue": str(failure),
            "cell_index": None,
            "heading": heading,
            "kernel_log": control.kernel_log_tail(),
        }
    return "ok", None


def _execute(nb: Any, *, env: dict[str, str], cwd: str, control: _Control, progress: _Progress) -> Any:
    """Run every cell through papermill's nbclient engine; returns the executed notebook, or
    raises what stopped it (kernel start failure, dead kernel, _Stopped)."""
    from papermill.engines import NBClientEngine, NotebookExecutionManager

    class Manager(NotebookExecutionManager):
        def cell_start(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
            control.check()
            control.current_cell = cell_index
            super().cell_start(cell, cell_index, **kwargs)
            progress.started(cell_index)

        def cell_complete(self, cell: Any, cell_index: Any = None, **kwargs: Any) -> None:
            super().cell_complete(cell, cell_index, **kwargs)
            if control.current_cell == cell_index:  # not a cell that a stop kept from starting
                progress.completed(cell_index)

    manager = Manager(nb, output_path=None, progress_bar=False, log_output=False, autosave_cell_every=0)
    manager.notebook_start()
    try:
        NBClientEngine.execute_managed_notebook(
            manager,
            nb.metadata.get("kernelspec", {}).get("name") or "python3",
            log_output=False,
            start_timeout=KERNEL_START_TIMEOUT_S,
            kernel_manager_class=_kernel_manager_class(env, control),
            resources={"metadata": {"path": cwd}},
        )
    finally:
        manager.notebook_complete()
    return manager.nb


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def _resolve_backend(
    backend: str | Backend | None, workspace: Workspace | str | os.PathLike[str] | None
) -> tuple[str, Workspace]:
    if isinstance(backend, Backend):
        ws = backend.workspace if workspace is None else workspace
        name = backend.name
    else:
        ws, name = workspace, resolve_backend_name(backend)
    return name, ws if isinstance(ws, Workspace) else Workspace(ws)


def _split_secrets(
    template: Template, params: Mapping[str, Any] | None, secrets: Mapping[str, str] | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Secret parameters out of `params`, plus `secrets`, plus declared secrets found in the
    caller's environment; an empty one is left out (the parameter keeps its empty default), the
    others are checked to be scrubbable (`check_secret`) before any kernel starts."""
    given = dict(params or {})
    found: dict[str, tuple[Any, str]] = {}
    for name in template.secret_names:
        if name in given:
            found[name] = (given.pop(name), "given as a parameter")
    found.update((name, (value, "given as a secret")) for name, value in (secrets or {}).items())
    for name in template.secret_names:
        if name not in found and (value := from_environment(name)) is not None:
            found[name] = (value, "from the environment")
    kept: dict[str, str] = {}
    for name, (value, origin) in found.items():
        if value is None or value == "":
            continue
        check_secret(name, value, origin)
        kept[name] = value
    return given, kept


def _strings(value: Any) -> list[str]:
    """Every string in a parameter value (nested lists and dicts included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def _scrubber(secret_values: Mapping[str, str], params: Mapping[str, Any]) -> Scrubber:
    """This run's secrets, plus the credential-named variables of the caller's environment
    (the kernel inherits them) except a value the user wrote into a parameter: that one is
    plain data of this run (e.g. a path), and masking it would make the run impossible to
    re-run or clone."""
    written = _strings(dict(params))
    ambient = [v for v in ambient_secrets() if not any(v in text for text in written)]
    return Scrubber([*secret_values.values(), *ambient])


def refuse_masked(run_id: str, params: Mapping[str, Any], again: str) -> None:
    """MlopsError when a stored parameter holds the mask: its value was scrubbed when the run
    was saved, and running or cloning with "********" in it would silently go wrong. `again`
    is the command that gives it anew, e.g. "mlops runs rerun <id>"."""
    masked = [name for name, value in params.items() if any(MASK in s for s in _strings(value))]
    if masked:
        flags = " ".join(f"-p {name} VALUE" for name in masked)
        raise MlopsError(
            f"run {run_id}: parameter(s) {', '.join(masked)} were stored masked ({MASK}): their "
            f"values held a secret or a credential of the environment when the run was saved. "
            f"Pass them again: {again} {flags} (params= in Python)"
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
    """Run a template and record it (see the package docstring). Raises only for bad input,
    before any kernel starts; a failed or cancelled run comes back as its RunRecord."""
    tmpl = get_template(template)
    backend_name, ws = _resolve_backend(backend, workspace)
    given, secret_values = _split_secrets(tmpl, params, secrets)
    checked = validate_parameters(tmpl, given, workspace=ws)
    if timeout is not None and timeout <= 0:
        raise MlopsError(f"timeout must be a positive number of seconds, got {timeout}")
    workdir = str(Path(cwd).resolve() if cwd is not None else Path.cwd())

    started, t0 = utc_now(), time.monotonic()
    short_id = uuid.uuid4().hex[:8]
    run_id = f"{started:%Y%m%dT%H%M%SZ}-{tmpl.name}-{short_id}"
    scrub = _scrubber(secret_values, checked)
    nb = parameterize(template_notebook(tmpl), checked, [n for n in tmpl.secret_names if n in secret_values])
    tracker = _Progress(nb, run_id, tmpl.name, progress)
    tracker.emit("starting", "Starting the kernel")

    fd, results_name = tempfile.mkstemp(prefix="mlops-run-results-", suffix=".jsonl")
    os.close(fd)
    results_path = Path(results_name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(SECRET_ENV_PREFIX)}
    env.update(
        MLOPS_HOME=str(ws.root),
        MLOPS_BACKEND=backend_name,
        MLOPS_RUN_ID=run_id,
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    env[RESULTS_ENV] = str(results_path)
    env.update({env_name(name): value for name, value in secret_values.items()})

    control = _Control(cancel, timeout)
    watcher = threading.Thread(target=control.watch, name=f"mlops-run-{short_id}", daemon=True)
    watcher.start()
    failure: BaseException | None = None
    try:
        nb = _execute(nb, env=env, cwd=workdir, control=control, progress=tracker)
    except (Exception, KeyboardInterrupt) as exc:  # whatever stopped it is recorded, not raised
        failure = exc
    finally:
        control.finished.set()
        watcher.join()
        results = read_results(results_path)
        results_path.unlink(missing_ok=True)
    duration = time.monotonic() - t0
    ended = utc_now()
    try:
        status, error = _outcome(nb, failure, control, tracker)
    finally:
        control.close()
    if error is not None and error.get("cell_index") is not None:
        _mark_error(nb, error["cell_index"], error.get("execution_count"))

    import nbformat
    import papermill

    nb.metadata["mlops"] = {"run_id": run_id, "template": tmpl.name, "status": status}
    try:
        notebook_text = nbformat.writes(scrub_notebook(nb, scrub))
    except MlopsError as exc:  # nothing is written rather than a secret (or a corrupt notebook)
        raise MlopsError(
            f"run {run_id} of template {tmpl.name} ended {status}, but it was not saved: {exc}; "
            f"give it a longer secret value ({', '.join(sorted(secret_values)) or 'none given'})"
        ) from None
    record = RunRecord(
        run_id=run_id,
        short_id=short_id,
        template=tmpl.name,
        template_hash=tmpl.hash,
        parameters=scrub(checked),
        secret_names=sorted(secret_values),
        backend=backend_name,
        workspace=str(ws.root),
        user=_user(),
        host=socket.gethostname(),
        cwd=workdir,
        started_at=iso(started),
        ended_at=iso(ended),
        duration_s=round(duration, 3),
        status=status,
        error=scrub(error),
        results=scrub(results),
        rerun_of=rerun_of,
        package_version=mlops_widgets.__version__,
        papermill_version=papermill.__version__,
        timeout_s=timeout,
        notebook_name=f"{tmpl.name}.ipynb",
        template_copy_name=TEMPLATE_COPY,
    )
    record = save_run(ws, record, {record.notebook_name: notebook_text.encode(), TEMPLATE_COPY: tmpl.raw})
    tracker.emit(status, (error or {}).get("heading") if error else None)
    return record


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
    parameters = {**old.parameters, **(params or {})}
    refuse_masked(old.run_id, parameters, f"mlops runs rerun {old.short_id}")
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
