"""Work the local service process runs beside inference: the monitor schedules (a training job
is watched by a supervisor process of its own, `training_supervisor.py`, not by the service).

The workspace's service is the one long-lived process of the local backend (started on
demand, surviving the command that asked for it), so everything that must run while no
command does lives in it. A companion is a class, found through the entry point group
`mlops_widgets.companions` (this package declares its monitor scheduler in its pyproject;
another package adds its own the same way), whose instances have `start(workspace)` (returns
at once, runs in threads of its own) and `stop()` (returns when its work is settled), and may
have `on_service_event(action, params)` to hear of changes made through EDI's API (`announce`). The
service starts them after it serves and stops them before it exits. They plug in by entry
point so this backend names nothing above it; they are imported only in the service process.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from mlops_widgets.plugins import declared
from mlops_widgets.workspace import Workspace

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "mlops_widgets.companions"


class Companion(Protocol):
    def start(self, workspace: Workspace) -> None: ...

    def stop(self) -> None: ...


def start_all(workspace: Workspace) -> list[Companion]:
    """Start every companion; one that fails to start is logged and left out, never fatal to
    inference."""
    started: list[Companion] = []
    for name, plugin in declared(ENTRY_POINT_GROUP).items():
        try:
            companion: Companion = plugin.load()()
            companion.start(workspace)
        except Exception:
            log.exception("companion %s (%s) did not start", name, plugin.target)
            continue
        started.append(companion)
    return started


def announce(companions: list[Companion], action: str, params: dict[str, Any]) -> None:
    """Tell the companions that listen (an `on_service_event(action, params)` method) of a change
    the service made on a request from outside mlops (IBM's EDI client changing a profile), so
    that one above the backends records it. A failing listener is logged, never the caller's."""
    for companion in companions:
        listen = getattr(companion, "on_service_event", None)
        if listen is None:
            continue
        try:
            listen(action, params)
        except Exception:
            log.exception("companion %r did not take event %s", companion, action)


def stop_all(companions: list[Companion]) -> None:
    """Stop in reverse start order; a failing stop is logged and the others still stop."""
    for companion in reversed(companions):
        try:
            companion.stop()
        except Exception:
            log.exception("companion %r did not stop cleanly", companion)
