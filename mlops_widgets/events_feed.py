"""The change feed: every change to a workspace's state, in order, for front ends to follow live.

    publish(ws, "run", run_id, status="running", template="A1_Stage")   # whatever process changes it
    since(ws, 41)   # -> the changes numbered after 41, oldest first; a follower resumes from the last seq

One append-only table (`events_feed`) in the workspace database, so a change made by any process
(the CLI, the scheduler, a training supervisor, the Jupyter server, the service) reaches every
follower; `seq` only grows (AUTOINCREMENT: a pruned number is never reused). It is bounded: the
oldest rows beyond `KEEP` are pruned as new ones come. Payloads carry ids, names and states only,
never parameters, results or error texts (which may quote user input), so no secret can reach it.
Publishing is a notification, not the record: it never fails the change it announces (a failure is
logged and the change stands; the audit trail and the backends remain the truth).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from mlops_widgets.workspace import Workspace, transaction

log = logging.getLogger(__name__)

KEEP = 10_000  # rows kept; older ones are pruned
PRUNE_EVERY = 100  # a prune runs when a seq is a multiple of this (cheap, and bounded meanwhile)

SCHEMA = """
CREATE TABLE IF NOT EXISTS events_feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""

Scalar = str | int | float | bool | None


@dataclass(frozen=True)
class Change:
    """One published change: its number, when (epoch seconds), what kind of thing changed
    ("run", "job", "alert"...), which one (an id or a name), and its new state."""

    seq: int
    at: float
    kind: str
    subject: str
    payload: dict[str, Scalar]

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": self.at, "kind": self.kind, "subject": self.subject, **self.payload}


def publish(
    workspace: Workspace,
    kind: str,
    subject: str,
    /,
    *,
    conn: sqlite3.Connection | None = None,
    **payload: Scalar,
) -> int | None:
    """Announce that `subject` (of `kind`) changed; returns its seq, or None when it could not be
    published (logged: the change itself stands). Payload values are plain scalars only: ids,
    names, states. `conn`: the caller's open connection to the workspace database, outside any
    transaction (it saves a connection, whose closing checkpoints the database)."""
    try:
        for key, value in payload.items():
            if not isinstance(value, str | int | float | bool | type(None)):
                raise TypeError(f"payload {key} is a {type(value).__name__}, not a plain scalar")
        row = (time.time(), kind, subject, json.dumps(payload))
        if conn is not None:
            conn.executescript(SCHEMA)
            return _insert(conn, row)
        with workspace.tables(SCHEMA) as own:
            return _insert(own, row)
    except Exception as exc:  # a notification never fails the change it announces
        log.warning("change feed of %s: %s %s not published: %s", workspace.root, kind, subject, exc)
        return None


def _insert(conn: sqlite3.Connection, row: tuple[float, str, str, str]) -> int:
    with transaction(conn):
        seq = conn.execute(
            "INSERT INTO events_feed (at, kind, subject, payload) VALUES (?, ?, ?, ?)", row
        ).lastrowid
        assert seq is not None
        if seq % PRUNE_EVERY == 0:
            conn.execute("DELETE FROM events_feed WHERE seq <= ?", (seq - KEEP,))
    return seq


def since(workspace: Workspace, seq: int, limit: int = 500) -> list[Change]:
    """The changes numbered after `seq`, oldest first, at most `limit`. Reading never creates the
    workspace: one that does not exist yet has no changes."""
    if not workspace.db_path.exists():
        return []
    with workspace.tables(SCHEMA) as conn:
        rows = conn.execute(
            "SELECT seq, at, kind, subject, payload FROM events_feed WHERE seq > ? ORDER BY seq LIMIT ?",
            (seq, limit),
        ).fetchall()
    return [Change(r["seq"], r["at"], r["kind"], r["subject"], json.loads(r["payload"])) for r in rows]


def last_seq(workspace: Workspace) -> int:
    """The number of the latest change (0 when there is none): a new follower starts after it."""
    if not workspace.db_path.exists():
        return 0
    with workspace.tables(SCHEMA) as conn:
        row = conn.execute("SELECT max(seq) FROM events_feed").fetchone()
    return int(row[0] or 0)
