"""One job of the server extension, in a process of its own (`python -m mlops_widgets.server.worker`):
the Jupyter server spawns it for every template run a browser starts, so nothing a run does (IBM
SDKs' process-wide changes, see backends/cpd/contain.py; a crash) reaches the server.

Its spec comes on stdin as JSON: {"job_id", "action" (see views.job), "args": {...}, "secrets":
{...}} (secrets never in the command line nor the environment). It answers on stdout, one JSON
object a line: {"progress": {run_id, status, done, total, heading...}} as the run goes (the first
names the run), then {"result": {...}} or {"error": {"message", "hint", "not_found"}}. Anything
else the process prints goes to stderr. SIGINT cancels the run (the runner records it cancelled).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import sys
import threading
from typing import Any, TextIO

from mlops_widgets.errors import MlopsError, NotFoundError
from mlops_widgets.server import views


def _emitter(out: TextIO) -> Any:
    def emit(message: dict[str, Any]) -> None:
        try:
            out.write(json.dumps(message, default=str) + "\n")
            out.flush()
        except OSError:  # the server went away: the run goes on and is recorded all the same
            pass

    return emit


def main() -> int:
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # stray prints (libraries, SDKs) must not mix with the answers
    sys.stdout = sys.stderr
    emit = _emitter(out)
    spec = json.load(sys.stdin)
    args, secrets = spec["args"], spec.get("secrets") or {}

    def progress(event: Any) -> None:
        emit({"progress": dataclasses.asdict(event)})

    # The server's Cancel (SIGINT) sets the run's cancel event: whenever it comes (while the
    # kernel starts, or before the run is recorded) the run ends recorded cancelled, never with a
    # KeyboardInterrupt out of whatever line the process was on.
    cancel = threading.Event()
    signal.signal(signal.SIGINT, lambda _signum, _frame: cancel.set())
    try:
        result = views.job(spec["job_id"], spec["action"], args, secrets, progress=progress, cancel=cancel)
    except MlopsError as exc:
        hint = None if exc.hint is None else {"action": exc.hint.action, "text": exc.hint.text}
        emit({"error": {"message": exc.message, "hint": hint, "not_found": isinstance(exc, NotFoundError)}})
        return 1
    emit({"result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
