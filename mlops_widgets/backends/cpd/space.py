"""The space on Cloud Pak for Data: Watson Machine Learning data assets in a deployment space.

Assets are created and read through the WML SDK (ibm-watson-machine-learning or ibm-watsonx-ai,
see client.py). Three things go over REST instead: listing (the CAMS search, page by page and by
name; the old SDK reads one page and neither filters by name), downloads (streamed to disk; the
SDKs' `get_content` holds the whole file in memory) and deletes (the SDKs report a 404 only in
their message text).

The metadata documents are data assets named `deployment_metadata.yml` / `monitor_metadata.yml`
as in the original, so its notebooks still find them. The original re-uploaded the whole file,
so of two concurrent writers the last silently dropped the other's change. Here every version
carries a generation number in its description ("mlops-widgets generation N") and an update is
optimistic, and each version names the version it was built on
("mlops-widgets generation N+1 parent <asset id>"):

1. read the current version (highest generation; within it the earliest created);
2. apply the change; re-read and compare: if someone else wrote meanwhile, start again;
3. upload generation N+1, then re-read once the search finds it (CAMS's search index trails
   writes; not yet finding our own version is no lost race): we won if the current version is
   ours or is built on ours (its parent chain reaches ours). Otherwise (another writer's N+1 came first, or a slow
   upload of ours landed after newer generations built on someone else's) delete ours and start
   again from the current version (also when our version vanished while its content was
   uploading: a newer winner took it for an older generation);
4. the winner deletes the older generations.

A reader always sees a whole document (an asset's content is one attachment) and no successful
update is ever lost. A document written by the original tool (no marker) is generation 0, of
which the newest counts, as the original's keep-only-latest did.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_widgets.backends.base import DEPLOYMENT_METADATA, MONITOR_METADATA, Asset, Progress
from mlops_widgets.backends.cpd.client import CpdSession
from mlops_widgets.backends.packing import asset_name, zip_folder
from mlops_widgets.errors import ConflictError, MlopsError, NotFoundError

DOCUMENTS = frozenset({DEPLOYMENT_METADATA, MONITOR_METADATA})
MARKER = "mlops-widgets generation"
_MARKER_RE = re.compile(re.escape(MARKER) + r" (\d+)(?: parent (\S+))?")
MAX_ATTEMPTS = 12
STALE_UPLOAD_S = 120.0
SEARCH_LAG_S = 60.0  # how long a new version may stay unfound by the search
SEARCH_PAGE = 200


@dataclass(frozen=True)
class _Version:
    """One stored version of a metadata document."""

    asset_id: str
    generation: int
    created_at: str
    parent: str | None = None


def _version(meta: dict[str, Any]) -> _Version:
    m = _MARKER_RE.search(meta.get("description") or "")
    return _Version(
        meta.get("asset_id") or meta["guid"],
        int(m.group(1)) if m else 0,
        meta.get("created_at") or "",
        m.group(2) if m else None,
    )


def _built_on(version: _Version, ancestor: str, versions: list[_Version]) -> bool:
    """Whether `ancestor` is `version` or in its parent chain (as far as the chain is listed)."""
    by_id = {v.asset_id: v for v in versions}
    seen: set[str] = set()
    current: _Version | None = version
    while current is not None and current.asset_id not in seen:
        if current.asset_id == ancestor or current.parent == ancestor:
            return True
        seen.add(current.asset_id)
        current = by_id.get(current.parent or "")
    return False


def _current(versions: list[_Version]) -> _Version | None:
    if not versions:
        return None
    top = max(v.generation for v in versions)
    same = sorted((v for v in versions if v.generation == top), key=lambda v: (v.created_at, v.asset_id))
    # generation 0 = written by the original tool: the newest wins, as its keep-only-latest did
    return same[-1] if top == 0 else same[0]


class CpdSpace:
    """A Watson Machine Learning deployment space (SPACE_ID) behind the Space protocol."""

    def __init__(self, session: CpdSession) -> None:
        self._s = session
        session.settings.require("space")
        self.space_id: str = session.settings.space_id or ""

    # -- SDK plumbing --------------------------------------------------------------------------

    def _assets(self) -> Any:
        return self._s.wml()[1].data_assets

    def _search(self, what: str, name: str | None = None) -> list[dict[str, Any]]:
        """Every data asset of the space (or those named `name`), page after page. Over REST:
        the old SDK reads only the first page of results and neither SDK filters by name."""
        s = self._s.settings
        body: dict[str, Any] | None = {
            "query": "*:*" if name is None else 'asset.name:"{}"'.format(name.replace('"', '\\"')),
            "limit": SEARCH_PAGE,
        }
        found: list[dict[str, Any]] = []
        while body is not None:
            page = self._s.http.json(
                "POST",
                f"{s.base_url}/v2/asset_types/data_asset/search",
                params={"space_id": self.space_id},
                json=body,
                what=what,
                retry=True,
            )
            found += page.get("results") or []
            body = page.get("next") or None
        # a query is a full-text match: keep exact names only
        return [d for d in found if name is None or d["metadata"].get("name") == name]

    @staticmethod
    def _asset(details: dict[str, Any]) -> Asset:
        meta = details["metadata"]
        return Asset(
            asset_id=meta.get("asset_id") or meta["guid"],
            name=meta["name"],
            size=int(meta.get("size") or 0),
            created_at=meta.get("created_at") or "",
        )

    def _store(self, name: str, path: Path, description: str = "") -> dict[str, Any]:
        kind, client = self._s.wml()

        def store() -> dict[str, Any]:
            names = client.data_assets.ConfigurationMetaNames
            props: dict[str, Any] = {
                names.NAME: name,
                names.DESCRIPTION: description,
                names.DATA_CONTENT_NAME: str(path),
            }
            if kind == "watsonx":
                from ibm_watsonx_ai.utils.enums import AssetDuplicateAction

                props[names.DUPLICATE_ACTION] = AssetDuplicateAction.IGNORE
            return client.data_assets.store(props)

        # not idempotent: a retried create could leave two assets
        return self._s.call(f"uploading {name} to space {self.space_id}", store, idempotent=False)

    # -- data assets ---------------------------------------------------------------------------

    def upload(self, path: Path, *, progress: Progress | None = None) -> Asset:
        path = Path(path)
        if not path.exists():
            raise NotFoundError(f"cannot upload {path}: no such file or folder")
        name = asset_name(path)
        with tempfile.TemporaryDirectory(prefix="mlops-cpd-") as tmp:
            source = path
            if path.is_dir():
                source = Path(tmp) / name
                with open(source, "wb") as out:
                    zip_folder(path, out, name, progress)
            size = source.stat().st_size
            if progress:
                progress(0, size, name)
            details = self._store(name, source)
            if progress:
                progress(size, size, name)
        asset = self._asset(details)
        return Asset(asset.asset_id, name, size, asset.created_at)

    def list_assets(self, name: str | None = None, *, keep_only_latest: bool = False) -> list[Asset]:
        assets = [
            self._asset(d)
            for d in self._search(f"listing the assets of space {self.space_id}", name)
            if d["metadata"].get("name") not in DOCUMENTS
        ]
        assets.sort(key=lambda a: (a.created_at, a.asset_id), reverse=True)
        if keep_only_latest:
            newest: dict[str, Asset] = {}  # the first of each name, the list being newest first
            for a in assets:
                newest.setdefault(a.name, a)
            assets = list(newest.values())
        return assets

    def _get_details(self, asset_id: str) -> dict[str, Any]:
        try:
            return self._s.call(f"reading asset {asset_id}", lambda: self._assets().get_details(asset_id))
        except NotFoundError:
            raise NotFoundError(f"no asset with id {asset_id} in space {self.space_id}") from None

    def get_asset(self, asset_id: str) -> Asset:
        return self._asset(self._get_details(asset_id))

    def download(self, asset_id: str, dest: Path) -> Path:
        details = self._get_details(asset_id)
        dest = Path(dest)
        self._download(asset_id, details, dest)
        return dest

    def _download(self, asset_id: str, details: dict[str, Any], dest: Path) -> None:
        att = details["metadata"].get("attachment_id") or next(
            (a.get("id") for a in details.get("attachments") or []), None
        )
        if not att:
            raise MlopsError(f"asset {asset_id} in space {self.space_id} has no content")
        s = self._s.settings
        what = f"downloading asset {asset_id}"
        signed = self._s.http.json(
            "GET",
            f"{s.base_url}/v2/assets/{asset_id}/attachments/{att}",
            params={"space_id": self.space_id},
            what=what,
        )
        url = signed["url"] if "://" in signed["url"] else s.base_url + signed["url"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as fh:
                self._s.http.stream_to(url, fh, what=what)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def delete(self, asset_id: str) -> None:
        self._get_details(asset_id)
        self._delete(asset_id)

    def _delete(self, asset_id: str) -> None:
        """Over REST: the SDKs report a 404 only in their message text, and a concurrent writer
        must tell "already deleted" (NotFoundError) from a real failure."""
        s = self._s.settings
        self._s.http.request(
            "DELETE",
            f"{s.base_url}/v2/assets/{asset_id}",
            params={"space_id": self.space_id},
            what=f"deleting asset {asset_id}",
        )

    # -- metadata documents ----------------------------------------------------------------------

    def _versions(self, name: str) -> list[_Version]:
        return [
            _version(d["metadata"]) for d in self._search(f"reading {name} in space {self.space_id}", name)
        ]

    def _read(self, name: str) -> tuple[_Version | None, dict[str, Any]]:
        """The current version and its parsed content; waits out a version still uploading."""
        skipped: set[str] = set()
        deadline = time.monotonic() + 30
        while True:
            current = _current([v for v in self._versions(name) if v.asset_id not in skipped])
            if current is None:
                return None, {}
            try:
                with tempfile.TemporaryDirectory(prefix="mlops-doc-") as tmp:
                    path = Path(tmp) / name
                    self._download(current.asset_id, self._get_details(current.asset_id), path)
                    return current, _parse(name, path.read_text(encoding="utf-8"))
            except (NotFoundError, MlopsError) as exc:
                # deleted by a newer writer, or its content is still being uploaded
                if isinstance(exc, NotFoundError) or "has no content" in str(exc):
                    if _age_s(current.created_at) > STALE_UPLOAD_S:
                        skipped.add(current.asset_id)  # a writer died mid-upload
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
                    continue
                raise

    def read_document(self, name: str) -> dict[str, Any]:
        return self._read(name)[1]

    def update_document(
        self, name: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]:
        for attempt in range(MAX_ATTEMPTS):
            base, doc = self._read(name)
            result = change(doc)
            doc = doc if result is None else result
            again = _current(self._versions(name))
            if again != base:
                self._backoff(attempt)
                continue  # someone wrote in between: re-apply on theirs
            generation = (base.generation if base else 0) + 1
            marker = f"{MARKER} {generation}" + (f" parent {base.asset_id}" if base else "")
            text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
            with tempfile.TemporaryDirectory(prefix="mlops-doc-") as tmp:
                path = Path(tmp) / name
                path.write_text(text, encoding="utf-8")
                try:
                    mine = self._asset(self._store(name, path, marker)).asset_id
                except NotFoundError:
                    # a newer generation's writer deleted our version while its content was
                    # still uploading (it took it for an older generation): we lost this round
                    self._backoff(attempt)
                    continue
            versions = self._versions_with(name, mine)
            # we won if the current version is ours or carries our change (built on ours); a
            # newer generation built on another's version means ours landed too late
            current = _current(versions)
            if current is not None and _built_on(current, mine, versions):
                for v in versions:
                    if v.generation < generation:
                        with contextlib.suppress(NotFoundError):
                            self._delete(v.asset_id)
                return doc
            with contextlib.suppress(NotFoundError):
                self._delete(mine)  # another writer's version came first
            self._backoff(attempt)
        raise ConflictError(
            f"could not update {name} in space {self.space_id}: other writers changed it "
            f"{MAX_ATTEMPTS} times in a row; try again"
        )

    def _versions_with(self, name: str, asset_id: str) -> list[_Version]:
        """The versions once the search finds `asset_id` (waiting out the index's lag), or at
        once when it is gone (a newer writer deleted it: no lag to wait for)."""
        deadline = time.monotonic() + SEARCH_LAG_S
        delay = 0.05
        while True:
            versions = self._versions(name)
            if any(v.asset_id == asset_id for v in versions) or time.monotonic() > deadline:
                return versions
            try:
                self._get_details(asset_id)
            except NotFoundError:
                return versions
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    @staticmethod
    def _backoff(attempt: int) -> None:
        time.sleep(random.uniform(0, min(1.0, 0.05 * 2**attempt)))


def _parse(name: str, text: str) -> dict[str, Any]:
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict):
        raise MlopsError(f"metadata document {name} in the space is not a mapping")
    return doc


def _age_s(created_at: str) -> float:
    from datetime import UTC, datetime

    try:
        t = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (datetime.now(UTC) - t).total_seconds()


__all__ = ["CpdSpace"]
