"""The embedded monitoring model's evaluation side: monitor instances (thresholds, parameters,
schedules), measurements and runs, computed in this process by the monitor's provider."""

from __future__ import annotations

import builtins
import json
import sqlite3
import uuid
from typing import TYPE_CHECKING, Any

from mlops_widgets.backends.local.monitoring_store import DATA_MART_ID, PerInstance, Store, Table, now, one
from mlops_widgets.backends.local.volumes import LocalVolumes
from mlops_widgets.backends.monitoring_protocol import (
    RUN_ERROR,
    RUN_FINISHED,
    RUN_RUNNING,
    Resource,
    Thresholds,
)
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.monitors import registry
from mlops_widgets.monitors.base import ProviderInput
from mlops_widgets.monitors.definitions import Threshold
from mlops_widgets.monitors.schedule import is_enabled
from mlops_widgets.monitors.thresholds import DIRECTION_OF, check_instance_thresholds, metric_id

if TYPE_CHECKING:
    from mlops_widgets.backends.local.monitoring import LocalMonitorDefinitions


class LocalMonitorInstances(Table):
    table, what, url = "mon_monitor_instances", "monitor instance", "/v2/monitor_instances"

    def __init__(self, store: Store, definitions: LocalMonitorDefinitions) -> None:
        super().__init__(store)
        self._definitions = definitions

    def list(
        self, *, target_id: str | None = None, monitor_definition_id: str | None = None
    ) -> list[Resource]:
        return self._select(
            "(? IS NULL OR target_id = ?) AND (? IS NULL OR monitor_definition_id = ?)",
            (target_id, target_id, monitor_definition_id, monitor_definition_id),
        )

    def get(self, monitor_instance_id: str) -> Resource:
        return self._get(monitor_instance_id)

    def create(
        self,
        *,
        monitor_definition_id: str,
        target_id: str,
        thresholds: Thresholds,
        parameters: dict[str, Any],
    ) -> Resource:
        definition = self._definitions.get(monitor_definition_id)
        entity = {
            "data_mart_id": DATA_MART_ID,
            "monitor_definition_id": monitor_definition_id,
            "target": {"target_type": "subscription", "target_id": target_id},
            "parameters": dict(parameters),
            "thresholds": check_instance_thresholds(definition, thresholds),
            "status": {"state": "active"},
        }
        new_id = str(uuid.uuid4())
        with self._store.write() as conn:
            one(conn, "mon_subscriptions", target_id, "subscription")
            try:
                conn.execute(
                    "INSERT INTO mon_monitor_instances VALUES (?, ?, ?, ?, ?)",
                    (new_id, target_id, monitor_definition_id, now(), json.dumps(entity)),
                )
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f"subscription {target_id} already has a {monitor_definition_id} monitor "
                    "instance: update it instead"
                ) from None
        return self.get(new_id)

    def update(
        self,
        monitor_instance_id: str,
        *,
        thresholds: Thresholds | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Resource:
        current = self.get(monitor_instance_id)
        checked = None
        if thresholds is not None:
            definition = self._definitions.get(current["entity"]["monitor_definition_id"])
            checked = check_instance_thresholds(definition, thresholds)
        with self._store.write() as conn:
            row = one(conn, "mon_monitor_instances", monitor_instance_id, "monitor instance")
            entity = json.loads(row["entity"])
            if checked is not None:
                entity["thresholds"] = checked
            if parameters is not None:
                entity["parameters"] = dict(parameters)
            entity["_modified_at"] = now()
            conn.execute(
                "UPDATE mon_monitor_instances SET entity = ? WHERE id = ?",
                (json.dumps(entity), monitor_instance_id),
            )
        return self.get(monitor_instance_id)

    def set_schedule(self, monitor_instance_id: str, schedule: dict[str, Any] | None) -> Resource:
        """Store the schedule; an enabled one starts the workspace's service, whose scheduler
        runs it (`mlops_widgets.runner.scheduler`)."""
        with self._store.write() as conn:
            row = one(conn, "mon_monitor_instances", monitor_instance_id, "monitor instance")
            entity = json.loads(row["entity"])
            if schedule is None:
                entity.pop("schedule", None)
            else:
                entity["schedule"] = dict(schedule)
            entity["_modified_at"] = now()
            conn.execute(
                "UPDATE mon_monitor_instances SET entity = ? WHERE id = ?",
                (json.dumps(entity), monitor_instance_id),
            )
        if is_enabled(schedule):
            from mlops_widgets.backends.local.inference.client import start_service

            start_service(self._store.workspace)
        return self.get(monitor_instance_id)

    def delete(self, monitor_instance_id: str) -> None:
        self._delete(monitor_instance_id)  # ON DELETE CASCADE drops its runs and measurements


class LocalMeasurements(PerInstance):
    table, what = "mon_measurements", "measurement"
    url = "/v2/monitor_instances/{monitor_instance_id}/measurements"

    def __init__(
        self, store: Store, definitions: LocalMonitorDefinitions, instances: LocalMonitorInstances
    ) -> None:
        super().__init__(store)
        self._definitions = definitions
        self._instances = instances

    def list(
        self, monitor_instance_id: str, *, limit: int | None = None, run_id: str | None = None
    ) -> list[Resource]:
        if run_id is None:
            return super().list(monitor_instance_id, limit=limit)
        return self._select(
            "monitor_instance_id = ? AND run_id = ?",
            (monitor_instance_id, run_id, -1 if limit is None else limit),
            "ORDER BY rowid DESC LIMIT ?",
        )

    def add(
        self,
        monitor_instance_id: str,
        *,
        run_id: str,
        metrics: dict[str, float],
        timestamp: str | None = None,
    ) -> Resource:
        instance = self._instances.get(monitor_instance_id)
        definition_id = instance["entity"]["monitor_definition_id"]
        definition = self._definitions.get(definition_id)
        limits = {
            m["id"]: (m["thresholds"][0]["type"], m["thresholds"][0]["default"])
            for m in definition["entity"]["metrics"]
        }
        for t in instance["entity"]["thresholds"]:
            limits[t["metric_id"]] = (t["type"], t["value"])
        unknown = [k for k in metrics if k not in limits]
        if unknown:
            raise MlopsError(
                f"measurement for {definition_id!r} has unknown metric id(s) {unknown}; "
                f"its metrics are: {', '.join(limits)}"
            )
        items, issues = [], 0
        for mid, (kind, limit) in limits.items():
            if mid not in metrics:
                continue
            value = float(metrics[mid])
            items.append({"id": mid, "value": value, kind: limit})
            issues += Threshold(limit, DIRECTION_OF[kind]).violated_by(value)
        created = now()
        entity = {
            "monitor_instance_id": monitor_instance_id,
            "monitor_definition_id": definition_id,
            "run_id": run_id,
            "timestamp": timestamp or created,
            "target": instance["entity"]["target"],
            "issue_count": issues,
            "values": [{"metrics": items, "tags": []}],
            "sources": [],
        }
        new_id = str(uuid.uuid4())
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO mon_measurements VALUES (?, ?, ?, ?, ?)",
                (new_id, monitor_instance_id, run_id, created, json.dumps(entity)),
            )
        return self._get(new_id)

    def query(
        self, *, target_id: str, monitor_definition_id: str, recent_count: int = 1
    ) -> builtins.list[Resource]:  # `list` here is the method below
        with self._store.connect() as conn:
            rows = conn.execute(
                "SELECT m.* FROM mon_measurements m JOIN mon_monitor_instances i"
                " ON m.monitor_instance_id = i.id WHERE i.target_id = ? AND i.monitor_definition_id = ?"
                " ORDER BY m.rowid DESC LIMIT ?",
                (target_id, monitor_definition_id, recent_count),
            ).fetchall()
        return [self._res(r) for r in rows]


def _run_failure(exc: BaseException) -> dict[str, str]:
    """A failed run's error in OpenScale's shape: our errors say what is wrong themselves, a
    plugin's exception is named, an interruption says so."""
    if isinstance(exc, MlopsError):
        return {"code": "provider_failed", "message": str(exc)}
    if isinstance(exc, Exception):
        return {"code": "provider_failed", "message": f"{type(exc).__name__}: {exc}"}
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return {"code": "interrupted", "message": f"interrupted ({detail})"}


class LocalRuns(PerInstance):
    """Runs compute in this process: `add` returns when the run has finished or failed."""

    table, what = "mon_runs", "run"
    url = "/v2/monitor_instances/{monitor_instance_id}/runs"

    def __init__(
        self, store: Store, instances: LocalMonitorInstances, measurements: LocalMeasurements
    ) -> None:
        super().__init__(store)
        self._instances = instances
        self._measurements = measurements

    def _set_status(self, run_id: str, **status: Any) -> None:
        with self._store.write() as conn:
            entity = json.loads(one(conn, self.table, run_id, self.what)["entity"])
            entity["status"].update(status)
            conn.execute("UPDATE mon_runs SET entity = ? WHERE id = ?", (json.dumps(entity), run_id))

    def add(self, monitor_instance_id: str, *, triggered_by: str = "user") -> Resource:
        instance = self._instances.get(monitor_instance_id)
        run_id = str(uuid.uuid4())
        started = now()
        entity = {
            "monitor_instance_id": monitor_instance_id,
            "triggered_by": triggered_by,
            "parameters": instance["entity"]["parameters"],
            "status": {"state": RUN_RUNNING, "queued_at": started, "started_at": started},
        }
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO mon_runs VALUES (?, ?, ?, ?)",
                (run_id, monitor_instance_id, started, json.dumps(entity)),
            )
        try:
            values = self._compute(instance)
            self._measurements.add(monitor_instance_id, run_id=run_id, metrics=values)
        except BaseException as exc:
            # Any provider failure, ours or a plugin's, is the run's error. Ctrl-C or SystemExit
            # in a provider ends the run too (else it would stay "running" for ever), then goes on.
            self._set_status(
                run_id,
                state=RUN_ERROR,
                completed_at=now(),
                failure={"trace": run_id, "errors": [_run_failure(exc)]},  # OpenScale's error shape
            )
            if not isinstance(exc, Exception):
                raise
        else:
            self._set_status(run_id, state=RUN_FINISHED, completed_at=now())
        return self.get(monitor_instance_id, run_id)

    def _compute(self, instance: Resource) -> dict[str, float]:
        """Resolve the instance's folders on its storage volume and run its provider."""
        definition_id = instance["entity"]["monitor_definition_id"]
        params = instance["entity"]["parameters"]
        ws = self._store.workspace
        provider = registry.provider_for(definition_id, ws)
        volumes = LocalVolumes(ws)
        volume = params.get("volume_display_name") or ""
        dirs = []
        for key in ("dir_gt", "dir_pred"):
            rel = params.get(key)
            if not rel:
                raise MlopsError(f"monitor {definition_id!r} has no {key} parameter")
            try:  # `..` and absolute paths may not leave the volume; links inside it may
                dirs.append(volumes.local_path(volume, rel))
            except MlopsError as exc:
                raise MlopsError(f"{key}: {exc}") from None
        most_recent = params.get("most_recent")
        values = provider.evaluate(
            ProviderInput(
                dirs[0],
                dirs[1],
                most_recent=None if most_recent is None else float(most_recent),
                parameters=params,
            )
        )
        return {metric_id(name): v for name, v in values.items()}

    def get(self, monitor_instance_id: str, run_id: str) -> Resource:
        with self._store.connect() as conn:
            row = one(conn, self.table, run_id, self.what)
        if row["monitor_instance_id"] != monitor_instance_id:
            raise NotFoundError(f"run {run_id} does not belong to monitor instance {monitor_instance_id}")
        return self._res(row)
