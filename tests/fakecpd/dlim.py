"""Fake WMLA Elastic Distributed Inference management (`/dlim/v1`, console host) and inference
(`/dlim/v1/inference/{name}`, inference host). No real kernels: a started deployment answers
inference with the request body, verbatim, as a canned echo kernel would.

Validates the package (gzip tar holding model.json, the kernel file and the README), refuses a
profile change or an undeploy while started, and answers with WMLA's quirk of a text/plain
content type on JSON bodies, so clients must parse regardless.
"""

from __future__ import annotations

import copy
import io
import json
import tarfile
from typing import Any

from fakecpd.server import HttpError, Request, Response, Router, now_iso

STARTED, STOPPED = "Started", "Stopped"


def default_profile(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "policy": {"kernel_min": 1, "kernel_max": 3, "kernel_delay_release_time": 60,
                   "task_execution_timeout": 60, "task_batch_size": 1, "schedule_interval": 3},
        "resource_allocation": {"kernel": {
            "resources": "ncpus=1,ncpus_limit=1,mem=1024,mem_limit=1024"}},
        "kernel": {"connection_timeout": 90, "gpu": "no", "envs": []},
    }


def _text_json(body: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(body).encode(), {"Content-Type": "text/plain"})


class Dlim:
    def __init__(self, router: Router, *, inference_url: str) -> None:
        self.router = router
        self.inference_url = inference_url
        self.models: dict[str, dict[str, Any]] = {}
        self.packages: dict[str, dict[str, bytes]] = {}  # name -> file path -> content
        r = router
        r.add("GET", r"/dlim/v1/model", self.list)
        r.add("POST", r"/dlim/v1/deployment/model", self.deploy)
        r.add("POST", r"/dlim/v1/deployment/model/(?P<name>[^/]+)", self.redeploy)
        r.add("GET", r"/dlim/v1/model/(?P<name>[^/]+)", self.view)
        r.add("DELETE", r"/dlim/v1/model/(?P<name>[^/]+)", self.undeploy)
        r.add("GET", r"/dlim/v1/model/(?P<name>[^/]+)/instance", self.instance)
        r.add("GET", r"/dlim/v1/model/(?P<name>[^/]+)/appprofile", self.get_profile)
        r.add("PUT", r"/dlim/v1/model/(?P<name>[^/]+)/appprofile", self.put_profile)
        r.add("PUT", r"/dlim/v1/model/(?P<name>[^/]+)/operation/(?P<op>start|stop)", self.operate)
        r.add("POST", r"/dlim/v1/inference/(?P<name>[^/]+)", self.infer, inference=True)

    def _model(self, name: str) -> dict[str, Any]:
        if name not in self.models:
            raise HttpError(404, f"Model {name} does not exist.", "model_not_found")
        return self.models[name]

    def _unpack(self, req: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        if req.headers.get("content-type") != "application/octet-stream":
            raise HttpError(400, "the package must be sent as application/octet-stream")
        files: dict[str, bytes] = {}
        try:
            with tarfile.open(fileobj=io.BytesIO(req.body), mode="r:gz") as tar:
                for member in tar.getmembers():
                    if member.issym() or member.islnk() or member.name.startswith("/") \
                            or ".." in member.name.split("/"):
                        raise HttpError(400, f"unsafe member {member.name} in the package")
                    if member.isfile():
                        fh = tar.extractfile(member)
                        files[member.name.removeprefix("./")] = fh.read() if fh else b""
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise HttpError(400, f"the package is not a gzip tar: {exc}") from None
        # model.json at the top, or in the single top folder
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

    def _store(self, desc: dict[str, Any], files: dict[str, bytes], *, keep: dict | None) -> None:
        name = desc["name"]
        now = now_iso()
        self.models[name] = {
            **desc,
            "state": STOPPED,
            "create_time": keep["create_time"] if keep else now,
            "last_update_time": now,
            "profile": keep["profile"] if keep else default_profile(name),
        }
        self.packages[name] = files

    def deploy(self, req: Request) -> Response:
        desc, files = self._unpack(req)
        with self.router.lock:
            if desc["name"] in self.models:
                raise HttpError(409, f"Model {desc['name']} already exists.", "model_exists")
            self._store(desc, files, keep=None)
        return _text_json({"name": desc["name"], "message": "deployed"}, 201)

    def redeploy(self, req: Request, name: str) -> Response:
        desc, files = self._unpack(req)
        if desc["name"] != name:
            raise HttpError(400, f"model.json names {desc['name']}, not {name}")
        with self.router.lock:
            old = self._model(name)
            if old["state"] == STARTED:
                raise HttpError(409, "The model cannot be updated if it's started.", "model_started")
            self._store(desc, files, keep=old)
        return _text_json({"name": name, "message": "redeployed"})

    def _summary(self, m: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in m.items() if k != "profile"}
        out["url"] = f"{self.inference_url}/dlim/v1/inference/{m['name']}"
        return out

    def list(self, req: Request) -> Response:
        return _text_json([self._summary(m) for m in self.models.values()])

    def view(self, req: Request, name: str) -> Response:
        return _text_json(self._summary(self._model(name)))

    def instance(self, req: Request, name: str) -> Response:
        m = self._model(name)
        if m["state"] != STARTED:
            return _text_json({"name": name, "state": "disabled", "status": "STOPPED", "kernels": []})
        n = m["profile"]["policy"]["kernel_min"]
        kernels = [{"id": f"{name}-kernel-{i}", "state": "IDLE"} for i in range(n)]
        return _text_json({"name": name, "state": "enabled", "status": "IDLE", "kernels": kernels})

    def get_profile(self, req: Request, name: str) -> Response:
        return _text_json(self._model(name)["profile"])

    def put_profile(self, req: Request, name: str) -> Response:
        profile = req.json()
        with self.router.lock:
            m = self._model(name)
            if m["state"] == STARTED:
                raise HttpError(409, "The profile can only be changed while the model is stopped.",
                                "model_started")
            if not isinstance(profile, dict) or not isinstance(profile.get("policy"), dict):
                raise HttpError(400, "the profile needs a policy")
            pol = profile["policy"]
            kmin, kmax = pol.get("kernel_min"), pol.get("kernel_max")
            if not isinstance(kmin, int) or not isinstance(kmax, int) or not (
                0 <= kmin and (kmax == -1 or kmin <= kmax)
            ):
                raise HttpError(400, f"invalid kernel_min/kernel_max: {kmin}/{kmax}")
            m["profile"] = copy.deepcopy(profile)
            m["last_update_time"] = now_iso()
        return _text_json({"name": name, "message": "profile updated"})

    def operate(self, req: Request, name: str, op: str) -> Response:
        with self.router.lock:
            m = self._model(name)
            m["state"] = STARTED if op == "start" else STOPPED
        return _text_json({"name": name, "message": f"{op} submitted"})

    def undeploy(self, req: Request, name: str) -> Response:
        with self.router.lock:
            m = self._model(name)
            if m["state"] == STARTED:
                raise HttpError(409, "The model cannot be removed if it's started.", "model_started")
            del self.models[name]
            self.packages.pop(name, None)
        return _text_json({"name": name, "message": "undeployed"})

    def infer(self, req: Request, name: str) -> Response:
        m = self._model(name)
        if m["state"] != STARTED:
            raise HttpError(503, f"Model {name} is not started.", "model_not_started")
        return Response(200, req.body, {"Content-Type": "text/plain"})
