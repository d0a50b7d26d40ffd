"""The embedded monitoring service: OpenScale's model in the workspace database (tables `mon_*`),
with the built-in and registered metric providers computing runs in-process.

Objects are stored as their OpenScale entity (JSON) beside a few indexed columns, and returned in
OpenScale's `{"metadata": {...}, "entity": {...}}` shape, so ops read both backends alike.
A run reads its folders in place on the local storage volumes (backends/local/volumes.py).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from mlops_widgets.backends.base import RUN_ERROR, RUN_FINISHED, RUN_RUNNING, Resource
from mlops_widgets.backends.local.volumes import LocalVolumes
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.monitors import registry
from mlops_widgets.monitors.base import ProviderInput
from mlops_widgets.monitors.definitions import MonitorDefinition, Threshold
from mlops_widgets.monitors.schedule import is_enabled
from mlops_widgets.monitors.thresholds import (
    DIRECTION_OF,
    LIMIT_TYPES,
    check_instance_thresholds,
    metric_id,
)
from mlops_widgets.workspace import Workspace, transaction

DATA_MART_ID = "local"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mon_service_providers (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at TEXT NOT NULL, entity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mon_subscriptions (
    id TEXT PRIMARY KEY, service_provider_id TEXT NOT NULL REFERENCES mon_service_providers(id),
    name TEXT NOT NULL, created_at TEXT NOT NULL, entity TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mon_subscriptions_name ON mon_subscriptions (name);
CREATE TABLE IF NOT EXISTS mon_integrated_systems (
    id TEXT PRIMARY KEY, type TEXT NOT NULL, created_at TEXT NOT NULL, entity TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mon_monitor_instances (
    id TEXT PRIMARY KEY,
    target_id TEXT NOT NULL REFERENCES mon_subscriptions(id) ON DELETE CASCADE,
    monitor_definition_id TEXT NOT NULL, created_at TEXT NOT NULL, entity TEXT NOT NULL,
    UNIQUE (target_id, monitor_definition_id));
CREATE TABLE IF NOT EXISTS mon_runs (
    id TEXT PRIMARY KEY,
    monitor_instance_id TEXT NOT NULL REFERENCES mon_monitor_instances(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL, entity TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mon_runs_instance ON mon_runs (monitor_instance_id);
CREATE TABLE IF NOT EXISTS mon_measurements (
    id TEXT PRIMARY KEY,
    monitor_instance_id TEXT NOT NULL REFERENCES mon_monitor_instances(id) ON DELETE CASCADE,
    run_id TEXT, created_at TEXT NOT NULL, entity TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS mon_measurements_instance ON mon_measurements (monitor_instance_id);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class _Store:
    """Connections to the workspace database with the `mon_*` schema in place."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._ready = False

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = self.workspace.connect()
        try:
            if not self._ready:
                conn.executescript(_SCHEMA)
                self._ready = True
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        with self.connect() as conn, transaction(conn):
            yield conn


def _resource(row: sqlite3.Row, url: str) -> Resource:
    entity = json.loads(row["entity"])
    meta = {"id": row["id"], "url": url, "created_at": row["created_at"]}
    modified = entity.pop("_modified_at", None)
    if modified:
        meta["modified_at"] = modified
    return {"metadata": meta, "entity": entity}


def _one(conn: sqlite3.Connection, table: str, key: str, what: str) -> sqlite3.Row:
    row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (key,)).fetchone()
    if row is None:
        raise NotFoundError(f"no {what} with id {key}")
    return row


class _Table:
    """One `mon_*` table whose rows are OpenScale resources at `<url>/<id>`: reading, listing and
    deleting rows is the same for every area, only the table and the words differ."""

    table = ""
    what = ""  # the object's name in messages: "no <what> with id ..."
    url = ""

    def __init__(self, store: _Store) -> None:
        self._store = store

    def _res(self, row: sqlite3.Row) -> Resource:
        return _resource(row, f"{self.url}/{row['id']}")

    def _get(self, key: str) -> Resource:
        with self._store.connect() as conn:
            return self._res(_one(conn, self.table, key, self.what))

    def _select(self, where: str, params: tuple[Any, ...], tail: str = "ORDER BY rowid") -> list[Resource]:
        with self._store.connect() as conn:
            rows = conn.execute(f"SELECT * FROM {self.table} WHERE {where} {tail}", params).fetchall()
        return [self._res(r) for r in rows]

    def _delete(self, key: str) -> None:
        with self._store.write() as conn:
            _one(conn, self.table, key, self.what)
            conn.execute(f"DELETE FROM {self.table} WHERE id = ?", (key,))


class _PerInstance(_Table):
    """Rows that belong to a monitor instance (runs, measurements): their url is under the
    instance's, and they list newest first."""

    def _res(self, row: sqlite3.Row) -> Resource:
        url = self.url.format(monitor_instance_id=row["monitor_instance_id"])
        return _resource(row, f"{url}/{row['id']}")

    def list(self, monitor_instance_id: str, *, limit: int | None = None) -> list[Resource]:
        return self._select(
            "monitor_instance_id = ?",
            (monitor_instance_id, -1 if limit is None else limit),
            "ORDER BY rowid DESC LIMIT ?",
        )


class LocalServiceProviders(_Table):
    table, what, url = "mon_service_providers", "service provider", "/v2/service_providers"

    def list(self, name: str | None = None) -> list[Resource]:
        return self._select("? IS NULL OR name = ?", (name, name))

    def get(self, service_provider_id: str) -> Resource:
        return self._get(service_provider_id)

    def add(
        self, name: str, *, service_type: str = "custom_machine_learning", description: str = ""
    ) -> Resource:
        if not name.strip():
            raise MlopsError("a service provider needs a name")
        entity = {
            "name": name,
            "description": description,
            "service_type": service_type,
            "status": {"state": "active"},
        }
        new_id = str(uuid.uuid4())
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO mon_service_providers VALUES (?, ?, ?, ?)",
                (new_id, name, _now(), json.dumps(entity)),
            )
        return self.get(new_id)

    def delete(self, service_provider_id: str) -> None:
        with self._store.write() as conn:
            _one(conn, "mon_service_providers", service_provider_id, "service provider")
            (n,) = conn.execute(
                "SELECT COUNT(*) FROM mon_subscriptions WHERE service_provider_id = ?",
                (service_provider_id,),
            ).fetchone()
            if n:
                raise ConflictError(
                    f"service provider {service_provider_id} still has {n} subscription(s)",
                    hint=Hint("monitor.delete", "delete the monitors of those deployments first"),
                )
            conn.execute("DELETE FROM mon_service_providers WHERE id = ?", (service_provider_id,))


class LocalSubscriptions(_Table):
    table, what, url = "mon_subscriptions", "subscription", "/v2/subscriptions"

    def list(self, *, service_provider_id: str | None = None, name: str | None = None) -> list[Resource]:
        return self._select(
            "(? IS NULL OR service_provider_id = ?) AND (? IS NULL OR name = ?)",
            (service_provider_id, service_provider_id, name, name),
        )

    def get(self, subscription_id: str) -> Resource:
        return self._get(subscription_id)

    def add(
        self,
        *,
        service_provider_id: str,
        name: str,
        deployment_name: str,
        deployment_url: str = "",
    ) -> Resource:
        new_id = str(uuid.uuid4())
        entity = {
            "data_mart_id": DATA_MART_ID,
            "service_provider_id": service_provider_id,
            "asset": {
                "asset_id": str(uuid.uuid4()),
                "name": name,
                "asset_type": "model",
                "url": deployment_url,
            },
            "deployment": {
                "deployment_id": deployment_name,
                "name": deployment_name,
                "url": deployment_url,
                "deployment_type": "online",
            },
            "status": {"state": "active"},
        }
        with self._store.write() as conn:
            _one(conn, "mon_service_providers", service_provider_id, "service provider")
            conn.execute(
                "INSERT INTO mon_subscriptions VALUES (?, ?, ?, ?, ?)",
                (new_id, service_provider_id, name, _now(), json.dumps(entity)),
            )
        return self.get(new_id)

    def delete(self, subscription_id: str) -> None:
        self._delete(subscription_id)  # ON DELETE CASCADE drops its instances, runs and measurements


def definition_resource(defn: MonitorDefinition, created_at: str | None = None) -> Resource:
    """A monitor definition in OpenScale's shape; metric ids are OpenScale's (lower-case names).
    `entity.provider` (embedded only) names the provider that computes it."""
    metrics = [
        {
            "id": metric_id(name),
            "name": name,
            "thresholds": [{"type": LIMIT_TYPES[t.direction], "default": t.value}],
            "expected_direction": "increasing" if t.direction == "lower" else "decreasing",
        }
        for name, t in defn.thresholds.items()
    ]
    return {
        "metadata": {
            "id": defn.id,
            "url": f"/v2/monitor_definitions/{defn.id}",
            "created_at": created_at,
        },
        "entity": {
            "name": defn.name,
            "description": defn.description,
            "metrics": metrics,
            "tags": [],
            "applies_to": {"type": "custom_metrics", "input_data_type": ["unstructured_image"]},
            "provider": defn.provider,
        },
    }


class LocalMonitorDefinitions:
    """Definitions are the monitors registry's (built-ins, entry points, registrations in this
    workspace), so what the config model validates against is what runs."""

    def __init__(self, store: _Store) -> None:
        self._store = store

    def list(self) -> list[Resource]:
        return [definition_resource(d) for d in registry.definitions(self._store.workspace).values()]

    def get(self, monitor_definition_id: str) -> Resource:
        return definition_resource(registry.definition(monitor_definition_id, self._store.workspace))

    def add(self, definition: MonitorDefinition) -> Resource:
        known = registry.definitions(self._store.workspace)
        if definition.id not in known:
            registry.register_definition(
                definition.id,
                definition.provider,
                name=definition.name,
                description=definition.description,
                thresholds=definition.default_thresholds(),
                workspace=self._store.workspace,
            )
        return self.get(definition.id)


class LocalIntegratedSystems(_Table):
    table, what, url = "mon_integrated_systems", "integrated system", "/v2/integrated_systems"

    def list(self, type: str | None = None) -> list[Resource]:
        return self._select("? IS NULL OR type = ?", (type, type))

    def get(self, integrated_system_id: str) -> Resource:
        return self._get(integrated_system_id)

    def add(
        self,
        name: str,
        *,
        type: str = "custom_metrics_provider",
        description: str = "",
        connection: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
    ) -> Resource:
        del credentials  # providers run in-process: nothing to sign in to, no secret to store
        new_id = str(uuid.uuid4())
        entity = {"name": name, "type": type, "description": description, "connection": connection or {}}
        with self._store.write() as conn:
            conn.execute(
                "INSERT INTO mon_integrated_systems VALUES (?, ?, ?, ?)",
                (new_id, type, _now(), json.dumps(entity)),
            )
        return self.get(new_id)

    def publish_provider(
        self, definition: MonitorDefinition, *, software_spec: str | None = None
    ) -> dict[str, Any]:
        """Providers run in-process here: only the registration is made."""
        if software_spec:
            raise MlopsError(
                "a software specification only applies to the cpd backend (providers run in-process here)",
                hint=Hint("monitor.publish.local", "publish without one"),
            )
        name = f"{definition.id} metrics provider"
        endpoint = f"local:{definition.provider}"
        system = self.add(
            name, type="custom_metrics_provider",
            description=f"mlops-widgets provider {definition.provider!r} for monitor {definition.id}",
            connection={"display_name": name, "endpoint": endpoint},
        )
        return {"integrated_system_id": system["metadata"]["id"], "endpoint": endpoint,
                "wml_deployment_id": None}

    def delete(self, integrated_system_id: str) -> None:
        self._delete(integrated_system_id)


class LocalMonitorInstances(_Table):
    table, what, url = "mon_monitor_instances", "monitor instance", "/v2/monitor_instances"

    def __init__(self, store: _Store, definitions: LocalMonitorDefinitions) -> None:
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
        thresholds: list[dict[str, Any]],
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
            _one(conn, "mon_subscriptions", target_id, "subscription")
            try:
                conn.execute(
                    "INSERT INTO mon_monitor_instances VALUES (?, ?, ?, ?, ?)",
                    (new_id, target_id, monitor_definition_id, _now(), json.dumps(entity)),
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
        thresholds: list[dict[str, Any]] | None = None,
        parameters: dict[str, Any] | None = None,
    ) -> Resource:
        current = self.get(monitor_instance_id)
        checked = None
        if thresholds is not None:
            definition = self._definitions.get(current["entity"]["monitor_definition_id"])
            checked = check_instance_thresholds(definition, thresholds)
        with self._store.write() as conn:
            row = _one(conn, "mon_monitor_instances", monitor_instance_id, "monitor instance")
            entity = json.loads(row["entity"])
            if checked is not None:
                entity["thresholds"] = checked
            if parameters is not None:
                entity["parameters"] = dict(parameters)
            entity["_modified_at"] = _now()
            conn.execute(
                "UPDATE mon_monitor_instances SET entity = ? WHERE id = ?",
                (json.dumps(entity), monitor_instance_id),
            )
        return self.get(monitor_instance_id)

    def set_schedule(self, monitor_instance_id: str, schedule: dict[str, Any] | None) -> Resource:
        """Store the schedule; an enabled one starts the workspace's service, whose scheduler
        runs it (`mlops_widgets.runner.scheduler`)."""
        with self._store.write() as conn:
            row = _one(conn, "mon_monitor_instances", monitor_instance_id, "monitor instance")
            entity = json.loads(row["entity"])
            if schedule is None:
                entity.pop("schedule", None)
            else:
                entity["schedule"] = dict(schedule)
            entity["_modified_at"] = _now()
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


class LocalMeasurements(_PerInstance):
    table, what = "mon_measurements", "measurement"
    url = "/v2/monitor_instances/{monitor_instance_id}/measurements"

    def __init__(
        self, store: _Store, definitions: LocalMonitorDefinitions, instances: LocalMonitorInstances
    ) -> None:
        super().__init__(store)
        self._definitions = definitions
        self._instances = instances

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
        created = _now()
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

    def query(self, *, target_id: str, monitor_definition_id: str, recent_count: int = 1) -> list[Resource]:
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


class LocalRuns(_PerInstance):
    """Runs compute in this process: `add` returns when the run has finished or failed."""

    table, what = "mon_runs", "run"
    url = "/v2/monitor_instances/{monitor_instance_id}/runs"

    def __init__(
        self, store: _Store, instances: LocalMonitorInstances, measurements: LocalMeasurements
    ) -> None:
        super().__init__(store)
        self._instances = instances
        self._measurements = measurements

    def _set_status(self, run_id: str, **status: Any) -> None:
        with self._store.write() as conn:
            entity = json.loads(_one(conn, self.table, run_id, self.what)["entity"])
            entity["status"].update(status)
            conn.execute("UPDATE mon_runs SET entity = ? WHERE id = ?", (json.dumps(entity), run_id))

    def add(self, monitor_instance_id: str, *, triggered_by: str = "user") -> Resource:
        instance = self._instances.get(monitor_instance_id)
        run_id = str(uuid.uuid4())
        started = _now()
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
                completed_at=_now(),
                failure={"errors": [_run_failure(exc)]},
            )
            if not isinstance(exc, Exception):
                raise
        else:
            self._set_status(run_id, state=RUN_FINISHED, completed_at=_now())
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
            row = _one(conn, self.table, run_id, self.what)
        if row["monitor_instance_id"] != monitor_instance_id:
            raise NotFoundError(f"run {run_id} does not belong to monitor instance {monitor_instance_id}")
        return self._res(row)


class LocalMonitoring:
    """The `Monitoring` protocol on the workspace database; see `backends.base`."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        store = _Store(workspace)
        self.service_providers = LocalServiceProviders(store)
        self.subscriptions = LocalSubscriptions(store)
        self.monitor_definitions = LocalMonitorDefinitions(store)
        self.integrated_systems = LocalIntegratedSystems(store)
        self.monitor_instances = LocalMonitorInstances(store, self.monitor_definitions)
        self.measurements = LocalMeasurements(store, self.monitor_definitions, self.monitor_instances)
        self.runs = LocalRuns(store, self.monitor_instances, self.measurements)
