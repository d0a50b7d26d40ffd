"""Which process a run belongs to, and whether it is still there: a run left `running` by a
process that was killed (SIGKILL, a crash, a power cut) is then known to be interrupted.

A process is its host, pid and start time: a pid reused by a later process does not count.
"""

from __future__ import annotations

import os
import socket
from typing import Any


def _start_time(pid: int) -> float | None:
    import psutil

    try:
        return round(psutil.Process(pid).create_time(), 2)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


def user() -> str:
    """Who runs this process (for the audit trail)."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")


def identity() -> dict[str, Any]:
    """This process: {"host", "pid", "started"} (start time in seconds since the epoch)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _start_time(pid)}


def is_gone(process: dict[str, Any] | None) -> bool:
    """Whether the process is known to have ended: on this host, its pid is free or now holds
    another process. A process of another host, or not recorded, is not known to be gone."""
    if not process or process.get("host") != socket.gethostname() or not process.get("pid"):
        return False
    started = _start_time(int(process["pid"]))
    return started is None or started != process.get("started")
