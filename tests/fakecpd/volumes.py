"""Fake Cloud Pak for Data storage volumes: the volume list (`/zen-data/v3/service_instances`)
and the file server (`/zen-volumes/{volume}/v1/volumes/...`), shaped as the original's
storage_volume_utils used them (paths URL-encoded whole, `upFile` multipart uploads) and as
recorded (tests/data/cluster_answers/volumes-*.json): entries `{path, type, content_length,
last_modified (an HTTP date), file_extension}`, no `size`; directories have content_length 4096;
recursive listings give paths relative to the listed folder, folders included. The volume list
pages with `limit` (and `offset`).
"""

from __future__ import annotations

import time
from email.utils import formatdate
from typing import Any

from fakecpd.server import HttpError, Request, Response, Router, new_id


class Volumes:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.volumes: dict[str, dict[str, Any]] = {}  # display name -> {id, files}
        self.page = 20  # volumes per answer without `limit` (the service's default page is inferred)
        r = router
        r.add("GET", r"/zen-data/v3/service_instances", self.list_volumes)
        r.add("GET", r"/zen-volumes/(?P<vol>[^/]+)/v1/volumes/directories/(?P<path>.+)", self.list_dir)
        r.add("GET", r"/zen-volumes/(?P<vol>[^/]+)/v1/volumes/files/(?P<path>.+)", self.get_file)
        r.add("PUT", r"/zen-volumes/(?P<vol>[^/]+)/v1/volumes/files/(?P<path>.+)", self.put_file)
        r.add("DELETE", r"/zen-volumes/(?P<vol>[^/]+)/v1/volumes/files/(?P<path>.+)", self.delete_file)

    # -- test controls -------------------------------------------------------------------------

    def create(self, name: str) -> None:
        self.volumes.setdefault(name, {"id": new_id(), "files": {}})

    def put(self, volume: str, path: str, data: bytes, mtime: float | None = None) -> None:
        self.create(volume)
        self.volumes[volume]["files"][path.strip("/")] = (data, time.time() if mtime is None else mtime)

    # -- API -----------------------------------------------------------------------------------

    def _vol(self, name: str) -> dict[str, Any]:
        if name not in self.volumes:
            raise HttpError(404, f"volume {name} not found", "volume_not_found")
        return self.volumes[name]

    def list_volumes(self, req: Request) -> dict[str, Any]:
        if req.query.get("addon_type") != "volumes":
            raise HttpError(400, "addon_type=volumes is required")
        limit = int(req.query.get("limit") or self.page)
        offset = int(req.query.get("offset") or 0)
        everything = [
            {
                "id": v["id"],
                "display_name": n,
                "addon_type": "volumes",
                "provision_status": "PROVISIONED",
                "metadata": {"storage_class": "fake"},
            }
            for n, v in self.volumes.items()
        ]
        return {"service_instances": everything[offset : offset + limit], "total_count": len(everything)}

    def list_dir(self, req: Request, vol: str, path: str) -> dict[str, Any]:
        files = self._vol(vol)["files"]
        folder = path.strip("/")
        prefix = folder + "/" if folder else ""
        entries: dict[str, dict[str, Any]] = {}
        recursive = req.query.get("recursive") == "true"
        for p, (data, mtime) in files.items():
            if not p.startswith(prefix):
                continue
            rest = p[len(prefix) :]
            parts = rest.split("/")
            for depth in range(1, len(parts) if recursive else min(2, len(parts))):
                sub = "/".join(parts[:depth])
                entries.setdefault(
                    sub,
                    {
                        "path": sub,
                        "type": "directory",
                        "content_length": 4096,
                        "last_modified": formatdate(mtime, usegmt=True),
                    },
                )
            if "/" in rest and not recursive:
                continue
            ext = "." + rest.rsplit(".", 1)[1] if "." in rest.rsplit("/", 1)[-1] else ""
            entries[rest] = {
                "path": rest,
                "type": "file",
                "content_length": len(data),
                "last_modified": formatdate(mtime, usegmt=True),
                "file_extension": ext,
            }
        if folder and not entries:
            raise HttpError(404, f"directory {folder} not found", "not_found")
        contents: list[Any] = sorted(entries.values(), key=lambda e: e["path"])
        if req.query.get("include_details") != "true":
            contents = [e["path"] for e in contents]
        return {
            "_messageCode_": "success",
            "message": "Successfully listed the directory",
            "responseObject": {"directoryContents": contents},
        }

    def get_file(self, req: Request, vol: str, path: str) -> Response:
        files = self._vol(vol)["files"]
        key = path.strip("/")
        if key not in files:
            raise HttpError(404, f"file {key} not found", "not_found")
        return Response(200, files[key][0])

    def put_file(self, req: Request, vol: str, path: str) -> dict[str, Any]:
        v = self._vol(vol)
        form = req.multipart()
        if "upFile" not in form:
            raise HttpError(400, "multipart field upFile is required")
        v["files"][path.strip("/")] = (form["upFile"][1], time.time())
        return {"_messageCode_": "success", "message": "Successfully uploaded file"}

    def delete_file(self, req: Request, vol: str, path: str) -> dict[str, Any]:
        files = self._vol(vol)["files"]
        if files.pop(path.strip("/"), None) is None:
            raise HttpError(404, f"file {path} not found", "not_found")
        return {"_messageCode_": "success", "message": "Successfully deleted"}
