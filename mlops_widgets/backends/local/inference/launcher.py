"""The workspace's service process: find it, start it in the background (under its supervisor,
`supervisor.py`, which starts it again when it dies), stop it with its supervisor and kernels,
and what it uses now (`service_status`).

The service holds `<workspace>/inference/service.lock` while it runs, so whether one runs is
known without the network, also when a dead service left its files behind (a service.json
naming a dead process is reported as stale and replaced by the next service).
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import logging
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local.inference.environment import without_credentials
from mlops_widgets.backends.local.inference.kernel_logs import log_tail
from mlops_widgets.backends.local.inference.procs import alive, cmdline, reap_leftover_kernels
from mlops_widgets.backends.local.inference.routes import MLOPS
from mlops_widgets.backends.local.inference.service import read_info
from mlops_widgets.backends.local.inference.supervisor import (
    SERVICE_MODULE,
    SUPERVISOR_MODULE,
    boot_command,
    held,
    read_state,
)
from mlops_widgets.errors import MlopsError
from mlops_widgets.workspace import Workspace

log = logging.getLogger(__name__)

# A loaded machine takes seconds to import the service: patience before giving up, and before
# launching again a service that never took the workspace's lock (it died starting).
START_TIMEOUT = 60.0
RELAUNCH_AFTER = 15.0


def service_info(workspace: Workspace | str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The running service's address, token and pid; None when no service runs (or one is
    starting and has not yet written its address over the previous one's)."""
    workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if not held(workspace.root / "inference" / "service.lock"):
        return None
    info = read_info(workspace)
    return info if info.get("pid") and info.get("port") and alive(info["pid"]) else None


def start_service(workspace: Workspace) -> dict[str, Any]:
    """Start the workspace's service in the background unless one runs; its info when it answers."""
    inference = workspace.dir("inference")
    with open(inference / "spawn.lock", "a") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        deadline = time.monotonic() + START_TIMEOUT
        launched = -RELAUNCH_AFTER
        while time.monotonic() < deadline:
            info = service_info(workspace)
            if info is not None:
                return info
            # The lock stays held while a killed service's threads finish dying: launch once it
            # is free, and again if a launched service never took it.
            if not held(inference / "service.lock") and time.monotonic() - launched > RELAUNCH_AFTER:
                log.info("launching the inference service of %s", workspace.root)
                _launch(workspace)
                launched = time.monotonic()
            time.sleep(0.02)
    raise MlopsError(
        f"the local inference service did not start within {START_TIMEOUT:g} s; its log "
        f"({inference / 'service.log'}) ends with:\n{log_tail(inference / 'service.log', 15)}"
    )


def _launch(workspace: Workspace) -> None:
    """Start the service's supervisor detached (it starts the service, and again when it dies):
    the launcher forks it off and exits (double fork), so it outlives the caller and is never the
    caller's zombie. A supervisor already running makes this one end at once."""
    inference = workspace.root / "inference"
    log_fd = os.open(inference / "service.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with open(log_fd, "ab") as out:  # private from its creation, as every workspace file
        launcher = subprocess.Popen(
            boot_command(SUPERVISOR_MODULE, workspace.root, "--daemon"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=without_credentials(os.environ),  # kernels filter them too; the service needs none
            cwd=str(inference),
            start_new_session=True,
        )
    launcher.wait()


def _stop_supervisor(inference: Path, timeout: float) -> bool:
    """SIGTERM the workspace's supervisor (it stops its service politely, then itself) and wait
    for it; True when one ran."""
    pid = read_state(Workspace(inference.parent)).get("pid")
    if not pid or not held(inference / "supervisor.lock"):
        return False
    command = cmdline(pid) or ""
    if SUPERVISOR_MODULE in command:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while (held(inference / "supervisor.lock") or alive(pid)) and time.monotonic() < deadline:
        time.sleep(0.02)
    if held(inference / "supervisor.lock") and SUPERVISOR_MODULE in command:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return True


def stop_service(
    workspace: Workspace | str | os.PathLike[str] | None = None, *, timeout: float = 15.0
) -> bool:
    """Stop the workspace's inference service and every kernel it started (also the kernels left
    by a service that died). True when something was running. Safe to call at any time."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    inference = ws.root / "inference"
    if not inference.is_dir():
        return False
    stopped = _stop_supervisor(inference, timeout)
    info = read_info(ws)
    pid = info.get("pid")
    if pid and held(inference / "service.lock"):
        stopped = True
        log.info("stopping the inference service of %s (pid %s)", ws.root, pid)
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(info["host"], info["port"], timeout=timeout)
            conn.request(
                "POST", f"{MLOPS}/service/shutdown", headers={"Authorization": f"Bearer {info['token']}"}
            )
            conn.getresponse().read()
            conn.close()
        deadline = time.monotonic() + timeout
        while held(inference / "service.lock") and time.monotonic() < deadline:
            time.sleep(0.02)
        command = cmdline(pid)
        if held(inference / "service.lock") and (
            command is None or SERVICE_MODULE in command or "serve" in command.split()
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return reap_leftover_kernels(inference / "run") or stopped


def _usage(pid: int) -> dict[str, Any]:
    """What a live process uses now, from /proc: threads, open file descriptors, resident MB."""
    proc = Path(f"/proc/{pid}")
    try:
        status = dict(
            line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line
        )
        fds = len(os.listdir(proc / "fd"))
    except OSError:
        return {}
    return {
        "threads": int(status["Threads"]),
        "fds": fds,
        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 1),
    }


def service_status(workspace: Workspace) -> dict[str, Any]:
    """The service as `mlops service status` shows it: running or not, its pid, address,
    uptime and what it uses, its supervisor (pid, restarts, last exit); `stale_pid` when
    service.json names a process that is gone (the next service replaces the file)."""
    info = read_info(workspace)
    running = service_info(workspace)
    state = read_state(workspace)
    supervised = bool(state.get("pid")) and held(workspace.root / "inference" / "supervisor.lock")
    out: dict[str, Any] = {
        "running": running is not None,
        "pid": running and running["pid"],
        "url": running and running.get("url"),
        "started_at": running and running.get("started_at"),
        "supervisor_pid": state.get("pid") if supervised else None,
        "restarts": state.get("restarts", 0) if supervised else 0,
        "last_exit": state.get("last_exit") if supervised else None,
        "next_start_in_s": state.get("next_start_in_s") if supervised else None,
        "stale_pid": info.get("pid") if running is None and info.get("pid") else None,
    }
    if running is not None:
        with contextlib.suppress(ValueError, TypeError):
            started = datetime.fromisoformat(str(running.get("started_at")))
            out["uptime_s"] = round((datetime.now(UTC) - started).total_seconds())
        out.update(_usage(running["pid"]))
    return out
