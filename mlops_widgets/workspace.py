"""The workspace: one folder holding everything a user's runs and the embedded backend keep.

Layout (each subsystem owns its part):
    <root>/mlops.db        SQLite (WAL): asset index, metadata documents, run index, monitoring model
    <root>/assets/         uploaded data assets, one file per asset id
    <root>/runs/           the audit trail, one folder per run
    <root>/volumes/        storage volumes (folders) read by the monitors
    <root>/inference/      the local inference service: its state, deployments and logs

Every backend and the runner share this module, so it sits below them and imports nothing of theirs.

A folder is a workspace only when mlops made it: a new or empty folder becomes one (the marker
file `.mlops-workspace` says so); a folder holding mlops.db is one made by an earlier version
(the marker is added). Any other folder holding files is refused before anything is created or
re-permissioned in it: it is not ours.

The workspace is private to its owner: the root and its folders are created 0700 and the database
0600; opening a workspace that is readable by others (made by an older version, or copied) first
makes every folder 0700 and every file 0600 (the owner's execute bit kept), and each opening
re-closes the files other parts create later (logs, service files) in their known places.

A workspace that cannot be written (a read-only mount, a full disk) can still be read: its
database opens read-only, every listing works, and a change is refused with the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlops_widgets.errors import MlopsError
from mlops_widgets.settings import HOME

DEFAULT_DIRNAME = ".mlops"
DB_NAME = "mlops.db"
MARKER = ".mlops-workspace"
# How long a connection waits for another writer before SQLite says "locked".
BUSY_TIMEOUT_S = 60.0
PRIVATE_DIR = 0o700
# Files other parts of the package write, re-closed at every opening (cheap: a few globs).
PRIVATE_GLOBS = (f"{DB_NAME}*", "inference/*.*", "inference/run/*", "inference/deployments/*/logs/*.log")


def _chmod_private(path: Path, is_dir: bool) -> None:
    """Folders 0700; files 0600 plus the owner's execute bit if it had it. Callers skip links.
    A mode that cannot be set (a read-only disk, another owner's file) does not stop a reader."""
    with contextlib.suppress(OSError):
        current = path.stat().st_mode & 0o7777
        wanted = PRIVATE_DIR if is_dir else (current & 0o100) | 0o600
        if current != wanted:
            os.chmod(path, wanted)


def make_private(root: Path) -> None:
    """Every folder under `root` 0700 and every file 0600 (links are not followed)."""
    for dirpath, dirnames, filenames in os.walk(root):
        folder = Path(dirpath)
        _chmod_private(folder, True)
        for name in filenames:
            if not (folder / name).is_symlink():
                _chmod_private(folder / name, False)
        dirnames[:] = [d for d in dirnames if not (folder / d).is_symlink()]


def resolve_root(workspace: str | os.PathLike[str] | None = None) -> Path:
    """The workspace folder: the argument, else $MLOPS_HOME, else ./.mlops (absolute)."""
    chosen = workspace or HOME.from_env() or DEFAULT_DIRNAME
    return Path(chosen).expanduser().resolve()


class Workspace:
    """A workspace folder and its database; cheap to create, opens nothing until used."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.root = resolve_root(root)
        self._private = False

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def open(self) -> Path:
        """Create the root (0700) with its marker, or claim an existing folder (see the module)
        and make it private; once per instance, before anything is read or written there.
        Returns the root."""
        if self._private:
            return self.root
        if not self.root.exists():
            self.root.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileExistsError):  # another process made it first
                self.root.mkdir(mode=PRIVATE_DIR)
            _chmod_private(self.root, True)  # the umask may have taken bits off, never added
        self._claim()
        if self.root.stat().st_mode & 0o077:
            make_private(self.root)
        else:
            for pattern in PRIVATE_GLOBS:
                for p in self.root.glob(pattern):
                    if p.is_file() and not p.is_symlink():
                        _chmod_private(p, False)
        self._private = True
        return self.root

    def _claim(self) -> None:
        """Refuse a folder mlops did not make (it holds files, no marker, no database); mark an
        empty one or one of an earlier version (a workspace that cannot be written stays as it
        is: it is read as it stands)."""
        marker = self.root / MARKER
        if marker.is_file():
            return
        if not self.root.is_dir():
            raise MlopsError(f"the workspace {self.root} is not a folder")
        # (the marker is made first: another process making this workspace now is seen by it)
        if not self.db_path.is_file() and any(self.root.iterdir()) and not marker.is_file():
            raise MlopsError(
                f"{self.root} is not an mlops workspace: it holds files of its own and no {MARKER}, "
                "so mlops leaves it untouched; choose a new or empty folder as the workspace"
            )
        with contextlib.suppress(OSError):
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))

    def is_workspace(self) -> bool:
        """Whether the folder is a workspace already (its marker, or an earlier version's
        database), without creating or changing anything."""
        return (self.root / MARKER).is_file() or self.db_path.is_file()

    def _mkdir(self, p: Path) -> None:
        """Create `p` and its missing parents inside the root, each 0700."""
        self.open()
        missing = []
        while p != self.root and not p.exists():
            missing.append(p)
            p = p.parent
        for folder in reversed(missing):
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=PRIVATE_DIR)

    def path(self, *parts: str) -> Path:
        """A path inside the workspace; its parent folders are created."""
        p = self.root.joinpath(*parts)
        self._mkdir(p.parent)
        return p

    def dir(self, *parts: str) -> Path:
        """A folder inside the workspace, created if missing."""
        p = self.root.joinpath(*parts)
        self._mkdir(p)
        return p

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def connect(self) -> sqlite3.Connection:
        """A new connection to the workspace database, safe to use from many processes.

        WAL lets readers run beside one writer; the busy timeout makes concurrent writers queue
        instead of failing. Callers use `with transaction(conn):` for read-modify-write. A
        database that cannot be written (read-only mount, full disk) opens read-only: reading
        works, and a transaction says why it cannot write.
        """
        try:
            self.open()
            if not self.db_path.exists():  # created 0600: SQLite gives its -wal and -shm the same mode
                os.close(os.open(self.db_path, os.O_WRONLY | os.O_CREAT, 0o600))
            conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, factory=_Connection
            )
            _wal(conn)
        except (OSError, sqlite3.DatabaseError) as exc:
            plain = storage_error(self.root, exc)
            if plain is not None and self.db_path.is_file():
                return _read_only_connection(self.db_path, plain)
            if plain is not None:
                raise plain from exc
            raise MlopsError(
                f"workspace {self.root}: cannot open its database {self.db_path}: {exc}"
            ) from exc
        _setup(conn)
        return conn

    @contextlib.contextmanager
    def tables(self, schema: str) -> Iterator[sqlite3.Connection]:
        """A connection on which `schema` (CREATE ... IF NOT EXISTS statements of the caller's
        tables) has been applied, closed on leaving: each subsystem owns its tables."""
        conn = self.connect()
        try:
            conn.executescript(schema)
            yield conn
        finally:
            conn.close()


class _Connection(sqlite3.Connection):
    """A workspace connection; `unwritable` (an MlopsError: read-only, or full) when the
    database could only be opened for reading. Then a subsystem's schema (CREATE ... IF NOT
    EXISTS) still runs: the tables the database lacks are made empty in memory (TEMP), so
    reading them finds nothing, and the indexes it lacks are left out."""

    unwritable: MlopsError | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        if self.unwritable is None:
            return super().execute(sql, parameters)
        if _CREATE.match(sql):
            return self._schema(sql)
        try:
            return super().execute(sql, parameters)
        except sqlite3.OperationalError as exc:  # a write: said as why it cannot be written
            if "readonly" in str(exc).lower():
                raise self.unwritable from exc
            raise

    def executescript(self, sql_script: str) -> sqlite3.Cursor:
        if self.unwritable is None:
            return super().executescript(sql_script)
        statement = ""
        for line in sql_script.splitlines(keepends=True):
            statement += line
            if sqlite3.complete_statement(statement):
                if _CREATE.match(statement):
                    self._schema(statement)
                else:
                    super().execute(statement)
                statement = ""
        return self.cursor()

    def _schema(self, statement: str) -> sqlite3.Cursor:
        match = _CREATE.match(statement)
        assert match is not None
        exists = (
            super()
            .execute(
                "SELECT 1 FROM sqlite_master WHERE name = ? UNION SELECT 1 FROM sqlite_temp_master WHERE name = ?",
                (match["name"], match["name"]),
            )
            .fetchone()
        )
        if exists or match["kind"].upper() != "TABLE":
            return self.cursor()
        super().execute("PRAGMA query_only=OFF")  # the empty stand-in only: nothing writes into it
        try:
            return super().execute(
                _CREATE.sub(r"CREATE TEMP TABLE IF NOT EXISTS \g<name>", statement, count=1)
            )
        finally:
            super().execute("PRAGMA query_only=ON")


_CREATE = re.compile(
    r"\s*CREATE\s+(?P<kind>TABLE|INDEX|UNIQUE\s+INDEX|TRIGGER|VIEW)\s+IF\s+NOT\s+EXISTS\s+(?P<name>\w+)",
    re.IGNORECASE,
)


def _setup(conn: sqlite3.Connection) -> None:
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys=ON")
    if getattr(conn, "unwritable", None) is None:
        conn.execute("PRAGMA synchronous=NORMAL")
    else:
        conn.execute("PRAGMA query_only=ON")


def _read_only_connection(db: Path, unwritable: MlopsError) -> sqlite3.Connection:
    """`db` opened for reading only: through WAL's shared memory when it can be opened, else as
    an immutable file (a read-only mount, where nothing can change it meanwhile)."""
    last: sqlite3.Error | None = None
    for query in ("mode=ro", "immutable=1"):
        try:
            conn = sqlite3.connect(
                f"{db.as_uri()}?{query}", uri=True, isolation_level=None, factory=_Connection
            )
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            last = exc
            continue
        conn.unwritable = unwritable
        _setup(conn)
        return conn
    raise unwritable from last


def _wal(conn: sqlite3.Connection) -> None:
    """Put the database in WAL mode (a no-op once it is). The first switch needs the database
    to itself, and SQLite answers "locked" at once, without waiting, when connections opening a
    new database together would otherwise deadlock on it: try again until the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _read_only(root: Path) -> bool:
    where = _existing(root)
    return bool(os.statvfs(where).f_flag & os.ST_RDONLY) or not os.access(where, os.W_OK)


def _full(root: Path) -> bool:
    st = os.statvfs(_existing(root))
    return st.f_bavail * st.f_frsize < 1 << 20  # under 1 MiB: SQLite's "disk I/O error" means this


def storage_error(root: Path, exc: BaseException) -> MlopsError | None:
    """SQLite's or the OS's words for a workspace that cannot be written ("attempt to write a
    readonly database", "unable to open database file", "disk I/O error", ENOSPC...) said
    plainly; None when `exc` is something else."""
    read_only = MlopsError(f"the workspace {root} is read-only")
    full = MlopsError(f"no space left on {root}")
    if isinstance(exc, OSError) and not isinstance(exc, sqlite3.Error):
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return full
        if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) and _read_only(root):
            return read_only
        return None
    if not isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        return None
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return read_only
    if "disk is full" in text:
        return full
    if "disk i/o error" in text or "unable to open" in text:
        if _read_only(root):
            return read_only
        if _full(root):
            return full
    return None


def _root_of(conn: sqlite3.Connection) -> Path:
    with contextlib.suppress(sqlite3.Error):
        for row in conn.execute("PRAGMA database_list"):
            if row[1] == "main" and row[2]:
                return Path(row[2]).parent
    return Path(".")


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """An IMMEDIATE transaction: the write lock is taken up front, so a read-modify-write by one
    process cannot interleave with another's (no lost update); rolled back on any exception.
    A workspace that cannot be written is said so plainly (see `storage_error`)."""
    unwritable = getattr(conn, "unwritable", None)
    try:
        conn.execute("BEGIN" if unwritable else "BEGIN IMMEDIATE")  # a read-only one reads
        try:
            yield conn
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    except sqlite3.OperationalError as exc:
        plain = storage_error(_root_of(conn), exc)
        if plain is None:
            raise
        plain = unwritable or plain
        if conn.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
        raise plain from exc


def private_dirs(folder: Path) -> None:
    """`folder` and its missing parents, each made 0700 (folders that exist are left as they are)."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for made in reversed(missing):
        with contextlib.suppress(FileExistsError):
            made.mkdir(mode=PRIVATE_DIR)


def inside(root: Path, path: str | os.PathLike[str], what: str) -> Path:
    """`path` (relative to `root`, or absolute) resolved with its links followed, refused unless
    it stays inside `root`: what a browser sends (a notebook's name, a clone's destination) may
    name nothing outside the folder JupyterLab serves."""
    text = os.fspath(path).strip()
    if not text:
        raise MlopsError(f"the {what} is empty")
    root = root.resolve()
    resolved = (root / Path(text).expanduser()).resolve()
    if resolved != root and root not in resolved.parents:
        raise MlopsError(f"{text}: the {what} must be inside the folder JupyterLab shows ({root})")
    return resolved


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace `path` with `data` so a crash leaves either the old file or the new one, never
    half; the file is 0600 and the folders made for it 0700."""
    private_dirs(path.parent)
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
