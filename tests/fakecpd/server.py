"""The HTTP machinery of the fake: a threaded HTTPS server, a tiny router, auth and fault
injection. The services (WML, OpenScale, dlim, volumes) register routes on it.

Two listeners share one state: the console (everything else) and the inference host (only
`/dlim/v1/inference/...`), because WMLA serves management and inference on different hosts.
"""

from __future__ import annotations

import copy
import email.parser
import email.policy
import json
import re
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt

from fakecpd.certs import Certs

SECRET = "fake-cpd-signing-key-for-tests-only!"


class HttpError(Exception):
    """Raised by a handler: becomes a JSON error response with this status."""

    def __init__(self, status: int, message: str, code: str = "error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    user: str | None = None
    token: str | None = None

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise HttpError(400, f"body is not JSON: {exc}") from None

    def multipart(self) -> dict[str, tuple[str | None, bytes]]:
        """Form fields: name -> (filename, bytes)."""
        ctype = self.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise HttpError(400, f"expected multipart/form-data, got {ctype!r}")
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + self.body
        )
        out: dict[str, tuple[str | None, bytes]] = {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            out[str(name)] = (part.get_filename(), part.get_payload(decode=True) or b"")
        return out


@dataclass
class Response:
    status: int = 200
    body: Any = None  # dict/list -> JSON, bytes -> verbatim, None -> empty
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[..., Response | dict | list | bytes | None]


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    public: bool = False  # no token needed
    inference: bool = False  # served by the inference host (and only there)
    header: str = "authorization"  # where the token must be: authorization (Bearer), x-auth-token, any


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    return str(uuid.uuid4())


class Router:
    """Routes, tokens, faults and a log of every request (method, path, status)."""

    def __init__(self) -> None:
        self.routes: list[Route] = []
        self.faults: list[Fault] = []
        self.log: list[tuple[str, str, int]] = []
        self.lock = threading.RLock()
        self.token_ttl = 3600.0
        self.revoked_before = 0.0
        self.users: dict[str, str] = {}
        self.issued: list[str] = []  # every token handed out, for leak checks
        # contract tests: every JSON response body (method, path, status, body) when capturing;
        # mutations change a response body before it is sent (a shape drift on purpose)
        self.capture = False
        self.responses: list[tuple[str, str, int, Any]] = []
        self.mutations: list[tuple[str, re.Pattern[str], Callable[[Any], Any]]] = []
        # replay tests: recorded answers served instead of the fake's own, and the requests
        # they answered (method, path, query, headers)
        self.canned: list[tuple[str, re.Pattern[str], Response]] = []
        self.answered: list[Request] = []

    def add(self, method: str, pattern: str, handler: Handler, **kw: Any) -> None:
        self.routes.append(Route(method, re.compile(pattern + r"/?$"), handler, **kw))

    # -- tokens --------------------------------------------------------------------------------

    def issue_token(self, user: str, ttl: float | None = None) -> str:
        now = time.time()
        ttl = self.token_ttl if ttl is None else ttl
        claims = {"sub": user, "username": user, "iat": now, "exp": now + ttl, "jti": new_id()}
        token = jwt.encode(claims, SECRET, algorithm="HS256")
        self.issued.append(token)
        return token

    def check_token(self, token: str) -> str:
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        except jwt.ExpiredSignatureError:
            raise HttpError(401, "the token has expired", "token_expired") from None
        except jwt.InvalidTokenError:
            raise HttpError(401, "the token is not valid", "invalid_token") from None
        if claims["iat"] < self.revoked_before:
            raise HttpError(401, "the token has expired", "token_expired")
        return str(claims["sub"])

    def revoke_tokens(self) -> None:
        """Every token issued so far stops working (as if it had expired)."""
        self.revoked_before = time.time() + 1e-6
        time.sleep(0.002)

    # -- faults --------------------------------------------------------------------------------

    def fail(self, method: str, pattern: str, status: int = 500, times: int = 1) -> None:
        """The next `times` requests matching method and path pattern get `status`."""
        with self.lock:
            self.faults.append(Fault(method, re.compile(pattern), status, times))

    def _take_fault(self, method: str, path: str) -> int | None:
        with self.lock:
            for f in self.faults:
                if f.times > 0 and f.method == method and f.pattern.search(path):
                    f.times -= 1
                    return f.status
        return None

    def mutate(self, method: str, pattern: str, change: Callable[[Any], Any]) -> None:
        """Every later JSON response to a matching request is `change(body)` (a drifted shape)."""
        with self.lock:
            self.mutations.append((method, re.compile(pattern), change))

    def finish(self, req: Request, resp: Response) -> None:
        """Apply mutations and record the response (both on JSON bodies only)."""
        if not self.mutations and not self.capture:
            return
        body = resp.body
        if isinstance(body, bytes):  # WMLA's JSON labelled text/plain
            try:
                body = json.loads(body)
            except ValueError:
                return
        if body is None:
            return
        for method, pattern, change in self.mutations:
            if method == req.method and pattern.search(req.path):
                body = change(copy.deepcopy(body))
                resp.body = json.dumps(body).encode() if isinstance(resp.body, bytes) else body
        if self.capture:
            with self.lock:
                self.responses.append((req.method, req.path, resp.status, copy.deepcopy(body)))

    # -- dispatch ------------------------------------------------------------------------------

    def serve(self, method: str, pattern: str, resp: Response) -> None:
        """Answer every later matching request with `resp` (a recorded answer), once signed in."""
        with self.lock:
            self.canned.append((method, re.compile(pattern), resp))

    def dispatch(self, req: Request, *, inference_host: bool) -> Response:
        for method, pattern, resp in self.canned:
            if method == req.method and pattern.search(req.path):
                self.answered.append(req)
                return copy.deepcopy(resp)
        status = self._take_fault(req.method, req.path)
        if status is not None:
            return Response(status, {"errors": [{"code": "injected", "message": "injected fault"}]})
        path_matched = False
        for route in self.routes:
            if inference_host != route.inference:  # each host serves its own routes only
                continue
            m = route.pattern.match(req.path)
            if not m:
                continue
            path_matched = True
            if route.method != req.method:
                continue
            try:
                if not route.public:
                    self._authenticate(req, route.header)
                result = route.handler(req, **{k: unquote(v) for k, v in m.groupdict().items()})
            except HttpError as exc:
                return Response(
                    exc.status,
                    {
                        "errors": [{"code": exc.code, "message": exc.message}],
                        "trace": new_id(),
                        "status_code": exc.status,
                    },
                )
            if isinstance(result, Response):
                return result
            return Response(200, result)
        if path_matched:
            return Response(405, {"errors": [{"code": "method_not_allowed", "message": req.method}]})
        return Response(404, {"errors": [{"code": "not_found", "message": f"no route {req.path}"}]})

    def _authenticate(self, req: Request, header: str) -> None:
        token = ""
        if header in ("x-auth-token", "any"):
            token = req.headers.get("x-auth-token", "")
        if not token and header in ("authorization", "any"):
            scheme, _, bearer = req.headers.get("authorization", "").partition(" ")
            token = bearer if scheme.lower() == "bearer" else ""
        if not token:
            where = {"x-auth-token": "an X-Auth-Token header", "authorization": "a bearer token"}
            raise HttpError(401, f"missing {where.get(header, 'a token')}", "missing_token")
        req.user = self.check_token(token)
        req.token = token


def _make_handler(router: Router, inference_host: bool) -> type[BaseHTTPRequestHandler]:
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every request
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0], 16)
                    if size == 0:
                        self.rfile.readline()
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            req = Request(
                self.command,
                parts.path,
                query,
                {k.lower(): v for k, v in self.headers.items()},
                self._body(),
            )
            resp = router.dispatch(req, inference_host=inference_host)
            router.finish(req, resp)
            with router.lock:
                router.log.append((req.method, req.path, resp.status))
            if isinstance(resp.body, bytes):
                payload = resp.body
                ctype = resp.headers.pop("Content-Type", "application/octet-stream")
            elif resp.body is None:
                payload, ctype = b"", "application/json"
            else:
                payload = json.dumps(resp.body).encode()
                ctype = resp.headers.pop("Content-Type", "application/json")
            self.send_response(resp.status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    return H


class Listener:
    """One HTTPS server on 127.0.0.1 (a free port) served by a daemon thread."""

    def __init__(self, router: Router, certs: Certs, *, inference_host: bool) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(router, inference_host))
        self.server.daemon_threads = True
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certs.cert, certs.key)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, daemon=True, kwargs={"poll_interval": 0.05}
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
