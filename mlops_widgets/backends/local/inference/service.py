"""The local inference service: WMLA EDI's `/dlim/v1` REST API on 127.0.0.1, one per workspace.

Started in the background on first use by `LocalInference` (it outlives the command that started
it) or in the foreground by `mlops serve`. A threaded HTTP/1.1 server with keep-alive; every
request needs the workspace's token (`Authorization: Bearer <token>`, from service.json, 0600).
Deployments persist under `<workspace>/inference/`; those left started are started again when
the service comes back, except that secret custom args live only in this process's memory.

    python -m mlops_widgets.backends.local.inference.service --workspace W [--port P] [--daemon]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hmac
import io
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import sys
import tarfile
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from mlops_widgets import __version__
from mlops_widgets.backends.local.companions import start_all, stop_all
from mlops_widgets.backends.local.inference.gpus import Gpus
from mlops_widgets.backends.local.inference.pool import KernelPool, ServiceError
from mlops_widgets.backends.local.inference.procs import reap_leftover_kernels
from mlops_widgets.backends.local.inference.runtimes import Runtimes
from mlops_widgets.backends.local.inference.store import (
    DEFAULT_PROFILE,
    Store,
    merge_profile,
    now,
    read_model_json,
)
from mlops_widgets.config import check_deployment_name
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace, atomic_write

log = logging.getLogger("mlops.inference")

HOST = "127.0.0.1"
API = "/dlim/v1"
NOT_REMOVABLE = "The model cannot be removed if it's started."


def info_path(workspace: Workspace) -> Path:
    return workspace.root / "inference" / "service.json"


def read_info(workspace: Workspace) -> dict[str, Any]:
    try:
        return json.loads(info_path(workspace).read_text())
    except (OSError, ValueError):
        return {}


def missing_secret(name: str, key: str) -> str:
    return (
        f"deployment {name}: the secret custom arg {key} is kept only in the inference service's "
        f"memory and the service has restarted since: set the environment variable {key} and run "
        f"`mlops deploy start --name {name}`"
    )


class Service:
    """Deployments and their kernel pools; every management call holds one lock (they are rare)."""

    def __init__(self, workspace: Workspace, base_url: str) -> None:
        self.workspace = workspace
        self.store = Store(workspace)
        self.base_url = base_url
        self.pools: dict[str, KernelPool] = {}
        self.secrets: dict[str, dict[str, str]] = {}
        self.gpus = Gpus()
        self.lock = threading.RLock()

    def url(self, name: str) -> str:
        return f"{self.base_url}{API}/inference/{name}"

    # --- views ------------------------------------------------------------------------------

    def view(self, name: str) -> dict[str, Any]:
        out = self.store.view(self.store.load(name), service="running", url=self.url(name))
        pool = self.pools.get(name)
        if pool is not None and pool.state != "stopped":
            out.update(pool.describe())
        return out

    def list(self) -> list[dict[str, Any]]:
        return [self.view(n) for n in self.store.names()]

    def instance(self, name: str) -> dict[str, Any]:
        v = self.view(name)
        return {
            "name": name,
            "state": "enabled" if v["state"] == "started" else "disabled",
            "status": v["status"],
            "kernels": v["kernels"],
            "error": v["error"],
        }

    # --- management -------------------------------------------------------------------------

    def deploy(
        self,
        name: str,
        folder: Path,
        custom_args: dict[str, str] | None = None,
        secret_args: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        check_deployment_name(name)
        custom_args, secret_args = dict(custom_args or {}), dict(secret_args or {})
        for key in [*custom_args, *secret_args]:
            if not isinstance(key, str) or not key.isidentifier():
                raise MlopsError(f"custom arg {key!r} is not a valid Python name")
        model = read_model_json(folder)
        Runtimes(self.workspace).python(model.get("runtime"))  # an unknown runtime is refused now
        with self.lock:
            old = self.store.load(name) if self.store.exists(name) else None
            if old and old["state"] == "started":
                raise ConflictError(
                    f"deployment {name} is started: stop it before deploying over it "
                    f"(`mlops deploy stop --name {name}`)"
                )
            self.store.install(name, folder)
            self.store.save({
                "name": name,
                "model": model,
                "profile": old["profile"] if old else merge_profile(DEFAULT_PROFILE, {}),
                "state": "stopped",
                "custom_args": {k: str(v) for k, v in custom_args.items()},
                "secret_args": sorted(secret_args),
                "deployed_at": old["deployed_at"] if old else now(),
                "updated_at": now(),
            })
            self.secrets[name] = {k: str(v) for k, v in secret_args.items()}
            self.pools.pop(name, None)
            log.info("deployed %s from %s", name, folder)
            return self.view(name)

    def get_profile(self, name: str) -> dict[str, Any]:
        return {"name": name, **self.store.load(name)["profile"]}

    def put_profile(self, name: str, update: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            record = self.store.load(name)
            if record["state"] == "started":
                raise ConflictError(
                    f"the profile of deployment {name} can only be changed while it is stopped "
                    f"(`mlops deploy stop --name {name}`)"
                )
            update = {k: v for k, v in update.items() if k != "name"}
            record["profile"] = merge_profile(record["profile"], update)
            record["updated_at"] = now()
            self.store.save(record)
            return self.get_profile(name)

    def start(self, name: str, supplied: dict[str, str] | None = None) -> dict[str, Any]:
        with self.lock:
            record = self.store.load(name)
            held = self.secrets.setdefault(name, {})
            for key, value in (supplied or {}).items():
                if key in record.get("secret_args", []) and key not in held:
                    held[key] = str(value)
            pool = self.pools.get(name)
            if pool is not None and pool.state == "started":
                return self.view(name)
            missing = [k for k in record.get("secret_args", []) if k not in held]
            if missing:
                raise MlopsError(missing_secret(name, missing[0]))
            if pool is not None:
                pool.stop()
            self._pool(name, record).start()
            record["state"] = "started"
            self.store.save(record)
            return self.view(name)

    def _pool(self, name: str, record: dict[str, Any]) -> KernelPool:
        """The deployment's kernel pool, registered but with no kernel started yet."""
        pool = KernelPool(
            name,
            record,
            model_dir=self.store.model_dir(name),
            logs_dir=self.store.logs_dir(name),
            run_dir=self.store.run_dir,
            custom_args=record.get("custom_args", {}),
            secret_args=self.secrets.get(name, {}),
            python=Runtimes(self.workspace).python(record["model"].get("runtime")),
            gpus=self.gpus,
        )
        self.pools[name] = pool
        return pool

    def stop(self, name: str) -> dict[str, Any]:
        with self.lock:
            record = self.store.load(name)
            pool = self.pools.pop(name, None)
            if pool is not None:
                pool.stop()
            if record["state"] != "stopped":
                record["state"] = "stopped"
                self.store.save(record)
            return self.view(name)

    def undeploy(self, name: str) -> None:
        with self.lock:
            record = self.store.load(name)
            if record["state"] == "started":
                raise ConflictError(f"{NOT_REMOVABLE} Stop deployment {name} first (`mlops deploy stop --name {name}`).")
            self.pools.pop(name, None)
            self.secrets.pop(name, None)
            self.store.remove(name)

    def restore(self) -> None:
        """Start again what was started when the service last ran."""
        for name in self.store.names():
            with self.lock:
                record = self.store.load(name)
                if record["state"] != "started":
                    continue
                try:
                    pool = self._pool(name, record)
                except MlopsError as exc:  # its runtime was deleted meanwhile
                    log.error("deployment %s not restored: %s", name, exc)
                    continue
                # Secrets live in memory only: kernels booted without them would run with their
                # custom args missing, so none starts until `deploy start` supplies them.
                missing = [k for k in record.get("secret_args", []) if k not in self.secrets.get(name, {})]
                if missing:
                    pool.fail(missing_secret(name, missing[0]))
                else:
                    pool.start()

    def shutdown(self) -> None:
        """Stop every kernel; deployments keep their state so the next service restores them."""
        with self.lock:
            pools, self.pools = list(self.pools.values()), {}
        threads = [threading.Thread(target=r.stop) for r in pools]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # --- inference ----------------------------------------------------------------------------

    def infer(self, name: str, body: bytes) -> tuple[int, bytes]:
        pool = self.pools.get(name)
        if pool is None:
            if not self.store.exists(name):
                raise NotFoundError(f"no deployment named {name!r}: see `mlops deploy list`")
            raise ServiceError(503, f"deployment {name} is not started: run `mlops deploy start --name {name}`")
        task = pool.new_task(body)
        pool.submit(task)
        if not task.done.wait(pool.wait_limit()):
            if pool.withdraw(task):
                raise ServiceError(504, f"deployment {name}: no kernel took this request in time; it was dropped")
            raise ServiceError(504, f"deployment {name}: no kernel answered in time")
        return task.status, task.output

    # --- deploy request bodies ------------------------------------------------------------------

    def deploy_request(self, body: bytes, content_type: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """`POST /deployment/model`: JSON {name, path, custom_args, secret_args} naming a local
        folder, or (as WMLA takes it) a gzip tar of the folder, the name in ?name= or model.json."""
        if content_type.startswith("application/json"):
            req = json.loads(body or b"{}")
            if not isinstance(req, dict) or not req.get("path"):
                raise MlopsError("a JSON deploy request needs {name, path}")
            return self.deploy(
                req.get("name") or "", Path(req["path"]), req.get("custom_args"), req.get("secret_args")
            )
        tmp = Path(tempfile.mkdtemp(prefix="upload-", dir=self.workspace.dir("inference")))
        try:
            try:
                with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                    tar.extractall(tmp, filter="data")
            except (tarfile.TarError, OSError) as exc:
                raise MlopsError(f"the deploy request is not a readable tar archive: {exc}") from None
            folder = tmp
            entries = list(tmp.iterdir())
            if not (tmp / "model.json").exists() and len(entries) == 1 and entries[0].is_dir():
                folder = entries[0]
            name = (query.get("name") or [""])[0]
            if not name:
                with contextlib.suppress(OSError, ValueError):
                    name = json.loads((folder / "model.json").read_text()).get("name", "")
            return self.deploy(name, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# --- HTTP ---------------------------------------------------------------------------------------

_NAME = r"(?P<name>[^/?]+)"
ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (m, re.compile(API + p + r"/?$"), h)
    for m, p, h in [
        ("GET", "/model", "list"),
        ("GET", f"/model/{_NAME}", "view"),
        ("GET", f"/model/{_NAME}/instance", "instance"),
        ("DELETE", f"/model/{_NAME}", "undeploy"),
        ("GET", f"/model/{_NAME}/appprofile", "get_profile"),
        ("PUT", f"/model/{_NAME}/appprofile", "put_profile"),
        ("PUT", f"/model/{_NAME}/operation/start", "start"),
        ("PUT", f"/model/{_NAME}/operation/stop", "stop"),
        ("POST", "/deployment/model", "deploy"),
        ("GET", "/service", "ping"),
        ("POST", "/service/shutdown", "shutdown"),
    ]
]
INFER_PREFIX = API + "/inference/"


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    service: Service
    token: str
    info: dict[str, Any]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"mlops-widgets-edi/{__version__}"
    server: Server

    def setup(self) -> None:
        super().setup()
        # Small answers on kept-alive connections must not wait for Nagle's delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (http.server's name)
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        head = (
            f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Server: {self.server_version}\r\n"
            + ("Connection: close\r\n" if self.close_connection else "")
            + "\r\n"
        ).encode("latin-1")
        self.wfile.write(head + body)

    def _json(self, status: int, obj: Any) -> None:
        self._reply(status, json.dumps(obj).encode())

    def _handle(self, method: str) -> None:
        auth = self.headers.get("Authorization", "")
        if not hmac.compare_digest(auth.encode(), f"Bearer {self.server.token}".encode()):
            self.close_connection = True
            self._json(401, {"error": "missing or wrong token: use the one in <workspace>/inference/service.json"})
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._json(411, {"error": "send the body with a Content-Length (chunked bodies are not accepted)"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        try:
            if method == "POST" and path.startswith(INFER_PREFIX):
                status, out = self.server.service.infer(path[len(INFER_PREFIX):], body)
                self._reply(status, out)
                return
            for m, pattern, handler in ROUTES:
                match = pattern.match(path)
                if match and m == method:
                    self._json(200, self._call(handler, match.groupdict().get("name"), body, parse_qs(query)))
                    return
            self._json(404, {"error": f"no such endpoint: {method} {path}"})
        except ServiceError as exc:
            self._json(exc.status, {"error": str(exc)})
        except NotFoundError as exc:
            self._json(404, {"error": str(exc)})
        except ConflictError as exc:
            self._json(409, {"error": str(exc)})
        except (MlopsError, ValueError) as exc:
            self._json(400, {"error": str(exc)})
        except Exception as exc:
            log.error("%s %s failed:\n%s", method, path, traceback.format_exc())
            self._json(500, {"error": f"internal error of the inference service: {exc!r}"})

    def _call(self, handler: str, name: str | None, body: bytes, query: dict[str, list[str]]) -> Any:
        svc = self.server.service
        if handler == "list":
            return svc.list()
        if handler == "ping":
            return {**self.server.info, "token": None}
        if handler == "shutdown":
            threading.Thread(target=self.server.shutdown, daemon=True).start()
            return {"stopping": True}
        if handler == "deploy":
            return svc.deploy_request(body, self.headers.get("Content-Type", ""), query)
        assert name is not None
        if handler == "view":
            return svc.view(name)
        if handler == "instance":
            return svc.instance(name)
        if handler == "get_profile":
            return svc.get_profile(name)
        if handler == "put_profile":
            return svc.put_profile(name, json.loads(body or b"{}"))
        if handler == "start":
            supplied = (json.loads(body) if body else {}).get("secret_args") or {}
            return svc.start(name, supplied)
        if handler == "stop":
            return svc.stop(name)
        svc.undeploy(name)
        return {"name": name, "undeployed": True}


def _bind(port: int | None) -> Server:
    for candidate in ([port] if port else []) + [0]:
        try:
            return Server((HOST, candidate), Handler)
        except OSError:
            continue
    raise MlopsError("could not listen on 127.0.0.1")


def _lock(fd: int, patience: float = 1.0) -> bool:
    """Take the workspace's service lock; clients probing it (a shared lock held for an instant)
    or a service that is still dying may hold it briefly, so try for a moment."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)


def serve(workspace: Workspace, *, port: int | None = None, announce: bool = False) -> None:
    """Run the service in this process until SIGTERM, SIGINT or a shutdown request."""
    inference = workspace.dir("inference")
    lock_fd = os.open(inference / "service.lock", os.O_RDWR | os.O_CREAT, 0o600)
    if not _lock(lock_fd):
        os.close(lock_fd)
        running = read_info(workspace)
        raise ConflictError(
            f"an inference service already runs for workspace {workspace.root} "
            f"(pid {running.get('pid')}, {running.get('url')})"
        ) from None
    try:
        previous = read_info(workspace)
        server = _bind(port or previous.get("port"))
        actual = server.server_address[1]
        base_url = f"http://{HOST}:{actual}"
        server.token = previous.get("token") or secrets.token_urlsafe(32)
        server.service = Service(workspace, base_url)
        info = {
            "pid": os.getpid(),
            "host": HOST,
            "port": actual,
            "url": base_url + API,
            "token": server.token,
            "workspace": str(workspace.root),
            "started_at": now(),
            "version": __version__,
        }
        server.info = info
        atomic_write(info_path(workspace), json.dumps(info, indent=2))
        os.chmod(info_path(workspace), 0o600)
        log.info("serving %s for workspace %s (pid %s)", info["url"], workspace.root, os.getpid())
        if announce:
            print(f"Inference service on {info['url']} for workspace {workspace.root} (Ctrl-C stops it)", flush=True)

        def stop(signum: int, frame: Any) -> None:
            threading.Thread(target=server.shutdown, daemon=True).start()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, stop)
            signal.signal(signal.SIGINT, stop)
        reap_leftover_kernels(server.service.store.run_dir)
        server.service.restore()
        companions = start_all(workspace)
        try:
            server.serve_forever(poll_interval=0.25)
        finally:
            stop_all(companions)
            server.service.shutdown()
            server.server_close()
            stopped = {**read_info(workspace), "pid": None, "stopped_at": now()}
            atomic_write(info_path(workspace), json.dumps(stopped, indent=2))
            log.info("stopped")
    finally:
        os.close(lock_fd)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="mlops-widgets local inference service")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument("--daemon", action="store_true", help="detach (double fork) and run in the background")
    args = parser.parse_args(argv)
    if args.daemon and os.fork() > 0:
        # The launcher exits at once: the service is re-parented and never becomes a zombie of
        # the command that asked for it.
        os._exit(0)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        serve(Workspace(args.workspace), port=args.port)
    except MlopsError as exc:
        log.error("%s", exc)
        sys.exit(3)


if __name__ == "__main__":
    main()
