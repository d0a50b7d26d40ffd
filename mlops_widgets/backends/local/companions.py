"""Work the local service process runs beside inference: monitor schedules, training jobs.

The workspace's service is the one long-lived process of the local backend (started on
demand, surviving the command that asked for it), so everything that must run while no
command does lives in it. Each companion is a module path to an object with
`start(workspace)` (returns at once, runs in threads of its own) and `stop()` (returns when
its work is settled); the service starts them after it serves and stops them before it exits.
Modules are imported only in the service process.
"""

from __future__ import annotations

import importlib
import logging
from typing import Protocol

from mlops_widgets.workspace import Workspace

log = logging.getLogger(__name__)

# "module:attribute" of each companion, in start order.
REGISTRY: list[str] = [
    "mlops_widgets.runner.scheduler:MonitorScheduler",  # monitor schedules (issue 16)
]


class Companion(Protocol):
    def start(self, workspace: Workspace) -> None: ...

    def stop(self) -> None: ...


def start_all(workspace: Workspace) -> list[Companion]:
    """Start every companion; one that fails to start is logged and left out, never fatal to
    inference."""
    started: list[Companion] = []
    for spec in REGISTRY:
        module, _, attr = spec.partition(":")
        try:
            companion: Companion = getattr(importlib.import_module(module), attr)()
            companion.start(workspace)
        except Exception:
            log.exception("companion %s did not start", spec)
            continue
        started.append(companion)
    return started


def stop_all(companions: list[Companion]) -> None:
    """Stop in reverse start order; a failing stop is logged and the others still stop."""
    for companion in reversed(companions):
        try:
            companion.stop()
        except Exception:
            log.exception("companion %r did not stop cleanly", companion)
