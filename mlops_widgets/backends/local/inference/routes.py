"""The local service's routing table: each method and path, straight to the function that answers.

EDI's own routes (`/dlim/v1`, answered in the shapes of IBM's `ibm-wmla` client models) and ours
(`/mlops/v1`: deploy a local folder by path with custom args, diagnostics, shutdown). A function
gets the server's context, the request, its body (bytes, the chunks it arrived in, or the
spooled file of an upload) and the path's arguments, and returns a JSON document or a raw
`(status, bytes)` answer. Management calls block (the server runs them on a small thread pool);
inference is a coroutine on the event loop, so that no thread hop lies on its hot path.
`answer` / `answer_async` map our errors to HTTP statuses, the same for every route.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_widgets.backends.archives import safe_untar
from mlops_widgets.backends.local.inference import edi
from mlops_widgets.backends.local.inference.runtimes import Runtimes
from mlops_widgets.backends.local.inference.service import API, CLIENT_HEADER
from mlops_widgets.backends.local.inference.tasks import ServiceError
from mlops_widgets.errors import ConflictError, Hint, MlopsError, NotFoundError

log = logging.getLogger("mlops.inference")

MLOPS = "/mlops/v1"
_NAME = r"([^/?]+)"


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # a tornado URL pattern (anchored)
    run: Callable[..., Any]  # a coroutine function runs on the event loop, any other on a thread
    body: str = "bytes"  # "bytes"; "chunks": as it arrived, never joined; "file": spooled to disk


def error_body(message: str, hint: Any = None) -> bytes:
    doc: dict[str, Any] = {"error": message}
    if hint is not None:
        doc["hint"] = {"action": hint.action, "text": hint.text, "args": dict(hint.args)}
    return json.dumps(doc).encode()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else {}
    except (ValueError, RecursionError) as exc:
        raise MlopsError(f"the request body is not valid JSON: {exc}") from None


def _object(body: bytes, what: str) -> dict[str, Any]:
    """The body as a JSON object (empty: {}), else a 400 naming what it should have been."""
    doc = _json(body)
    if not isinstance(doc, dict):
        raise MlopsError(f"the body of {what} must be a JSON object, got {type(doc).__name__}")
    return doc


def _strings(doc: dict[str, Any], key: str, what: str) -> dict[str, str]:
    """`doc[key]`: null or an object of names to strings or numbers (custom args)."""
    value = doc.get(key) or {}
    if not isinstance(value, dict) or not all(
        isinstance(v, str | int | float) and not isinstance(v, bool) for v in value.values()
    ):
        raise MlopsError(f"{key} of {what} must be a JSON object of names to strings")
    return value


def _failure(call: Call, request: Any, exc: Exception) -> tuple[int, bytes]:
    """Our errors as HTTP statuses, the same for every route; anything else is a logged 500."""
    if isinstance(exc, ServiceError):
        return exc.status, error_body(str(exc))
    if isinstance(exc, MlopsError):
        status = 404 if isinstance(exc, NotFoundError) else 409 if isinstance(exc, ConflictError) else 400
        return status, error_body(exc.message, exc.hint)
    log.error(
        "%s %s failed:\n%s",
        call.method,
        request.path,
        "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
    )
    return 500, error_body(f"internal error of the inference service: {exc!r}")


def _success(out: Any) -> tuple[int, bytes]:
    return out if isinstance(out, tuple) else (200, json.dumps(out).encode())


def answer(call: Call, ctx: Any, request: Any, body: Any, args: tuple[str, ...]) -> tuple[int, bytes]:
    """Run a route's (blocking) function; its result or its error as (status, body)."""
    try:
        return _success(call.run(ctx, request, body, *args))
    except Exception as exc:
        return _failure(call, request, exc)


async def answer_async(
    call: Call, ctx: Any, request: Any, body: Any, args: tuple[str, ...]
) -> tuple[int, bytes]:
    """`answer` for a route whose function is a coroutine (it runs on the event loop)."""
    try:
        return _success(await call.run(ctx, request, body, *args))
    except Exception as exc:
        return _failure(call, request, exc)


# --- EDI's routes -------------------------------------------------------------------------------


def start(ctx: Any, request: Any, body: bytes, name: str) -> Any:
    """EDI's start takes no body; ours may carry secret custom args a restarted service lacks."""
    what = f"a start of deployment {name}"
    return ctx.service.start(name, _strings(_object(body, what), "secret_args", what))


def update_profile(ctx: Any, request: Any, body: bytes, name: str) -> Any:
    """A change by another client than ours (IBM's) is named by its User-Agent."""
    ours = request.headers.get(CLIENT_HEADER)
    client = None if ours else request.headers.get("User-Agent") or "an EDI client"
    doc = _object(body, f"a profile update of deployment {name}")
    return ctx.service.update_profile(name, doc, client=client)


def readme(ctx: Any, request: Any, body: bytes, name: str) -> Any:
    """EDI's `GetModelReadmeResponse`: the deployment's README (model.json `readme`)."""
    return {"readme": ctx.service.readme(name)}


def auth_token(ctx: Any, request: Any, body: bytes) -> Any:
    """EDI's log-on (`Token`): a caller that holds the token (also as the password of Basic
    auth, as IBM's EDI authenticator sends it) gets it back as user and service token."""
    token = ctx.token.decode()
    return {"user_token": token, "service_token": token}


async def infer(ctx: Any, request: Any, body: list[bytes], name: str) -> tuple[int, bytes]:
    """The body goes to the kernel in the chunks it arrived in (no copy on the way). No thread
    waits for the answer: the kernel's thread resolves a future of this event loop."""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bool] = loop.create_future()

    def settle(ok: bool) -> None:
        if not answered.done():
            answered.set_result(ok)

    def on_done(_task: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: the service is exiting
            loop.call_soon_threadsafe(settle, True)

    pool, task = ctx.service.submit(name, body, on_done)
    limit = pool.wait_limit()
    timer = None if limit is None else loop.call_later(limit, settle, False)
    if not await answered:
        raise pool.give_up(task)
    if timer is not None:
        timer.cancel()
    return task.status, task.output


def runtimes(ctx: Any, request: Any, body: bytes) -> Any:
    return {
        "schema_version": "1",
        "runtimes": [edi.runtime_doc(r) for r in Runtimes(ctx.service.workspace).list()],
    }


def runtime(ctx: Any, request: Any, body: bytes, name: str) -> Any:
    for r in Runtimes(ctx.service.workspace).list():
        if r["name"] == name:
            return edi.runtime_doc(r)
    raise NotFoundError(
        f"no runtime named {name!r}", hint=Hint("runtime.list", "list the runtimes to see their names")
    )


def deploy_upload(ctx: Any, request: Any, spooled: Path) -> Any:
    """`POST /deployment/model` as WMLA takes it: a (gzip) tar of the submission folder, the
    name from ?name= or its model.json."""
    tmp = Path(tempfile.mkdtemp(prefix="upload-", dir=ctx.service.workspace.dir("inference")))
    try:
        safe_untar(spooled, tmp, ctx.settings.limits)
        folder = tmp
        entries = list(tmp.iterdir())
        if not (tmp / "model.json").exists() and len(entries) == 1 and entries[0].is_dir():
            folder = entries[0]
        name = request.query_arguments.get("name", [b""])[0].decode()
        if not name:
            with contextlib.suppress(OSError, ValueError, AttributeError):
                name = json.loads((folder / "model.json").read_text()).get("name", "")
        return ctx.service.deploy(name, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- ours ---------------------------------------------------------------------------------------


def deploy_folder(ctx: Any, request: Any, body: bytes) -> Any:
    """Deploy a folder of this machine by path, with custom args (secret ones kept in memory)."""
    what = "a deploy request"
    req = _object(body, what)
    path, name = req.get("path"), req.get("name") or ""
    if not isinstance(path, str) or not path or not isinstance(name, str):
        raise MlopsError(f"{what} needs {{name, path}} as strings")
    return ctx.service.deploy(
        name, Path(path), _strings(req, "custom_args", what), _strings(req, "secret_args", what)
    )


def shutdown(ctx: Any, request: Any, body: bytes) -> Any:
    ctx.stop()
    return {"stopping": True}


ROUTES: list[Call] = [
    Call("GET", f"{API}/model/?", lambda c, r, b: c.service.models()),
    Call("GET", f"{API}/model/{_NAME}/?", lambda c, r, b, n: c.service.model(n)),
    Call("DELETE", f"{API}/model/{_NAME}/?", lambda c, r, b, n: c.service.undeploy(n)),
    Call("GET", f"{API}/model/{_NAME}/instance/?", lambda c, r, b, n: c.service.instance(n)),
    Call("GET", f"{API}/model/{_NAME}/appprofile/?", lambda c, r, b, n: c.service.profile(n)),
    Call("PUT", f"{API}/model/{_NAME}/appprofile/?", update_profile),
    Call("GET", f"{API}/model/{_NAME}/readme/?", readme),
    Call("POST", f"{API}/auth/token/?", auth_token),
    Call("POST", f"{API}/auth/token/inference/?", auth_token),
    Call("PUT", f"{API}/model/{_NAME}/operation/start/?", start),
    Call("PUT", f"{API}/model/{_NAME}/operation/stop/?", lambda c, r, b, n: c.service.stop(n)),
    Call("POST", f"{API}/inference/{_NAME}/?", infer, body="chunks"),
    Call("POST", f"{API}/deployment/model/?", deploy_upload, body="file"),
    Call("GET", f"{API}/deployment/runtime/?", runtimes),
    Call("GET", f"{API}/deployment/runtime/{_NAME}/?", runtime),
    Call("POST", f"{MLOPS}/deployment/?", deploy_folder),
    Call("GET", f"{MLOPS}/model/{_NAME}/?", lambda c, r, b, n: c.service.diagnostics(n)),
    Call("GET", f"{MLOPS}/service/?", lambda c, r, b: {**c.info, "token": None}),
    Call("POST", f"{MLOPS}/service/shutdown/?", shutdown),
]
