"""The HTTP layer of the local inference service: WMLA EDI's `/dlim/v1` on 127.0.0.1, on tornado.

One routing table maps each method and path straight to its handler function. Every request
needs the workspace's token (from service.json, 0600) as `Authorization: Bearer`, `X-Auth-Token`,
`X-User-Token` or the password of `Authorization: Basic`; it is checked once the headers are in,
before any byte of the body is read, and a request without it is answered 401 and its connection
closed (so an unauthenticated body costs neither memory nor a connection). Connections cost no
thread while idle and are closed after an idle timeout; their number is bounded (one over the
bound gets 503); headers over 64 KB get 431. Management calls run on a small thread pool; an
inference request waits on the event loop itself, woken by the kernel's thread when answered (no
thread per request). tornado answers 400 to a malformed request itself. The service's own log
(service.log) rotates like the kernel logs. Our own routes (deploy by folder, diagnostics,
shutdown) live under `/mlops/v1`.

    python -m mlops_widgets.backends.local.inference.server --workspace W [--port P] [--daemon]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import fcntl
import hmac
import inspect
import json
import logging
import os
import resource
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tornado.web
from tornado.http1connection import HTTP1Connection
from tornado.httpserver import HTTPServer
from tornado.iostream import UnsatisfiableReadError
from tornado.netutil import bind_sockets

from mlops_widgets import __version__
from mlops_widgets.backends.local import companions as companion_work
from mlops_widgets.backends.local.inference import routes
from mlops_widgets.backends.local.inference.bodies import keep_freed_memory, read_body_into
from mlops_widgets.backends.local.inference.procs import reap_leftover_kernels
from mlops_widgets.backends.local.inference.service import API, Service, info_path, read_info
from mlops_widgets.backends.local.inference.store import now
from mlops_widgets.backends.packing import ArchiveLimits
from mlops_widgets.errors import ConflictError, MlopsError
from mlops_widgets.logs import PrivateRotatingFileHandler
from mlops_widgets.settings import (
    SERVICE_IDLE_TIMEOUT,
    SERVICE_LOG_FILES,
    SERVICE_LOG_MB,
    SERVICE_MAX_BODY,
    SERVICE_MAX_CONNECTIONS,
)
from mlops_widgets.workspace import Workspace, atomic_write

log = logging.getLogger("mlops.inference")

HOST = "127.0.0.1"
TOKEN_HEADERS = ("X-Auth-Token", "X-User-Token")
BUSY = b'{"error": "the inference service has too many open connections; try again shortly"}'
SEPARATE_HEAD = 64 << 10  # answers of this size and more are written without a copy
MAX_HEADER = 64 << 10  # bytes of a request's line and headers; more gets 431
TOO_LARGE = b'{"error": "the request\'s headers exceed 64 KB"}'


@dataclass(frozen=True)
class Settings:
    """The service's bounds; each from an environment variable of the service process."""

    idle_timeout: float = SERVICE_IDLE_TIMEOUT.default
    max_connections: int = SERVICE_MAX_CONNECTIONS.default
    max_body: int = SERVICE_MAX_BODY.default
    limits: ArchiveLimits = field(default_factory=ArchiveLimits)

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            idle_timeout=SERVICE_IDLE_TIMEOUT.from_env(),
            max_connections=SERVICE_MAX_CONNECTIONS.from_env(),
            max_body=SERVICE_MAX_BODY.from_env(),
            limits=ArchiveLimits.from_env(),
        )


class Context:
    """What every handler reaches: the domain, the token, the management threads, the stop signal."""

    def __init__(
        self,
        service: Service,
        token: str,
        info: dict[str, Any],
        settings: Settings,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.service = service
        self.token = token.encode()
        self.info = info
        self.settings = settings
        self.manage = ThreadPoolExecutor(4, thread_name_prefix="manage")
        self.stopped = asyncio.Event()
        self.loop = loop

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stopped.set)


@tornado.web.stream_request_body
class Handler(tornado.web.RequestHandler):
    """One path of the routing table; its methods are set from the table (see `application`).
    Its body arrives in chunks (so that the token is checked before any is read), joined for
    the management calls that take JSON."""

    calls: dict[str, routes.Call] = {}
    ctx: Context
    chunks: list[bytes | bytearray]

    def initialize(self, ctx: Context) -> None:
        self.ctx = ctx
        self.chunks = []

    def set_default_headers(self) -> None:
        self.set_header("Server", f"mlops-widgets-edi/{__version__}")
        self.set_header("Content-Type", "application/json")

    def prepare(self) -> None:
        """Runs once the headers are in, before the body is read (every handler streams it):
        a request without the token is answered 401 and its connection closed unread."""
        if not any(s and hmac.compare_digest(s.encode(), self.ctx.token) for s in self._supplied()):
            self.set_header("Connection", "close")
            self.set_status(401)
            self.finish(
                routes.error_body(
                    "missing or wrong token: send the one in <workspace>/inference/service.json as "
                    "Authorization: Bearer, X-Auth-Token, X-User-Token or the password of Basic auth"
                )
            )

    def _supplied(self) -> list[str]:
        supplied = [self.request.headers.get(h, "") for h in TOKEN_HEADERS]
        scheme, _, value = self.request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            supplied.append(value)
        elif scheme.lower() == "basic":  # EDI's log-on (POST /dlim/v1/auth/token): any user, the token
            with contextlib.suppress(binascii.Error, UnicodeDecodeError):
                supplied.append(base64.b64decode(value, validate=True).decode().partition(":")[2])
        return supplied

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.finish(routes.error_body(self._reason))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, tornado.web.HTTPError):
            log.error(
                "%s %s failed:\n%s",
                self.request.method,
                self.request.path,
                "".join(traceback.format_exception(typ, value, tb)),
            )

    async def _run(self, *args: str) -> None:
        call = self.calls[self.request.method or ""]
        if inspect.iscoroutinefunction(call.run):
            status, body = await routes.answer_async(call, self.ctx, self.request, self._body_source(), args)
        else:
            status, body = await asyncio.get_running_loop().run_in_executor(
                self.ctx.manage, routes.answer, call, self.ctx, self.request, self._body_source(), args
            )
        self.on_finish()  # an upload's spooled file is gone before the answer leaves
        self.set_status(status)
        if len(body) >= SEPARATE_HEAD:
            # tornado joins the head and the first chunk of an answer into new bytes: a large
            # answer (a kernel's image) leaves as it came from the kernel, after its head.
            self.set_header("Content-Length", len(body))
            self.flush()
        self.finish(body)

    def _body_source(self) -> Any:
        return b"".join(self.chunks)

    get = put = post = delete = _run


class NotFound(Handler):
    """Any other path: 404 in JSON, as EDI answers, to a caller with the token."""

    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            self.set_status(404)
            self.finish(routes.error_body(f"no route {self.request.method} {self.request.path}"))


class ChunksHandler(Handler):
    """A route whose body is handed on as it arrived: read into one buffer when its length is
    known (`bodies.py`), else in tornado's chunks; an image of many megabytes goes to the kernel
    without being joined or copied in this process."""

    def prepare(self) -> None:
        super().prepare()
        if not self._finished:
            read_body_into(self.request.connection, self._body_buffer)

    def _body_buffer(self, length: int) -> bytearray:
        buf = bytearray(length)
        self.chunks = [buf]
        return buf

    def _body_source(self) -> Any:
        return self.chunks


class UploadHandler(Handler):
    """A route whose body (a tar of a submission folder, gigabytes maybe) goes to a file as it
    arrives, bounded by the archive size limit."""

    spool: Any = None

    def prepare(self) -> None:
        super().prepare()
        if self._finished:
            return
        connection = self.request.connection
        assert isinstance(connection, HTTP1Connection)  # HTTPServer's connections are HTTP/1
        connection.set_max_body_size(self.ctx.settings.limits.max_total_bytes)
        self.spool = tempfile.NamedTemporaryFile(
            prefix="upload-", suffix=".tar", dir=self.ctx.service.workspace.dir("inference")
        )

    def data_received(self, chunk: bytes) -> None:
        if self.spool is not None:  # none after a refusal in prepare
            self.spool.write(chunk)

    def _body_source(self) -> Any:
        self.spool.flush()
        return Path(self.spool.name)

    def on_finish(self) -> None:
        if self.spool is not None:
            self.spool.close()
            self.spool = None

    on_connection_close = on_finish


HANDLERS: dict[str, type[Handler]] = {"bytes": Handler, "chunks": ChunksHandler, "file": UploadHandler}


def application(ctx: Context) -> tornado.web.Application:
    """The routing table as tornado handlers: one class per path, one method per table row."""
    by_path: dict[str, dict[str, routes.Call]] = {}
    for call in routes.ROUTES:
        by_path.setdefault(call.path, {})[call.method] = call
    handlers: list[tuple[str, type, dict[str, Any]]] = []
    for path, calls in by_path.items():
        (base,) = {HANDLERS[c.body] for c in calls.values()}  # one body kind per path
        allowed = tuple(calls)
        cls = type(f"{base.__name__}{len(handlers)}", (base,), {"calls": calls, "SUPPORTED_METHODS": allowed})
        handlers.append((path, cls, {"ctx": ctx}))
    return tornado.web.Application(
        handlers,
        default_handler_class=NotFound,
        default_handler_args={"ctx": ctx},
        log_function=lambda handler: None,
        compress_response=False,
    )


def _refuse_large_headers(stream: Any) -> None:
    """tornado closes a connection whose headers pass `max_header_size` without a word: answer
    431 first (the client has sent its headers and waits to read)."""
    close = stream.close

    def closing(exc_info: Any = False) -> None:
        if isinstance(exc_info, UnsatisfiableReadError) and not stream.closed():
            head = (
                f"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(TOO_LARGE)}\r\nConnection: close\r\n\r\n"
            ).encode()
            with contextlib.suppress(OSError):
                stream.socket.send(head + TOO_LARGE)
                stream.socket.shutdown(socket.SHUT_WR)
        close(exc_info)

    stream.close = closing


class BoundedServer(HTTPServer):
    """tornado's HTTP server with a bound on open connections (one over it gets 503 and closed)."""

    max_connections = 1000
    open_connections = 0

    def handle_stream(self, stream: Any, address: tuple[Any, ...]) -> None:
        if self.open_connections >= self.max_connections:
            head = (
                f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(BUSY)}\r\nConnection: close\r\n\r\n"
            ).encode()
            stream.write(head + BUSY).add_done_callback(lambda _: stream.close())
            return
        self.open_connections += 1
        stream.set_nodelay(True)
        _refuse_large_headers(stream)
        super().handle_stream(stream, address)

    def on_close(self, server_conn: object) -> None:
        self.open_connections -= 1
        super().on_close(server_conn)


def _bind(port: int | None) -> list[Any]:
    for candidate in ([port] if port else []) + [0]:
        try:
            return bind_sockets(candidate, HOST, backlog=128)
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


def _raise_file_limit(wanted: int) -> None:
    """Room for the bounded connections plus kernels' sockets and logs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


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
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        settings = Settings.from_env()
        _raise_file_limit(settings.max_connections + 1024)
        keep_freed_memory()
        previous = read_info(workspace)
        sockets = _bind(port or previous.get("port"))
        actual = sockets[0].getsockname()[1]
        base_url = f"http://{HOST}:{actual}"
        info = {
            "pid": os.getpid(),
            "host": HOST,
            "port": actual,
            "url": base_url + API,
            "token": previous.get("token") or secrets.token_urlsafe(32),
            "idle_timeout": settings.idle_timeout,
            "workspace": str(workspace.root),
            "started_at": now(),
            "version": __version__,
        }
        ctx = Context(Service(workspace, base_url), info["token"], info, settings, loop)
        server = BoundedServer(
            application(ctx),
            idle_connection_timeout=settings.idle_timeout,
            body_timeout=600,
            max_body_size=settings.max_body,
            max_header_size=MAX_HEADER,
            chunk_size=1 << 20,
        )
        server.max_connections = settings.max_connections
        server.add_sockets(sockets)
        # Logged before service.json announces it: whoever finds the service finds this line too.
        log.info("serving %s for workspace %s (pid %s)", info["url"], workspace.root, os.getpid())
        atomic_write(info_path(workspace), json.dumps(info, indent=2))
        os.chmod(info_path(workspace), 0o600)
        if announce:
            print(
                f"Inference service on {info['url']} for workspace {workspace.root} (Ctrl-C stops it)",
                flush=True,
            )
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, ctx.stopped.set)
        reap_leftover_kernels(ctx.service.store.run_dir)
        ctx.service.restore()
        companions = companion_work.start_all(workspace)
        ctx.service.announce = lambda action, params: companion_work.announce(companions, action, params)
        try:
            loop.run_until_complete(ctx.stopped.wait())
        finally:
            companion_work.stop_all(companions)
            server.stop()
            ctx.service.shutdown()
            ctx.manage.shutdown(wait=False, cancel_futures=True)
            stopped = {**read_info(workspace), "pid": None, "stopped_at": now()}
            atomic_write(info_path(workspace), json.dumps(stopped, indent=2))
            log.info("stopped")
    finally:
        loop.close()
        asyncio.set_event_loop(None)
        os.close(lock_fd)


SERVICE_LOG = "service.log"


class ServiceLog(PrivateRotatingFileHandler):
    """service.log, rotated at a size limit like the kernel logs (`service.log.1` ...), private.
    The service's stdout and stderr point at it too (what a crash prints): they follow each
    rotation to the new file."""

    def doRollover(self) -> None:
        if self.backupCount == 0:  # one file: start it anew
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.baseFilename)
        super().doRollover()
        if self.stream is not None:
            for fd in (1, 2):
                os.dup2(self.stream.fileno(), fd)


def _log_handler(path: Path) -> logging.Handler:
    """Where the service logs: service.log (rotated) when its stderr is that file, as the
    launcher sets it up; else stderr as is (a service run in a terminal)."""
    try:
        same = os.path.samestat(os.fstat(2), os.stat(path))
    except OSError:
        same = False
    if not same:
        return logging.StreamHandler(sys.stderr)
    mb, files = SERVICE_LOG_MB.from_env(), SERVICE_LOG_FILES.from_env()
    return ServiceLog(path, maxBytes=max(int(mb * 2**20), 4096), backupCount=files - 1, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="mlops-widgets local inference service")
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--port", type=int)
    parser.add_argument(
        "--daemon", action="store_true", help="detach (double fork) and run in the background"
    )
    args = parser.parse_args(argv)
    if args.daemon and os.fork() > 0:
        # The launcher exits at once: the service is re-parented and never becomes a zombie of
        # the command that asked for it.
        os._exit(0)
    workspace = Workspace(args.workspace)
    try:
        logging.basicConfig(
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(message)s",
            handlers=[_log_handler(workspace.root / "inference" / SERVICE_LOG)],
        )
        serve(workspace, port=args.port)
    except MlopsError as exc:
        log.error("%s", exc)
        sys.exit(3)


if __name__ == "__main__":
    main()
