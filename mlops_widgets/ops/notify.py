"""A durable outbox that delivers notifications to the workspace's channels (`ops.channels`).

Each notification is written once (`enqueue`: an alert that opens a violation episode, an
episode's end, a failed scheduled evaluation), with one delivery per channel subscribed to its
kind. A delivery is marked delivered only after its channel accepted it; a failed attempt is
retried with exponential back-off (the setting `notify_retry_s` doubled up to `RETRY_MAX_S`) by whichever process
dispatches next (the local service's `NotificationSender` every few seconds, `monitor run`,
`monitor alerts`), across restarts, until `notify_horizon_s` has passed: then it is `failed`, shown
with its attempts and error, and can be resent. A delivery is leased while it is being sent, so
of several processes one sends it. One channel's failure never touches another's deliveries.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from typing import Any

from mlops_widgets import settings
from mlops_widgets.errors import Hint, NotFoundError
from mlops_widgets.ops import channels
from mlops_widgets.ops.alerts import SCHEMA as ALERTS_SCHEMA
from mlops_widgets.workspace import Workspace, transaction

log = logging.getLogger(__name__)

ALERT, EPISODE_END, EVALUATION_FAILED = channels.ALERT, channels.EPISODE_END, channels.EVALUATION_FAILED
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
LEASE_S = 90.0  # a delivery being sent is not taken by another process for this long
RETRY_MAX_S = 3600.0
POLL_S = 2.0  # how often the service's sender looks for due deliveries

SCHEMA = (
    ALERTS_SCHEMA
    + """
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, source_id TEXT NOT NULL UNIQUE,
    deployment_name TEXT, created_at TEXT NOT NULL, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (
    notification_id TEXT NOT NULL, channel_id TEXT NOT NULL, state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, first_at REAL NOT NULL, next_at REAL NOT NULL,
    lease_until REAL, last_error TEXT, last_attempt_at TEXT, delivered_at TEXT,
    PRIMARY KEY (notification_id, channel_id));
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_at);
"""
)


def remove_channel(workspace: Workspace, channel_id: str) -> None:
    """Remove a channel; its pending deliveries are dropped (marked failed, 'channel removed')."""
    existing = channels.read(workspace)
    kept = [c for c in existing if c["id"] != channel_id]
    if len(kept) == len(existing):
        raise NotFoundError(
            f"no notification channel {channel_id!r}",
            hint=Hint("monitor.notify.list", "list the channels to see their ids"),
        )
    channels.write(workspace, kept)
    with workspace.tables(SCHEMA) as conn, transaction(conn):
        conn.execute(
            "UPDATE deliveries SET state = ?, last_error = 'channel removed', lease_until = NULL"
            " WHERE channel_id = ? AND state = ?",
            (FAILED, channel_id, PENDING),
        )


# --- the outbox ------------------------------------------------------------------------------------


def notify_evaluation_failed(
    workspace: Workspace, *, deployment_name: str, monitor_id: str, run_id: str, error: str
) -> None:
    """Queue a failed (scheduled) evaluation for the channels subscribed to `evaluation_failed`."""
    payload = {
        "kind": EVALUATION_FAILED,
        "deployment_name": deployment_name,
        "monitor_id": monitor_id,
        "audit_run_id": run_id,
        "error": error,
        "failed_at": channels.stamp(),
    }
    with workspace.tables(SCHEMA) as conn, transaction(conn):
        _add(conn, EVALUATION_FAILED, f"run:{run_id}", deployment_name, payload, channels.read(workspace))


def _add(
    conn: Any,
    kind: str,
    source_id: str,
    deployment_name: str | None,
    payload: dict[str, Any],
    subscribed: list[dict[str, Any]],
) -> None:
    """One notification and a pending delivery to each channel subscribed to its kind; nothing
    when that source was queued already."""
    notification_id = uuid.uuid4().hex
    added = conn.execute(
        "INSERT OR IGNORE INTO notifications VALUES (?, ?, ?, ?, ?, ?)",
        (notification_id, kind, source_id, deployment_name, channels.stamp(), json.dumps(payload)),
    ).rowcount
    if not added:
        return
    now = time.time()
    for channel in subscribed:
        if kind in channel.get("on", [channels.ALERT]):
            conn.execute(
                "INSERT INTO deliveries (notification_id, channel_id, state, first_at, next_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (notification_id, channel["id"], PENDING, now, now),
            )


def enqueue(workspace: Workspace) -> None:
    """Queue every alert that opens an episode and every episode end not queued yet. Alerts
    raised while no channel exists are queued to nobody: adding a channel later sends no backlog."""
    subscribed = channels.read(workspace)
    with workspace.tables(SCHEMA) as conn, transaction(conn):
        for row in conn.execute(
            "SELECT id, deployment_name, alert FROM alerts WHERE opens_episode = 1 AND notified_at IS NULL"
            " AND id NOT IN (SELECT source_id FROM notifications) ORDER BY measured_at"
        ).fetchall():
            payload = {"kind": ALERT, **json.loads(row["alert"])}
            _add(conn, ALERT, row["id"], row["deployment_name"], payload, subscribed)
        for row in conn.execute(
            "SELECT * FROM episode_ends WHERE id NOT IN (SELECT source_id FROM notifications)"
            " ORDER BY measured_at"
        ).fetchall():
            payload = {"kind": EPISODE_END, **json.loads(row["episode"])}
            _add(conn, EPISODE_END, row["id"], row["deployment_name"], payload, subscribed)


def _claim(workspace: Workspace, now: float) -> list[Any]:
    with workspace.tables(SCHEMA) as conn, transaction(conn):
        rows = conn.execute(
            "SELECT d.*, n.kind, n.source_id, n.payload, n.created_at FROM deliveries d"
            " JOIN notifications n ON n.id = d.notification_id"
            " WHERE d.state = ? AND d.next_at <= ? AND (d.lease_until IS NULL OR d.lease_until < ?)"
            " ORDER BY d.next_at",
            (PENDING, now, now),
        ).fetchall()
        for row in rows:
            conn.execute(
                "UPDATE deliveries SET lease_until = ? WHERE notification_id = ? AND channel_id = ?",
                (now + LEASE_S, row["notification_id"], row["channel_id"]),
            )
    return rows


def deliver_due(workspace: Workspace, now: float | None = None) -> list[dict[str, Any]]:
    """Attempt every pending delivery that is due, once each; returns the attempts."""
    now = time.time() if now is None else now
    rows = _claim(workspace, now)
    if not rows:
        return []
    by_id = {c["id"]: c for c in channels.read(workspace)}
    retry_s = settings.of_workspace(workspace, settings.NOTIFY_RETRY_S)
    horizon_s = settings.of_workspace(workspace, settings.NOTIFY_HORIZON_S)
    attempts = []
    for row in rows:
        channel = by_id.get(row["channel_id"])
        error = channels.attempt(channel, json.loads(row["payload"])) if channel else "channel removed"
        tried = row["attempts"] + 1
        attempted = time.time()
        with workspace.tables(SCHEMA) as conn, transaction(conn):
            key = (row["notification_id"], row["channel_id"])
            if error is None:
                conn.execute(
                    "UPDATE deliveries SET state = ?, attempts = ?, lease_until = NULL, last_error = NULL,"
                    " last_attempt_at = ?, delivered_at = ? WHERE notification_id = ? AND channel_id = ?",
                    (DELIVERED, tried, channels.stamp(attempted), channels.stamp(attempted), *key),
                )
                if row["kind"] == ALERT:
                    _settle_alert(conn, row["notification_id"], row["source_id"], attempted)
            else:
                delay = min(RETRY_MAX_S, retry_s * 2 ** (tried - 1))
                gave_up = channel is None or attempted + delay - row["first_at"] > horizon_s
                conn.execute(
                    "UPDATE deliveries SET state = ?, attempts = ?, lease_until = NULL, last_error = ?,"
                    " last_attempt_at = ?, next_at = ? WHERE notification_id = ? AND channel_id = ?",
                    (
                        FAILED if gave_up else PENDING,
                        tried,
                        error,
                        channels.stamp(attempted),
                        attempted + delay,
                        *key,
                    ),
                )
        attempts.append(
            {
                "notification_id": row["notification_id"],
                "kind": row["kind"],
                "source_id": row["source_id"],
                "channel_id": row["channel_id"],
                "ok": error is None,
                "attempts": tried,
                "error": error,
            }
        )
    return attempts


def _settle_alert(conn: Any, notification_id: str, alert_id: str, at: float) -> None:
    """An alert is notified once every channel it was queued to accepted it."""
    (left,) = conn.execute(
        "SELECT COUNT(*) FROM deliveries WHERE notification_id = ? AND state != ?",
        (notification_id, DELIVERED),
    ).fetchone()
    if not left:
        conn.execute("UPDATE alerts SET notified_at = ? WHERE id = ?", (channels.stamp(at), alert_id))


def dispatch(workspace: Workspace) -> list[dict[str, Any]]:
    """Queue what is new, then attempt every due delivery; returns the attempts."""
    enqueue(workspace)
    return deliver_due(workspace)


def deliveries(
    workspace: Workspace, *, state: str | None = None, deployment_name: str | None = None
) -> list[dict[str, Any]]:
    """The outbox's deliveries, newest first, each with its notification's kind and source
    (for an alert, its id), its channel as listings show it, attempts and last error."""
    shown = {c["id"]: channels.shown(c) for c in channels.read(workspace)}
    with workspace.tables(SCHEMA) as conn:
        rows = conn.execute(
            "SELECT d.*, n.kind, n.source_id, n.deployment_name, n.created_at FROM deliveries d"
            " JOIN notifications n ON n.id = d.notification_id"
            " WHERE (? IS NULL OR d.state = ?) AND (? IS NULL OR n.deployment_name = ?)"
            " ORDER BY n.created_at DESC, d.channel_id",
            (state, state, deployment_name, deployment_name),
        ).fetchall()
    return [
        {
            "notification_id": r["notification_id"],
            "kind": r["kind"],
            "source_id": r["source_id"],
            "deployment_name": r["deployment_name"],
            "channel_id": r["channel_id"],
            "channel": (shown.get(r["channel_id"]) or {}).get("target", "(removed)"),
            "state": r["state"],
            "attempts": r["attempts"],
            "last_error": r["last_error"],
            "last_attempt_at": r["last_attempt_at"],
            "next_attempt_at": channels.stamp(r["next_at"]) if r["state"] == PENDING else None,
            "delivered_at": r["delivered_at"],
            "created_at": r["created_at"],
        }
        for r in rows
    ]


def resend(workspace: Workspace, notification_ids: list[str] | None = None) -> int:
    """Queue failed deliveries again (of the given notifications, or every failed one, an id
    or a unique prefix each), retried from now for a new horizon; returns how many."""
    now = time.time()
    existing = {c["id"] for c in channels.read(workspace)}
    with workspace.tables(SCHEMA) as conn, transaction(conn):
        rows = conn.execute(
            "SELECT notification_id, channel_id FROM deliveries WHERE state = ?", (FAILED,)
        ).fetchall()
        if notification_ids:
            chosen = set()
            for prefix in notification_ids:
                ids = {r["notification_id"] for r in rows if r["notification_id"].startswith(prefix)}
                if len(ids) != 1:
                    raise NotFoundError(
                        f"no failed delivery of notification {prefix!r}"
                        if not ids
                        else f"{len(ids)} notifications start with {prefix!r}"
                    )
                chosen |= ids
            rows = [r for r in rows if r["notification_id"] in chosen]
        rows = [r for r in rows if r["channel_id"] in existing]
        for r in rows:
            conn.execute(
                "UPDATE deliveries SET state = ?, first_at = ?, next_at = ?, lease_until = NULL"
                " WHERE notification_id = ? AND channel_id = ?",
                (PENDING, now, now, r["notification_id"], r["channel_id"]),
            )
    return len(rows)


class NotificationSender:
    """A companion of the local service (entry point `mlops_widgets.companions`): delivers what
    is due every POLL_S, so retries go on while no command runs, across restarts."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, workspace: Workspace) -> None:
        self._thread = threading.Thread(
            target=self._loop, args=(workspace,), name="notification-sender", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(channels.TIMEOUT_S + 5)

    def _loop(self, workspace: Workspace) -> None:
        while not self._stop.wait(POLL_S):
            try:
                for d in dispatch(workspace):
                    if not d["ok"]:
                        log.warning(
                            "%s %s not delivered to channel %s (attempt %d): %s",
                            d["kind"],
                            d["source_id"],
                            d["channel_id"],
                            d["attempts"],
                            d["error"],
                        )
            except Exception:
                log.exception("notification sender: delivering failed")
