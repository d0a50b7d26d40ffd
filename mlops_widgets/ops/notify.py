"""Notification channels of a workspace, and sending alerts to them once per violation episode.

A channel is a webhook (the alert POSTed as JSON, retried with back-off) or a command (run with
the alert as JSON on its standard input). A webhook's URL is a secret (it often carries a
token): it is kept in `<workspace>/monitoring/channels.json`, readable by its owner only, never
in the database, a run record or a log, and shown as its scheme and host only.

`dispatch` claims each alert that opens an episode and was not notified yet in one database
update, so of several processes (the service's scheduler, a command) exactly one sends it.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from urllib.parse import urlsplit

from mlops_widgets.errors import Hint, MlopsError, NotFoundError
from mlops_widgets.ops.alerts import SCHEMA
from mlops_widgets.workspace import Workspace, atomic_write, transaction

WEBHOOK, COMMAND = "webhook", "command"
ATTEMPTS = 4
BACKOFF_S = 0.5  # doubled after each failed attempt
TIMEOUT_S = 10.0


def _path(workspace: Workspace) -> Any:
    return workspace.root / "monitoring" / "channels.json"


def _read(workspace: Workspace) -> list[dict[str, Any]]:
    path = _path(workspace)
    if not path.exists():
        return []
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MlopsError(f"cannot read the notification channels {path}: {exc}") from None


def _write(workspace: Workspace, channels: list[dict[str, Any]]) -> None:
    path = _path(workspace)
    atomic_write(path, json.dumps(channels, indent=2))
    os.chmod(path, 0o600)


def masked(url: str) -> str:
    """A webhook URL as it may be shown: scheme and host, the rest hidden."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}/***"


def _shown(channel: dict[str, Any]) -> dict[str, Any]:
    target = masked(channel["target"]) if channel["kind"] == WEBHOOK else channel["target"]
    return {
        "channel_id": channel["id"],
        "kind": channel["kind"],
        "target": target,
        "created_at": channel["created_at"],
    }


def add_channel(
    workspace: Workspace, *, webhook: str | None = None, command: str | None = None
) -> dict[str, Any]:
    """Add a webhook or a command channel; returns it as listings show it."""
    if bool(webhook) == bool(command):
        raise MlopsError(
            "a notification channel is either a webhook or a command",
            hint=Hint("monitor.notify", "give exactly one of a webhook URL or a command"),
        )
    if webhook:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MlopsError(f"not an http(s) URL: {masked(webhook)}")
    channel = {
        "id": uuid.uuid4().hex[:8],
        "kind": WEBHOOK if webhook else COMMAND,
        "target": webhook or command,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    _write(workspace, [*_read(workspace), channel])
    return _shown(channel)


def list_channels(workspace: Workspace) -> list[dict[str, Any]]:
    return [_shown(c) for c in _read(workspace)]


def remove_channel(workspace: Workspace, channel_id: str) -> None:
    channels = _read(workspace)
    kept = [c for c in channels if c["id"] != channel_id]
    if len(kept) == len(channels):
        raise NotFoundError(
            f"no notification channel {channel_id!r}",
            hint=Hint("monitor.notify.list", "list the channels to see their ids"),
        )
    _write(workspace, kept)


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (http(s) checked)
        response.read()


def _run(command: str, body: bytes) -> None:
    done = subprocess.run(command, shell=True, input=body, capture_output=True, timeout=60, check=False)  # noqa: S602
    if done.returncode:
        tail = done.stderr.decode(errors="replace").strip()[-300:]
        raise MlopsError(f"exited with status {done.returncode}{': ' + tail if tail else ''}")


def send(channel: dict[str, Any], alert: dict[str, Any]) -> dict[str, Any]:
    """Deliver one alert to one channel, a webhook retried with back-off; the outcome, with the
    webhook's URL masked in any error."""
    body = json.dumps(alert).encode()
    error = None
    attempts = ATTEMPTS if channel["kind"] == WEBHOOK else 1
    for attempt in range(1, attempts + 1):
        try:
            if channel["kind"] == WEBHOOK:
                _post(channel["target"], body)
            else:
                _run(channel["target"], body)
            return {"channel_id": channel["id"], "ok": True, "attempts": attempt}
        except (OSError, urllib.error.URLError, subprocess.SubprocessError, MlopsError) as exc:
            error = (
                str(exc).replace(channel["target"], masked(channel["target"]))
                if channel["kind"] == WEBHOOK
                else str(exc)
            )
            if attempt < attempts:
                time.sleep(BACKOFF_S * 2 ** (attempt - 1))
    return {"channel_id": channel["id"], "ok": False, "attempts": attempts, "error": error}


def dispatch(workspace: Workspace) -> list[dict[str, Any]]:
    """Send every alert that opens a violation episode and was not notified yet to every
    channel; returns the deliveries. Alerts raised while no channel exists are settled too:
    adding a channel later does not send a backlog."""
    channels = _read(workspace)
    deliveries = []
    with workspace.tables(SCHEMA) as conn:
        rows = conn.execute(
            "SELECT id, alert FROM alerts WHERE opens_episode = 1 AND notified_at IS NULL ORDER BY measured_at"
        ).fetchall()
        for row in rows:
            with transaction(conn):
                claimed = conn.execute(
                    "UPDATE alerts SET notified_at = ? WHERE id = ? AND notified_at IS NULL",
                    (time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), row["id"]),
                ).rowcount
            if claimed:
                alert = json.loads(row["alert"])
                deliveries += [{"alert_id": row["id"], **send(c, alert)} for c in channels]
    return deliveries
