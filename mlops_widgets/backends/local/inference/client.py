"""`LocalInference`: the `Inference` protocol, spoken to the workspace's local service over HTTP.

Views are derived from EDI's documents (`Model`, `ModelInstance`, `ModelAppProfile`, as IBM's
`ibm-wmla` client models them) plus the service's diagnostics under `/mlops/v1`. Calls that
change something (deploy, start, infer...) start the service in the background when it is not
running; read-only ones (list, view, logs, profile) never do: they read the workspace's files
and say the service is not running, so `mlops deploy list` shows a dead service as such.
A request that may have run (a POST) is never sent twice: a dropped connection is reported.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_widgets.backends.edi_view import deployment_view
from mlops_widgets.backends.inference_protocol import InferenceError
from mlops_widgets.backends.local.inference import edi
from mlops_widgets.backends.local.inference.kernel_logs import read_lines
from mlops_widgets.backends.local.inference.launcher import service_info, start_service
from mlops_widgets.backends.local.inference.routes import MLOPS
from mlops_widgets.backends.local.inference.service import API, CLIENT_HEADER, info_path, read_info
from mlops_widgets.backends.local.inference.store import Store
from mlops_widgets.backends.views import SERVICE_DOWN, DeploymentView
from mlops_widgets.config import check_deployment_name
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace

STOP_PATIENCE = 60.0  # seconds `stop` waits for the instance to show `disabled`


class DroppedConnection(MlopsError):
    """The service closed the connection while a request that may have run was under way."""


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether a kept-alive connection was closed by the service while idle (it is readable:
    end of stream), so that a request is never written into a connection already gone."""
    sock = conn.sock
    if sock is None:
        return True
    try:
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


def _error(status: int, data: bytes) -> tuple[str, Hint | None]:
    try:
        doc = json.loads(data)
        hint = doc.get("hint")
        return str(doc["error"]), Hint(hint["action"], hint["text"], hint.get("args") or {}) if hint else None
    except (ValueError, KeyError, TypeError, AttributeError):
        return data.decode(errors="replace") or f"the inference service answered {status}", None


class LocalInference:
    """The `Inference` protocol on the workspace's local EDI-compatible service."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.store = Store(workspace)
        self._local = threading.local()
        self._info: dict[str, Any] | None = None  # the service last talked to

    # --- transport ----------------------------------------------------------------------------

    def _connection(self, info: dict[str, Any]) -> http.client.HTTPConnection:
        """This thread's kept-alive connection, or a new one when it was closed meanwhile or has
        been idle for half the service's idle timeout (the service may be closing it right now,
        and a POST written into a connection as it closes could not be sent again)."""
        conn = getattr(self._local, "conn", None)
        idle = time.monotonic() - getattr(self._local, "used", 0.0)
        if conn is not None and (
            getattr(self._local, "port", None) != info["port"]
            or _dropped(conn)
            or idle > float(info.get("idle_timeout") or 60.0) / 2
        ):
            self._drop_connection()
            conn = None
        if conn is None:
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
        """One call to the service (started if needed) on a kept-alive connection. A call that
        never reached the service (it is not running, or a new one took over) is made again; one
        that did is made again only when it is idempotent (not a POST): a POST whose connection
        drops raises DroppedConnection, since it may have run."""
        for attempt in (0, 1):
            info = self._info if attempt == 0 and self._info else None
            if info is None:
                info = self._info = service_info(self.workspace) or start_service(self.workspace)
            headers = {
                "Authorization": f"Bearer {info['token']}",
                "Content-Type": content_type,
                CLIENT_HEADER: "1",  # our own calls: profile changes are the entry's, not EDI's
            }
            try:
                conn = self._connection(info)
            except OSError:
                self._drop_connection()
                self._info = None
                continue
            try:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self._drop_connection()
                self._info = None
                log_file = self.workspace.root / "inference" / "service.log"
                if method == "POST":
                    raise DroppedConnection(
                        f"the local inference service ({info['url']}) dropped the connection while "
                        f"answering {method} {path}; the request was not sent again since it may "
                        f"have run (see {log_file})"
                    ) from None
                if attempt:
                    raise MlopsError(
                        f"the local inference service ({info['url']}) stopped answering; see {log_file}"
                    ) from None
                continue
            self._local.used = time.monotonic()
            if resp.will_close:
                self._drop_connection()
            if resp.status == 401 and not attempt:
                self._info = None  # another service (new token) took over; it ran nothing
                continue
            return resp.status, data
        raise MlopsError(f"the local inference service of {self.workspace.root} could not be reached")

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        body = None if payload is None else json.dumps(payload).encode()
        status, data = self.request(method, path, body)
        if status == 200:
            return json.loads(data) if data else None
        message, hint = _error(status, data)
        if status == 404:
            raise NotFoundError(message, hint=hint)
        if status == 409:
            raise ConflictError(message, hint=hint)
        raise MlopsError(message, hint=hint)

    # --- views from EDI's documents -----------------------------------------------------------

    def _view_of(self, model: dict[str, Any]) -> DeploymentView:
        name = str(model["name"])
        return deployment_view(
            model,
            self._call("GET", f"{API}/model/{name}/instance"),
            service="running",
            url=model.get("service_uri"),
            profile=self._profile(name),
            diagnostics=self._call("GET", f"{MLOPS}/model/{name}"),
        )

    def _profile(self, name: str) -> dict[str, Any]:
        return edi.profile_from_doc(self._call("GET", f"{API}/model/{name}/appprofile"))

    # --- reading without a service ------------------------------------------------------------

    def _offline_view(self, name: str) -> DeploymentView:
        record = self.store.load(name)
        down = record["state"] == "started"
        return self.store.view(
            record,
            service="not running",
            url=self._url_from_info(name),
            status=SERVICE_DOWN if down else "STOPPED",
            error="the local inference service is not running (it stopped or died)" if down else None,
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
    ) -> DeploymentView:
        check_deployment_name(name)
        payload = {
            "name": name,
            "path": str(Path(folder).resolve()),
            "custom_args": custom_args or {},
            "secret_args": secret_args or {},
        }
        return self._view_of(self._call("POST", f"{MLOPS}/deployment", payload))

    def list(self) -> list[DeploymentView]:
        if not self.running():
            return [self._offline_view(n) for n in self.store.names()]
        return [self._view_of(m) for m in self._call("GET", f"{API}/model")]

    def view(self, name: str) -> DeploymentView:
        check_deployment_name(name)
        if not self.running():
            return self._offline_view(name)
        return self._view_of(self._call("GET", f"{API}/model/{name}"))

    def get_profile(self, name: str) -> dict[str, Any]:
        check_deployment_name(name)
        if not self.running():
            return {"name": name, **self.store.load(name)["profile"]}
        return self._profile(name)

    def update_profile(self, name: str, profile: dict[str, Any]) -> dict[str, Any]:
        check_deployment_name(name)
        return edi.profile_from_doc(self._call("PUT", f"{API}/model/{name}/appprofile", profile))

    def start(self, name: str, *, secret_args: dict[str, str] | None = None) -> DeploymentView:
        """Start (or, after a failure, restart) a deployment without waiting for its kernels.
        Secret custom args the service no longer holds (it restarted) come from `secret_args`,
        else the environment variable of the same name."""
        check_deployment_name(name)
        wanted = self.store.load(name).get("secret_args") or []
        supplied = dict(secret_args or {})
        for key in wanted:
            if key not in supplied and os.environ.get(key):
                supplied[key] = os.environ[key]
        self._call("PUT", f"{API}/model/{name}/operation/start", {"secret_args": supplied})
        return self.view(name)

    def stop(self, name: str) -> DeploymentView:
        """Stop a deployment and wait until its instance shows `disabled` (every kernel gone)."""
        check_deployment_name(name)
        if not self.running():
            # Nothing runs: only the state the next service would restore changes.
            record = self.store.load(name)
            record["state"] = "stopped"
            self.store.save(record)
            return self._offline_view(name)
        instance = self._call("PUT", f"{API}/model/{name}/operation/stop")
        deadline = time.monotonic() + STOP_PATIENCE
        while instance["state"] != edi.DISABLED:
            if time.monotonic() > deadline:
                raise MlopsError(f"deployment {name} did not stop within {STOP_PATIENCE:g} s")
            time.sleep(0.02)
            instance = self._call("GET", f"{API}/model/{name}/instance")
        return self.view(name)

    def undeploy(self, name: str) -> None:
        check_deployment_name(name)
        self._call("DELETE", f"{API}/model/{name}")

    def infer(self, name: str, body: bytes) -> bytes:
        check_deployment_name(name)
        status, data = self.request("POST", f"{API}/inference/{name}", body)
        if status == 200:
            return data
        message, hint = _error(status, data)
        if status == 404:
            raise NotFoundError(message, hint=hint)
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
