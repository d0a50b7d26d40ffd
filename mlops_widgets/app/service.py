"""The workspace's local service (inference and monitor schedules, under its supervisor) and the
runtimes its kernels run on: what an operator starts, stops and reads, from any front end."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mlops_widgets.app.monitoring_reads import MonitoringReadsMixin
from mlops_widgets.errors import MlopsError

if TYPE_CHECKING:
    from mlops_widgets.backends.local.inference.runtimes import Runtimes

NEXT_SLOTS = 5
FOLLOW_POLL_S = 0.5


class ServiceMixin(MonitoringReadsMixin):
    """Local service and runtime operations of `App` (not recorded: they change no workflow state);
    the status shows the schedules' next slots."""

    def service_status(self) -> dict[str, Any]:
        """Whether the service runs (pid, address, uptime, what it uses), its supervisor and
        restarts, the evaluations it runs and queues, and the next schedule slots."""
        from mlops_widgets.backends.local.inference.launcher import service_status

        out = service_status(self.workspace)
        queue = self._local_queue(out["running"])
        out["evaluations"] = {k: queue.get(k) for k in ("bound", "running", "queued")}
        slots: list[dict[str, Any]] = [
            {"at": at, "deployment_name": row.deployment_name, "monitor_id": row.monitor_id}
            for row in self.schedules()
            for at in (row.schedule.next_times if row.schedule else ())
        ]
        out["next_slots"] = sorted(slots, key=lambda s: datetime.fromisoformat(s["at"]))[:NEXT_SLOTS]
        return out

    def service_start(self) -> dict[str, Any]:
        """Start the service under its supervisor unless it runs; its address and pid."""
        from mlops_widgets.backends.local.inference import start_service

        return start_service(self.workspace)

    def service_stop(self) -> bool:
        """Stop the service, its supervisor and every kernel it started; False when none ran."""
        from mlops_widgets.backends.local.inference import stop_service

        return stop_service(self.workspace)

    def service_log(self, *, tail: int, follow: bool = False) -> Iterator[str]:
        """The last `tail` lines of the service's log (requests, schedules, supervisor notes),
        then, with `follow`, each line as it is written (across a rotation) until closed."""
        from mlops_widgets.backends.local.inference.kernel_logs import log_tail

        path = self.workspace.root / "inference" / "service.log"
        text = log_tail(path, tail) if tail and path.exists() else ""
        yield from (line for line in text.splitlines() if line)
        if not follow:
            return
        offset = path.stat().st_size if path.exists() else 0
        while True:
            size = path.stat().st_size if path.exists() else 0
            if size < offset:  # rotated: the new file from its start
                offset = 0
            if size > offset:
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read(size - offset)
                offset = size
                yield from chunk.decode("utf-8", "replace").splitlines()
            time.sleep(FOLLOW_POLL_S)

    def serve(self, port: int | None = None) -> None:
        """Run the local service in this process, in the foreground, until it is stopped."""
        from mlops_widgets.backends.local.inference.server import serve

        if self.backend_name != "local":
            raise MlopsError(
                f"the local inference service serves the local backend only; the backend is {self.backend_name}"
            )
        serve(self.workspace, port=port, announce=True)

    # --- runtimes --------------------------------------------------------------------------------

    def _runtimes(self) -> Runtimes:
        from mlops_widgets.backends.local.inference.runtimes import Runtimes

        if self.backend_name != "local":
            raise MlopsError(
                f"runtimes here are those of the local inference service; on the {self.backend_name} "
                "backend WMLA keeps its own"
            )
        return Runtimes(self.workspace)

    def runtimes(self) -> list[dict[str, Any]]:
        """Every runtime (name, Python, version) local kernels may run on; dlipy3 is the
        service's own interpreter unless bound to another."""
        return self._runtimes().list()

    def runtime_add(self, name: str, python: str | os.PathLike[str]) -> dict[str, Any]:
        """Add (or rebind) runtime `name` to that interpreter; its name, Python and version."""
        return self._runtimes().add(name, python)

    def runtime_delete(self, name: str) -> None:
        """Delete runtime `name` (dlipy3: back to the service's own interpreter)."""
        self._runtimes().delete(name)
