"""The workspace: one folder holding everything a user's runs and the embedded backend keep.

Layout (each subsystem owns its part):
    <root>/mlops.db        SQLite (WAL): asset index, metadata documents, run index, monitoring model
    <root>/assets/         uploaded data assets, one file per asset id
    <root>/runs/           the audit trail, one folder per run
    <root>/volumes/        storage volumes (folders) read by the monitors
    <root>/inference/      the local inference service: its state, deployments and logs

Every backend and the runner share this module, so it sits below them and imports nothing of theirs.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mlops_widgets.errors import MlopsError

DEFAULT_DIRNAME = ".mlops"
DB_NAME = "mlops.db"


def resolve_root(workspace: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: the argument, else $MLOPS_HOME, else ./.mlops (absolute)."""
    chosen = workspace or os.environ.get("MLOPS_HOME") or DEFAULT_DIRNAME
    return Path(chosen).expanduser().resolve()


class Workspace:
    """A workspace folder and its database; cheap to create, opens nothing until used."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_root(root)

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def path(self, *parts: str) -> Path:
        """A path inside the workspace; its parent folders are created."""
        p = self.root.joinpath(*parts)
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def dir(self, *parts: str) -> Path:
        """A folder inside the workspace, created if missing."""
        p = self.root.joinpath(*parts)
        p.mkdir(parents=True, exist_ok=True)
        return p

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def connect(self) -> sqlite3.Connection:
        """A new connection to the workspace database, safe to use from many processes.

        WAL lets readers run beside one writer; the busy timeout makes concurrent writers queue
        instead of failing. Callers use `with transaction(conn):` for read-modify-write.
        """
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
        except (OSError, sqlite3.DatabaseError) as exc:
            raise MlopsError(f"workspace {self.root}: cannot open its database {self.db_path}: {exc}") from exc
        return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """An IMMEDIATE transaction: the write lock is taken up front, so a read-modify-write by one
    process cannot interleave with another's (no lost update); rolled back on any exception."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace `path` with `data` so a crash leaves either the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
