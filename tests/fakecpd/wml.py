"""Fake Watson Machine Learning: version, spaces, data assets with attachments (CAMS v2),
software specifications, functions and their online deployments (for published providers).

Validates what the SDKs send: the space id on every asset call, the asset body's fields, an
attachment's upload before its completion, and 404 for anything missing. A function deployment
needs a hardware specification (IBM's custom-monitor helper always gives one) and its scoring
needs `?version=YYYY-MM-DD`, as WML's v4 API does.

`search_lag`: seconds during which a new asset is not yet found by the CAMS search (the search
index trails writes on a real cluster); reads by id see it at once.
"""

from __future__ import annotations

import gzip
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from fakecpd.server import HttpError, Request, Response, Router, new_id, now_iso

# the custom runtime a cluster admin builds with mlops-widgets[cpd] in it (set in the fake's env)
SOFTWARE_SPEC = "mlops-widgets-runtime-24.1-py3.11"

SEARCH_PAGE = 200


@dataclass
class Attachment:
    id: str
    name: str
    mime: str
    key: str
    data: bytes | None = None
    complete: bool = False


@dataclass
class Asset:
    id: str
    name: str
    description: str
    mime: str
    space_id: str
    created_at: str
    updated_at: str
    attachments: list[Attachment] = field(default_factory=list)
    indexed_at: float = 0.0  # monotonic time from which the search finds it

    def size(self) -> int:
        return sum(len(a.data or b"") for a in self.attachments)

    def to_json(self, base: str) -> dict[str, Any]:
        return {
            "metadata": {
                "asset_id": self.id,
                "name": self.name,
                "description": self.description,
                "asset_type": "data_asset",
                "asset_state": "available",
                "origin_country": "us",
                "asset_category": "USER",
                "created_at": self.created_at,
                "space_id": self.space_id,
                "size": self.size(),
                "tags": [],
                "usage": {"last_updated_at": self.updated_at, "access_count": 0},
            },
            "entity": {"data_asset": {"mime_type": self.mime}},
            "attachments": [
                {
                    "id": a.id,
                    "asset_type": "data_asset",
                    "name": a.name,
                    "mime": a.mime,
                    "object_key": a.key,
                    "size": len(a.data or b""),
                    "complete": a.complete,
                    "is_remote": False,
                    "is_managed": True,
                }
                for a in self.attachments
            ],
            "href": f"{base}/v2/assets/{self.id}?space_id={self.space_id}",
        }


class Wml:
    """The WML/CAMS part of the fake's state."""

    def __init__(self, router: Router, *, version: str, space_id: str, base_url: str) -> None:
        self.router = router
        self.version = version
        self.base_url = base_url
        self.spaces = {space_id: {"name": "mlops space", "created_at": now_iso()}}
        self.assets: dict[str, Asset] = {}
        self.max_page = SEARCH_PAGE  # CAMS answers a search 200 results at a time at most
        self.files: dict[str, tuple[str, str]] = {}  # object key -> (asset id, attachment id)
        self.functions: dict[str, dict[str, Any]] = {}
        self.function_code: dict[str, bytes] = {}
        self.deployments: dict[str, dict[str, Any]] = {}
        self.software_specs = {
            new_id(): name for name in ("runtime-23.1-py3.10", "runtime-24.1-py3.11", SOFTWARE_SPEC)
        }
        self.hardware_specs = {new_id(): name for name in ("XS", "S", "M", "L")}
        self.search_lag = 0.0
        self.forward_token = True  # WML hands the caller's token to score(payload, token); False: 4.x
        self.runtime_env: dict[str, str] = {}  # what the cluster's admin set on the functions' runtime
        # called with an asset create's metadata before the asset exists: a test interleaves
        # other clients' requests there (a slow upload), as a busy cluster would
        self.before_create: Any = None
        # called with an asset before its attachment is created: a test removes the asset there
        # (a newer writer's clean-up deleting a version whose content is still on its way)
        self.before_attachment: Any = None
        # deployment id -> callable(payload, token) -> response dict (set by the fake's wiring)
        self.scorers: dict[str, Any] = {}
        r = router
        r.add("GET", r"/ml/wml_services/version", self.get_version, public=True)
        r.add("GET", r"/ml/wml_services/v2/version", self.get_version, public=True)
        r.add("GET", r"/ml/v1/foundation_model_specs", lambda req: {"resources": []}, public=True)
        r.add("GET", r"/v2/spaces", self.list_spaces)
        r.add("GET", r"/v2/spaces/(?P<sid>[^/]+)", self.get_space)
        r.add("POST", r"/v2/asset_types/data_asset/search", self.search)
        r.add("POST", r"/v2/assets", self.create_asset)
        r.add("GET", r"/v2/assets/(?P<aid>[^/]+)", self.get_asset)
        r.add("DELETE", r"/v2/assets/(?P<aid>[^/]+)", self.delete_asset)
        r.add("POST", r"/v2/assets/(?P<aid>[^/]+)/attachments", self.create_attachment)
        r.add("GET", r"/v2/assets/(?P<aid>[^/]+)/attachments/(?P<att>[^/]+)", self.get_attachment)
        r.add(
            "POST", r"/v2/assets/(?P<aid>[^/]+)/attachments/(?P<att>[^/]+)/complete", self.complete_attachment
        )
        # signed URLs: the unguessable key is the credential, as in CAMS
        r.add("PUT", r"/v2/asset_files/(?P<key>[^/]+)", self.put_file, public=True)
        r.add("GET", r"/v2/asset_files/(?P<key>[^/]+)", self.get_file, public=True)
        r.add("GET", r"/v2/software_specifications", self.list_software_specs)
        r.add("GET", r"/v2/hardware_specifications", self.list_hardware_specs)
        r.add("POST", r"/ml/v4/functions", self.create_function)
        r.add("GET", r"/ml/v4/functions/(?P<fid>[^/]+)", self.get_function)
        r.add("PUT", r"/ml/v4/functions/(?P<fid>[^/]+)/code", self.put_function_code)
        r.add("DELETE", r"/ml/v4/functions/(?P<fid>[^/]+)", self.delete_function)
        r.add("POST", r"/ml/v4/deployments", self.create_deployment)
        r.add("GET", r"/ml/v4/deployments", self.list_deployments)
        r.add("GET", r"/ml/v4/deployments/(?P<did>[^/]+)", self.get_deployment)
        r.add("DELETE", r"/ml/v4/deployments/(?P<did>[^/]+)", self.delete_deployment)
        r.add("POST", r"/ml/v4/deployments/(?P<did>[^/]+)/predictions", self.predict)

    # -- helpers -------------------------------------------------------------------------------

    def _space(self, req: Request) -> str:
        sid = req.query.get("space_id")
        if not sid:
            raise HttpError(400, "space_id or project_id is required", "missing_space_id")
        if sid not in self.spaces:
            raise HttpError(404, f"space {sid} not found", "space_not_found")
        return sid

    def _asset(self, req: Request, aid: str) -> Asset:
        sid = self._space(req)
        asset = self.assets.get(aid)
        if asset is None or asset.space_id != sid:
            raise HttpError(404, f"asset {aid} not found in space {sid}", "asset_not_found")
        return asset

    # -- version and spaces --------------------------------------------------------------------

    def get_version(self, req: Request) -> dict[str, Any]:
        return {"version": self.version, "build": "fake"}

    def _space_json(self, sid: str) -> dict[str, Any]:
        s = self.spaces[sid]
        return {
            "metadata": {"id": sid, "url": f"/v2/spaces/{sid}", "created_at": s["created_at"]},
            "entity": {
                "name": s["name"],
                "description": "",
                "status": {"state": "active"},
                "stage": {"production": False},
                "type": "wx",
                "compute": [],
            },
        }

    def list_spaces(self, req: Request) -> dict[str, Any]:
        return {"resources": [self._space_json(s) for s in self.spaces], "total_count": len(self.spaces)}

    def get_space(self, req: Request, sid: str) -> dict[str, Any]:
        if sid not in self.spaces:
            raise HttpError(404, f"space {sid} not found", "space_not_found")
        return self._space_json(sid)

    # -- data assets ---------------------------------------------------------------------------

    def search(self, req: Request) -> dict[str, Any]:
        sid = self._space(req)
        body = req.json() or {}
        query = body.get("query")
        if not isinstance(query, str) or not query:
            raise HttpError(400, "search needs a query", "invalid_request")
        name = None
        if query != "*:*":
            if not query.startswith("asset.name:"):
                raise HttpError(400, f"unsupported query {query!r}", "invalid_request")
            name = query.split(":", 1)[1].strip('"').replace('\\"', '"')
        limit = min(int(body.get("limit") or SEARCH_PAGE), self.max_page)
        start = int(body.get("bookmark") or 0)
        now = time.monotonic()
        with self.router.lock:
            found = [
                a
                for a in self.assets.values()
                if a.space_id == sid and (name is None or a.name == name) and a.indexed_at <= now
            ]
        found.sort(key=lambda a: (a.created_at, a.id))
        page = found[start : start + limit]
        out: dict[str, Any] = {"total_rows": len(found), "results": [a.to_json(self.base_url) for a in page]}
        if start + limit < len(found):
            out["next"] = {**body, "limit": limit, "bookmark": str(start + limit)}
        return out

    def create_asset(self, req: Request) -> Response:
        sid = self._space(req)
        body = req.json() or {}
        meta = body.get("metadata") or {}
        if meta.get("asset_type") != "data_asset" or not meta.get("name"):
            raise HttpError(400, "metadata.asset_type data_asset and metadata.name are required")
        mime = ((body.get("entity") or {}).get("data_asset") or {}).get("mime_type")
        if not mime:
            raise HttpError(400, "entity.data_asset.mime_type is required")
        action = (req.query.get("duplicate_action") or "IGNORE").upper()
        if self.before_create is not None:
            self.before_create(meta)
        with self.router.lock:
            if action == "REJECT" and any(
                a.name == meta["name"] and a.space_id == sid for a in self.assets.values()
            ):
                raise HttpError(409, f"an asset named {meta['name']} exists", "duplicate_asset")
            now = now_iso()
            asset = Asset(
                new_id(),
                meta["name"],
                meta.get("description") or "",
                mime,
                sid,
                now,
                now,
                indexed_at=time.monotonic() + self.search_lag,
            )
            self.assets[asset.id] = asset
        return Response(201, asset.to_json(self.base_url))

    def get_asset(self, req: Request, aid: str) -> dict[str, Any]:
        return self._asset(req, aid).to_json(self.base_url)

    def delete_asset(self, req: Request, aid: str) -> Response:
        asset = self._asset(req, aid)
        with self.router.lock:
            self.assets.pop(asset.id, None)
            for a in asset.attachments:
                self.files.pop(a.key, None)
        return Response(204)

    def create_attachment(self, req: Request, aid: str) -> Response:
        if self.before_attachment is not None:
            self.before_attachment(self._asset(req, aid))
        asset = self._asset(req, aid)
        body = req.json() or {}
        if body.get("asset_type") != "data_asset" or not body.get("name"):
            raise HttpError(400, "asset_type data_asset and name are required")
        att = Attachment(
            new_id(), body["name"], body.get("mime") or "application/octet-stream", secrets.token_hex(12)
        )
        with self.router.lock:
            asset.attachments.append(att)
            self.files[att.key] = (asset.id, att.id)
        return Response(
            201, {"attachment_id": att.id, "asset_type": "data_asset", "url1": f"/v2/asset_files/{att.key}"}
        )

    def _attachment(self, asset: Asset, att_id: str) -> Attachment:
        for a in asset.attachments:
            if a.id == att_id:
                return a
        raise HttpError(404, f"attachment {att_id} not found", "attachment_not_found")

    def complete_attachment(self, req: Request, aid: str, att: str) -> dict[str, Any]:
        a = self._attachment(self._asset(req, aid), att)
        if a.data is None:
            raise HttpError(400, "the attachment has no content yet", "attachment_not_uploaded")
        a.complete = True
        return {"attachment_id": a.id, "complete": True}

    def get_attachment(self, req: Request, aid: str, att: str) -> dict[str, Any]:
        a = self._attachment(self._asset(req, aid), att)
        if not a.complete:
            raise HttpError(404, "the attachment is not complete", "attachment_not_complete")
        return {"attachment_id": a.id, "url": f"/v2/asset_files/{a.key}", "name": a.name}

    def _file(self, key: str) -> Attachment:
        ref = self.files.get(key)
        if ref is None or ref[0] not in self.assets:
            raise HttpError(404, "no such file", "file_not_found")
        return self._attachment(self.assets[ref[0]], ref[1])

    def put_file(self, req: Request, key: str) -> Response:
        att = self._file(key)
        form = req.multipart()
        if "file" not in form:
            raise HttpError(400, "multipart field 'file' is required")
        att.data = form["file"][1]
        return Response(201, {"status": "uploaded"})

    def get_file(self, req: Request, key: str) -> Response:
        att = self._file(key)
        return Response(200, att.data or b"")

    # -- software specifications, functions, deployments (published providers) ---------------

    def list_software_specs(self, req: Request) -> dict[str, Any]:
        name = req.query.get("name")
        found = [
            {
                "metadata": {"asset_id": sid, "name": n, "href": f"/v2/software_specifications/{sid}"},
                "entity": {"software_specification": {"type": "base", "display_name": n}},
            }
            for sid, n in self.software_specs.items()
            if name in (None, n)
        ]
        return {"total_results": len(found), "resources": found}

    def list_hardware_specs(self, req: Request) -> dict[str, Any]:
        name = req.query.get("name")
        found = [
            {
                "metadata": {"asset_id": hid, "name": n},
                "entity": {
                    "hardware_specification": {
                        "name": n,
                        "nodes": {"cpu": {"units": "1"}, "mem": {"size": "4Gi"}},
                    }
                },
            }
            for hid, n in self.hardware_specs.items()
            if name in (None, n)
        ]
        return {"total_results": len(found), "resources": found}

    def delete_function(self, req: Request, fid: str) -> Response:
        self._space(req)
        if self.functions.pop(fid, None) is None:
            raise HttpError(404, f"function {fid} not found")
        self.function_code.pop(fid, None)
        return Response(204)

    def create_function(self, req: Request) -> Response:
        body = req.json() or {}
        self._space_from_body(body)
        spec = (body.get("software_spec") or {}).get("id")
        if not body.get("name") or spec not in self.software_specs:
            raise HttpError(400, "name and a known software_spec.id are required")
        fid = new_id()
        self.functions[fid] = {
            "metadata": {
                "id": fid,
                "name": body["name"],
                "space_id": body["space_id"],
                "created_at": now_iso(),
            },
            "entity": {
                "software_spec": body["software_spec"],
                "type": body.get("type", "python"),
                "description": body.get("description", ""),
            },
        }
        return Response(201, self.functions[fid])

    def _space_from_body(self, body: dict[str, Any]) -> str:
        sid = body.get("space_id")
        if sid not in self.spaces:
            raise HttpError(400 if not sid else 404, f"space {sid} not found", "space_not_found")
        return str(sid)

    def get_function(self, req: Request, fid: str) -> dict[str, Any]:
        if fid not in self.functions:
            raise HttpError(404, f"function {fid} not found")
        return self.functions[fid]

    def put_function_code(self, req: Request, fid: str) -> Response:
        if fid not in self.functions:
            raise HttpError(404, f"function {fid} not found")
        try:
            source = gzip.decompress(req.body)
        except OSError:
            raise HttpError(400, "function code must be a gzip file") from None
        compile(source, "function.py", "exec")  # a syntax error is the client's bug
        self.function_code[fid] = source
        return Response(201, {"status": "uploaded"})

    def create_deployment(self, req: Request) -> Response:
        body = req.json() or {}
        sid = self._space_from_body(body)
        fid = (body.get("asset") or {}).get("id")
        if fid not in self.functions or fid not in self.function_code:
            raise HttpError(400, f"asset {fid} is not a function with code", "invalid_asset")
        if "online" not in body:
            raise HttpError(400, "only online deployments are supported here")
        if ((body.get("hardware_spec") or {}).get("id")) not in self.hardware_specs:
            raise HttpError(400, "hardware_spec.id must name a hardware specification")
        did = new_id()
        self.deployments[did] = {
            "metadata": {"id": did, "name": body.get("name", ""), "space_id": sid, "created_at": now_iso()},
            "entity": {
                "asset": {"id": fid},
                "online": body["online"],
                "space_id": sid,
                "hardware_spec": body["hardware_spec"],
                "status": {
                    "state": "ready",
                    "online_url": {"url": f"{self.base_url}/ml/v4/deployments/{did}/predictions"},
                },
                "deployed_asset_type": "function",
            },
        }
        return Response(202, self.deployments[did])

    def list_deployments(self, req: Request) -> dict[str, Any]:
        sid = self._space(req)
        return {"resources": [d for d in self.deployments.values() if d["metadata"]["space_id"] == sid]}

    def get_deployment(self, req: Request, did: str) -> dict[str, Any]:
        if did not in self.deployments:
            raise HttpError(404, f"deployment {did} not found", "deployment_not_found")
        return self.deployments[did]

    def delete_deployment(self, req: Request, did: str) -> Response:
        if self.deployments.pop(did, None) is None:
            raise HttpError(404, f"deployment {did} not found", "deployment_not_found")
        return Response(204)

    def predict(self, req: Request, did: str) -> dict[str, Any]:
        return self._score(did, req.query, req.json(), req.token)

    def score_function(self, url: str, payload: Any, token: str | None, *, timeout: float) -> dict[str, Any]:
        """Call a function deployment's scoring URL as given (what OpenScale does)."""
        parts = urlsplit(url)
        m = re.fullmatch(r"/ml/v4/deployments/([^/]+)/predictions", parts.path)
        if not m or f"{parts.scheme}://{parts.netloc}" != self.base_url:
            raise HttpError(404, f"no route {url}")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        return self._score(m.group(1), query, payload, token, timeout=timeout)

    def _score(
        self, did: str, query: dict[str, str], payload: Any, token: str | None, timeout: float = 120
    ) -> dict[str, Any]:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", query.get("version") or ""):
            raise HttpError(400, "the version parameter (YYYY-MM-DD) is required", "missing_version")
        if did not in self.deployments:
            raise HttpError(404, f"deployment {did} not found", "deployment_not_found")
        if not isinstance(payload, dict) or "input_data" not in payload:
            raise HttpError(400, "scoring payload needs input_data")
        fid = self.deployments[did]["entity"]["asset"]["id"]
        scorer = self.scorers.get("function")
        if scorer is None:
            raise HttpError(500, "this fake cannot run functions")
        return scorer(self.function_code[fid], payload, token if self.forward_token else None, timeout)
