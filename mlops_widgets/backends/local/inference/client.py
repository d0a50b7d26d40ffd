"""`LocalInference`: the `Inference` protocol, spoken to the workspace's local service over HTTP.

Calls that change something (deploy, start, infer...) start the service in the background when it
is not running; read-only ones (list, view, logs, profile) never do: they read the workspace's
files and say the service is not running, so `mlops deploy list` shows a dead service as such.
"""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_widgets.backends.base import InferenceError
from mlops_widgets.backends.local.inference.environment import without_credentials
from mlops_widgets.backends.local.inference.kernel_logs import log_tail, read_lines
from mlops_widgets.backends.local.inference.procs import alive, cmdline, reap_leftover_kernels
from mlops_widgets.backends.local.inference.service import API, info_path, read_info
from mlops_widgets.backends.local.inference.store import Store
from mlops_widgets.config import check_deployment_name
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace

START_TIMEOUT = 20.0
RELAUNCH_AFTER = 5.0
SERVICE_MODULE = "mlops_widgets.backends.local.inference.service"
DOWN = "SERVICE_DOWN"


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
    with open(inference / "service.log", "ab") as out:
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


def stop_service(workspace: Workspace | str | os.PathLike[str] | None = None, *, timeout: float = 15.0) -> bool:
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
        with contextlib.suppress(OSError, http.client.HTTPException):
            conn = http.client.HTTPConnection(info["host"], info["port"], timeout=timeout)
            conn.request("POST", f"{API}/service/shutdown", headers={"Authorization": f"Bearer {info['token']}"})
            conn.getresponse().read()
            conn.close()
        deadline = time.monotonic() + timeout
        while _held(inference / "service.lock") and time.monotonic() < deadline:
            time.sleep(0.02)
        command = cmdline(pid)
        if _held(inference / "service.lock") and (command is None or SERVICE_MODULE in command or "serve" in command.split()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return reap_leftover_kernels(inference / "run") or stopped


class LocalInference:
    """The `Inference` protocol on the workspace's local EDI-compatible service."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.store = Store(workspace)
        self._local = threading.local()
        self._info: dict[str, Any] | None = None  # the service last talked to

    # --- transport ----------------------------------------------------------------------------

    def _connection(self, info: dict[str, Any]) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "port", None) != info["port"]:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection(info["host"], info["port"], timeout=None)
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._local.conn, self._local.port = conn, info["port"]
        return conn

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        self._local.conn = None

    def request(
        self, method: str, path: str, body: bytes | None = None, *, content_type: str = "application/json"
    ) -> tuple[int, bytes]:
        """One call to the service (started if needed) on a kept-alive connection; a connection
        the service closed meanwhile (it restarted) is reopened once."""
        for attempt in (0, 1):
            info = self._info if attempt == 0 and self._info else None
            if info is None:
                info = self._info = service_info(self.workspace) or start_service(self.workspace)
            headers = {"Authorization": f"Bearer {info['token']}", "Content-Type": content_type}
            try:
                conn = self._connection(info)
                conn.request(method, API + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.will_close:
                    self._drop_connection()
                if resp.status == 401 and not attempt:
                    self._info = None  # another service (new token) took over: look again
                    continue
                return resp.status, data
            except (ConnectionError, http.client.HTTPException, OSError):
                self._drop_connection()
                self._info = None
                if attempt:
                    raise MlopsError(
                        f"the local inference service ({info['url']}) stopped answering; see "
                        f"{self.workspace.root / 'inference' / 'service.log'}"
                    ) from None
        raise AssertionError("unreachable")

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = {"error": data.decode(errors="replace")}
        if status == 200:
            return doc
        message = doc.get("error") if isinstance(doc, dict) else str(doc)
        if status == 404:
            raise NotFoundError(message)
        if status == 409:
            raise ConflictError(message)
        raise MlopsError(message or f"the inference service answered {status}")

    # --- reading without a service ------------------------------------------------------------

    def _offline_view(self, name: str) -> dict[str, Any]:
        record = self.store.load(name)
        down = record["state"] == "started"
        return self.store.view(
            record,
            service="not running",
            url=self._url_from_info(name),
            status=DOWN if down else "STOPPED",
            error=(
                "the local inference service is not running (it stopped or died): "
                f"`mlops deploy start --name {name}` starts it again"
            ) if down else None,
        )

    def _url_from_info(self, name: str) -> str | None:
        info = read_info(self.workspace)
        if not info.get("port"):
            return None
        return f"http://{info.get('host', '127.0.0.1')}:{info['port']}{API}/inference/{name}"

    def running(self) -> bool:
        return service_info(self.workspace) is not None

    # --- the protocol -------------------------------------------------------------------------

    def deploy(
        self,
        name: str,
        folder: Path,
        *,
        custom_args: dict[str, str] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        check_deployment_name(name)
        payload = {
            "name": name,
            "path": str(Path(folder).resolve()),
            "custom_args": custom_args or {},
            "secret_args": secret_args or {},
        }
        return self._call("POST", "/deployment/model", payload)

    def list(self) -> list[dict[str, Any]]:
        if not self.running():
            return [self._offline_view(n) for n in self.store.names()]
        return self._call("GET", "/model")

    def view(self, name: str) -> dict[str, Any]:
        check_deployment_name(name)
        if not self.running():
            return self._offline_view(name)
        return self._call("GET", f"/model/{name}")

    def get_profile(self, name: str) -> dict[str, Any]:
        check_deployment_name(name)
        if not self.running():
            return {"name": name, **self.store.load(name)["profile"]}
        return self._call("GET", f"/model/{name}/appprofile")

    def update_profile(self, name: str, profile: dict[str, Any]) -> dict[str, Any]:
        check_deployment_name(name)
        return self._call("PUT", f"/model/{name}/appprofile", profile)

    def start(self, name: str, *, secret_args: dict[str, str] | None = None) -> dict[str, Any]:
        """Start (or, after a failure, restart) a deployment. Secret custom args the service no
        longer holds (it restarted) come from `secret_args`, else the environment variable of
        the same name."""
        check_deployment_name(name)
        wanted = self.store.load(name).get("secret_args") or []
        supplied = dict(secret_args or {})
        for key in wanted:
            if key not in supplied and os.environ.get(key):
                supplied[key] = os.environ[key]
        return self._call("PUT", f"/model/{name}/operation/start", {"secret_args": supplied})

    def stop(self, name: str) -> dict[str, Any]:
        check_deployment_name(name)
        if not self.running():
            # Nothing runs: only the state the next service would restore changes.
            record = self.store.load(name)
            record["state"] = "stopped"
            self.store.save(record)
            return self._offline_view(name)
        return self._call("PUT", f"/model/{name}/operation/stop")

    def undeploy(self, name: str) -> None:
        check_deployment_name(name)
        self._call("DELETE", f"/model/{name}")

    def infer(self, name: str, body: bytes) -> bytes:
        check_deployment_name(name)
        status, data = self.request("POST", f"/inference/{name}", body)
        if status == 200:
            return data
        try:
            message = json.loads(data)["error"]
        except (ValueError, KeyError, TypeError):
            message = data.decode(errors="replace")
        if status == 404:
            raise NotFoundError(message)
        raise InferenceError(status, f"inference on {name} failed ({status}): {message}")

    def url(self, name: str) -> str:
        check_deployment_name(name)
        info = service_info(self.workspace) or start_service(self.workspace)
        return f"http://{info['host']}:{info['port']}{API}/inference/{name}"

    def logs(self, name: str, *, tail: int | None = None, follow: bool = False) -> Iterator[str]:
        """The deployment's kernel log, read from its files (no service needed)."""
        check_deployment_name(name)
        self.store.load(name)
        return read_lines(self.store.logs_dir(name), tail=tail, follow=follow)

    def service(self) -> dict[str, Any]:
        """The service's state: running or not, url, pid, log file (no token)."""
        info = service_info(self.workspace)
        return {
            "running": info is not None,
            "url": (info or {}).get("url"),
            "pid": (info or {}).get("pid"),
            "log": str(self.workspace.root / "inference" / "service.log"),
            "info_file": str(info_path(self.workspace)),
        }
