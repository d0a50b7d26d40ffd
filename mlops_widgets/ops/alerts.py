"""Alerts: a measurement with violations, recorded once in the workspace with its deployment,
monitor, violated metrics (value and limit) and the runs behind it; acknowledged by the user.

Alerts are derived from the backend's measurements (the embedded ones or OpenScale's), so both
backends raise them alike: `record` reads the measurements newer than the last one seen per
monitor instance. A violation *episode* of a metric starts at the first measurement violating
it and ends at the first one that does not; an alert that starts an episode of at least one
metric is the one notified (`ops.notify`), the others while the metric stays violated are not;
the first measurement back within a metric's threshold ends its episode (`episode_ends`,
notified to the channels that asked for it).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import uuid
from datetime import UTC, datetime
from typing import Any

from mlops_widgets import events_feed
from mlops_widgets.backends.base import Backend
from mlops_widgets.backends.views import AlertView
from mlops_widgets.errors import NotFoundError
from mlops_widgets.monitors.schedule import parse_time
from mlops_widgets.ops.monitor_views import (
    instances_of,
    measurement_summary,
    metric_names,
    read,
    subscription_of,
)
from mlops_widgets.workspace import Workspace, transaction

WINDOW = 50  # measurements read per instance on the first look (later: the newer ones)

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY, measurement_id TEXT NOT NULL UNIQUE, monitor_instance_id TEXT NOT NULL,
    deployment_name TEXT NOT NULL, measured_at TEXT NOT NULL, opens_episode INTEGER NOT NULL,
    acknowledged_at TEXT, notified_at TEXT, alert TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS alerts_deployment ON alerts (deployment_name, measured_at);
CREATE TABLE IF NOT EXISTS alerts_seen (
    monitor_instance_id TEXT PRIMARY KEY, measured_at TEXT NOT NULL, violated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS episode_ends (
    id TEXT PRIMARY KEY, measurement_id TEXT NOT NULL UNIQUE, monitor_instance_id TEXT NOT NULL,
    deployment_name TEXT NOT NULL, measured_at TEXT NOT NULL, episode TEXT NOT NULL);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _alert(row: sqlite3.Row) -> AlertView:
    return AlertView.from_record(
        {
            **json.loads(row["alert"]),
            "acknowledged_at": row["acknowledged_at"],
            "notified_at": row["notified_at"],
            "opens_episode": bool(row["opens_episode"]),
        }
    )


def record(backend: Backend, deployment_name: str, *, audit_run_id: str | None = None) -> list[AlertView]:
    """Record the alerts of the deployment's measurements not seen yet; returns the new ones.
    Safe to call from many processes: a measurement is recorded once."""
    _asset_id, _entry, sub = subscription_of(backend, deployment_name)
    found = []
    for inst in instances_of(backend, sub.id):
        monitor_id = inst.monitor_id
        names = metric_names(backend, monitor_id)
        measured = [
            measurement_summary(m, names) for m in reversed(read(backend).measurements(inst.id, limit=WINDOW))
        ]
        found.append((inst, monitor_id, measured))
    new: list[AlertView] = []
    with backend.workspace.tables(SCHEMA) as conn, transaction(conn):
        for inst, monitor_id, measured in found:
            seen = conn.execute(
                "SELECT * FROM alerts_seen WHERE monitor_instance_id = ?", (inst.id,)
            ).fetchone()
            after = parse_time(seen["measured_at"]) if seen else None
            violated = set(json.loads(seen["violated"])) if seen else set()
            last = None
            for m in measured:
                at = parse_time(m["timestamp"])
                if after is not None and at <= after:
                    continue
                now_violated = {v["metric"] for v in m["violations"]}
                opening = sorted(now_violated - violated)
                ended = sorted(violated - now_violated)
                violated, last = now_violated, at
                if ended:
                    _episode_end(conn, deployment_name, monitor_id, inst.id, m, at, ended, now_violated)
                if not now_violated:
                    continue
                alert = {
                    "alert_id": str(uuid.uuid4()),
                    "deployment_name": deployment_name,
                    "monitor_id": monitor_id,
                    "monitor_instance_id": inst.id,
                    "measurement_id": m["measurement_id"],
                    "run_id": m["run_id"],
                    "audit_run_id": audit_run_id,
                    "measured_at": at.isoformat(),
                    "violations": m["violations"],
                    "new_violations": opening,
                }
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO alerts (id, measurement_id, monitor_instance_id,"
                    " deployment_name, measured_at, opens_episode, alert) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        alert["alert_id"],
                        alert["measurement_id"],
                        inst.id,
                        deployment_name,
                        alert["measured_at"],
                        int(bool(opening)),
                        json.dumps(alert),
                    ),
                ).rowcount
                if inserted:
                    new.append(AlertView.from_record({**alert, "opens_episode": bool(opening)}))
            if last is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO alerts_seen VALUES (?, ?, ?)",
                    (inst.id, last.isoformat(), json.dumps(sorted(violated))),
                )
    for raised in new:
        events_feed.publish(
            backend.workspace,
            "alert",
            raised.alert_id,
            state="raised",
            deployment_name=deployment_name,
            monitor_id=raised.monitor_id,
        )
    return new


def _episode_end(
    conn: sqlite3.Connection,
    deployment_name: str,
    monitor_id: str,
    instance_id: str,
    measurement: dict[str, Any],
    at: datetime,
    ended: list[str],
    still: set[str],
) -> None:
    """Record that the metrics `ended` are back within their thresholds (notified to the
    channels subscribed to episode ends)."""
    episode = {
        "deployment_name": deployment_name,
        "monitor_id": monitor_id,
        "monitor_instance_id": instance_id,
        "measurement_id": measurement["measurement_id"],
        "run_id": measurement["run_id"],
        "measured_at": at.isoformat(),
        "ended": ended,
        "still_violated": sorted(still),
    }
    conn.execute(
        "INSERT OR IGNORE INTO episode_ends VALUES (?, ?, ?, ?, ?, ?)",
        (
            str(uuid.uuid4()),
            measurement["measurement_id"],
            instance_id,
            deployment_name,
            episode["measured_at"],
            json.dumps(episode),
        ),
    )


def list_alerts(
    workspace: Workspace,
    *,
    deployment_name: str | None = None,
    since: str | None = None,
    unacknowledged: bool = False,
) -> list[AlertView]:
    """Recorded alerts, newest first; `since` an ISO time."""
    after = parse_time(since).isoformat() if since else None
    with workspace.tables(SCHEMA) as conn:
        rows = conn.execute(
            "SELECT * FROM alerts WHERE (? IS NULL OR deployment_name = ?)"
            " AND (? IS NULL OR measured_at >= ?) AND (? = 0 OR acknowledged_at IS NULL)"
            " ORDER BY measured_at DESC",
            (deployment_name, deployment_name, after, after, int(unacknowledged)),
        ).fetchall()
    return [_alert(r) for r in rows]


def unacknowledged_count(workspace: Workspace, deployment_name: str | None = None) -> int:
    """How many alerts nobody acknowledged yet (the panel's and the sidebar's badge)."""
    with workspace.tables(SCHEMA) as conn:
        (n,) = conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE acknowledged_at IS NULL AND (? IS NULL OR deployment_name = ?)",
            (deployment_name, deployment_name),
        ).fetchone()
    return int(n)


def acknowledge(
    workspace: Workspace, alert_ids: list[str] | None = None, *, deployment_name: str | None = None
) -> int:
    """Acknowledge the given alerts (an id or a unique prefix of one), or every unacknowledged
    alert (of `deployment_name`); returns how many were acknowledged."""
    count = _acknowledge(workspace, alert_ids, deployment_name)
    if count:
        events_feed.publish(workspace, "alert", deployment_name or "*", state="acknowledged", count=count)
    return count


def _acknowledge(workspace: Workspace, alert_ids: list[str] | None, deployment_name: str | None) -> int:
    now = _now()
    with workspace.tables(SCHEMA) as conn, transaction(conn):
        if not alert_ids:
            return conn.execute(
                "UPDATE alerts SET acknowledged_at = ? WHERE acknowledged_at IS NULL"
                " AND (? IS NULL OR deployment_name = ?)",
                (now, deployment_name, deployment_name),
            ).rowcount
        count = 0
        for prefix in alert_ids:
            ids = [r["id"] for r in conn.execute("SELECT id FROM alerts WHERE id LIKE ?", (prefix + "%",))]
            if len(ids) != 1:
                raise NotFoundError(
                    f"no alert with id {prefix!r}" if not ids else f"{len(ids)} alerts start with {prefix!r}"
                )
            count += conn.execute(
                "UPDATE alerts SET acknowledged_at = ? WHERE id = ? AND acknowledged_at IS NULL",
                (now, ids[0]),
            ).rowcount
        return count


def sync(backend: Backend, deployment_name: str | None = None) -> list[AlertView]:
    """`record` for one deployment or every subscribed one (a subscription whose entry is gone
    is skipped): how alerts are read from OpenScale's measurements on cpd."""
    if deployment_name:
        return record(backend, deployment_name)
    new = []
    for sub in read(backend).subscriptions():
        name = sub.deployment_name
        if name:
            with contextlib.suppress(NotFoundError):
                new += record(backend, name)
    return new
