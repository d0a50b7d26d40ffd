"""Notification channels: a webhook (the notification POSTed as JSON) or a command (run with it
as JSON on its standard input), each subscribed to kinds of notification (`KINDS`).

A webhook's URL is a secret (it often carries a token or `user:password@`): it is kept in
`<workspace>/monitoring/channels.json`, readable by its owner only, never in the database, a
run record or a log, and shown as its scheme and host only. The outbox that delivers to the
channels is `ops.notify`.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit, urlunsplit

from mlops_widgets.errors import Hint, MlopsError
from mlops_widgets.workspace import Workspace, atomic_write

WEBHOOK, COMMAND = "webhook", "command"
ALERT, EPISODE_END, EVALUATION_FAILED = "alert", "episode_end", "evaluation_failed"
KINDS = (ALERT, EPISODE_END, EVALUATION_FAILED)
TIMEOUT_S = 10.0  # one webhook attempt
COMMAND_TIMEOUT_S = 60.0


def stamp(at: float | None = None) -> str:
    return datetime.fromtimestamp(time.time() if at is None else at, UTC).isoformat(timespec="seconds")


# --- channels --------------------------------------------------------------------------------------


def _path(workspace: Workspace) -> Path:
    return workspace.root / "monitoring" / "channels.json"


def read(workspace: Workspace) -> list[dict[str, Any]]:
    path = _path(workspace)
    if not path.exists():
        return []
    try:
        return list(json.loads(path.read_text()))
    except (OSError, ValueError) as exc:
        raise MlopsError(f"cannot read the notification channels {path}: {exc}") from None


def write(workspace: Workspace, channels: list[dict[str, Any]]) -> None:
    path = workspace.path(*_path(workspace).relative_to(workspace.root).parts)  # opens the workspace
    atomic_write(path, json.dumps(channels, indent=2))
    os.chmod(path, 0o600)


def masked(url: str) -> str:
    """A webhook URL as it may be shown: scheme and host, the rest (credentials, path, query)
    hidden. Never raises, whatever the text."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":?"
    return f"{parts.scheme}://{parts.hostname or ''}{port}/***"


def check_webhook(url: str) -> SplitResult:
    """The webhook URL parsed, or one clear error: http(s), a host, a numeric port, no spaces.
    Credentials in the URL (`https://user:password@host/...`) are supported: sent as HTTP Basic
    authentication, as browsers and curl do."""
    shown = masked(url)
    if not url or any(c.isspace() or ord(c) < 32 for c in url):
        raise MlopsError(f"the webhook URL {shown} holds spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise MlopsError(f"not an http(s) URL: {shown}")
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number in 0-65535)
    except ValueError:
        raise MlopsError(f"the port of the webhook URL {shown} is not a number from 1 to 65535") from None
    if parts.port == 0:
        raise MlopsError(f"the port of the webhook URL {shown} is not a number from 1 to 65535")
    return parts


def _kinds(on: list[str] | None) -> list[str]:
    kinds = list(dict.fromkeys(on or [ALERT]))
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise MlopsError(
            f"unknown notification kind {', '.join(map(repr, unknown))}: choose from {', '.join(KINDS)}"
        )
    return kinds


def shown(channel: dict[str, Any]) -> dict[str, Any]:
    target = masked(channel["target"]) if channel["kind"] == WEBHOOK else channel["target"]
    return {
        "channel_id": channel["id"],
        "kind": channel["kind"],
        "target": target,
        "on": channel.get("on", [ALERT]),
        "created_at": channel["created_at"],
    }


def add_channel(
    workspace: Workspace,
    *,
    webhook: str | None = None,
    command: str | None = None,
    on: list[str] | None = None,
    test: bool = False,
) -> dict[str, Any]:
    """Add a webhook or a command channel for the kinds `on` (default: alerts); with `test`, a
    sample notification is sent first and the channel is added only if it was accepted.
    Returns the channel as listings show it."""
    if bool(webhook) == bool(command):
        raise MlopsError(
            "a notification channel is either a webhook or a command",
            hint=Hint("monitor.notify", "give exactly one of a webhook URL or a command"),
        )
    if webhook:
        check_webhook(webhook)
    channel = {
        "id": uuid.uuid4().hex[:8],
        "kind": WEBHOOK if webhook else COMMAND,
        "target": webhook or command,
        "on": _kinds(on),
        "created_at": stamp(),
    }
    if test:
        error = attempt(channel, sample())
        if error:
            raise MlopsError(f"the test notification was not accepted: {error}; the channel was not added")
    write(workspace, [*read(workspace), channel])
    return shown(channel)


def sample() -> dict[str, Any]:
    """What a test notification carries: an alert's shape, marked as a test."""
    return {
        "kind": "test",
        "alert_id": "test",
        "deployment_name": "test",
        "monitor_id": "test",
        "measured_at": stamp(),
        "violations": [],
        "new_violations": [],
        "text": "mlops-widgets: a test notification",
    }


def list_channels(workspace: Workspace) -> list[dict[str, Any]]:
    return [shown(c) for c in read(workspace)]


# --- sending one notification to one channel --------------------------------------------------------


def _post(url: str, body: bytes) -> None:
    parts = check_webhook(url)
    headers = {"Content-Type": "application/json", "User-Agent": "mlops-widgets"}
    if parts.username is not None:
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        netloc = f"{host}:{parts.port}" if parts.port else host
        url = urlunsplit(parts._replace(netloc=netloc))
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310 (http(s) checked)
        response.read()


def _run(command: str, body: bytes) -> None:
    done = subprocess.run(  # noqa: S602 (the user's own command)
        command, shell=True, input=body, capture_output=True, timeout=COMMAND_TIMEOUT_S, check=False
    )
    if done.returncode:
        tail = done.stderr.decode(errors="replace").strip()[-300:]
        raise MlopsError(f"exited with status {done.returncode}{': ' + tail if tail else ''}")


def attempt(channel: dict[str, Any], payload: dict[str, Any]) -> str | None:
    """Send once; None when the channel accepted it, else the error (the webhook's URL, its
    credentials and its query never in it)."""
    body = json.dumps(payload).encode()
    try:
        if channel["kind"] == WEBHOOK:
            _post(channel["target"], body)
        else:
            _run(channel["target"], body)
        return None
    except Exception as exc:  # any failure of one channel stays that channel's
        error = str(exc) if isinstance(exc, MlopsError) else f"{type(exc).__name__}: {exc}"
        if channel["kind"] == WEBHOOK:
            target = channel["target"]
            parts = urlsplit(target)
            error = error.replace(target, masked(target))
            for secret in (parts.password, parts.query, parts.path):
                if secret and len(secret) > 3:
                    error = error.replace(secret, "***")
        return error[:500]
