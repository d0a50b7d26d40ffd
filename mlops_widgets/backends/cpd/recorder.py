"""`mlops doctor --record FILE`: the answers a real cluster gives to the read-only calls of the
workflow, kept in the format of the test corpus (tests/data/cluster_answers) so that the tests
replay them through this client and check the fake against them.

Every HTTP exchange of the doctor's run (ours and the IBM SDKs', all through `requests`) is
captured while `Recorder` is active; what is written is redacted:
- no request header but Accept and Content-Type, no request body, no response header but
  Content-Type: tokens, credentials and cookies never reach the file;
- body fields that carry secrets (token, api_key, password, ...) are dropped;
- identifying values (names, ids, users, hosts, paths inside volumes, e-mail addresses, UUIDs)
  are replaced by salted hashes, the same value by the same hash within one file (so paths and
  bodies stay consistent) and never linkable across files (the salt is not kept).
Numbers, states, types, timestamps and the shapes of the answers are kept: they are what the
tests learn from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from mlops_widgets.backends.cpd.client import OPENSCALE_CPD_INSTANCE, CpdSession
from mlops_widgets.backends.cpd.openscale import OPENSCALE_BUILTIN_MONITORS
from mlops_widgets.errors import MlopsError
from mlops_widgets.secret_names import is_secret_name

KEPT_REQUEST_HEADERS = ("accept", "content-type")
# fields whose values identify a person, a cluster or a project
IDENTIFYING = frozenset(
    {
        "name",
        "uid",
        "id",
        "guid",
        "asset_id",
        "space_id",
        "project_id",
        "isd_uid",
        "pj_jobid",
        "gpu_packid",
        "creator",
        "display_name",
        "userName",
        "executionUserName",
        "username",
        "user",
        "owner_id",
        "path",
        "description",
        "appId",
        "submissionId",
        "sigId",
        "instance_id",
        "tag",
    }
)
# words of the services' own vocabulary (route segments, OpenScale's built-in monitors, the
# Cloud Pak for Data OpenScale instance): public, never hashed
PUBLIC = (
    frozenset(
        {
            "spaces",
            "assets",
            "dlim",
            "model",
            "models",
            "instance",
            "inference",
            "appprofile",
            "deployment",
            "deployments",
            "functions",
            "execs",
            "volumes",
            "files",
            "directories",
            "openscale",
            "heartbeat",
            "data_marts",
            "service_providers",
            "subscriptions",
            "monitor_definitions",
            "monitor_instances",
            "integrated_systems",
            "measurements",
            "runs",
            OPENSCALE_CPD_INSTANCE,
        }
    )
    | OPENSCALE_BUILTIN_MONITORS
)
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
MAX_TEXT = 4000  # a non-JSON body longer than this is left out


def _secret_field(key: str) -> bool:
    """A field whose value is a secret (dropped): token, api_key, password, credentials...;
    `key` alone is the name half of EDI's attributes, not a secret."""
    return key.lower() in ("token", "credentials") or (key.lower() != "key" and is_secret_name(key))


class Redactor:
    """Salted hashes for identifying values; consistent within one recording."""

    def __init__(self, known: list[str]) -> None:
        self._salt = secrets.token_bytes(16)
        self._values: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None
        for value in known:
            self.learn(value)

    def learn(self, value: str) -> None:
        if (
            len(value) >= 3
            and not value.replace(".", "").isdigit()
            and value not in PUBLIC
            and value not in self._values
        ):
            self._values[value] = self._hash(value)
            self._pattern = None

    def _hash(self, value: str) -> str:
        return "h-" + hashlib.sha256(self._salt + value.encode()).hexdigest()[:12]

    def learn_body(self, body: Any) -> None:
        """Collect the identifying values of a body before any is written."""
        if isinstance(body, dict):
            for key, value in body.items():
                if key in IDENTIFYING and isinstance(value, str):
                    if key == "path":  # a relative path inside a volume: each folder too
                        for part in value.split("/"):
                            self.learn(part)
                    self.learn(value)
                self.learn_body(value)
        elif isinstance(body, list):
            for item in body:
                self.learn_body(item)

    def text(self, value: str) -> str:
        """`value` with every known identifying value (as a whole word), UUID and e-mail
        address replaced by its hash."""
        if self._values:
            if self._pattern is None:
                alternatives = "|".join(re.escape(v) for v in sorted(self._values, key=len, reverse=True))
                self._pattern = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")
            value = self._pattern.sub(lambda m: self._values[m.group(0)], value)
        value = UUID.sub(lambda m: m.group(0) if m.group(0) in PUBLIC else self._hash(m.group(0)), value)
        return EMAIL.sub(lambda m: self._hash(m.group(0)), value)

    def body(self, body: Any) -> Any:
        if isinstance(body, dict):
            return {k: self.body(v) for k, v in body.items() if not _secret_field(k)}
        if isinstance(body, list):
            return [self.body(v) for v in body]
        if isinstance(body, str):
            return self.text(body)
        return body

    def path(self, path: str) -> str:
        return "/".join(quote(self.text(unquote(p)), safe="") for p in path.split("/"))


class Recorder:
    """Captures every HTTP exchange made through `requests` while active."""

    def __init__(self) -> None:
        self.exchanges: list[dict[str, Any]] = []

    @contextlib.contextmanager
    def active(self) -> Iterator[Recorder]:
        import requests

        send = requests.Session.send

        def recording_send(session: Any, request: Any, **kw: Any) -> Any:
            resp = send(session, request, **kw)
            self._keep(request, resp, streamed=bool(kw.get("stream")))
            return resp

        requests.Session.send = recording_send  # type: ignore[method-assign,assignment]
        try:
            yield self
        finally:
            requests.Session.send = send  # type: ignore[method-assign]

    def _keep(self, request: Any, resp: Any, *, streamed: bool) -> None:
        parts = urlsplit(request.url)
        ctype = resp.headers.get("Content-Type", "")
        body: Any = None
        if not streamed:
            try:
                body = json.loads(resp.content or b"null")
            except ValueError:
                text = resp.text if ctype.startswith("text/") else ""
                body = text if text and len(text) <= MAX_TEXT else None
        self.exchanges.append(
            {
                "method": request.method,
                "path": parts.path,
                "query": dict(parse_qsl(parts.query)),
                "request_headers": {
                    k.lower(): v for k, v in request.headers.items() if k.lower() in KEPT_REQUEST_HEADERS
                },
                "status": resp.status_code,
                "headers": {"content-type": ctype} if ctype else {},
                "body": body,
            }
        )

    def documents(self, session: CpdSession, version: str | None) -> list[dict[str, Any]]:
        """The exchanges as corpus documents, redacted."""
        s = session.settings
        known = [
            v
            for v in (
                s.username,
                s.space_id,
                *(urlsplit(u or "").hostname or "" for u in (s.base_url, s.wmla_url)),
            )
            if v
        ]
        red = Redactor(known)
        for ex in self.exchanges:
            red.learn_body(ex["body"])
        day = time.strftime("%Y-%m-%d", time.gmtime())
        out = []
        for i, ex in enumerate(self.exchanges):
            doc = {
                "id": f"doctor-{day}-{i:03d}",
                "source": {
                    "transcript": "mlops doctor --record",
                    "recorded": day,
                    "cluster_version": version,
                },
                "method": ex["method"],
                "path": red.path(ex["path"]),
                "query": {k: red.text(v) for k, v in ex["query"].items()},
                "request_headers": ex["request_headers"],
                "status": ex["status"],
                "headers": ex["headers"],
                "body": red.body(ex["body"]),
                "partial": ["identifying values hashed", "secret fields dropped"],
            }
            out.append(doc)
        return out


def read_only_tour(session: CpdSession) -> None:
    """The read-only calls of the workflow beyond the doctor's checks, so a transcript holds
    one answer of each kind: each deployment's model, instance and profile, one folder listing
    per volume, the execs, the monitor instances with their latest run and measurements.
    A failing call is left in the transcript as answered."""
    from mlops_widgets.backends.cpd.inference import CpdInference
    from mlops_widgets.backends.cpd.monitoring import CpdMonitoring
    from mlops_widgets.backends.cpd.training import CpdTraining
    from mlops_widgets.backends.cpd.volumes import CpdVolumes

    s = session.settings
    with contextlib.suppress(MlopsError):
        if s.wmla_url:
            inference = CpdInference(session)
            for view in inference.list()[:3]:
                inference.view(view.name)
            CpdTraining(session).list()
    with contextlib.suppress(MlopsError):
        volumes = CpdVolumes(session)
        for volume in volumes.list_volumes()[:2]:
            volumes.list_files(volume, "")
    with contextlib.suppress(MlopsError):
        monitoring = CpdMonitoring(session)
        for inst in monitoring.monitor_instances.list()[:2]:
            iid = inst["metadata"]["id"]
            runs = monitoring.runs.list(iid, limit=1)
            if runs:
                monitoring.measurements.list(iid, run_id=runs[0]["metadata"]["id"], limit=1)


def write_transcript(path: Path, documents: list[dict[str, Any]]) -> None:
    """Write the transcript whole or not at all."""
    path = Path(path)
    if not path.parent.is_dir():
        raise MlopsError(f"cannot write the transcript {path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(documents, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
