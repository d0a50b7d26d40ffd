"""Cloud Pak for Data storage volumes through their REST API, for the metric providers.

The original's storage_volume_utils used the same endpoints (with verify=False; here TLS is
verified like every other call):
    GET  /zen-data/v3/service_instances?addon_type=volumes            the volumes
    GET  /zen-volumes/{volume}/v1/volumes/directories/{path}          a folder's entries
    GET  /zen-volumes/{volume}/v1/volumes/files/{path}                a file's bytes
with `{path}` URL-encoded whole (slashes included) and `last_modified` an HTTP date.
"""

from __future__ import annotations

import os
import tempfile
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.errors import MlopsError, NotFoundError


def _check_rel(path: str) -> str:
    rel = path.strip("/")
    if not rel or any(part in ("", ".", "..") for part in rel.split("/")):
        raise MlopsError(f"invalid path {path!r} on a storage volume: use a relative folder path")
    return rel


class CpdVolumes:
    """List the storage volumes (doctor) and read a volume's files (the metric providers)."""

    def __init__(self, session: CpdSession) -> None:
        session.settings.require("volumes")
        self._s = session
        self._base = session.settings.base_url

    def _url(self, volume: str, kind: str, path: str) -> str:
        return (f"{self._base}/zen-volumes/{quote(volume, safe='')}/v1/volumes/{kind}/"
                f"{quote(path, safe='')}")

    def list_volumes(self) -> list[dict[str, Any]]:
        body = self._s.http.json(
            "GET", f"{self._base}/zen-data/v3/service_instances",
            params={"addon_type": "volumes"}, what="listing storage volumes",
        )
        return list(body.get("service_instances") or [])

    def list_files(self, volume: str, folder: str) -> dict[str, float]:
        """Regular files directly in `folder` -> modification time (epoch seconds)."""
        rel = _check_rel(folder)
        try:
            body = self._s.http.json(
                "GET", self._url(volume, "directories", rel),
                params={"include_details": "true", "recursive": "false"},
                what=f"listing {rel} on storage volume {volume}",
            )
        except NotFoundError:
            raise NotFoundError(f"folder {rel} does not exist on storage volume {volume}") from None
        out: dict[str, float] = {}
        for entry in (body.get("responseObject") or {}).get("directoryContents") or []:
            if not isinstance(entry, dict) or entry.get("type") != "file":
                continue
            name = str(entry.get("path", "")).rsplit("/", 1)[-1]
            if name and not name.startswith("."):
                out[name] = parsedate_to_datetime(str(entry["last_modified"])).timestamp()
        return out

    def download_folder(self, volume: str, folder: str, dest: Path) -> Path:
        """Copy the files of `folder` into `dest`, keeping their modification times, so a
        provider reads them like a local folder."""
        rel = _check_rel(folder)
        files = self.list_files(volume, rel)
        dest.mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            target = dest / name
            with open(target, "wb") as fh:
                self._s.http.stream_to(self._url(volume, "files", f"{rel}/{name}"), fh,
                                       what=f"downloading {rel}/{name} from volume {volume}")
            os.utime(target, (files[name], files[name]))
        return dest

    def materialize(self, volume: str, folders: list[str]) -> tuple[Path, list[Path]]:
        """Download several folders of a volume under one new temporary folder (the caller
        removes it); returns it and each folder's local copy, in order."""
        root = Path(tempfile.mkdtemp(prefix="mlops-volume-"))
        local = [self.download_folder(volume, f, root / f"{i}-{Path(f).name}")
                 for i, f in enumerate(folders)]
        return root, local
