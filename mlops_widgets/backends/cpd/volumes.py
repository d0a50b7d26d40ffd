"""Cloud Pak for Data storage volumes behind the `Volumes` protocol (backends/volumes_protocol.py), through
the volumes REST API the original's storage_volume_utils used (TLS verified, unlike there):

    GET  /zen-data/v3/service_instances?addon_type=volumes            the volumes
    GET  /zen-volumes/{volume}/v1/volumes/directories/{path}          a folder's entries
    GET  /zen-volumes/{volume}/v1/volumes/files/{path}                a file's bytes
    PUT  /zen-volumes/{volume}/v1/volumes/files/{path}                a file (multipart `upFile`)

`{path}` is URL-encoded whole (slashes included). Entries are read as recorded on a real
cluster (tests/data/cluster_answers/volumes-*.json): `content_length` (there is no `size`),
`last_modified` as an HTTP date, paths relative to the listed folder. The volume list is read
page by page (`limit`, `offset`). A folder is
downloaded file by file, streamed to disk. Nothing lies on this machine: `local_path` is None.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Sequence
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlops_widgets.backends.base import Progress
from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.backends.volumes_protocol import VolumeFile, file_filter, relative_parts
from mlops_widgets.errors import MlopsError, NotFoundError

VOLUME_PAGE = 1000  # what the DeepLIIF team's later module asks for


def _rel(path: str, volume: str) -> str:
    """A path inside the volume, normalised ("" is the volume's root), as the REST API takes it."""
    return "/".join(relative_parts(path, volume))


def _modified(entry: dict[str, Any]) -> float:
    try:
        return parsedate_to_datetime(str(entry["last_modified"])).timestamp()
    except (KeyError, TypeError, ValueError):
        return 0.0


class CpdVolumes:
    """The `Volumes` protocol on Cloud Pak for Data storage volumes."""

    def __init__(self, session: CpdSession) -> None:
        session.settings.require("volumes")
        self._s = session
        self._base = session.settings.base_url

    def _url(self, volume: str, kind: str, path: str) -> str:
        if not volume:
            raise MlopsError("a storage volume on Cloud Pak for Data needs its display name")
        return (
            f"{self._base}/zen-volumes/{quote(volume, safe='')}/v1/volumes/{kind}/"
            f"{quote(path or '/', safe='')}"
        )

    def list_volumes(self) -> list[str]:
        names: list[str] = []
        while True:
            body = self._s.http.json(
                "GET",
                f"{self._base}/zen-data/v3/service_instances",
                params={"addon_type": "volumes", "limit": str(VOLUME_PAGE), "offset": str(len(names))},
                what="listing storage volumes",
            )
            page = body.get("service_instances") or []
            names += [str(v.get("display_name")) for v in page]
            total = body.get("total_count")
            if len(page) < VOLUME_PAGE or not isinstance(total, int) or len(names) >= total:
                return sorted(names)

    def list_files(
        self,
        volume: str,
        folder: str = "",
        *,
        recursive: bool = False,
        most_recent: float | None = None,
        extensions: Sequence[str] | None = None,
    ) -> list[VolumeFile]:
        rel = _rel(folder, volume)
        try:
            body = self._s.http.json(
                "GET",
                self._url(volume, "directories", rel),
                params={"include_details": "true", "recursive": "true" if recursive else "false"},
                what=f"listing {rel or '/'} on storage volume {volume}",
            )
        except NotFoundError:
            raise NotFoundError(f"folder {rel or '/'} does not exist on storage volume {volume!r}") from None
        wanted = file_filter(most_recent, extensions)
        found = []
        for entry in (body.get("responseObject") or {}).get("directoryContents") or []:
            if not isinstance(entry, dict) or entry.get("type") != "file":
                continue
            inner = str(entry.get("path", "")).strip("/")
            inner = inner[len(rel) + 1 :] if rel and inner.startswith(rel + "/") else inner
            if not inner or any(p.startswith(".") for p in inner.split("/")):
                continue
            f = VolumeFile(
                f"{rel}/{inner}" if rel else inner, int(entry.get("content_length") or 0), _modified(entry)
            )
            if wanted(f.path, f.modified):
                found.append(f)
        return sorted(found, key=lambda f: f.path)

    def read(self, volume: str, path: str) -> bytes:
        rel = _rel(path, volume)
        try:
            return self._s.http.request(
                "GET", self._url(volume, "files", rel), what=f"reading {rel} on storage volume {volume}"
            ).content
        except NotFoundError:
            raise NotFoundError(f"file {rel} does not exist on storage volume {volume!r}") from None

    def write(self, volume: str, path: str, data: bytes) -> VolumeFile:
        """Create or replace a file: one request, so the volume never holds half of it."""
        rel = _rel(path, volume)
        if not rel:
            raise MlopsError(f"cannot write to storage volume {volume!r} without a file path")
        self._s.http.request(
            "PUT",
            self._url(volume, "files", rel),
            what=f"writing {rel} to storage volume {volume}",
            files={"upFile": (rel.rsplit("/", 1)[-1], data, "application/octet-stream")},
        )
        return VolumeFile(rel, len(data), time.time())

    def upload_folder(
        self, volume: str, source: Path, folder: str = "", *, progress: Progress | None = None
    ) -> list[VolumeFile]:
        source = Path(source)
        if not source.is_dir():
            raise NotFoundError(f"cannot upload {source}: not a folder")
        rel = _rel(folder, volume)
        files = sorted(p for p in source.rglob("*") if p.is_file())
        written = []
        for i, f in enumerate(files, 1):
            inner = f.relative_to(source).as_posix()
            written.append(self.write(volume, f"{rel}/{inner}" if rel else inner, f.read_bytes()))
            if progress:
                progress(i, len(files), f.name)
        return written

    def download_folder(
        self,
        volume: str,
        folder: str,
        dest: Path,
        *,
        most_recent: float | None = None,
        extensions: Sequence[str] | None = None,
    ) -> Path:
        """Each file directly in `folder`, streamed to `dest` through a temporary file, with
        its modification time, so a provider reads it like a local folder."""
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        for f in self.list_files(volume, folder, most_recent=most_recent, extensions=extensions):
            target = dest / f.path.rsplit("/", 1)[-1]
            fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{target.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as fh:
                    self._s.http.stream_to(
                        self._url(volume, "files", f.path),
                        fh,
                        what=f"downloading {f.path} from storage volume {volume}",
                    )
                os.utime(tmp, (f.modified, f.modified))
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        return dest

    def local_path(self, volume: str, path: str = "") -> Path | None:
        return None
