"""The embedded space: data asset files under `<workspace>/assets/`, indexed in the workspace DB,
and the metadata documents as rows updated in one transaction each.

Why a database for the documents: the original re-uploaded the whole YAML file, so the last of two
concurrent writers silently dropped the other's entry. Here every update is a read-modify-write in
a single IMMEDIATE transaction, so 20 concurrent writers all land, and a crash mid-write rolls back.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from mlops_widgets.backends.base import Asset, Progress
from mlops_widgets.backends.packing import asset_name, copy_file, copy_sparse, zip_folder
from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.workspace import Workspace, transaction

_SCHEMA = """
CREATE TABLE IF NOT EXISTS space_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS space_assets (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    asset_id TEXT UNIQUE NOT NULL,
    name TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS space_assets_name ON space_assets (name);
CREATE TABLE IF NOT EXISTS space_documents (
    name TEXT PRIMARY KEY,
    content TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
"""
UPLOAD_PREFIX = ".upload-"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _asset(row: Any) -> Asset:
    return Asset(row["asset_id"], row["name"], row["size"], row["created_at"])


class LocalSpace:
    """A deployment space kept in the workspace folder."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._local = threading.local()
        self._conn.executescript(_SCHEMA)
        self._remove_abandoned_uploads()

    @property
    def _conn(self) -> sqlite3.Connection:
        # One connection per thread (sqlite3 connections are bound to their thread), so a
        # backend can be shared by a notebook and the panel's background steps.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.workspace.connect()
        return conn

    @functools.cached_property
    def space_id(self) -> str:
        """Made when first asked (listing a workspace that cannot be written needs none)."""
        with transaction(self._conn):
            row = self._conn.execute("SELECT value FROM space_meta WHERE key='space_id'").fetchone()
            if row:
                return row["value"]
            space_id = str(uuid.uuid4())
            self._conn.execute("INSERT INTO space_meta VALUES ('space_id', ?)", (space_id,))
            return space_id

    def _remove_abandoned_uploads(self) -> None:
        """Temporary upload files a killed upload left behind. A live upload holds a lock on its
        file (released by the kernel however its process ends), so only abandoned ones go."""
        folder = self.workspace.root / "assets"
        for tmp in folder.glob(f"{UPLOAD_PREFIX}*.tmp") if folder.is_dir() else ():
            try:
                fd = os.open(tmp, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # an upload in progress
            else:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
            finally:
                os.close(fd)

    def _file(self, asset_id: str) -> Path:
        return self.workspace.root / "assets" / asset_id

    # -- data assets ---------------------------------------------------------------------------

    def upload(self, path: Path, *, progress: Progress | None = None) -> Asset:
        path = Path(path)
        if not path.exists():
            raise NotFoundError(f"cannot upload {path}: no such file or folder")
        name = asset_name(path)
        asset_id = str(uuid.uuid4())
        folder = self.workspace.dir("assets")
        fd, tmp = _locked_temporary(folder)
        try:
            with os.fdopen(fd, "wb") as out:
                if path.is_dir():
                    zip_folder(path, out, name, progress)
                else:
                    copy_file(path, out, name, progress)
                out.flush()
                os.fsync(out.fileno())
                size = tmp.stat().st_size
                os.replace(tmp, self._file(asset_id))  # renamed while still locked
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise
        created = _now()
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO space_assets (asset_id, name, size, created_at) VALUES (?, ?, ?, ?)",
                (asset_id, name, size, created),
            )
        return Asset(asset_id, name, size, created)

    def list_assets(self, name: str | None = None, *, keep_only_latest: bool = False) -> list[Asset]:
        sql = "SELECT * FROM space_assets"
        args: tuple[str, ...] = ()
        if name is not None:
            sql += " WHERE name = ?"
            args = (name,)
        rows = self._conn.execute(sql + " ORDER BY seq DESC", args).fetchall()
        assets = [_asset(r) for r in rows]
        if keep_only_latest:
            newest: dict[str, Asset] = {}  # the first of each name, the list being newest first
            for a in assets:
                newest.setdefault(a.name, a)
            assets = list(newest.values())
        return assets

    def get_asset(self, asset_id: str) -> Asset:
        row = self._conn.execute("SELECT * FROM space_assets WHERE asset_id = ?", (asset_id,)).fetchone()
        if row is None:
            raise NotFoundError(f"no asset with id {asset_id} in space {self.space_id}")
        return _asset(row)

    def download(self, asset_id: str, dest: Path) -> Path:
        self.get_asset(asset_id)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        copy_sparse(self._file(asset_id), dest)
        return dest

    def delete(self, asset_id: str) -> None:
        with transaction(self._conn):
            cur = self._conn.execute("DELETE FROM space_assets WHERE asset_id = ?", (asset_id,))
            if cur.rowcount == 0:
                raise NotFoundError(f"no asset with id {asset_id} in space {self.space_id}")
        with contextlib.suppress(FileNotFoundError):
            self._file(asset_id).unlink()

    # -- metadata documents ----------------------------------------------------------------------

    def read_document(self, name: str) -> dict[str, Any]:
        row = self._conn.execute("SELECT content FROM space_documents WHERE name = ?", (name,)).fetchone()
        return _parse_document(name, row["content"]) if row else {}

    def update_document(
        self, name: str, change: Callable[[dict[str, Any]], dict[str, Any] | None]
    ) -> dict[str, Any]:
        with transaction(self._conn):
            row = self._conn.execute(
                "SELECT content, version FROM space_documents WHERE name = ?", (name,)
            ).fetchone()
            doc = _parse_document(name, row["content"]) if row else {}
            result = change(doc)
            doc = doc if result is None else result
            content = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
            self._conn.execute(
                "INSERT INTO space_documents (name, content, version, updated_at) VALUES (?, ?, 1, ?)"
                " ON CONFLICT(name) DO UPDATE SET content = excluded.content,"
                " version = space_documents.version + 1, updated_at = excluded.updated_at",
                (name, content, _now()),
            )
        return doc


def _locked_temporary(folder: Path) -> tuple[int, Path]:
    """A new temporary upload file, locked until closed (see `_remove_abandoned_uploads`); made
    again in the rare case a cleaner took it between its creation and the lock."""
    while True:
        fd, name = tempfile.mkstemp(dir=folder, prefix=UPLOAD_PREFIX, suffix=".tmp")
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(name).st_ino == os.fstat(fd).st_ino:
                return fd, Path(name)
        except FileNotFoundError:
            pass
        os.close(fd)


def _parse_document(name: str, content: str) -> dict[str, Any]:
    doc = yaml.safe_load(content) or {}
    if not isinstance(doc, dict):
        raise MlopsError(f"metadata document {name} is not a mapping")
    return doc
