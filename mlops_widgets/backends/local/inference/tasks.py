"""An inference request on its way through a deployment's kernel pool (`pool.py`), and the
error the service answers with an HTTP status."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from mlops_widgets.backends.local.inference.kernel_path import _mlops_wire as wire


class ServiceError(Exception):
    """A request the service answers with an HTTP error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Task:
    """One inference request waiting for its kernel's answer; `on_done` hears of the answer (it
    runs on the thread that answers, so it only hands the news on, e.g. to an event loop)."""

    __slots__ = ("body", "on_done", "status", "output", "id", "uuid", "attempts")

    def __init__(self, body: wire.Blob, task_id: str, on_done: Callable[[Task], None]) -> None:
        self.body = body
        self.on_done = on_done
        self.id = task_id
        self.uuid = uuid.uuid4().hex
        self.status = 0
        self.output = b""
        self.attempts = 0

    def finish(self, status: int, output: bytes = b"", error: str | None = None) -> None:
        self.status = status
        self.output = output if error is None else json.dumps({"error": error}).encode()
        self.on_done(self)
