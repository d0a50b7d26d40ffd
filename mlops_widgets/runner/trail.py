"""The audit trail: one folder per run and its index in the workspace database.

    <workspace>/runs/<YYYYmmddTHHMMSSZ>-<template>-<short id>/
        <template>.ipynb   the executed notebook, exactly as it ran (scrubbed of secrets)
        template.ipynb     the template as run (what a re-run executes)
        run.json           the run record
        results.jsonl      while it runs: what its cells record (scrubbed by the kernel)

A run is recorded `running` when it starts (its folder assembled in a hidden sibling and
renamed into place, then indexed in `runs_runs`) and finished ok, failed, cancelled or
interrupted; each file is replaced atomically, so a crash never leaves half a file. A run left
`running` by a process that is gone (killed) is finished as interrupted by the next reader of
the index (`reconcile`). Event records (kind "event": a deployment started, a threshold
edited...) share the index and folders, with a run.json only. Listings read only the index.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import sqlite3
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

from mlops_widgets import events_feed
from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.runner.process import is_gone
from mlops_widgets.runner.record import read_results
from mlops_widgets.workspace import Workspace, atomic_write, transaction

RUNS_DIR = "runs"
RUN_JSON = "run.json"
TEMPLATE_COPY = "template.ipynb"
RESULTS_FILE = "results.jsonl"
# An empty file while a run is running; renamed to UNSAVED when its final save failed.
SAVING, UNSAVED = ".saving", ".unsaved"
NOT_SAVED = (
    "not saved: the workspace could not be written (full or read-only) when the run ended, "
    "so its executed notebook and results are lost"
)
STATUSES = ("running", "ok", "failed", "cancelled", "interrupted")
KINDS = ("template", "event")
_LIST_HINT = Hint("runs.list", "the audit trail lists the runs by id")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs_runs (
    run_id TEXT PRIMARY KEY,
    short_id TEXT NOT NULL,
    template TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    duration_s REAL,
    backend TEXT,
    deployment_name TEXT,
    error TEXT,
    rerun_of TEXT,
    dir TEXT NOT NULL,
    notebook TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'template',
    triggered_by TEXT
);
CREATE INDEX IF NOT EXISTS runs_runs_started ON runs_runs (started_at);
CREATE INDEX IF NOT EXISTS runs_runs_template ON runs_runs (template, started_at);
CREATE INDEX IF NOT EXISTS runs_runs_status ON runs_runs (status, started_at);
CREATE INDEX IF NOT EXISTS runs_runs_deployment ON runs_runs (deployment_name, started_at);
CREATE INDEX IF NOT EXISTS runs_runs_short ON runs_runs (short_id);
"""
_COLUMNS = (
    "run_id, short_id, template, status, started_at, ended_at, duration_s, backend, "
    "deployment_name, error, rerun_of, dir, notebook, kind, triggered_by"
)


class RunFailed(MlopsError):
    """A template run ended failed or cancelled; the message names the step, the error and the
    executed notebook to open; the hint is that of the MlopsError that failed the step (kept in
    the run's recorded error), so a front end renders it as for a direct call."""

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        super().__init__(failure_message(record, with_hint=False), hint=hint_of(record))


def hint_of(record: RunRecord) -> Hint | None:
    """The hint recorded with a failed run's error, if the error that failed it had one."""
    hint = (record.error or {}).get("hint") if record.status == "failed" else None
    if not isinstance(hint, dict) or not hint.get("action"):
        return None
    return Hint(str(hint["action"]), str(hint.get("text") or ""), dict(hint.get("args") or {}))


def failure_message(record: RunRecord, *, with_hint: bool = True) -> str:
    """What a failed, cancelled or interrupted run says: its step, its error (with the plain
    words of its hint unless `with_hint` is False: a front end rendering the hint itself) and
    its executed notebook."""
    what = {"cancelled": "was cancelled", "interrupted": "was interrupted"}.get(record.status, "failed")
    err = record.error or {}
    step = f" in step {err['heading']!r}" if err.get("heading") else ""
    summary = f": {err['summary']}" if err.get("summary") and record.status == "failed" else ""
    hint = hint_of(record) if with_hint else None
    fix = f": {hint.text}" if hint is not None and hint.text else ""
    return (
        f"run {record.run_id} of template {record.template} {what}{step}{summary}{fix}\n"
        f"executed notebook: {record.notebook}"
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(t: datetime) -> str:
    """UTC timestamps as stored: fixed width, so text order is time order."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_iso(value: str | datetime, flag: str) -> str:
    if isinstance(value, datetime):
        t = value if value.tzinfo else value.replace(tzinfo=UTC)
        return iso(t)
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        raise MlopsError(
            f"{flag}: {value!r} is not an ISO date or time (e.g. 2025-01-31 or 2025-01-31T12:00)"
        ) from None
    return iso(t if t.tzinfo else t.replace(tzinfo=UTC))


@dataclass
class RunRecord:
    """A run's record, as stored in its run.json."""

    run_id: str
    short_id: str
    template: str
    template_hash: str
    parameters: dict[str, Any]
    secret_names: list[str]
    backend: str
    workspace: str
    user: str
    host: str
    cwd: str
    started_at: str
    ended_at: str | None
    duration_s: float | None
    status: str
    error: dict[str, Any] | None
    results: dict[str, Any]
    rerun_of: str | None
    package_version: str
    papermill_version: str
    timeout_s: float | None = None
    notebook_name: str = ""
    template_copy_name: str = TEMPLATE_COPY
    kind: str = "template"
    process: dict[str, Any] | None = None  # host, pid, start time of the process running it
    warm_kernel: bool = False  # ran in a kernel started ahead (see runner.warm)
    dir: Path = field(default=Path(), compare=False)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def notebook(self) -> Path:
        return self.dir / self.notebook_name

    @property
    def template_copy(self) -> Path:
        return self.dir / self.template_copy_name

    @property
    def deployment_name(self) -> str | None:
        return deployment_name_of(self.parameters, self.results)

    def raise_for_status(self) -> RunRecord:
        """Self when ok; RunFailed (an MlopsError) when failed, cancelled or interrupted."""
        if not self.ok:
            raise RunFailed(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dir"] = str(self.dir)
        data["notebook"] = str(self.notebook)
        return data

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("dir")
        return json.dumps(data, indent=2, allow_nan=False) + "\n"

    @classmethod
    def load(cls, run_dir: Path) -> RunRecord:
        try:
            data = json.loads((run_dir / RUN_JSON).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(f"run folder {run_dir} has no {RUN_JSON}") from None
        except ValueError as exc:
            raise MlopsError(f"{run_dir / RUN_JSON} is not valid JSON: {exc}") from None
        known = {f.name for f in fields(cls)} - {"dir"}
        return cls(**{k: v for k, v in data.items() if k in known}, dir=run_dir)


class RunSummary(NamedTuple):
    """One row of a run listing, straight from the index (a tuple: 10,000 rows build in
    milliseconds). `dir` and `notebook` are absolute paths, as strings."""

    run_id: str
    short_id: str
    template: str
    status: str
    started_at: str
    ended_at: str | None
    duration_s: float | None
    backend: str | None
    deployment_name: str | None
    error: str | None
    rerun_of: str | None
    dir: str
    notebook: str
    kind: str = "template"
    triggered_by: str | None = None  # "schedule" for a scheduled evaluation

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()


def deployment_name_of(parameters: dict[str, Any], results: dict[str, Any]) -> str | None:
    """The deployment a run concerns: recorded, else a `deployment_name`/`name` parameter, else
    the deployment name inside an `entry` parameter."""
    for value in (
        results.get("deployment_name"),
        parameters.get("deployment_name"),
        parameters.get("name"),
        ((parameters.get("entry") or {}).get("wmla_deployment") or {}).get("deployment_name")
        if isinstance(parameters.get("entry"), dict)
        else None,
    ):
        if isinstance(value, str) and value:
            return value
    return None


def connect(ws: Workspace) -> sqlite3.Connection:
    conn = ws.connect()
    conn.executescript(_SCHEMA)
    columns = _columns(conn)
    if "kind" not in columns:
        with contextlib.suppress(sqlite3.OperationalError):  # another process added it first
            conn.execute("ALTER TABLE runs_runs ADD COLUMN kind TEXT NOT NULL DEFAULT 'template'")
    if "triggered_by" not in columns:
        _add_triggered_by(ws, conn)
    return conn


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(runs_runs)")}


def _add_triggered_by(ws: Workspace, conn: sqlite3.Connection) -> None:
    """An index written before runs kept their trigger gets the column, filled from each
    template run's recorded parameters (once: by the process that added it)."""
    with contextlib.suppress(sqlite3.OperationalError, MlopsError):  # added by another; read-only
        with transaction(conn):
            conn.execute("ALTER TABLE runs_runs ADD COLUMN triggered_by TEXT")
            rows = conn.execute("SELECT run_id, dir FROM runs_runs WHERE kind = 'template'").fetchall()
            for run_id, run_dir in rows:
                with contextlib.suppress(MlopsError, OSError):  # its folder gone or unreadable: none
                    trigger = triggered_by(RunRecord.load(ws.root / run_dir))
                    conn.execute("UPDATE runs_runs SET triggered_by = ? WHERE run_id = ?", (trigger, run_id))


def triggered_by(record: RunRecord) -> str | None:
    """What started a run, as its parameters say ("schedule" for a scheduled evaluation)."""
    value = record.parameters.get("triggered_by")
    return value if isinstance(value, str) and value else None


def unwritable(ws: Workspace, exc: OSError) -> MlopsError:
    """Plain words for an OSError writing into the workspace."""
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return MlopsError(f"the workspace {ws.root} is read-only: no run can be recorded there")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return MlopsError(f"no space left on the workspace {ws.root}: no run can be recorded there")
    return MlopsError(f"the workspace {ws.root} cannot be written to: {exc.strerror or exc}")


def save_run(ws: Workspace, record: RunRecord, files: dict[str, bytes]) -> RunRecord:
    """Write a run's files and record into `runs/<run_id>/` all at once (assembled in a hidden
    sibling named for this process, then renamed into place), then index it. MlopsError, with
    nothing left behind, when the workspace cannot be written."""
    if record.status == "running":  # renamed to UNSAVED if its final save fails (see update_run)
        files = {**files, SAVING: b""}
    try:
        runs = ws.dir(RUNS_DIR)
        final = runs / record.run_id
        staging = runs / f".{record.run_id}.{os.getpid()}.tmp"
        staging.mkdir(mode=0o700)
        try:
            for name, data in files.items():
                atomic_write(staging / name, data)
            atomic_write(staging / RUN_JSON, record.to_json())
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        raise unwritable(ws, exc) from None
    record.dir = final
    try:
        index_run(ws, record)
    except BaseException:  # not indexed: no folder either, nothing half-recorded
        shutil.rmtree(final, ignore_errors=True)
        raise
    return record


def update_run(ws: Workspace, record: RunRecord, files: dict[str, bytes]) -> RunRecord:
    """Replace files of a saved run, then its record and index row (each file atomically)."""
    final = ws.root / RUNS_DIR / record.run_id
    try:
        for name, data in files.items():
            atomic_write(final / name, data)
        atomic_write(final / RUN_JSON, record.to_json())
    except OSError as exc:
        # A full disk has no room for a word more, but a rename needs none: the run is then
        # listed as not saved rather than as interrupted.
        with contextlib.suppress(OSError):
            os.rename(final / SAVING, final / UNSAVED)
        raise unwritable(ws, exc) from None
    (final / SAVING).unlink(missing_ok=True)
    record.dir = final
    index_run(ws, record)
    return record


def index_run(ws: Workspace, record: RunRecord, conn: sqlite3.Connection | None = None) -> None:
    row = (
        record.run_id,
        record.short_id,
        record.template,
        record.status,
        record.started_at,
        record.ended_at,
        record.duration_s,
        record.backend,
        record.deployment_name,
        (record.error or {}).get("summary"),
        record.rerun_of,
        f"{RUNS_DIR}/{record.run_id}",
        record.notebook_name,
        record.kind,
        triggered_by(record),
    )
    own = conn is None
    conn = connect(ws) if conn is None else conn
    try:
        with transaction(conn):
            conn.execute(
                f"INSERT OR REPLACE INTO runs_runs ({_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row
            )
        events_feed.publish(  # ids and states only: parameters, results and errors stay in the trail
            ws,
            "run" if record.kind == "template" else "event",
            record.run_id,
            conn=conn,
            template=record.template,
            status=record.status,
            deployment_name=record.deployment_name,
        )
    finally:
        if own:
            conn.close()


def reconcile(ws: Workspace, conn: sqlite3.Connection) -> None:
    """Finish as interrupted each run still `running` whose process is gone (killed: it could
    not record its end), keeping what its cells recorded."""
    rows = conn.execute("SELECT run_id FROM runs_runs WHERE status = 'running'").fetchall()
    for (run_id,) in rows:
        run_dir = ws.root / RUNS_DIR / run_id
        try:
            record = RunRecord.load(run_dir)
        except MlopsError:
            continue
        if record.status != "running" or not is_gone(record.process):
            continue
        record.status = "interrupted"
        summary = (
            NOT_SAVED if (run_dir / UNSAVED).exists() else "interrupted: its process ended before the run did"
        )
        record.error = {"summary": summary, "heading": None}
        record.results = {**record.results, **read_results(run_dir / RESULTS_FILE)}
        try:
            atomic_write(run_dir / RUN_JSON, record.to_json())
            for done in (RESULTS_FILE, SAVING, UNSAVED):
                (run_dir / done).unlink(missing_ok=True)
        except OSError:  # a read-only workspace: shown interrupted, recorded by a later writer
            pass
        else:
            record.dir = run_dir
            index_run(ws, record, conn)


def list_runs(
    workspace: Workspace | str | None = None,
    *,
    template: str | None = None,
    status: str | None = None,
    deployment_name: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    limit: int | None = None,
) -> list[RunSummary]:
    """Runs and events, newest first, filtered by template (an event's action), status,
    deployment name and start time (since inclusive, until exclusive)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if status is not None and status not in STATUSES:
        raise MlopsError(f"{status!r} is not a run status: choose one of {', '.join(STATUSES)}")
    where, args = [], []
    for column, value in (("template", template), ("status", status), ("deployment_name", deployment_name)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if since is not None:
        where.append("started_at >= ?")
        args.append(_as_iso(since, "since"))
    if until is not None:
        where.append("started_at < ?")
        args.append(_as_iso(until, "until"))
    root = str(ws.root)
    args = [root, root, *args]
    if not ws.db_path.exists():
        return []
    conn = connect(ws)
    conn.row_factory = None  # plain tuples: the fastest rows to build summaries from
    try:
        # A read-only workspace's index from before runs kept their trigger lacks its column.
        trigger = "triggered_by" if "triggered_by" in _columns(conn) else "NULL"
        sql = (
            "SELECT run_id, short_id, template, status, started_at, ended_at, duration_s, backend, "
            "deployment_name, error, rerun_of, ? || '/' || dir, ? || '/' || dir || '/' || notebook, "
            f"kind, {trigger} FROM runs_runs"
        )
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY started_at DESC, run_id DESC"
        if limit:
            sql += f" LIMIT {int(limit)}"
        reconcile(ws, conn)
        rows = conn.execute(sql, args).fetchall()
    finally:
        conn.close()
    return list(map(RunSummary._make, rows))


def resolve_run_id(ws: Workspace, run: str) -> str:
    """A full run id, or a unique prefix of a run id or of a short id, to the run id."""
    run = run.strip().rstrip("/").rsplit("/", 1)[-1]
    if not run:
        raise MlopsError("no run id given", hint=_LIST_HINT)
    if ws.db_path.exists():
        conn = connect(ws)
        try:
            reconcile(ws, conn)
            rows = conn.execute(
                "SELECT run_id FROM runs_runs WHERE run_id = ? OR substr(run_id, 1, ?) = ? "
                "OR substr(short_id, 1, ?) = ? ORDER BY started_at DESC LIMIT 6",
                (run, len(run), run, len(run), run),
            ).fetchall()
        finally:
            conn.close()
        ids = [r[0] for r in rows]
        if run in ids:
            return run
        if len(ids) == 1:
            return ids[0]
        if ids:
            shown = ", ".join(ids[:5])
            raise MlopsError(f"run {run!r} is ambiguous: it matches {shown}{', ...' if len(ids) > 5 else ''}")
    if (ws.root / RUNS_DIR / run / RUN_JSON).is_file():  # not indexed (e.g. a copied folder)
        return run
    raise NotFoundError(f"no run {run!r} in workspace {ws.root}", hint=_LIST_HINT)


def get_run(run: str, workspace: Workspace | str | None = None) -> RunRecord:
    """A run's record by full id or unique prefix (of the id or of its short id)."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    run_id = resolve_run_id(ws, run)
    return RunRecord.load(ws.root / RUNS_DIR / run_id)
