"""The embedded monitoring model's storage: the `mon_*` tables of the workspace database, and
rows returned as OpenScale resources (`{"metadata": {...}, "entity": {...}}`)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from mlops_widgets.backends.monitoring_protocol import Resource
from mlops_widgets.errors import NotFoundError
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


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class Store:
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


def resource_of(row: sqlite3.Row, url: str) -> Resource:
    entity = json.loads(row["entity"])
    meta = {"id": row["id"], "url": url, "created_at": row["created_at"]}
    modified = entity.pop("_modified_at", None)
    if modified:
        meta["modified_at"] = modified
    return {"metadata": meta, "entity": entity}


def one(conn: sqlite3.Connection, table: str, key: str, what: str) -> sqlite3.Row:
    row = conn.execute(f"SELECT * FROM {table} WHERE id = ?", (key,)).fetchone()
    if row is None:
        raise NotFoundError(f"no {what} with id {key}")
    return row


class Table:
    """One `mon_*` table whose rows are OpenScale resources at `<url>/<id>`: reading, listing and
    deleting rows is the same for every area, only the table and the words differ."""

    table = ""
    what = ""  # the object's name in messages: "no <what> with id ..."
    url = ""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _res(self, row: sqlite3.Row) -> Resource:
        return resource_of(row, f"{self.url}/{row['id']}")

    def _get(self, key: str) -> Resource:
        with self._store.connect() as conn:
            return self._res(one(conn, self.table, key, self.what))

    def _select(self, where: str, params: tuple[Any, ...], tail: str = "ORDER BY rowid") -> list[Resource]:
        with self._store.connect() as conn:
            rows = conn.execute(f"SELECT * FROM {self.table} WHERE {where} {tail}", params).fetchall()
        return [self._res(r) for r in rows]

    def _delete(self, key: str) -> None:
        with self._store.write() as conn:
            one(conn, self.table, key, self.what)
            conn.execute(f"DELETE FROM {self.table} WHERE id = ?", (key,))


class PerInstance(Table):
    """Rows that belong to a monitor instance (runs, measurements): their url is under the
    instance's, and they list newest first."""

    def _res(self, row: sqlite3.Row) -> Resource:
        url = self.url.format(monitor_instance_id=row["monitor_instance_id"])
        return resource_of(row, f"{url}/{row['id']}")

    def list(self, monitor_instance_id: str, *, limit: int | None = None) -> list[Resource]:
        return self._select(
            "monitor_instance_id = ?",
            (monitor_instance_id, -1 if limit is None else limit),
            "ORDER BY rowid DESC LIMIT ?",
        )
