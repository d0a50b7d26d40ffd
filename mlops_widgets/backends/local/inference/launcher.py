"""The workspace's service process: find it, start it in the background, stop it with its kernels.

The service holds `<workspace>/inference/service.lock` while it runs, so whether one runs is
known without the network, also when a dead service left its files behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlops_widgets.backends.local.inference.environment import without_credentials
from mlops_widgets.backends.local.inference.kernel_logs import log_tail
from mlops_widgets.backends.local.inference.procs import alive, cmdline, reap_leftover_kernels
from mlops_widgets.backends.local.inference.routes import MLOPS
from mlops_widgets.backends.local.inference.service import read_info
from mlops_widgets.errors import MlopsError
from mlops_widgets.workspace import Workspace

log = logging.getLogger(__name__)

# A loaded machine takes seconds to import the service: patience before giving up, and before
# launching again a service that never took the workspace's lock (it died starting).
START_TIMEOUT = 60.0
RELAUNCH_AFTER = 15.0
SERVICE_MODULE = "mlops_widgets.backends.local.inference.server"


def _held(lock: Path) -> bool:
    """Whether a running service holds the workspace's service lock (works for a dead service's
    stale files, and needs no network)."""
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def service_info(workspace: Workspace | str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The running service's address, token and pid; None when no service runs (or one is
    starting and has not yet written its address over the previous one's)."""
    workspace = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    if not _held(workspace.root / "inference" / "service.lock"):
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
            if not _held(inference / "service.lock") and time.monotonic() - launched > RELAUNCH_AFTER:
                log.info("launching the inference service of %s", workspace.root)
                _launch(workspace)
                launched = time.monotonic()
            time.sleep(0.02)
    raise MlopsError(
        f"the local inference service did not start within {START_TIMEOUT:g} s; its log "
        f"({inference / 'service.log'}) ends with:\n{log_tail(inference / 'service.log', 15)}"
    )


def _launch(workspace: Workspace) -> None:
    """Start the service detached: the launcher forks it off and exits (double fork), so it
    outlives the caller and is never the caller's zombie."""
    inference = workspace.root / "inference"
    root = str(Path(__file__).resolve().parents[4])
    boot = f"import sys; sys.path.insert(0, {root!r}); from {SERVICE_MODULE} import main; main()"
    log_fd = os.open(inference / "service.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with open(log_fd, "ab") as out:  # private from its creation, as every workspace file
        launcher = subprocess.Popen(
            [sys.executable, "-c", boot, "--workspace", str(workspace.root), "--daemon"],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=without_credentials(os.environ),  # kernels filter them too; the service needs none
            cwd=str(inference),
            start_new_session=True,
        )
    launcher.wait()


def stop_service(
    workspace: Workspace | str | os.PathLike[str] | None = None, *, timeout: float = 15.0
) -> bool:
    """Stop the workspace's inference service and every kernel it started (also the kernels left
    by a service that died). True when something was running. Safe to call at any time."""
    ws = workspace if isinstance(workspace, Workspace) else Workspace(workspace)
    inference = ws.root / "inference"
    if not inference.is_dir():
        return False
    stopped = False
    info = read_info(ws)
    pid = info.get("pid")
    if pid and _held(inference / "service.lock"):
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
        while _held(inference / "service.lock") and time.monotonic() < deadline:
            time.sleep(0.02)
        command = cmdline(pid)
        if _held(inference / "service.lock") and (
            command is None or SERVICE_MODULE in command or "serve" in command.split()
        ):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return reap_leftover_kernels(inference / "run") or stopped
