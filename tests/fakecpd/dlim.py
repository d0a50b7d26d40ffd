"""Fake WMLA Elastic Distributed Inference: management (`/dlim/v1`, console host, token in
`X-Auth-Token` as IBM's EDI client sends it) and inference (`/dlim/v1/inference/{name}`,
inference host, X-Auth-Token or a bearer token).

Documents have the shapes recorded from a real cluster (tests/data/cluster_answers/edi-*.json):
a model has no state; its instance is `{name, state, instances: [{..., isd_container: [...]}]}`.
Start and stop are asynchronous as recorded: a start answers at once and the instance is
`{name, state: "not-available"}` (no `instances`) for `start_delay` seconds, then `enabled`; after
a stop it stays `enabled` for `stop_delay` seconds, then `disabled`. Deleting, redeploying or
changing the profile of a model that is not `disabled` is refused. Bodies come as text/plain
(WMLA's quirk).

Kernels: a started deployment answers inference through `executor(name, files, profile,
body)`; the default is an echo kernel (the body back, verbatim); `fakecpd.kernels.KernelExecutor`
runs the uploaded kernel for real. An executor with `stop(name)` is told when a deployment
stops or goes.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
import time
from collections.abc import Callable
from typing import Any

from fakecpd.server import HttpError, Request, Response, Router, new_id

MANAGE = {"header": "x-auth-token"}
DISABLED, NOT_AVAILABLE, ENABLED = "disabled", "not-available", "enabled"

Executor = Callable[[str, dict[str, bytes], dict[str, Any], bytes], tuple[int, bytes]]


def default_profile(name: str) -> dict[str, Any]:
    """An application profile in the shape recorded from a real cluster
    (tests/data/cluster_answers/edi-appprofile.json), which IBM's ModelAppProfile rejects."""
    when = time.strftime("%a %b %d %H:%M:%S %Y GMT", time.gmtime())
    return {
        "schema_version": "1.2",
        "type": "inference",
        "name": name,
        "create_time": when,
        "last_update_time": when,
        "replica": 1,
        "policy": {
            "name": "capacity",
            "schedule_interval": 3,
            "kernel_min": 1,
            "kernel_max": 3,
            "kernel_delay_release_time": 60,
            "task_execution_timeout": 60,
            "task_batch_size": 1,
            "task_pipe_size": 1,
            "task_parallel_size": 1,
            "stream_number_per_group": 0,
            "stream_discard_slow_tasks": True,
        },
        "security": {"ssl": {}},
        "resource_allocation": {
            "service": {"type": "k8s"},
            "kernel": {
                "type": "msd",
                "resource_plan": "sample-project/inference",
                "resources": "ncpus=1,ncpus_limit=1,mem=1024,mem_limit=1024",
                "accelerator_resources": "",
            },
        },
        "kernel": {
            "working_directory": "${REDHARE_TOP}/work",
            "connection_timeout": 90,
            "log_directory": "${REDHARE_TOP}/log",
            "run_as": "",
            "umask": "022",
            "gpu": "no",
            "envs": [],
        },
    }


def _text_json(body: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(body).encode(), {"Content-Type": "text/plain"})


def echo(name: str, files: dict[str, bytes], profile: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    return 200, body


class Dlim:
    def __init__(self, router: Router, *, inference_url: str) -> None:
        self.router = router
        self.inference_url = inference_url
        self.models: dict[str, dict[str, Any]] = {}
        self.packages: dict[str, dict[str, bytes]] = {}  # name -> file path -> content
        self.start_delay = 0.3  # seconds from a start to `enabled`
        self.stop_delay = 0.2  # seconds from a stop to `disabled`
        self.executor: Executor = echo
        # a cluster whose never-started models have no instance yet (404) rather than `disabled`
        self.no_instance_until_started = False
        r = router
        r.add("GET", r"/dlim/v1/model", self.list, **MANAGE)
        r.add("POST", r"/dlim/v1/deployment/model", self.deploy, **MANAGE)
        r.add("POST", r"/dlim/v1/deployment/model/(?P<name>[^/]+)", self.redeploy, **MANAGE)
        r.add("GET", r"/dlim/v1/model/(?P<name>[^/]+)", self.view, **MANAGE)
        r.add("DELETE", r"/dlim/v1/model/(?P<name>[^/]+)", self.undeploy, **MANAGE)
        r.add("GET", r"/dlim/v1/model/(?P<name>[^/]+)/instance", self.instance, **MANAGE)
        r.add("GET", r"/dlim/v1/model/(?P<name>[^/]+)/appprofile", self.get_profile, **MANAGE)
        r.add("PUT", r"/dlim/v1/model/(?P<name>[^/]+)/appprofile", self.put_profile, **MANAGE)
        r.add("PUT", r"/dlim/v1/model/(?P<name>[^/]+)/operation/(?P<op>start|stop)", self.operate, **MANAGE)
        r.add("POST", r"/dlim/v1/inference/(?P<name>[^/]+)", self.infer, inference=True, header="any")

    # -- state ---------------------------------------------------------------------------------

    def state(self, name: str) -> str:
        """The instance state now: transitions complete once their delay has passed."""
        m = self._model(name)
        state, since = m["_state"], m["_since"]
        if state == NOT_AVAILABLE and time.monotonic() - since >= self.start_delay:
            m["_state"] = state = ENABLED
        elif m.get("_stopping") and time.monotonic() - since >= self.stop_delay:
            m["_state"] = state = DISABLED
            m["_stopping"] = False
            self._stop_kernels(name)
        return state

    def _stop_kernels(self, name: str) -> None:
        stop = getattr(self.executor, "stop", None)
        if stop is not None:
            stop(name)

    def _set(self, m: dict[str, Any], state: str, *, stopping: bool = False) -> None:
        m["_state"], m["_since"], m["_stopping"] = state, time.monotonic(), stopping

    def _model(self, name: str) -> dict[str, Any]:
        if name not in self.models:
            raise HttpError(404, f"Model {name} does not exist.", "model_not_found")
        return self.models[name]

    def _require_disabled(self, name: str, doing: str) -> dict[str, Any]:
        m = self._model(name)
        if self.state(name) != DISABLED:
            raise HttpError(409, f"The model cannot be {doing} if it's started.", "model_started")
        return m

    # -- package -------------------------------------------------------------------------------

    def _unpack(self, req: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        if req.headers.get("content-type") != "application/octet-stream":
            raise HttpError(400, "the package must be sent as application/octet-stream")
        files: dict[str, bytes] = {}
        try:  # a plain tar (IBM's example) or a gzip tar
            with tarfile.open(fileobj=io.BytesIO(req.body), mode="r:*") as tar:
                for member in tar.getmembers():
                    if (
                        member.issym()
                        or member.islnk()
                        or member.name.startswith("/")
                        or ".." in member.name.split("/")
                    ):
                        raise HttpError(400, f"unsafe member {member.name} in the package")
                    if member.isfile():
                        fh = tar.extractfile(member)
                        files[member.name.removeprefix("./")] = fh.read() if fh else b""
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise HttpError(400, f"the package is not a tar archive: {exc}") from None
        tops = {p.split("/", 1)[0] for p in files if "/" in p}
        if "model.json" not in files and len(tops) == 1:
            prefix = tops.pop() + "/"
            files = {p.removeprefix(prefix): b for p, b in files.items() if p.startswith(prefix)}
        if "model.json" not in files:
            raise HttpError(400, "the package has no model.json")
        try:
            desc = json.loads(files["model.json"])
        except ValueError:
            raise HttpError(400, "model.json is not JSON") from None
        for key in ("name", "kernel_path", "readme", "runtime"):
            if not desc.get(key):
                raise HttpError(400, f"model.json lacks {key}")
        for key in ("kernel_path", "readme"):
            if desc[key] not in files:
                raise HttpError(400, f"the package has no {desc[key]} ({key} in model.json)")
        return desc, files

    def _store(
        self, req: Request, desc: dict[str, Any], files: dict[str, bytes], *, keep: dict[str, Any] | None
    ) -> None:
        name = desc["name"]
        now = int(time.time())
        m = {
            "schema_version": str(desc.get("schema_version") or "1"),
            "uid": keep["uid"] if keep else new_id(),
            "name": name,
            "tag": desc.get("tag") or "",
            "weight_path": desc.get("weight_path") or "./",
            "model_path": f"/opt/wml-edi/repo/{name}/{name}-{time.strftime('%Y%m%d-%H%M%S')}",
            "size": sum(len(b) for b in files.values()),
            "create_time": keep["create_time"] if keep else now,
            "last_updated_time": now,
            "creator": req.user,
            "attributes": list(desc.get("attributes") or []),
            "runtime": desc["runtime"],
            "kernel_path": desc["kernel_path"],
            "mk_environments": list(desc.get("mk_environments") or []),
            "service_uri": f"{self.inference_url}/dlim/v1/inference/{name}",
            "_profile": keep["_profile"] if keep else default_profile(name),
        }
        self._set(m, DISABLED)
        self.models[name] = m
        self.packages[name] = files

    # -- API -----------------------------------------------------------------------------------

    def deploy(self, req: Request) -> Response:
        desc, files = self._unpack(req)
        with self.router.lock:
            if desc["name"] in self.models:
                raise HttpError(409, f"Model {desc['name']} already exists.", "model_exists")
            self._store(req, desc, files, keep=None)
        return _text_json({"name": desc["name"], "message": "deployed"}, 201)

    def redeploy(self, req: Request, name: str) -> Response:
        desc, files = self._unpack(req)
        if desc["name"] != name:
            raise HttpError(400, f"model.json names {desc['name']}, not {name}")
        with self.router.lock:
            old = self._require_disabled(name, "updated")
            self._store(req, desc, files, keep=old)
        return _text_json({"name": name, "message": "redeployed"})

    @staticmethod
    def public(m: dict[str, Any]) -> dict[str, Any]:
        """The model document (IBM's Model): no state, no profile."""
        return {k: v for k, v in m.items() if not k.startswith("_")}

    def list(self, req: Request) -> Response:
        return _text_json([self.public(m) for m in self.models.values()])

    def view(self, req: Request, name: str) -> Response:
        return _text_json(self.public(self._model(name)))

    def instance_document(self, name: str) -> dict[str, Any]:
        m = self._model(name)
        state = self.state(name)
        items = []
        if state == ENABLED:
            n = m["_profile"]["policy"]["kernel_min"]
            containers = [
                {
                    "container_host": "worker-0",
                    "container_status": "Running",
                    "container_uid": f"{name}-kernel-{i}",
                    "failed_task": 0,
                    "finished_task": m.get("_done", 0) if i == 0 else 0,
                    "running_task": 0,
                    "total_task": m.get("_done", 0) if i == 0 else 0,
                }
                for i in range(n)
            ]
            items = [
                {
                    "isd_uid": m["uid"],
                    "pj_jobid": f"edi-{name}-{m['uid'][:9]}-{m['uid'][-5:]}",
                    "gpu_packid": f"edi-{name}",
                    "client_number": 0,
                    "pending_tasks": 0,
                    "request_per_sec": 0.0,
                    "data_size_per_sec": 0.0,
                    "gpu_mode": "no",
                    "isd_container": containers,
                }
            ]
        if state == NOT_AVAILABLE:  # as recorded: no instances key at all
            return {"name": name, "state": state}
        return {"name": name, "state": state, "instances": items}

    def instance(self, req: Request, name: str) -> Response:
        if self.no_instance_until_started and "started_at" not in self._model(name):
            raise HttpError(404, f"Model {name} has no instance.", "instance_not_found")
        return _text_json(self.instance_document(name))

    def get_profile(self, req: Request, name: str) -> Response:
        return _text_json(self._model(name)["_profile"])

    def put_profile(self, req: Request, name: str) -> Response:
        profile = req.json()
        with self.router.lock:
            m = self._model(name)
            if self.state(name) != DISABLED:
                raise HttpError(
                    409, "The profile can only be changed while the model is stopped.", "model_started"
                )
            if not isinstance(profile, dict) or not isinstance(profile.get("policy"), dict):
                raise HttpError(400, "the profile needs a policy")
            pol = profile["policy"]
            kmin, kmax = pol.get("kernel_min"), pol.get("kernel_max")
            if (
                not isinstance(kmin, int)
                or not isinstance(kmax, int)
                or not (0 <= kmin and (kmax == -1 or kmin <= kmax))
            ):
                raise HttpError(400, f"invalid kernel_min/kernel_max: {kmin}/{kmax}")
            m["_profile"] = copy.deepcopy(profile)
            m["last_updated_time"] = int(time.time())
        return _text_json({"name": name, "message": "profile updated"})

    def operate(self, req: Request, name: str, op: str) -> Response:
        with self.router.lock:
            m = self._model(name)
            state = self.state(name)
            if op == "start" and state == DISABLED:
                self._set(m, NOT_AVAILABLE)
                m["started_at"] = int(time.time())
            elif op == "start" and m.get("_stopping"):
                raise HttpError(409, f"Model {name} is stopping.", "model_stopping")
            elif op == "stop" and state == NOT_AVAILABLE:  # (inferred) a start cannot be stopped midway
                raise HttpError(409, f"Model {name} is starting.", "model_starting")
            elif op == "stop" and state == ENABLED and not m.get("_stopping"):
                self._set(m, ENABLED, stopping=True)  # as recorded: enabled a while, then disabled
        return _text_json({"name": name, "message": f"{op} submitted"})

    def undeploy(self, req: Request, name: str) -> Response:
        with self.router.lock:
            self._require_disabled(name, "removed")
            del self.models[name]
            self.packages.pop(name, None)
        return _text_json({"name": name, "message": "undeployed"})

    def infer(self, req: Request, name: str) -> Response:
        m = self._model(name)
        if self.state(name) != ENABLED:
            raise HttpError(503, f"Model {name} is not started.", "model_not_started")
        status, body = self.executor(name, self.packages[name], m["_profile"], req.body)
        m["_done"] = m.get("_done", 0) + 1
        return Response(status, body, {"Content-Type": "text/plain"})
